/**
 * EventLoopPoller: takes completions on this thread's event loop when the
 * native completion thread says some are waiting, and keeps taking them every
 * loop turn while a burst lasts. It never polls an idle completion queue.
 *
 * `watch()` creates a notified completion queue (@roce-rpc/verbs `onPending`):
 * its native completion thread polls the CQ, sleeping on the completion
 * channel when it is idle, and queues completions in a native ring; on the
 * ring's empty -> non-empty transition it wakes this thread once. The wake takes
 * up to TAKE_BATCH completions with one `pollInto` (no allocation, no call per
 * completion); if more are queued, verbs wakes us again on the next loop turn,
 * so timers and I/O run between batches. (The client uses watch(); the
 * main-thread server uses `watchEvents()`: a watched CQ, no completion thread,
 * this loop's epoll waits on the completion channel itself.)
 *
 * Burst mode (`spinWindowMs` > 0): after a wake the queue is also taken from
 * every loop turn (setImmediate) until `spinWindowMs` pass without a
 * completion; `pollInto` then polls the CQ itself behind the ring. Why: each completion that only the
 * wake delivers pays two sleeping-thread wake-ups (completion channel, then
 * this event loop), about 4 ms each in the loaded emulated lab, where a poll
 * costs µs — that turned a 3.9 ms NULL round trip into 20-40 ms (the client
 * keeps 20 ms). The CQ stays armed while we poll, so the first completion
 * after the window still wakes us: an idle queue is never polled. The
 * main-thread server's default window is 0 (options.ts): its spinning took
 * the guest's CPU from the kernel NFS client and rxe beside it.
 *
 * Life: one per server (or client), created with it, owned by it; queues are
 * watched from their connection's set-up until `stop()`, before their CQ
 * closes; `close()` stops every queue still watched. Main thread.
 */
import { COMPLETION_WORDS, decodeCompletion, type Completion, type CompletionQueue, type Device } from '@roce-rpc/verbs';

/** Completions taken per wake-up (and per polled queue per turn): bounds one turn's work. */
const TAKE_BATCH = 32;

/** A notified CQ and the switch that stops delivering its completions. */
export interface WatchedQueue {
  readonly completionQueue: CompletionQueue;
  /** Delivers everything queued now (teardown: after the queue pair was drained). */
  takeAll(): void;
  /** Stops delivering; wakes already queued are ignored. Call before closing the CQ. */
  stop(): void;
}

export class EventLoopPoller {
  /** The queues being watched: each until its stop(), at the latest until close(). */
  private readonly watched = new Set<WatchedQueue>();
  private readonly words = new Uint32Array(TAKE_BATCH * COMPLETION_WORDS);
  /** wakes: native transitions taken; burstTurns: queues taken between wakes. */
  readonly metrics = { wakes: 0, burstTurns: 0, completions: 0 };

  constructor(private readonly spinWindowMs = 20) {}

  /**
   * Creates a notified CQ of `depth` entries on `device` and delivers its
   * completions, in order, on this thread.
   */
  watch(device: Device, options: { depth: number; busyPollMicros?: number }, deliver: (completion: Completion) => void): WatchedQueue {
    const take = (): number => {
      const count = completionQueue.pollInto(this.words, TAKE_BATCH);
      for (let index = 0; index < count; index++) deliver(decodeCompletion(this.words, index));
      this.metrics.completions += count;
      if (count > 0) burst.completed();
      return count;
    };
    const burst = new BurstWindow(this.spinWindowMs, () => {
      this.metrics.burstTurns++;
      take();
    });
    const completionQueue = device.createCompletionQueue({
      depth: options.depth,
      busyPollMicros: options.busyPollMicros ?? 0,
      onPending: () => {
        if (burst.stopped) return;
        this.metrics.wakes++;
        take();
        burst.start();
      },
    });
    // Bounded: the ring holds at most the CQ's depth, and nothing new is posted at teardown.
    const takeAll = () => {
      for (let round = 0; round <= options.depth / TAKE_BATCH && take() === TAKE_BATCH; round++);
    };
    return this.track(completionQueue, takeAll, burst);
  }

  /**
   * Creates a watched CQ of `depth` entries on `device` (@roce-rpc/verbs
   * `onEvent`): no completion thread — this thread's event loop watches the
   * CQ's completion channel itself, so a completion after an idle spell wakes
   * one thread, this one, and its event hands over everything polled in one
   * call from the verbs core (no call into it per poll). Burst mode as in
   * `watch()`, each turn one `route()`. Completions are delivered in order.
   */
  watchEvents(device: Device, options: { depth: number }, deliver: (completion: Completion) => void): WatchedQueue {
    /** True while this side asked for the route: its completions are not a wake. */
    let routing = false;
    // Room for the whole CQ: one route takes everything that raised no event of its own.
    const records = new Uint32Array(options.depth * COMPLETION_WORDS);
    const route = (): void => {
      routing = true;
      try {
        completionQueue.route(false);
      } finally {
        routing = false;
      }
    };
    const burst = new BurstWindow(this.spinWindowMs, () => {
      this.metrics.burstTurns++;
      route();
    });
    const completionQueue = device.createCompletionQueue({
      depth: options.depth,
      records,
      onEvent: (count) => {
        if (burst.stopped) return;
        for (let index = 0; index < count; index++) deliver(decodeCompletion(records, index));
        this.metrics.completions += count;
        if (count > 0) burst.completed();
        if (routing) return;
        this.metrics.wakes++;
        burst.start();
      },
    });
    return this.track(completionQueue, route, burst);
  }

  private track(completionQueue: CompletionQueue, takeAll: () => void, burst: BurstWindow): WatchedQueue {
    const watched: WatchedQueue = {
      completionQueue,
      takeAll,
      stop: () => {
        burst.stop();
        this.watched.delete(watched);
      },
    };
    this.watched.add(watched);
    return watched;
  }

  /** Stops every queue still watched (their owners close the CQs). */
  close(): void {
    for (const watched of this.watched) watched.stop();
  }
}

/**
 * Burst mode of one queue: after a wake, `turn` runs on the next loop turn
 * (setImmediate) and every turn after it until `windowMs` pass without a
 * completion.
 */
class BurstWindow {
  stopped = false;
  private lastCompletion = 0;
  private next: NodeJS.Immediate | null = null;

  constructor(
    private readonly windowMs: number,
    private readonly turn: () => void,
  ) {}

  /** A completion was taken: the window starts again. */
  completed(): void {
    this.lastCompletion = performance.now();
  }

  /** A wake: take the queue every loop turn from now on, while the window lasts (a window of 0: never). */
  start(): void {
    if (this.windowMs === 0) return;
    this.next ??= setImmediate(this.onTurn);
  }

  stop(): void {
    this.stopped = true;
    if (this.next !== null) clearImmediate(this.next);
    this.next = null;
  }

  private readonly onTurn = (): void => {
    this.next = null;
    if (this.stopped) return;
    this.turn();
    if (performance.now() - this.lastCompletion < this.windowMs) this.next = setImmediate(this.onTurn);
  };
}
