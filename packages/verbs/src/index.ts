/**
 * @roce-rpc/verbs — RDMA verbs for Node.js over the roce-verbs Rust core.
 *
 * Object model: `openDevice(name)` → `Device` → `ProtectionDomain` →
 * `MemoryRegion` (Buffers registered in place); `Device` →
 * `CompletionQueue` (threaded with batched callbacks, notified with one
 * wake per burst, or polled);
 * `listen()` / `connect()` → `CmId` → `QueuePair` (post Send, Receive,
 * RDMA Write, RDMA Read, drain); `ReleaseList` for Send completions that
 * release buffers without waking JavaScript per completion. Every object
 * has `close()`.
 */
export { listDevices, openDevice, Device, type DeviceAttributes } from './device.js';
export { ProtectionDomain } from './protection_domain.js';
export { MemoryRegion, type Access, type Sge } from './memory_region.js';
export {
  CompletionQueue,
  decodeCompletion,
  decodeCompletions,
  type Completion,
  type CompletionQueueOptions,
  RELEASE_WR_ID_LIMIT_DEFAULT,
} from './completion_queue.js';
export { QueuePair, type QueuePairCapabilities, type RdmaOptions, type SendOptions } from './queue_pair.js';
export {
  CmId,
  cmEventError,
  type CmEvent,
  type CmIdEvents,
  type ConnectionParameters,
  type QueuePairOptions,
} from './cm_id.js';
export { listen, Listener, type ConnectionRequest, type ListenOptions } from './listener.js';
export { connect, type ConnectOptions } from './connect.js';
export { ReleaseList, RELEASE_FAILED_BIT, type ReleaseListOptions } from './release_list.js';
export { WorkBatch, type WorkBatchOptions } from './work_batch.js';
export { ErrorCode, VerbsError } from './errors.js';
export {
  ACCESS_FLAG,
  CM_EVENT_NAMES,
  COMPLETION_WORDS,
  SEND_FLAG,
  SGE_PER_WORK_REQUEST_MAX,
  WC_OPCODE_NAMES,
  WC_STATUS_NAMES,
  type CmEventType,
  type WcOpcode,
  type WcStatus,
} from './constants.js';

import { binding } from './binding.js';

/** Open native handles per kind in this thread, for leak checks at teardown. */
export function liveObjects(): Record<string, number> {
  return binding.liveObjects();
}
