/**
 * Messages between the main thread (endpoint, routing) and channel workers.
 * Only these cross threads; packet bytes travel in transferred batches.
 */
import type { ConnectionInfo } from '../connection/connection-info.js';
import type { HostStats } from './channel-hosts.js';

export type MainToWorker =
  | { kind: 'open'; connection: ConnectionInfo; channels: number[] }
  | { kind: 'close'; connectionId: number; reason: string }
  | { kind: 'packets'; batch: ArrayBuffer }
  /** A duplicate of the server socket's descriptor: the worker owns it and sends through it. */
  | { kind: 'sender'; fd: number }
  | { kind: 'stats'; requestId: number }
  /** The server is closing: new calls are refused, running ones finish. */
  | { kind: 'refuse-new-calls' };

export type WorkerToMain =
  | { kind: 'ready'; serviceIds: number[] }
  | { kind: 'start-failed'; message: string }
  | { kind: 'send'; batch: ArrayBuffer }
  | ({ kind: 'stats'; requestId: number } & HostStats);
