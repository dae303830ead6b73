/**
 * MeteredDispatcher: the oncrpc Dispatcher that serves a service definition
 * (TCP and RDMA share it) by running each call on the process's procedure
 * worker threads, and counts every reply it produces, whatever its status.
 *
 * Life: one per server process, created by the ServerProcess; main thread.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Dispatcher, type DispatchOptions, type RpcReply, type RpcTransportContext, type VersionHandlers } from '@roce-rpc/oncrpc';
import { defineProcedure } from '@roce-rpc/oncrpc';
import type { OncRpcVersionDescriptor } from '@roce-rpc/xdr';
import type { Logger } from 'pino';
import { callContext } from '../log/logger.js';
import type { CallMetrics, CallSeries } from '../metrics/call-metrics.js';
import { proceduresByNumber, type CallTransport, type ServiceDefinition } from '../service/definition.js';
import type { ProcedurePool } from '../threads/procedure-pool.js';

/** Call header word offsets (RFC 5531 §9): xid, mtype, rpcvers, prog, vers, proc. */
const PROGRAM_OFFSET = 12;
const PROCEDURE_OFFSET = 20;
const CALL_HEADER_BYTES = 24;

export class MeteredDispatcher extends Dispatcher {
  inFlight = 0;
  private readonly names: Map<number, string>;
  private readonly seriesCache = new Map<number, CallSeries>();

  constructor(
    private readonly service: ServiceDefinition,
    private readonly pool: ProcedurePool,
    private readonly callMetrics: CallMetrics,
    private readonly log: Logger,
  ) {
    super({ onHandlerError: (error, call) => log.warn({ err: error, xid: call.xid, procedure: call.procedure }, 'handler failed; answered SYSTEM_ERR') });
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

  override handleCall(bytes: Uint8Array, context: RpcTransportContext, options?: DispatchOptions): RpcReply | Promise<RpcReply> | null {
    const started = performance.now();
    const reply = super.handleCall(bytes, context, options);
    if (reply === null) return null;
    if (!(reply instanceof Promise)) {
      this.count(bytes, context, reply, started);
      return reply;
    }
    this.inFlight++;
    const settle = (): void => {
      this.inFlight--;
      assert.ok(this.inFlight >= 0, 'dispatcher: more calls settled than started');
    };
    return reply.then(
      (settled) => {
        settle();
        this.count(bytes, context, settled, started);
        return settled;
      },
      (error: unknown) => {
        // The dispatcher turns handler failures into replies; a rejection is its own bug, which the transport handles.
        settle();
        throw error;
      },
    );
  }

  private count(bytes: Uint8Array, context: RpcTransportContext, reply: RpcReply, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    const series = this.seriesOf(bytes, context.transport as CallTransport);
    this.callMetrics.observe(series, kReplyStatus[reply.kind], seconds);
    // Every call at trace only: info and debug stay quiet under load.
    if (this.log.isLevelEnabled('trace')) {
      this.log.trace({ ...series.labels, status: kReplyStatus[reply.kind], seconds, xid: reply.xid, peer: `${context.remoteAddress}:${context.remotePort}` }, 'call answered');
    }
  }

  /**
   * The metric series of a call, from its header. Calls to other programs or
   * unknown procedures share 'other', so hostile numbers cannot grow the
   * series, nor this cache: at most (procedures + 1) x transports entries.
   */
  private seriesOf(bytes: Uint8Array, transport: CallTransport): CallSeries {
    const served = bytes.byteLength >= CALL_HEADER_BYTES && readUint32(bytes, PROGRAM_OFFSET) === this.service.program;
    const procedureNumber = served ? readUint32(bytes, PROCEDURE_OFFSET) : NOT_SERVED_KEY;
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

/** The `status` label of each reply kind (also used by the NFS export's dispatcher, src/nfs). */
export const kReplyStatus: Record<RpcReply['kind'], string> = {
  SUCCESS: 'success',
  PROG_UNAVAIL: 'prog_unavail',
  PROG_MISMATCH: 'prog_mismatch',
  PROC_UNAVAIL: 'proc_unavail',
  GARBAGE_ARGS: 'garbage_args',
  SYSTEM_ERR: 'system_err',
  RPC_MISMATCH: 'rpc_mismatch',
  AUTH_ERROR: 'auth_error',
};

function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}
