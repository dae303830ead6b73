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
  /**
   * A descriptor the worker owns from now on: of its own member of the
   * server's steered socket group (`steered`: read and send through it), or
   * of the server socket (send only).
   */
  | { kind: 'socket'; fd: number; steered: boolean }
  /** The routing thread has handled one forwarded datagram (its packets, if any, were posted before this). */
  | { kind: 'forwarded' }
  | { kind: 'stats'; requestId: number }
  /** The server is closing: new calls are refused, running ones finish. */
  | { kind: 'refuse-new-calls' };

export type WorkerToMain =
  | { kind: 'ready'; serviceIds: number[] }
  | { kind: 'start-failed'; message: string }
  | { kind: 'send'; batch: ArrayBuffer }
  /** A datagram the worker's steered socket read for a connection it has not heard of: the routing thread routes it. */
  | { kind: 'forward'; datagram: ArrayBuffer; address: string; port: number }
  | ({ kind: 'stats'; requestId: number } & HostStats);
