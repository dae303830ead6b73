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
import type { CallMetrics } from '../metrics/call-metrics.js';
import { proceduresByNumber, type CallTransport, type ServiceDefinition } from '../service/definition.js';
import type { ProcedurePool } from '../threads/procedure-pool.js';

/** Call header word offsets (RFC 5531 §9): xid, mtype, rpcvers, prog, vers, proc. */
const PROGRAM_OFFSET = 12;
const PROCEDURE_OFFSET = 20;
const CALL_HEADER_BYTES = 24;

export class MeteredDispatcher extends Dispatcher {
  inFlight = 0;
  private readonly names: Map<number, string>;

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
    const handlers: Record<string, (argument: unknown, call: { xid: number; context: RpcTransportContext }) => Promise<unknown>> = {};
    for (const [name, procedure] of Object.entries(service.procedures)) {
      if (procedure.inline === true) {
        handlers[name] = async (argument, call) =>
          procedure.handler(argument, callContext(log, call.context.transport as CallTransport, call.xid, `${call.context.remoteAddress}:${call.context.remotePort}`));
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
    const label = this.labelOf(bytes);
    const record = { transport: context.transport as CallTransport, ...label, status: reply.kind.toLowerCase(), seconds: (performance.now() - started) / 1000 };
    this.callMetrics.record(record);
    // Every call at trace only: info and debug stay quiet under load.
    if (this.log.isLevelEnabled('trace')) {
      this.log.trace({ ...record, xid: reply.xid, peer: `${context.remoteAddress}:${context.remotePort}` }, 'call answered');
    }
  }

  /** Labels from the call header; calls to other programs share one label set, so hostile numbers cannot grow the series. */
  private labelOf(bytes: Uint8Array): { program?: string; procedure: string } {
    if (bytes.byteLength < CALL_HEADER_BYTES) return { program: 'other', procedure: 'other' };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(PROGRAM_OFFSET) !== this.service.program) return { program: 'other', procedure: 'other' };
    return { procedure: this.names.get(view.getUint32(PROCEDURE_OFFSET)) ?? 'other' };
  }
}
