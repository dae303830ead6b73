/**
 * CountingDispatcher: an oncrpc Dispatcher that counts every reply it
 * produces — status, duration, calls in flight — into the process's call
 * metrics. Subclasses say which series a call belongs to (`seriesOf`), from
 * its header; both the service's dispatcher and the NFS export's count this
 * way, so /metrics reads the same for every program.
 *
 * Life: one per dispatcher, created by its server process; main thread.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Dispatcher, type DispatcherOptions, type DispatchOptions, type RpcReply, type RpcTransportContext } from '@roce-rpc/oncrpc';
import type { Logger } from 'pino';
import type { CallTransport } from '../service/definition.js';
import type { CallMetrics, CallSeries } from './call-metrics.js';

/** Call header word offsets (RFC 5531 §9): xid, mtype, rpcvers, prog, vers, proc. */
export const PROGRAM_OFFSET = 12;
export const PROCEDURE_OFFSET = 20;
export const CALL_HEADER_BYTES = 24;

/** The `status` label of each reply kind. */
const kReplyStatus: Record<RpcReply['kind'], string> = {
  SUCCESS: 'success',
  PROG_UNAVAIL: 'prog_unavail',
  PROG_MISMATCH: 'prog_mismatch',
  PROC_UNAVAIL: 'proc_unavail',
  GARBAGE_ARGS: 'garbage_args',
  SYSTEM_ERR: 'system_err',
  RPC_MISMATCH: 'rpc_mismatch',
  AUTH_ERROR: 'auth_error',
};

export abstract class CountingDispatcher extends Dispatcher {
  /** Calls whose handler has not settled; bounded by the transports' own call limits. */
  inFlight = 0;

  constructor(
    options: DispatcherOptions,
    protected readonly callMetrics: CallMetrics,
    protected readonly log: Logger,
  ) {
    super(options);
  }

  /** The series a call counts into; hostile numbers must map to a bounded set. */
  protected abstract seriesOf(bytes: Uint8Array, transport: CallTransport): CallSeries;

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
}

/** A big-endian word of a call header (the caller checked the length). */
export function callHeaderWord(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}
