/**
 * What crosses between a process's main thread and its procedure worker
 * threads: one task per call (structured-cloned), and the data each worker
 * starts with.
 */
import type { LogLevel } from '../config/options.js';
import type { CallTransport } from '../service/definition.js';

export interface ProcedureWorkerData {
  /** Service module path or URL. */
  service: string;
  serviceOptions: Record<string, unknown>;
  instanceId: string;
  logLevel: LogLevel;
}

export interface ProcedureTask {
  procedure: string;
  argument: unknown;
  transport: CallTransport;
  callId: number;
  peer: string;
}
