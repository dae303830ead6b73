/**
 * QueuePair: a reliable-connected (RC) queue pair, the data path of a
 * connection.
 *
 * Life: created on a connection id (`CmId.createQueuePair`) before
 * connecting or accepting; owned by that CmId: `CmId.close()` destroys it
 * too, and posting afterwards throws ERR_VERBS_CLOSED. `close()` destroys
 * just the QP. Outstanding work requests complete with
 * IBV_WC_WR_FLUSH_ERR when the connection goes down. Used on the thread
 * that created it.
 *
 * Every SGE is checked against its memory region before posting: a byte
 * outside the region throws EINVAL, nothing reaches the device.
 */
import { binding, type MemoryRegionHandle, type QueuePairHandle } from './binding.js';
import { SEND_FLAG, SGE_PER_WORK_REQUEST_MAX, WR_OPCODE } from './constants.js';
import { fromNative, native, VerbsError } from './errors.js';
import type { MemoryRegion, Sge } from './memory_region.js';
import { WorkBatch, type WorkBatchOptions } from './work_batch.js';
import type { CompletionQueue } from './completion_queue.js';
import type { ReleaseList } from './release_list.js';

/** Default bound of `waitForSendQueueSpace()`: a Send completes in far less unless the peer is gone. */
const SEND_QUEUE_WAIT_MS_DEFAULT = 5000;
/** Default bound of `drain()`: far above the time a device takes to flush a queue. */
const QP_DRAIN_TIMEOUT_MS_DEFAULT = 5000;

/** Options of a Send or RDMA work request. */
export interface SendOptions {
  /** Id reported in the completion. Integer, 0..2^53-1. */
  wrId: number;
  /** The local memory to send from (or, for RDMA Read, to read into). */
  sges: readonly Sge[];
  /** Ask for a completion. Default true. */
  signaled?: boolean;
  /** Copy the payload into the work request (small payloads only). */
  inline?: boolean;
  /** Make the peer's Receive completion solicited. */
  solicited?: boolean;
  /** Wait for earlier RDMA Reads before this one executes. */
  fence?: boolean;
  /** 32-bit immediate data (Send / RDMA Write with immediate). */
  immediate?: number;
}

/** Options of an RDMA Write or Read. */
export interface RdmaOptions extends SendOptions {
  /** The peer's virtual address (number or bigint). */
  remoteAddress: number | bigint;
  /** The peer region's rkey. */
  rkey: number;
}

/** Capacities the device granted. */
export interface QueuePairCapabilities {
  readonly maxSendWr: number;
  readonly maxRecvWr: number;
  readonly maxSendSge: number;
  readonly maxRecvSge: number;
  readonly maxInlineData: number;
}

function sendFlags(options: SendOptions): number {
  let flags = options.signaled === false ? 0 : SEND_FLAG.SIGNALED;
  if (options.inline) flags |= SEND_FLAG.INLINE;
  if (options.solicited) flags |= SEND_FLAG.SOLICITED;
  if (options.fence) flags |= SEND_FLAG.FENCE;
  return flags;
}

function flatten(sges: readonly Sge[]): (MemoryRegionHandle | number)[] {
  if (sges.length > SGE_PER_WORK_REQUEST_MAX) {
    throw new VerbsError('EINVAL', `at most ${SGE_PER_WORK_REQUEST_MAX} SGEs per work request, got ${sges.length}`);
  }
  const flat: (MemoryRegionHandle | number)[] = [];
  for (const sge of sges) flat.push(sge.memoryRegion.handle, sge.offset, sge.length);
  return flat;
}

/** An RC queue pair. */
export class QueuePair {
  readonly #handle: QueuePairHandle;

  /** @internal Use {@link CmId.createQueuePair}. */
  constructor(handle: QueuePairHandle) {
    this.#handle = handle;
  }

  /** The QP number. */
  get qpNumber(): number {
    return this.#handle.qpNumber;
  }

  /** What the device granted. */
  get capabilities(): QueuePairCapabilities {
    const { maxSendWr, maxRecvWr, maxSendSge, maxRecvSge, maxInlineData } = this.#handle;
    return { maxSendWr, maxRecvWr, maxSendSge, maxRecvSge, maxInlineData };
  }

  /** Posts a Send (with `immediate`: Send with immediate). */
  postSend(options: SendOptions): void {
    const opcode = options.immediate === undefined ? WR_OPCODE.SEND : WR_OPCODE.SEND_WITH_IMM;
    this.#post(opcode, options, 0, 0);
  }

  /** Posts an RDMA Write of the SGEs to the peer's `remoteAddress`. */
  postRdmaWrite(options: RdmaOptions): void {
    const opcode = options.immediate === undefined ? WR_OPCODE.RDMA_WRITE : WR_OPCODE.RDMA_WRITE_WITH_IMM;
    this.#post(opcode, options, options.remoteAddress, options.rkey);
  }

  /** Posts an RDMA Read from the peer's `remoteAddress` into the SGEs. */
  postRdmaRead(options: RdmaOptions): void {
    this.#post(WR_OPCODE.RDMA_READ, options, options.remoteAddress, options.rkey);
  }

  /** Posts a Receive into the SGEs. */
  postRecv(wrId: number, sges: readonly Sge[]): void {
    native(() => binding.qpPostRecv(this.#handle, wrId, ...flatten(sges)));
  }

  /**
   * The allocation-free Send path: one SGE, signaled. For hot loops.
   * `flags` are SEND_FLAG bits (default SIGNALED).
   */
  postSendOne(wrId: number, region: MemoryRegion, offset: number, length: number, flags: number = SEND_FLAG.SIGNALED): void {
    try {
      binding.qpPostSend(this.#handle, wrId, WR_OPCODE.SEND, flags, 0, 0, 0, region.handle, offset, length);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /**
   * A server's reply and its release in one call into the addon: posts a
   * signaled Send of one SGE (wrId below the CQ's release limit), routes the
   * watched Send CQ `sendCompletions` (Sends onto `releaseList`, anything
   * else to its onEvent before this returns), then drains `releaseList` into
   * `out`; returns how many ids `out` holds (RELEASE_FAILED_BIT marks failed ones).
   */
  postSendAndDrain(wrId: number, region: MemoryRegion, offset: number, length: number, sendCompletions: CompletionQueue, releaseList: ReleaseList, out: Float64Array): number {
    try {
      return binding.qpPostSendAndDrain(this.#handle, wrId, region.handle, offset, length, sendCompletions.handle, releaseList.handle, out);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** The allocation-free Receive path: one SGE. For hot loops. */
  postRecvOne(wrId: number, region: MemoryRegion, offset: number, length: number): void {
    try {
      binding.qpPostRecv(this.#handle, wrId, region.handle, offset, length);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /**
   * A batch that posts many work requests and polls a polled CQ in one
   * call into the addon (see WorkBatch): the lowest-latency path.
   */
  createWorkBatch(options: WorkBatchOptions): WorkBatch {
    return new WorkBatch(this.#handle, options);
  }

  #post(opcode: number, options: SendOptions, remoteAddress: number | bigint, rkey: number): void {
    const flat = flatten(options.sges);
    const flags = sendFlags(options);
    const immediate = options.immediate ?? 0;
    native(() => binding.qpPostSend(this.#handle, options.wrId, opcode, flags, remoteAddress, rkey, immediate, ...flat));
  }

  /**
   * Drains the QP before teardown (Linux's ib_drain_qp): moves it to the
   * error state, so every posted work request completes or is flushed, and
   * resolves once marker work requests posted behind them were polled from
   * both CQs. By then every earlier Send completion is on the Send CQ's
   * release list and every earlier Receive completion queued for its owner
   * (batches for `onCompletions` may still be on their way). The CQs must be
   * threaded or notified, or polled by their owner meanwhile. Rejects with
   * ETIMEDOUT after `timeoutMs`, EBUSY if a drain is already running.
   * Afterwards the QP only closes.
   */
  drain(timeoutMs = QP_DRAIN_TIMEOUT_MS_DEFAULT): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new VerbsError('ETIMEDOUT', `queue pair ${this.qpNumber} did not drain within ${timeoutMs} ms`));
      }, timeoutMs);
      try {
        binding.qpDrain(this.#handle, () => {
          clearTimeout(timer);
          resolve();
        });
      } catch (error) {
        clearTimeout(timer);
        reject(fromNative(error));
      }
    });
  }

  /**
   * Send Queue entries free now, counted natively: each post takes one; a
   * signaled completion gives back its own and those of the unsignaled work
   * requests posted before it. Needs a Send CQ of its own (ENOTSUP otherwise).
   */
  get sendQueueAvailable(): number {
    return native(() => binding.qpSendQueueState(this.#handle)).available;
  }

  /**
   * Resolves once the Send Queue has `entries` free (at once if it has).
   * Rejects with ECONNRESET once a Send-queue completion failed (the account
   * stops then), ETIMEDOUT after `timeoutMs`, EBUSY with 64 waiters already.
   */
  waitForSendQueueSpace(entries: number, timeoutMs = SEND_QUEUE_WAIT_MS_DEFAULT): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        if (timer !== undefined) clearTimeout(timer);
        if (binding.qpSendQueueState(this.#handle).failed) {
          reject(new VerbsError('ECONNRESET', `queue pair ${this.qpNumber}: a Send-queue work request failed`));
        } else {
          resolve();
        }
      };
      try {
        if (!binding.qpWaitSendQueue(this.#handle, entries, settle)) return settle();
      } catch (error) {
        return reject(fromNative(error));
      }
      timer = setTimeout(() => {
        reject(new VerbsError('ETIMEDOUT', `queue pair ${this.qpNumber}: no room for ${entries} work requests within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  /** Destroys the QP (the connection id stays). Idempotent. */
  close(): void {
    native(() => binding.qpClose(this.#handle));
  }
}
