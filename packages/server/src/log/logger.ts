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

/** A call's context; its child logger is made on first use, so calls that do not log pay nothing. */
export function callContext(log: Logger, transport: CallTransport, callId: number, peer: string): CallContext {
  let child: Logger | undefined;
  return {
    transport,
    callId,
    peer,
    get log() {
      child ??= log.child({ transport, peer, callId });
      return child;
    },
  };
}
