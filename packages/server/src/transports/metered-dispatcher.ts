/**
 * MeteredDispatcher: the oncrpc Dispatcher that serves a service definition
 * (TCP and RDMA share it) by running each call on the process's procedure
 * worker threads, and counts every reply it produces, whatever its status.
 *
 * Life: one per server process, created by the ServerProcess; main thread.
 */
import { type RpcTransportContext, type VersionHandlers } from '@roce-rpc/oncrpc';
import { defineProcedure } from '@roce-rpc/oncrpc';
import type { OncRpcVersionDescriptor } from '@roce-rpc/xdr';
import type { Logger } from 'pino';
import { callContext } from '../log/logger.js';
import type { CallMetrics, CallSeries } from '../metrics/call-metrics.js';
import { CALL_HEADER_BYTES, callHeaderWord, CountingDispatcher, PROCEDURE_OFFSET, PROGRAM_OFFSET } from '../metrics/counting-dispatcher.js';
import { proceduresByNumber, type CallTransport, type ServiceDefinition } from '../service/definition.js';
import type { ProcedurePool } from '../threads/procedure-pool.js';

export class MeteredDispatcher extends CountingDispatcher {
  private readonly names: Map<number, string>;
  private readonly seriesCache = new Map<number, CallSeries>();

  constructor(
    private readonly service: ServiceDefinition,
    private readonly pool: ProcedurePool,
    callMetrics: CallMetrics,
    log: Logger,
  ) {
    super({ onHandlerError: (error, call) => log.warn({ err: error, xid: call.xid, procedure: call.procedure }, 'handler failed; answered SYSTEM_ERR') }, callMetrics, log);
    this.names = new Map([...proceduresByNumber(service)].map(([number, { name }]) => [number, name]));
    const procedures = Object.entries(service.procedures).map(([name, procedure]) => defineProcedure(name, procedure.number, procedure.argument, procedure.result));
    const version: OncRpcVersionDescriptor = { name: service.name, version: service.version, procedures };
    const handlers: Record<string, (argument: unknown, call: { xid: number; context: RpcTransportContext }) => unknown> = {};
    for (const [name, procedure] of Object.entries(service.procedures)) {
      if (procedure.inline === true) {
        // Synchronous when the handler is: the dispatcher then answers without a promise.
        handlers[name] = (argument, call) =>
          procedure.handler(argument, callContext(log, call.context.transport as CallTransport, call.xid, call.context.remoteAddress, call.context.remotePort));
        continue;
      }
      handlers[name] = (argument, call) =>
        this.pool.run({
          procedure: name,
          argument,
          transport: call.context.transport as CallTransport,
          callId: call.xid,
          peer: `${call.context.remoteAddress}:${call.context.remotePort}`,
        });
    }
    this.addVersion(service.program, version, handlers as VersionHandlers<OncRpcVersionDescriptor>);
  }

  /**
   * The metric series of a call, from its header. Calls to other programs or
   * unknown procedures share 'other', so hostile numbers cannot grow the
   * series, nor this cache: at most (procedures + 1) x transports entries.
   */
  protected seriesOf(bytes: Uint8Array, transport: CallTransport): CallSeries {
    const served = bytes.byteLength >= CALL_HEADER_BYTES && callHeaderWord(bytes, PROGRAM_OFFSET) === this.service.program;
    const procedureNumber = served ? callHeaderWord(bytes, PROCEDURE_OFFSET) : NOT_SERVED_KEY;
    const name = this.names.get(procedureNumber);
    // A number key (no string to build and hash per call): the transport above the 33 bits a procedure key needs.
    const key = kTransportIndex[transport] * TRANSPORT_KEY_STEP + (name !== undefined || !served ? procedureNumber : UNKNOWN_PROCEDURE_KEY);
    let series = this.seriesCache.get(key);
    if (series === undefined) {
      series = this.callMetrics.series(transport, served ? this.callMetrics.program : 'other', name ?? 'other');
      this.seriesCache.set(key, series);
    }
    return series;
  }
}

/** seriesOf() keys: procedure numbers are 32-bit; these two sit just above them. */
const UNKNOWN_PROCEDURE_KEY = 2 ** 32;
const NOT_SERVED_KEY = 2 ** 32 + 1;
const TRANSPORT_KEY_STEP = 2 ** 33;
const kTransportIndex: Record<CallTransport, number> = { tcp: 0, udp: 1, rdma: 2 };
