/**
 * ReleaseList: a bounded, lock-free list of Send work request ids that native
 * completion threads append to and one JavaScript thread drains (Linux
 * svcrdma's `sc_send_release_list`).
 *
 * Why: a transport releases a Send's buffers when the Send completes. Give
 * the transport's Send CQ a release list (`releaseList` option of
 * `createCompletionQueue`): its completion thread appends EVERY Send
 * completion's wrId here (wrIds below the CQ's `releaseWrIdLimit`) without
 * waking JavaScript per completion: a failed or flushed Send is appended
 * with {@link RELEASE_FAILED_BIT} set and sets `closing`. Only the list's
 * empty -> non-empty transition calls `onPending`, once, on the thread that
 * created the list; under load the owner's own drains keep the list
 * non-empty and nobody is woken.
 *
 * The list must hold every Send that can be in flight at once (size it to
 * the owner's bound on send contexts): a full list is a programmer error
 * and aborts a completion thread, throws ERR_VERBS_INTERNAL from `push`.
 *
 * Life: created and owned by the JavaScript thread that drains it; CQs that
 * append to it hold it alive natively. Only that thread drains. `onPending`
 * does not keep the process alive by itself.
 */
import { binding, type Handle } from './binding.js';
import { native } from './errors.js';

/**
 * Set in a drained id whose Send failed or was flushed (2^52). Ids pushed
 * must stay below it.
 */
export const RELEASE_FAILED_BIT = 2 ** 52;

/** Options of {@link ReleaseList}. */
export interface ReleaseListOptions {
  /**
   * Called on this thread once per empty -> non-empty transition (and again
   * if a drain had to leave ids behind): the owner should drain soon.
   */
  onPending?: () => void;
}

/** A bounded multi-producer list of wrIds, drained by its owner. */
export class ReleaseList {
  readonly #handle: Handle;
  /** Most ids it holds, 2..65536. */
  readonly capacity: number;
  readonly #drained: Float64Array;
  #closed = false;

  /** A list of `capacity` entries: at least the Sends outstanding at once. */
  constructor(capacity: number, options: ReleaseListOptions = {}) {
    const onPending = options.onPending;
    // A wake queued just before close() still arrives: it must not reach a closed list's owner.
    const wake = onPending === undefined ? null : () => this.#closed || onPending();
    this.#handle = native(() => binding.releaseListCreate(capacity, wake));
    this.capacity = capacity;
    this.#drained = new Float64Array(capacity);
  }

  /** @internal */
  get handle(): Handle {
    return this.#handle;
  }

  /**
   * Appends an id (JavaScript producers; `failed` marks it and sets
   * `closing`). Returns true on the empty -> non-empty transition, when
   * `onPending` has been queued.
   */
  push(wrId: number, failed = false): boolean {
    return native(() => binding.releaseListPush(this.#handle, wrId, failed));
  }

  /** Ids appended and not yet drained (a snapshot). */
  get length(): number {
    return native(() => binding.releaseListLength(this.#handle));
  }

  /** True once a failed or flushed Send was appended (the transport must close). */
  get closing(): boolean {
    return native(() => binding.releaseListClosing(this.#handle));
  }

  /**
   * Moves up to `out.length` ids into `out`, oldest first, and returns how
   * many: the allocation-free drain. Failed ones have RELEASE_FAILED_BIT set.
   */
  drainInto(out: Float64Array): number {
    return native(() => binding.releaseListDrain(this.#handle, out));
  }

  /** Calls `release` with each appended id, oldest first; returns how many. */
  drain(release: (wrId: number) => void): number {
    const count = this.drainInto(this.#drained);
    for (let index = 0; index < count; index++) release(this.#drained[index]!);
    return count;
  }

  /** Releases this handle (CQs still appending keep the list alive natively). */
  close(): void {
    this.#closed = true;
    native(() => binding.releaseListClose(this.#handle));
  }
}
