/**
 * EventLoopPoller: polls completion queues from the event loop instead of
 * waiting for a completion thread to wake JavaScript. A wake-up costs ≈ 4.5 ms
 * per completion in the emulated lab (packages/svcrdma/bench), a poll ≈ µs.
 *
 * While completions keep coming it polls every loop turn (setImmediate), which
 * lets timers and I/O run in between; after `spinWindowMs` without one it polls
 * every `idleIntervalMs` (a timer), so an idle server costs little. This is the
 * main-thread stand-in for worker threads that poll their transports' CQs
 * (needs-from-verbs §C).
 *
 * Life: one per server (or client), created with it, owned by it; queues are
 * added when a connection is set up and removed before their CQ closes.
 * Main thread.
 */
import { COMPLETION_WORDS, decodeCompletion, type Completion, type CompletionQueue } from '@roce-rpc/verbs';

/** Completions taken from one queue per turn: bounds one turn's work. */
const POLL_BATCH = 32;

interface PolledQueue {
  readonly completionQueue: CompletionQueue;
  readonly deliver: (completion: Completion) => void;
}

export class EventLoopPoller {
  private readonly queues = new Set<PolledQueue>();
  private readonly words = new Uint32Array(POLL_BATCH * COMPLETION_WORDS);
  private lastCompletion = 0;
  private pending: NodeJS.Immediate | NodeJS.Timeout | null = null;
  readonly metrics = { turns: 0, completions: 0 };

  constructor(
    private readonly spinWindowMs = 20,
    private readonly idleIntervalMs = 1,
  ) {}

  /** Starts polling `completionQueue` (a polled CQ); returns the function that stops it. */
  add(completionQueue: CompletionQueue, deliver: (completion: Completion) => void): () => void {
    const queue = { completionQueue, deliver };
    this.queues.add(queue);
    this.lastCompletion = performance.now();
    this.schedule();
    return () => {
      this.queues.delete(queue);
    };
  }

  close(): void {
    this.queues.clear();
    this.cancel();
  }

  private readonly turn = (): void => {
    this.pending = null;
    this.metrics.turns++;
    for (const queue of this.queues) {
      const count = queue.completionQueue.pollInto(this.words, POLL_BATCH, 0);
      for (let index = 0; index < count; index++) queue.deliver(decodeCompletion(this.words, index));
      if (count > 0) {
        this.metrics.completions += count;
        this.lastCompletion = performance.now();
      }
    }
    this.schedule();
  };

  private schedule(): void {
    if (this.pending !== null || this.queues.size === 0) return;
    const idle = performance.now() - this.lastCompletion > this.spinWindowMs;
    this.pending = idle ? setTimeout(this.turn, this.idleIntervalMs) : setImmediate(this.turn);
  }

  private cancel(): void {
    if (this.pending === null) return;
    clearTimeout(this.pending as NodeJS.Timeout);
    clearImmediate(this.pending as NodeJS.Immediate);
    this.pending = null;
  }
}
