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
 * so timers and I/O run between batches.
 *
 * Burst mode: after a wake the queue is also taken from every loop turn
 * (setImmediate) until `spinWindowMs` pass without a completion; `pollInto`
 * then polls the CQ itself behind the ring. Why: each completion that only the
 * wake delivers pays two sleeping-thread wake-ups (completion channel, then
 * this event loop), about 4 ms each in the loaded emulated lab, where a poll
 * costs µs — that turned a 3.9 ms NULL round trip into 20-40 ms. The CQ stays
 * armed while we poll, so the first completion after the window still wakes
 * us: an idle queue is never polled.
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
    let stopped = false;
    let lastCompletion = 0;
    let burst: NodeJS.Immediate | null = null;
    const take = (): number => {
      const count = completionQueue.pollInto(this.words, TAKE_BATCH);
      for (let index = 0; index < count; index++) deliver(decodeCompletion(this.words, index));
      this.metrics.completions += count;
      if (count > 0) lastCompletion = performance.now();
      return count;
    };
    const burstTurn = (): void => {
      burst = null;
      if (stopped) return;
      this.metrics.burstTurns++;
      take();
      if (performance.now() - lastCompletion < this.spinWindowMs) burst = setImmediate(burstTurn);
    };
    const completionQueue = device.createCompletionQueue({
      depth: options.depth,
      busyPollMicros: options.busyPollMicros ?? 0,
      onPending: () => {
        if (stopped) return;
        this.metrics.wakes++;
        take();
        burst ??= setImmediate(burstTurn);
      },
    });
    const watched: WatchedQueue = {
      completionQueue,
      takeAll: () => {
        // Bounded: the ring holds at most the CQ's depth, and nothing new is posted at teardown.
        for (let round = 0; round <= options.depth / TAKE_BATCH && take() === TAKE_BATCH; round++);
      },
      stop: () => {
        stopped = true;
        if (burst !== null) clearImmediate(burst);
        burst = null;
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
