/**
 * ServicePool: the svc_recv loop. Transports with work enqueue themselves; each
 * of `workers` loops takes one, serves one RPC on it (receive, process, reply,
 * release) and takes the next. A transport is served by one worker at a time
 * for its receive step (the XPT_BUSY rule); once that worker has taken a call it
 * re-enqueues the transport if more calls wait, so several workers can serve
 * one busy transport and one slow procedure never stalls the others.
 *
 * Life: created by the server on its thread (the main thread today; the same
 * loop will run in worker threads over native transports, see
 * /tmp/team/svcrdma-needs-from-verbs.md §C). `close()` stops the loops after
 * the RPCs in service finish.
 */
import assert from 'node:assert';

/** What the pool needs from a transport. */
export interface Servable {
  /** True while queued (so a transport is never queued twice). */
  queued: boolean;
  /** Serves at most one RPC; with nothing received it only releases. */
  serveOne(pool: ServicePool): Promise<void> | void;
}

/** RPCs a worker serves back to back before it lets the event loop run I/O. */
const SERVED_PER_YIELD = 32;

export class ServicePool {
  /** Bounded by the transports that exist: each is queued at most once. */
  private readonly ready: Servable[] = [];
  private readonly idle: (() => void)[] = [];
  private closed = false;
  private readonly loops: Promise<void>[] = [];
  private servedSinceYield = 0;
  readonly metrics = { enqueues: 0, served: 0, failures: 0 };

  constructor(
    readonly workers: number,
    /** Told about a transport's internal error (the transport is closing); the loop goes on. */
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    assert(Number.isInteger(workers) && workers > 0);
    for (let index = 0; index < workers; index++) this.loops.push(this.loop());
  }

  /** Marks a transport as having work (svc_xprt_enqueue). Idempotent while queued. */
  enqueue(transport: Servable): void {
    if (transport.queued || this.closed) return;
    transport.queued = true;
    this.ready.push(transport);
    this.metrics.enqueues++;
    this.idle.pop()?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.idle.splice(0)) wake();
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const transport = this.ready.shift();
      if (transport === undefined) {
        await new Promise<void>((resolve) => this.idle.push(resolve));
        continue;
      }
      transport.queued = false;
      this.metrics.served++;
      try {
        const serving = transport.serveOne(this);
        if (serving instanceof Promise) await serving;
      } catch (error) {
        this.metrics.failures++;
        this.onError(error);
      }
      // Yield to I/O between RPCs: a transport that is always ready must not starve the event loop.
      if (++this.servedSinceYield >= SERVED_PER_YIELD) {
        this.servedSinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
}
