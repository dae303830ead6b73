/**
 * VerbsConnection: the device side of one server transport on @roce-rpc/verbs
 * — its queue pair, its two completion queues, its release list and its
 * registered memory — plugged into an RdmaTransport.
 *
 * Life: created by SvcRdmaServer for an accepted connect request, before the
 * accept (Receives must be posted first); owned by the server's connection
 * table; torn down on 'disconnected' or as soon as the transport closes (an
 * error, a failed Send): the seed's order, see teardown(). Main thread: every verbs handle is used on the thread that
 * made it, completion callbacks arrive here.
 *
 * Completion routing — no completion threads: both CQs are watched CQs
 * (@roce-rpc/verbs `onEvent`), routed by the verbs core on this thread.
 *   Send CQ  every Send completion (wrId = send context id, below
 *            RELEASE_WR_ID_LIMIT) is appended to the release list natively,
 *            a failed or flushed one marked (RELEASE_FAILED_BIT). Nothing else
 *            happens on the completion path. It raises no events unless
 *            someone waits on it (a reply short of Send Queue room or a
 *            context, RDMA Reads in flight, the teardown's drain markers):
 *            otherwise it is routed by the next reply's post, in the same
 *            native call that drains the list (postReply), by a get() with an
 *            empty free list, and by the backstop below. Only RDMA Read
 *            completions and failed (unsignaled) RDMA Writes reach
 *            onSendCompletions.
 *   Recv CQ  by default watched by this thread's event loop
 *            (EventLoopPoller.watchEvents): a Receive after an idle spell wakes
 *            this thread and no other; the completions are queued on the
 *            transport, which enqueues itself on the service pool.
 *
 * Backstop (the trailing edge of a burst): while Sends are posted and not yet
 * released, a timer looks every BACKSTOP_FIRST_MS, backing off to
 * BACKSTOP_MAX_MS; a turn that finds a reply posted since the previous one
 * only looks again later (that reply's post routed the Send CQ and drained),
 * a turn that finds none routes the Send CQ: a route that takes the release
 * list empty -> non-empty reports the transition, and that is
 * transport.onReleasePending(), the seed's set_bit(XPT_DATA) +
 * svc_xprt_enqueue. So the trailing edge is released 10-80 ms after the last
 * reply, and a reply costs a flag, not a timer (re)start: refreshing the timer
 * at every post and its re-sorting were 7-8% of the main thread's busy time
 * during the kernel NFS client's creates (--cpu-prof, 2026-12-08 01:23 UTC).
 * A drain that finds a failed Send closes the transport (the seed's XPT_CLOSE).
 */
import assert from 'node:assert';
import type { CmId, CompletionQueue, Completion, Device, MemoryRegion, ProtectionDomain, QueuePair } from '@roce-rpc/verbs';
import { COMPLETION_WORDS, decodeCompletion, ReleaseList } from '@roce-rpc/verbs';
import type { FilledSvcRdmaOptions } from '../options.js';
import type { ConnectPrivateData } from '../header/private_data.js';
import type { RdmaSegment } from '../header/chunks.js';
import type { Registration, SendContext, SendResources } from './send_context.js';
import { RdmaTransport, WRITE_SGES_MAX, type CallHandler, type PreparedWrite, type QueuePairPort } from './transport.js';
import type { ServicePool } from './service_pool.js';
import type { EventLoopPoller, WatchedQueue } from './completion_poller.js';

/**
 * wrIds below this are send contexts, routed to the release list natively; the
 * ids from here up are RDMA Writes and Reads, which reach onSendCompletions.
 */
const RELEASE_WR_ID_LIMIT = 2 ** 40;
/** wrId of the unsignaled RDMA Writes: only a failure reports them. */
const WRITE_WR_ID = RELEASE_WR_ID_LIMIT;
/** RDMA Reads are signaled with wrIds from here up (one per Read). */
const READ_WR_BASE = 2 ** 41;

/** The backstop's first turn after a reply's post, and its longest period. */
const BACKSTOP_FIRST_MS = 10;
const BACKSTOP_MAX_MS = 40;

function nextPowerOfTwo(value: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(2, value)));
}

export class VerbsConnection implements QueuePairPort, SendResources {
  readonly transport: RdmaTransport;
  /** What the send-context pool drains: the native list, closing the transport on a failed Send. */
  readonly releaseList: SendResources['releaseList'];
  private readonly sendReleaseList: ReleaseList;
  private readonly sendCompletions: CompletionQueue;
  private readonly receiveCompletions: CompletionQueue;
  private readonly watchedReceives: WatchedQueue | null = null;
  private readonly queuePair: QueuePair;
  private readonly ringRegion: MemoryRegion;
  private readonly regions = new WeakMap<Registration, MemoryRegion>();
  /** RDMA Reads in flight by wrId: each settles its chunk's promise when the last of the chunk completes. */
  private readonly reads = new Map<number, { settle: (error: Error | null) => void }>();
  private nextReadId = 0;
  private tornDown = false;
  /** A reply waits for Send completions (transport.awaitSendCompletions). */
  private sendsAwaited = false;
  /** Whether the Send CQ raises events now. */
  private sendEventsArmed = false;
  private readonly sendRecords: Uint32Array;
  /** The trailing-edge backstop: set while posted Sends may wait unrouted. */
  private backstop: NodeJS.Timeout | null = null;
  private backstopPeriodMs = BACKSTOP_FIRST_MS;
  /** A reply was posted since the backstop's previous turn. */
  private postedSinceBackstop = false;
  /** Registrations open right now (a gauge for leak checks). */
  openRegistrations = 0;

  constructor(
    readonly cmId: CmId,
    device: Device,
    private readonly protectionDomain: ProtectionDomain,
    options: FilledSvcRdmaOptions,
    peer: ConnectPrivateData,
    handler: CallHandler,
    pool: ServicePool,
    poller: EventLoopPoller,
    private readonly onClosed: (connection: VerbsConnection) => void,
  ) {
    // Every context is free, in flight or on the list: the list can never fill. Its
    // transitions are reported by the Send CQ's routes (onSendEvent), not by a wake of its own.
    this.sendReleaseList = new ReleaseList(nextPowerOfTwo(options.sendContextsMax));
    this.releaseList = this.sendReleaseList;
    this.sendRecords = new Uint32Array(options.sendQueueDepth * COMPLETION_WORDS);
    this.sendCompletions = device.createCompletionQueue({
      depth: options.sendQueueDepth,
      releaseList: this.sendReleaseList,
      releaseWrIdLimit: RELEASE_WR_ID_LIMIT,
      records: this.sendRecords,
      armed: false,
      onEvent: (count, transition) => this.onSendEvent(count, transition),
    });
    const receiveDepth = options.credits * 2;
    if (options.receiveCompletions === 'polled') {
      this.watchedReceives = poller.watchEvents(device, { depth: receiveDepth }, (completion) => this.onReceiveCompletion(completion));
      this.receiveCompletions = this.watchedReceives.completionQueue;
    } else {
      this.receiveCompletions = device.createCompletionQueue({
        depth: receiveDepth,
        busyPollMicros: options.busyPollMicros,
        onCompletions: (completions) => {
          for (const completion of completions) this.onReceiveCompletion(completion);
        },
      });
    }
    this.queuePair = cmId.createQueuePair({
      protectionDomain,
      sendCompletionQueue: this.sendCompletions,
      recvCompletionQueue: this.receiveCompletions,
      maxSendWr: options.sendQueueDepth,
      maxRecvWr: options.credits * 2,
      maxSendSge: WRITE_SGES_MAX,
    });
    const { address, port } = cmId.peerAddress;
    this.transport = new RdmaTransport(this, this, handler, pool, {
      credits: options.credits,
      receiveInlineBytes: options.receiveInlineBytes,
      sendQueueDepth: options.sendQueueDepth,
      sendContextsMax: options.sendContextsMax,
      peerReceiveBytes: peer.receiveBytes,
    }, { remoteAddress: address, remotePort: port });
    this.ringRegion = protectionDomain.registerMemory(this.transport.ring.buffer);
    cmId.once('disconnected', () => void this.teardown());
    this.transport.start();
  }

  register(bytes: Uint8Array): Registration {
    const region = this.protectionDomain.registerMemory(bytes);
    this.openRegistrations++;
    const registration: Registration = {
      bytes,
      close: () => {
        region.close();
        this.openRegistrations--;
      },
    };
    this.regions.set(registration, region);
    return registration;
  }

  postReceive(slot: number, offset: number, length: number): void {
    this.queuePair.postRecvOne(slot, this.ringRegion, offset, length);
  }

  routeSendCompletions(): void {
    this.sendCompletions.route(false);
  }

  postReply(context: SendContext, writes: readonly PreparedWrite[], sendBytes: number, drainInto: Float64Array): number {
    for (const { write, sources } of writes) {
      this.queuePair.postRdmaWrite({
        wrId: WRITE_WR_ID,
        sges: sources.map((source) => this.regionOf(source).sge(0, source.bytes.length)),
        remoteAddress: write.target.offset,
        rkey: write.target.handle,
        signaled: false,
      });
    }
    const registration = this.regionOf(this.transport.sendContexts.registration);
    const drained = this.queuePair.postSendAndDrain(context.id, registration, context.buffer.offset, sendBytes, this.sendCompletions, this.sendReleaseList, drainInto);
    this.armBackstop();
    return drained;
  }

  awaitSendCompletions(waiting: boolean): void {
    this.sendsAwaited = waiting;
    this.updateSendEvents();
  }

  /** The Send CQ raises events while a reply, a call's Reads or the teardown wait on it. */
  private updateSendEvents(): void {
    const wanted = this.sendsAwaited || this.reads.size > 0 || this.tornDown;
    if (wanted === this.sendEventsArmed) return;
    this.sendEventsArmed = wanted;
    this.sendCompletions.setArmed(wanted);
  }

  /** A reply was posted: the backstop's next turn sees it, or its first turn is BACKSTOP_FIRST_MS away. */
  private armBackstop(): void {
    this.postedSinceBackstop = true;
    if (this.backstop !== null) return;
    this.backstopPeriodMs = BACKSTOP_FIRST_MS;
    this.scheduleBackstop();
  }

  private scheduleBackstop(): void {
    this.backstop = setTimeout(() => this.backstopTurn(), this.backstopPeriodMs);
    this.backstop.unref();
  }

  /**
   * Replies posted since the last turn routed the Send CQ themselves: look
   * again later. Otherwise route it as an event would: a transition
   * self-enqueues the transport.
   */
  private backstopTurn(): void {
    this.backstop = null;
    if (this.tornDown) return;
    if (!this.postedSinceBackstop) {
      this.sendCompletions.route(true);
      // Sends still posted (in RNR retries, say) keep the backstop going.
      if (this.transport.sendContexts.postedCount === 0) return;
    }
    this.postedSinceBackstop = false;
    this.backstopPeriodMs = Math.min(BACKSTOP_MAX_MS, this.backstopPeriodMs * 2);
    this.scheduleBackstop();
  }

  /** The Send CQ's routing found RDMA Reads or failures (`count` records), or took the release list empty -> non-empty. */
  private onSendEvent(count: number, transition: boolean): void {
    if (count > 0) this.onSendCompletions(count);
    if (transition) this.transport.onReleasePending();
  }

  readInto(segments: readonly RdmaSegment[], target: Registration, offset: number): Promise<void> {
    const region = this.regionOf(target);
    return new Promise<void>((resolve, reject) => {
      let remaining = segments.length;
      let failure: Error | null = null;
      const settle = (error: Error | null) => {
        failure ??= error;
        if (--remaining > 0) return;
        if (failure === null) resolve();
        else reject(failure);
      };
      let at = offset;
      for (const segment of segments) {
        const wrId = READ_WR_BASE + this.nextReadId++;
        this.reads.set(wrId, { settle });
        this.queuePair.postRdmaRead({ wrId, sges: [region.sge(at, segment.length)], remoteAddress: segment.offset, rkey: segment.handle });
        at += segment.length;
      }
      // Their completions must wake us: events while Reads are in flight.
      this.updateSendEvents();
    });
  }

  /**
   * The transport is closing (svcrdma's XPT_CLOSE): tear down now, as Linux's
   * svc_delete_xprt does, rather than wait for the peer's DREP — a peer that does
   * not answer would keep the ring and registrations pinned until the CM gives up.
   */
  disconnect(): void {
    void this.teardown();
  }

  /**
   * rdma_disconnect moves the QP to the error state before it tells the peer, so
   * outstanding work requests are flushed. That is needed on the passive side
   * too: a peer's DREQ alone leaves our QP retrying Sends to nobody.
   */
  private rdmaDisconnect(): void {
    try {
      this.cmId.disconnect();
    } catch {
      // Already disconnected: the QP went to the error state all the same.
    }
  }

  private failReadsInFlight(): void {
    const torn = new Error('connection torn down');
    for (const read of this.reads.values()) read.settle(torn);
    this.reads.clear();
  }

  private regionOf(registration: Registration): MemoryRegion {
    const region = this.regions.get(registration);
    if (region === undefined) throw new Error('a registration this connection did not make');
    return region;
  }

  private onReceiveCompletion(completion: Completion): void {
    if (completion.ok) this.transport.onReceive(completion.wrId, completion.byteLength);
    else this.transport.onReceiveFlushed(completion.wrId);
  }

  /**
   * RDMA Reads, and failed RDMA Writes (Sends go to the release list natively):
   * `count` records. A failure closes the transport once the current call
   * returns (this may run inside a reply's post).
   */
  private onSendCompletions(count: number): void {
    for (let index = 0; index < count; index++) {
      const completion = decodeCompletion(this.sendRecords, index);
      assert(completion.wrId >= RELEASE_WR_ID_LIMIT, `Send completion ${completion.wrId} bypassed the release list`);
      if (completion.wrId >= READ_WR_BASE) {
        const read = this.reads.get(completion.wrId);
        this.reads.delete(completion.wrId);
        read?.settle(completion.ok ? null : new Error(`RDMA Read ${completion.status}`));
      }
      if (!completion.ok) queueMicrotask(() => this.transport.onSendFailed());
    }
    this.updateSendEvents();
  }

  /**
   * The seed's teardown order: (1) the queue pair is drained (qp.drain(), the
   * ib_drain_qp of verbs: moved to the error state, and resolved once marker
   * work requests behind every posted one were polled, so every posted Send's
   * completion is on the release list); (2) the release list is drained and
   * (3) the receive queue flushed, both by transport.finishClose(), after the
   * Receive completions still queued natively were taken; (4) the verbs objects
   * go. If the drain does not finish within QP_DRAIN_WAIT_MS, the QP is
   * destroyed first — after that the device cannot touch the contexts — and the
   * contexts still posted are reclaimed (counted in `lostSends`). RDMA Reads
   * still waiting for their completion are failed: their flushes may still be on
   * the way to onSendCompletions (or never come after a destroy), and the RPCs
   * awaiting them must end so their workers serve others. Runs on 'disconnected'
   * or as soon as the transport closes, whichever is first.
   */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    // The drain markers complete on the Send CQ too: it raises events until the end.
    this.updateSendEvents();
    if (this.backstop !== null) clearTimeout(this.backstop);
    this.backstop = null;
    this.transport.beginClose();
    this.rdmaDisconnect();
    const drained = await this.queuePair.drain(QP_DRAIN_WAIT_MS).then(
      () => true,
      () => false,
    );
    if (!drained) this.queuePair.close();
    this.failReadsInFlight();
    this.watchedReceives?.takeAll();
    this.transport.finishClose({ reclaimPosted: !drained });
    this.watchedReceives?.stop();
    this.queuePair.close();
    this.cmId.close();
    this.ringRegion.close();
    this.sendCompletions.close();
    this.receiveCompletions.close();
    this.sendReleaseList.close();
    this.onClosed(this);
  }
}

/** Time to wait for the queue pair to drain after a disconnect: far above rxe's flush time. */
const QP_DRAIN_WAIT_MS = 5000;
