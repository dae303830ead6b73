/**
 * Send contexts and their pool: the resources of one reply while the device
 * works on it, and the seed's deferred release of them.
 *
 * Life of a send context (the manner of Linux's svc_rdma_sendto.c):
 *
 *   Created   by SendContextPool.get() on the thread serving the transport,
 *             lazily, at most `sendContextsMax` per transport; its header
 *             buffer is its slice of the pool's one registration, made with
 *             the pool (at connect) for all `sendContextsMax` buffers and kept
 *             until destroy: registered memory does not grow as contexts are
 *             created during a run, however long.
 *   Owned by  the thread that got it while it builds the reply: header and
 *             pulled-up inline reply in its buffer, registrations of the RDMA
 *             Write sources, references to the reply's buffers.
 *   Posted    the Send is posted last (after the RDMA Writes), signaled, with
 *             wrId = context id. From then on nobody touches it: the device
 *             reads its memory. If the post fails, the forward path releases
 *             it at once (putUnposted).
 *   Completed the verbs core's routing of the Send CQ appends the wrId to the
 *             transport's release list and does nothing else: no lock, no
 *             JavaScript, no deregistration (that is the seed's point:
 *             unmapping is slow and the completion path must stay fast). A
 *             failed or flushed Send is appended the same way, marked
 *             (RELEASE_FAILED_BIT); the drain that finds it closes the
 *             transport. The Send CQ raises no events unless someone waits on
 *             it: it is routed by the next reply's post (in the same native
 *             call as its drain), by a get() with an empty free list, and, for
 *             the trailing edge of a burst, by the connection's backstop, whose
 *             route reports the list's empty -> non-empty transition: that wakes
 *             the serving thread (the seed's self-enqueue), never a completion.
 *   Freed     by the thread serving the transport, in a batch, when it drains
 *             the release list: registrations closed, buffer references
 *             dropped, contexts back on the free list. Destroyed with the pool.
 *
 * Drain points (each counted in metrics, each with a test that fails without it):
 *   between-rpcs   release after every RPC (xpo_release_ctxt); after a reply,
 *                  done by the native call that posts its Send;
 *   self-enqueue   the release list went empty -> non-empty while the transport
 *                  was idle: the transport enqueued itself, an idle worker ran
 *                  receive (nothing) then release, draining the trailing edge;
 *   empty-free-list get() found no free context: route the Send CQ, drain,
 *                  retry, then allocate;
 *   sq-wait        after waiting for Send Queue space (completions that arrived
 *                  meanwhile could not enqueue the transport);
 *   teardown       after the queue pair is drained and before the receive
 *                  queue is flushed.
 *
 * Threading: the main thread (SvcRdmaServer) serves the transport, routes its
 * Send CQ and drains its release list; nothing else touches them.
 */
import assert from 'node:assert';
import { RELEASE_FAILED_BIT } from '@roce-rpc/verbs';

/** Memory the device can read: a Send's header buffer or an RDMA Write source. */
export interface Registration {
  readonly bytes: Uint8Array;
  /** Deregisters; the memory may be reused once this returns. */
  close(): void;
}

/** What the pool needs from the device side: registration and the release list. */
export interface SendResources {
  /** Registers `bytes` for local reads by the device (Send and RDMA Write sources). */
  register(bytes: Uint8Array): Registration;
  /**
   * Takes the Send completions the device has reported so far onto the
   * release list (a Send CQ that raises no events is polled here).
   */
  routeSendCompletions(): void;
  /**
   * The transport's release list: each routing of the Send CQ (a reply's
   * post, routeSendCompletions, the backstop) appends every completed Send's
   * wrId (failed ones + RELEASE_FAILED_BIT); the serving thread drains into
   * `out` and gets the count (verbs' ReleaseList.drainInto).
   */
  readonly releaseList: {
    drainInto(out: Float64Array): number;
  };
}

export const DrainPoint = {
  BETWEEN_RPCS: 'between-rpcs',
  SELF_ENQUEUE: 'self-enqueue',
  EMPTY_FREE_LIST: 'empty-free-list',
  SQ_WAIT: 'sq-wait',
  TEARDOWN: 'teardown',
} as const;
export type DrainPoint = (typeof DrainPoint)[keyof typeof DrainPoint];

/** Upper bounds of the drain batch-size histogram buckets; the last is open. */
export const DRAIN_BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, Infinity] as const;

export interface SendContextMetrics {
  /** Drains that released at least one context, by drain point. */
  drains: Record<DrainPoint, number>;
  /** Contexts released, by drain point. */
  released: Record<DrainPoint, number>;
  /** Drain batch sizes: batchSizes[i] counts batches <= DRAIN_BATCH_BUCKETS[i]. */
  batchSizes: number[];
  /** Contexts created (each takes its header buffer from the pool's registration). */
  allocations: number;
  /** get() calls that found no free context even after draining, at the bound. */
  exhausted: number;
  /** Contexts in use: building, posted or awaiting release (a gauge). */
  inUse: number;
  /** Sends that completed with an error or were flushed. */
  failedSends: number;
  /** Sends whose completion never came: reclaimed after the QP was destroyed at teardown. */
  lostSends: number;
}

type SendContextState = 'free' | 'building' | 'posted';

/** A context's header buffer: its slice of the pool's registration. */
export interface SendBuffer {
  readonly bytes: Uint8Array;
  /** Where `bytes` starts in the pool's registration (`SendContextPool.registration`). */
  readonly offset: number;
}

export class SendContext {
  state: SendContextState = 'free';
  /** Send Queue entries this reply holds until released (Send + RDMA Writes). */
  workRequests = 0;
  readonly sourceRegistrations: Registration[] = [];
  /** Reply buffers the device reads from: kept alive until release. */
  readonly references: Uint8Array[] = [];

  constructor(
    /** The Send's wrId: index in the pool. */
    readonly id: number,
    /** Transport header + pulled-up inline reply, in the pool's registration. */
    readonly buffer: SendBuffer,
  ) {}
}

function emptyByPoint(): Record<DrainPoint, number> {
  return { 'between-rpcs': 0, 'self-enqueue': 0, 'empty-free-list': 0, 'sq-wait': 0, teardown: 0 };
}

export class SendContextPool {
  readonly metrics: SendContextMetrics = {
    drains: emptyByPoint(),
    released: emptyByPoint(),
    batchSizes: DRAIN_BATCH_BUCKETS.map(() => 0),
    allocations: 0,
    exhausted: 0,
    inUse: 0,
    failedSends: 0,
    lostSends: 0,
  };
  private readonly contexts: SendContext[] = [];
  /** LIFO: the most recently released context is the warmest in cache. */
  private readonly freeList: SendContext[] = [];
  /** Contexts whose Send is posted and not yet released. */
  private posted = 0;
  /** Send Queue entries released by the last drain, for the transport's accounting. */
  private releasedWorkRequests = 0;
  /** Where a drain lands: one slot per context, since every one may be on the list at once. */
  private readonly drained: Float64Array;
  /**
   * Every context's header buffer, `bufferBytes` each, registered once with the
   * pool: one registration per connection instead of one per context, and
   * registered memory flat over the connection's life.
   */
  readonly registration: Registration;
  /** The registration's bytes as big-endian words (a fixed reply header written in place). */
  readonly words: DataView;

  constructor(
    private readonly resources: SendResources,
    /** Bound on contexts: every one is free, in use or on the release list. */
    readonly sendContextsMax: number,
    /** Bytes of each context's registered buffer: our largest Send. */
    readonly bufferBytes: number,
  ) {
    assert(sendContextsMax > 0 && bufferBytes > 0);
    this.drained = new Float64Array(sendContextsMax);
    this.registration = resources.register(new Uint8Array(sendContextsMax * bufferBytes));
    this.words = new DataView(this.registration.bytes.buffer, this.registration.bytes.byteOffset, this.registration.bytes.byteLength);
  }

  /**
   * A context ready to build a reply in, or null when all `sendContextsMax`
   * are in flight (the caller waits for Send completions, then drains).
   * An empty free list is first refilled from the release list (drain point
   * empty-free-list); only then is a new context allocated.
   */
  get(): SendContext | null {
    let context = this.freeList.pop();
    if (context === undefined) {
      this.resources.routeSendCompletions();
      this.drain(DrainPoint.EMPTY_FREE_LIST);
      context = this.freeList.pop() ?? this.allocate();
    }
    if (context === undefined) {
      this.metrics.exhausted++;
      return null;
    }
    assert.equal(context.state, 'free');
    context.state = 'building';
    this.metrics.inUse++;
    return context;
  }

  /** The Send of `context` was posted: only a completion (then a drain) gives it back. */
  markPosted(context: SendContext, workRequests: number): void {
    assert.equal(context.state, 'building');
    context.state = 'posted';
    context.workRequests = workRequests;
    this.posted++;
  }

  /** Contexts whose Send is posted and not yet released (awaiting a completion or a drain). */
  get postedCount(): number {
    return this.posted;
  }

  /** The Send could not be posted: the forward path releases at once (the seed's error rule). */
  putUnposted(context: SendContext): void {
    assert.equal(context.state, 'building');
    this.release(context);
  }

  /**
   * Releases every context on the release list in one batch.
   * @returns how many were released
   */
  drain(point: DrainPoint): number {
    return this.releaseDrained(point, this.resources.releaseList.drainInto(this.drained));
  }

  /**
   * Where a drain done by the device side lands (a reply's post drains the
   * release list in the same call): hand the count to releaseDrained().
   */
  get drainTarget(): Float64Array {
    return this.drained;
  }

  /**
   * Releases the `count` contexts whose ids a drain put in `drainTarget`, as one batch.
   * @returns count
   */
  releaseDrained(point: DrainPoint, count: number): number {
    for (let index = 0; index < count; index++) {
      let wrId = this.drained[index]!;
      if (wrId >= RELEASE_FAILED_BIT) {
        this.metrics.failedSends++;
        wrId -= RELEASE_FAILED_BIT;
      }
      const context = this.contexts[wrId];
      if (context === undefined || context.state !== 'posted') assert.fail(`release of send context ${wrId} that is not posted`);
      this.release(context);
    }
    if (count > 0) {
      this.metrics.drains[point]++;
      this.metrics.released[point] += count;
      const bucket = DRAIN_BATCH_BUCKETS.findIndex((bound) => count <= bound);
      this.metrics.batchSizes[bucket]!++;
    }
    return count;
  }

  /** Send Queue entries given back by drains since the last call. */
  takeReleasedWorkRequests(): number {
    const released = this.releasedWorkRequests;
    this.releasedWorkRequests = 0;
    return released;
  }

  /** Contexts created so far (the allocation gauge's high-water mark). */
  get allocated(): number {
    return this.contexts.length;
  }

  /**
   * Reclaims contexts still posted whose completions will never come. Only
   * after the queue pair is destroyed: until then the device may read them.
   */
  reclaimPosted(): number {
    const lost = this.contexts.filter((context) => context.state === 'posted');
    for (const context of lost) this.release(context);
    this.metrics.lostSends += lost.length;
    return lost.length;
  }

  /**
   * Frees every context and the pool's registration. The caller has drained the
   * queue pair and the release list first, so none may still be posted: a leak
   * check, not a cleanup.
   */
  destroy(): void {
    const busy = this.contexts.filter((context) => context.state !== 'free').map((context) => context.id);
    assert.deepEqual(busy, [], `send contexts still in use at destroy: ${busy.join(', ')}`);
    this.registration.close();
    this.contexts.length = 0;
    this.freeList.length = 0;
  }

  private allocate(): SendContext | undefined {
    if (this.contexts.length === this.sendContextsMax) return undefined;
    const offset = this.contexts.length * this.bufferBytes;
    const bytes = this.registration.bytes.subarray(offset, offset + this.bufferBytes);
    const context = new SendContext(this.contexts.length, { bytes, offset });
    this.contexts.push(context);
    this.metrics.allocations++;
    return context;
  }

  private release(context: SendContext): void {
    if (context.state === 'posted') this.posted--;
    for (const registration of context.sourceRegistrations) registration.close();
    context.sourceRegistrations.length = 0;
    context.references.length = 0;
    this.releasedWorkRequests += context.workRequests;
    context.workRequests = 0;
    context.state = 'free';
    this.metrics.inUse--;
    this.freeList.push(context);
  }
}
