/**
 * CompletionQueue: where work completions arrive.
 *
 * Three modes, chosen at creation:
 * - threaded (`onCompletions` given): a native completion thread polls the
 *   CQ, never the JavaScript event loop; completions arrive in batches (one
 *   callback per batch of up to `batchMax`). `busyPollMicros` keeps the
 *   thread spinning that long after the last completion before it sleeps
 *   (a wake-up costs hundreds of µs in an emulated guest).
 * - notified (`onPending` given): the native completion thread polls and
 *   queues completions in a ring; `onPending` is called once per empty ->
 *   non-empty transition, and the owner takes everything queued with
 *   `pollInto()` (no allocation, no call per batch, the event loop never
 *   spins). The owner must take until `pollInto` returns less than `max`.
 *   Without a `releaseList`, `pollInto` also polls the CQ itself behind
 *   what the ring held (in order), so an owner busy with a burst may call it
 *   every loop turn instead of waiting for the thread's wake-up, which costs
 *   milliseconds in an emulated guest; the CQ stays armed meanwhile.
 * - polled: the owner calls `poll()` / `pollInto()`, optionally spinning;
 *   meant for a dedicated worker thread (lowest latency).
 * - watched (`onEvent` given): no completion thread; this thread's event
 *   loop watches the CQ's completion channel itself, so a completion that
 *   raises an event wakes only this thread. On an event (and on `route()`)
 *   the CQ is polled empty: Sends for the `releaseList` are appended to it,
 *   every other completion is written into `records` and handed over with
 *   `onEvent(count, transition)` (`transition`: the list went empty ->
 *   non-empty). With `armed: false` it raises no events until `setArmed(true)`:
 *   its completions wait for a `route()` (or `QueuePair.postSendAndDrain`).
 * In the threaded modes, a `releaseList` takes every Send completion whose
 * wrId is below `releaseWrIdLimit` (successes, and failures or flushes
 * marked) instead of the owner.
 *
 * Life: created by `Device.createCompletionQueue()`, owned by the caller;
 * close it after the queue pairs that use it (EBUSY otherwise). `close()`
 * stops and joins the completion thread. A threaded CQ keeps the process
 * alive until closed (or `unref()`ed).
 */
import { binding, type DeviceHandle, type Handle } from './binding.js';
import { COMPLETION_WORDS, WC_OPCODE_NAMES, WC_STATUS_NAMES, WC_WITH_IMMEDIATE, type WcOpcode, type WcStatus } from './constants.js';
import { ErrorCode, fromNative, native, VerbsError } from './errors.js';
import type { ReleaseList } from './release_list.js';

/** One work completion. */
export interface Completion {
  /** The id given when the work request was posted. */
  readonly wrId: number;
  /** Status name; anything but `'IBV_WC_SUCCESS'` is a failure. */
  readonly status: WcStatus;
  /** True when status is IBV_WC_SUCCESS. */
  readonly ok: boolean;
  /** What completed: `'IBV_WC_SEND'`, `'IBV_WC_RECV'`, `'IBV_WC_RDMA_WRITE'`... */
  readonly opcode: WcOpcode;
  /** Bytes received (Receive completions). */
  readonly byteLength: number;
  /** Immediate data (host order), when the peer sent some. */
  readonly immediate: number | undefined;
  /** The QP the work request was posted on. */
  readonly qpNumber: number;
  /** Device-specific error detail of a failed completion. */
  readonly vendorError: number;
}

/** Options of {@link Device.createCompletionQueue}. */
export interface CompletionQueueOptions {
  /** Entries (at least the work requests outstanding on its QPs). Default 256. */
  depth?: number;
  /** Makes the CQ threaded: called on this thread with each batch. */
  onCompletions?: (completions: Completion[]) => void;
  /** Threaded: spin this long after a completion before sleeping. Default 0. */
  busyPollMicros?: number;
  /** Threaded: most completions per callback, 1..256. Default 64. */
  batchMax?: number;
  /** Makes the CQ notified: called on this thread when completions are waiting. */
  onPending?: () => void;
  /** Threaded/notified: append Send completions' wrIds here instead. */
  releaseList?: ReleaseList;
  /**
   * wrIds below this are Sends for the release list; others (RDMA Writes,
   * Reads) go to the owner. At most 2^52. Default 2^40.
   */
  releaseWrIdLimit?: number;
  /**
   * Makes the CQ watched: called on this thread with the number of
   * completions written into `records` and whether the release list went
   * empty -> non-empty.
   */
  onEvent?: (count: number, transition: boolean) => void;
  /** Watched: where completions are written (COMPLETION_WORDS per completion; decode with `decodeCompletion`). */
  records?: Uint32Array;
  /** Watched: raise events from the start (default true); false: only `route()` takes completions. */
  armed?: boolean;
}

/** Default `releaseWrIdLimit`: wrIds from 2^40 up are free for RDMA Writes and Reads. */
export const RELEASE_WR_ID_LIMIT_DEFAULT = 2 ** 40;

const DEFAULTS = { depth: 256, busyPollMicros: 0, batchMax: 64 } as const;

const STATUS_UNKNOWN: WcStatus = 'IBV_WC_UNKNOWN';

/** Decodes `count` native completion records from `words`. */
export function decodeCompletions(words: Uint32Array, count: number): Completion[] {
  const completions: Completion[] = new Array(count);
  for (let index = 0; index < count; index++) completions[index] = decodeCompletion(words, index);
  return completions;
}

/** Decodes native completion record `index` of `words`. */
export function decodeCompletion(words: Uint32Array, index: number): Completion {
  const at = index * COMPLETION_WORDS;
  const statusCode = words[at + 2]!;
  const flags = words[at + 8]!;
  return {
    wrId: words[at + 1]! * 0x1_0000_0000 + words[at]!,
    status: WC_STATUS_NAMES[statusCode] ?? STATUS_UNKNOWN,
    ok: statusCode === 0,
    opcode: (WC_OPCODE_NAMES[words[at + 3]!] ?? 'IBV_WC_UNKNOWN') as WcOpcode,
    byteLength: words[at + 4]!,
    immediate: flags & WC_WITH_IMMEDIATE ? words[at + 5]! : undefined,
    qpNumber: words[at + 6]!,
    vendorError: words[at + 7]!,
  };
}

/** A completion queue. */
export class CompletionQueue {
  readonly #handle: Handle;
  /** Entries requested. */
  readonly depth: number;
  /** True when a native completion thread hands batches to `onCompletions`. */
  readonly threaded: boolean;
  /** True when a native completion thread queues completions for `pollInto` (see `onPending`). */
  readonly notified: boolean;
  #pollWords: Uint32Array | undefined;
  readonly #life: { closed: boolean };

  private constructor(handle: Handle, depth: number, threaded: boolean, notified: boolean, life: { closed: boolean }) {
    this.#handle = handle;
    this.#life = life;
    this.depth = depth;
    this.threaded = threaded;
    this.notified = notified;
  }

  /** @internal */
  static create(device: DeviceHandle, options: CompletionQueueOptions): CompletionQueue {
    const depth = options.depth ?? DEFAULTS.depth;
    if (options.onEvent !== undefined) return CompletionQueue.#watch(device, depth, options.onEvent, options);
    const onCompletions = options.onCompletions;
    const deliver =
      onCompletions === undefined
        ? null
        : (records: ArrayBuffer) => {
            const words = new Uint32Array(records);
            onCompletions(decodeCompletions(words, words.length / COMPLETION_WORDS));
          };
    // A wake queued just before close() still arrives: it must not reach a closed CQ's owner.
    const life = { closed: false };
    const onPending = options.onPending;
    const handle = native(() =>
      binding.cqCreate(
        device,
        depth,
        deliver,
        options.busyPollMicros ?? DEFAULTS.busyPollMicros,
        options.batchMax ?? DEFAULTS.batchMax,
        options.releaseList?.handle ?? null,
        options.releaseWrIdLimit ?? null,
        onPending === undefined ? null : () => life.closed || onPending(),
      ),
    );
    return new CompletionQueue(handle, depth, deliver !== null, onPending !== undefined, life);
  }

  static #watch(device: DeviceHandle, depth: number, onEvent: (count: number, transition: boolean) => void, options: CompletionQueueOptions): CompletionQueue {
    if (options.onCompletions !== undefined || options.onPending !== undefined || options.records === undefined) {
      throw new VerbsError('EINVAL', 'a watched completion queue takes onEvent and records, not onCompletions or onPending');
    }
    // An event queued just before close() must not reach a closed CQ's owner.
    const life = { closed: false };
    const handle = native(() =>
      binding.cqWatch(
        device,
        depth,
        options.records!,
        (count, transition) => life.closed || onEvent(count, transition),
        options.releaseList?.handle ?? null,
        options.releaseWrIdLimit ?? null,
        options.armed ?? true,
      ),
    );
    return new CompletionQueue(handle, depth, false, false, life);
  }

  /** @internal */
  get handle(): Handle {
    return this.#handle;
  }

  /**
   * Watched CQs: polls it now, with the routing of an event; what it finds
   * reaches `onEvent` before this returns (the transition only if `reportTransition`).
   */
  route(reportTransition: boolean): void {
    native(() => binding.cqRoute(this.#handle, reportTransition));
  }

  /** Watched CQs: raise events (armed now, then one `route(true)`) or only route when asked. */
  setArmed(armed: boolean): void {
    native(() => binding.cqSetArmed(this.#handle, armed));
  }

  /**
   * Polls up to `max` completions (polled and notified CQs), spinning up to
   * `spinMicros` until at least one arrives (polled CQs only). Blocks this
   * thread while spinning: use it from a dedicated worker.
   */
  poll(max = 16, spinMicros = 0): Completion[] {
    if (this.#pollWords === undefined || this.#pollWords.length < max * COMPLETION_WORDS) {
      this.#pollWords = new Uint32Array(max * COMPLETION_WORDS);
    }
    const count = this.pollInto(this.#pollWords, max, spinMicros);
    return decodeCompletions(this.#pollWords, count);
  }

  /**
   * Like `poll`, but writes raw records into `words` (COMPLETION_WORDS per
   * completion; decode with `decodeCompletion`) and allocates nothing.
   * Returns how many completions were written.
   */
  pollInto(words: Uint32Array, max: number, spinMicros = 0): number {
    if (this.threaded) {
      throw new VerbsError(ErrorCode.CQ_THREADED, 'this completion queue is polled by its completion thread');
    }
    try {
      return binding.cqPoll(this.#handle, words, max, spinMicros);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** Lets the process exit while this threaded CQ is open (or not, with false). */
  unref(unreferenced = true): void {
    native(() => binding.cqUnref(this.#handle, !unreferenced));
  }

  /** Stops the completion thread and destroys the CQ. @throws `EBUSY` while QPs use it. */
  close(): void {
    native(() => binding.cqClose(this.#handle));
    this.#life.closed = true;
  }
}
