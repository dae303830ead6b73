/**
 * WorkBatch: many work requests and a completion poll in ONE call into the
 * addon — the low-latency path for loops that post and poll (a ping-pong,
 * a dedicated transport worker).
 *
 * Why: a call into the addon costs ≈ 14 µs in the emulated lab guest
 * (0.4 µs on the host), so a ping-pong that posts a Receive, posts a Send
 * and polls pays three of them per side. A batch queues work requests in a
 * Float64Array (plain JavaScript stores, no call), and `submit()` posts them
 * in order and then polls its (polled) CQ, spinning up to `spinMicros`,
 * writing completion records into the same array (`completions`).
 *
 * Life: made by `QueuePair.createWorkBatch()`, owned by the caller, used on
 * that thread. It holds its QP's connection, its regions and its CQ alive:
 * close the batch before them (they throw EBUSY otherwise). One SGE per
 * work request; no immediate data.
 */
import { binding, type Handle, type QueuePairHandle } from './binding.js';
import { COMPLETION_WORDS, SEND_FLAG, WR_OPCODE } from './constants.js';
import type { CompletionQueue } from './completion_queue.js';
import { fromNative, native, VerbsError } from './errors.js';
import type { MemoryRegion } from './memory_region.js';

/** Options of {@link QueuePair.createWorkBatch}. */
export interface WorkBatchOptions {
  /** Regions the work requests address, by index in this list (1..16). */
  regions: readonly MemoryRegion[];
  /** A polled CQ that `submit()` polls (omit to only post). */
  completionQueue?: CompletionQueue;
  /** Most work requests per submit, 1..256. Default 16. */
  capacity?: number;
  /** Most completions per submit, 0..256. Default 16. */
  completionsMax?: number;
}

const SLOTS_PER_DESCRIPTOR = 8;
const KIND_RECEIVE = 255;
const DEFAULTS = { capacity: 16, completionsMax: 16 } as const;

/** A batch of work requests bound to one QP, its regions and a polled CQ. */
export class WorkBatch {
  readonly #handle: Handle;
  readonly #slots: Float64Array;
  readonly capacity: number;
  /** Completion records written by `submit()` (decode with `decodeCompletion`). */
  readonly completions: Uint32Array;
  #queued = 0;

  /** @internal Use {@link QueuePair.createWorkBatch}. */
  constructor(queuePair: QueuePairHandle, options: WorkBatchOptions) {
    this.capacity = options.capacity ?? DEFAULTS.capacity;
    const completionsMax = options.completionQueue === undefined ? 0 : (options.completionsMax ?? DEFAULTS.completionsMax);
    const regions = options.regions.map((region) => region.handle);
    this.#handle = native(() =>
      binding.batchCreate(queuePair, options.completionQueue?.handle ?? null, this.capacity, completionsMax, ...regions),
    );
    const completionSlots = (completionsMax * COMPLETION_WORDS) / 2;
    this.#slots = new Float64Array(this.capacity * SLOTS_PER_DESCRIPTOR + completionSlots);
    this.completions = new Uint32Array(this.#slots.buffer, this.capacity * SLOTS_PER_DESCRIPTOR * 8, completionsMax * COMPLETION_WORDS);
  }

  /** Work requests queued for the next submit. */
  get queued(): number {
    return this.#queued;
  }

  #queue(kind: number, wrId: number, region: number, offset: number, length: number, flags: number, remoteAddress: number, rkey: number): void {
    if (this.#queued === this.capacity) throw new VerbsError('ENOSPC', `the batch holds at most ${this.capacity} work requests: submit first`);
    const at = this.#queued++ * SLOTS_PER_DESCRIPTOR;
    const slots = this.#slots;
    slots[at] = kind;
    slots[at + 1] = wrId;
    slots[at + 2] = region;
    slots[at + 3] = offset;
    slots[at + 4] = length;
    slots[at + 5] = flags;
    slots[at + 6] = remoteAddress;
    slots[at + 7] = rkey;
  }

  /** Queues a Receive into `length` bytes at `offset` of region `region`. */
  receive(wrId: number, region: number, offset: number, length: number): void {
    this.#queue(KIND_RECEIVE, wrId, region, offset, length, 0, 0, 0);
  }

  /** Queues a Send (flags: SEND_FLAG bits, default SIGNALED). */
  send(wrId: number, region: number, offset: number, length: number, flags: number = SEND_FLAG.SIGNALED): void {
    this.#queue(WR_OPCODE.SEND, wrId, region, offset, length, flags, 0, 0);
  }

  /** Queues an RDMA Write to the peer's `remoteAddress`. */
  rdmaWrite(wrId: number, region: number, offset: number, length: number, remoteAddress: number, rkey: number, flags: number = SEND_FLAG.SIGNALED): void {
    this.#queue(WR_OPCODE.RDMA_WRITE, wrId, region, offset, length, flags, remoteAddress, rkey);
  }

  /** Queues an RDMA Read from the peer's `remoteAddress`. */
  rdmaRead(wrId: number, region: number, offset: number, length: number, remoteAddress: number, rkey: number, flags: number = SEND_FLAG.SIGNALED): void {
    this.#queue(WR_OPCODE.RDMA_READ, wrId, region, offset, length, flags, remoteAddress, rkey);
  }

  /**
   * Posts the queued work requests in order, then polls the CQ (spinning
   * up to `spinMicros` until one completes; negative: do not poll).
   * Returns the number of completion records in `completions`. If a work
   * request is refused, the ones before it are posted and the error says
   * which; the queue is emptied either way.
   */
  submit(spinMicros = 0): number {
    const count = this.#queued;
    this.#queued = 0;
    try {
      return binding.batchSubmit(this.#handle, this.#slots, count, spinMicros);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** Releases the batch (and its hold on the QP, regions and CQ). */
  close(): void {
    native(() => binding.batchClose(this.#handle));
  }
}
