/**
 * `connect()`: the active side of rdma_cm — resolve address, resolve route,
 * let the caller create the QP on the resolved device, connect.
 *
 * Life: each connection gets its own event channel; the returned CmId is
 * the caller's to `disconnect()`/`close()`. On any failure the id is closed
 * and the promise rejects with a VerbsError (ECONNREFUSED when nobody
 * listens, ETIMEDOUT/EHOSTUNREACH when the peer cannot be reached).
 */
import { CmId, type ConnectionParameters } from './cm_id.js';
import { EventChannel } from './event_channel.js';
import type { QueuePair } from './queue_pair.js';

/** Options of {@link connect}. */
export interface ConnectOptions extends ConnectionParameters {
  /** Peer address (of its RDMA device's interface). */
  address: string;
  /** Peer port. */
  port: number;
  /** Limit for address and for route resolution, each. Default 5000. */
  timeoutMs?: number;
  /**
   * Called once the device is known (`cmId.deviceName`): create the QP
   * with `cmId.createQueuePair()` (and post initial Receives) here.
   */
  createQueuePair: (cmId: CmId) => QueuePair;
}

const DEFAULT_TIMEOUT_MS = 5000;

/** Connects to `address:port`; resolves with the established CmId. */
export async function connect(options: ConnectOptions): Promise<CmId> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const channel = new EventChannel();
  const cmId = new CmId(channel.createId(), channel);
  try {
    await cmId.resolveAddress(options.address, options.port, timeoutMs);
    await cmId.resolveRoute(timeoutMs);
    options.createQueuePair(cmId);
    await cmId.connect(options);
    return cmId;
  } catch (error) {
    cmId.close();
    throw error;
  }
}
