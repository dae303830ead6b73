/**
 * pino JSON logs. One root logger per thread (pino writes to fd 1 directly,
 * so worker threads log without a hop through the main thread); connections
 * and calls get child loggers bound to transport, peer and call id. Nothing
 * is logged per call at info, so info stays quiet under load.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/options.js';
import type { CallContext, CallTransport } from '../service/definition.js';

export type { Logger };

export function createLogger(level: LogLevel, bindings: Record<string, unknown>): Logger {
  // Synchronous writes: a process killed or exiting right after a line still has it on stdout.
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ dest: 1, sync: true }));
}

/**
 * A call's context. A class with its getters on the prototype: one small object per
 * call, the peer string and the child logger made only when a handler asks for them.
 */
class LazyCallContext implements CallContext {
  #log: Logger | undefined;
  #peer: string | undefined;

  constructor(
    private readonly rootLog: Logger,
    readonly transport: CallTransport,
    readonly callId: number,
    private readonly peerAddress: string | undefined,
    private readonly peerPort: number | undefined,
  ) {}

  get peer(): string {
    this.#peer ??= this.peerPort === undefined ? String(this.peerAddress) : `${this.peerAddress}:${this.peerPort}`;
    return this.#peer;
  }

  get log(): Logger {
    this.#log ??= this.rootLog.child({ transport: this.transport, peer: this.peer, callId: this.callId });
    return this.#log;
  }
}

/** `peer` is 'address:port' already, or the address with `peerPort` given apart. */
export function callContext(log: Logger, transport: CallTransport, callId: number, peer: string | undefined, peerPort?: number): CallContext {
  return new LazyCallContext(log, transport, callId, peer, peerPort);
}
