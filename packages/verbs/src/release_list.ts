/**
 * ReleaseList: a bounded, lock-free list of work request ids that native
 * completion threads append to and one JavaScript thread drains.
 *
 * Why: a transport releases a Send's buffers when the Send completes.
 * Give the transport's Send CQ a release list (`releaseList` option of
 * `createCompletionQueue`): its completion thread appends each successful
 * Send's wrId here without waking JavaScript, and the transport's worker
 * drains the list when it next needs send resources. Failed Sends still
 * go to `onCompletions`.
 *
 * Life: created and owned by the JavaScript thread that drains it; CQs
 * that append to it hold it alive natively. Only that thread drains.
 */
import { binding, type Handle } from './binding.js';
import { native } from './errors.js';

/** A bounded multi-producer/single-drainer list of wrIds. */
export class ReleaseList {
  readonly #handle: Handle;
  /** Most ids it holds; a power of two, 2..65536. */
  readonly capacity: number;
  readonly #drained: Float64Array;

  /** A list of `capacity` entries: at least the Sends outstanding at once. */
  constructor(capacity: number) {
    this.#handle = native(() => binding.releaseListCreate(capacity));
    this.capacity = capacity;
    this.#drained = new Float64Array(capacity);
  }

  /** @internal */
  get handle(): Handle {
    return this.#handle;
  }

  /** Appends an id (JavaScript producers). False when the list is full. */
  push(wrId: number): boolean {
    return native(() => binding.releaseListPush(this.#handle, wrId));
  }

  /** Ids appended and not yet drained (a snapshot). */
  get length(): number {
    return native(() => binding.releaseListLength(this.#handle));
  }

  /** Calls `release` with each appended id, oldest first; returns how many. */
  drain(release: (wrId: number) => void): number {
    const count = native(() => binding.releaseListDrain(this.#handle, this.#drained));
    for (let index = 0; index < count; index++) release(this.#drained[index]!);
    return count;
  }

  /** Releases this handle (CQs still appending keep the list alive natively). */
  close(): void {
    native(() => binding.releaseListClose(this.#handle));
  }
}
