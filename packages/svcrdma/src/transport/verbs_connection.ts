/**
 * VerbsConnection: the device side of one server transport on @roce-rpc/verbs
 * — its queue pair, its two completion queues, its release list and its
 * registered memory — plugged into an RdmaTransport.
 *
 * Life: created by SvcRdmaServer for an accepted connect request, before the
 * accept (Receives must be posted first); owned by the server's connection
 * table; torn down on 'disconnected' (or a transport error): the seed's order,
 * see teardown(). Main thread: every verbs handle is used on the thread that
 * made it, completion callbacks arrive here.
 *
 * Completion routing:
 *   Send CQ  successful Sends are appended to the release list natively by the
 *            completion thread; failures (flushes) arrive in onSendCompletions
 *            and are appended from here, marked (verbs does not do it yet: see
 *            /tmp/team/svcrdma-needs-from-verbs.md A2).
 *   Recv CQ  every Receive arrives in onReceiveCompletions and is queued on the
 *            transport, which enqueues itself on the service pool.
 *
 * The release list's empty -> non-empty transition is not reported by verbs
 * yet (needs A1). Until it is, a watch polls the list's length while Sends are
 * in flight and calls onReleasePending() when it finds it non-empty: the same
 * entry point the native transition will call.
 */
import type { CmId, CompletionQueue, Completion, Device, MemoryRegion, ProtectionDomain, QueuePair } from '@roce-rpc/verbs';
import { ReleaseList } from '@roce-rpc/verbs';
import type { FilledSvcRdmaOptions } from '../options.js';
import type { ConnectPrivateData } from '../header/private_data.js';
import type { RdmaSegment } from '../header/chunks.js';
import { FAILED_SEND_MARKER, type Registration, type SendContext, type SendResources } from './send_context.js';
import { RdmaTransport, WRITE_SGES_MAX, type CallHandler, type PreparedWrite, type QueuePairPort } from './transport.js';
import type { ServicePool } from './service_pool.js';
import type { EventLoopPoller } from './completion_poller.js';

/** How often the stopgap watch looks at the release list while Sends are in flight. */
const RELEASE_WATCH_INTERVAL_MS = 1;
/** wrId of the unsignaled RDMA Writes: only a failure reports them. */
const WRITE_WR_ID = 2 ** 40;
/** RDMA Reads are signaled with wrIds from here up (one per Read). */
const READ_WR_BASE = 2 ** 41;

function nextPowerOfTwo(value: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(2, value)));
}

export class VerbsConnection implements QueuePairPort, SendResources {
  readonly transport: RdmaTransport;
  readonly releaseList: ReleaseList;
  private readonly sendCompletions: CompletionQueue;
  private readonly receiveCompletions: CompletionQueue;
  private readonly queuePair: QueuePair;
  private readonly ringRegion: MemoryRegion;
  private readonly regions = new WeakMap<Registration, MemoryRegion>();
  private releaseWatch: NodeJS.Timeout | null = null;
  private stopPolling: () => void = () => {};
  /** RDMA Reads in flight by wrId: each settles its chunk's promise when the last of the chunk completes. */
  private readonly reads = new Map<number, { settle: (error: Error | null) => void }>();
  private nextReadId = 0;
  private tornDown = false;
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
    // Every context is free, in flight or on the list: the list can never fill.
    this.releaseList = new ReleaseList(nextPowerOfTwo(options.sendContextsMax));
    this.sendCompletions = device.createCompletionQueue({
      depth: options.sendQueueDepth,
      releaseList: this.releaseList,
      busyPollMicros: options.busyPollMicros,
      onCompletions: (completions) => this.onSendCompletions(completions),
    });
    const receiveDepth = options.credits * 2;
    this.receiveCompletions =
      options.receiveCompletions === 'polled'
        ? device.createCompletionQueue({ depth: receiveDepth })
        : device.createCompletionQueue({
            depth: receiveDepth,
            busyPollMicros: options.busyPollMicros,
            onCompletions: (completions) => this.onReceiveCompletions(completions),
          });
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
    if (options.receiveCompletions === 'polled') {
      this.stopPolling = poller.add(this.receiveCompletions, (completion) => this.onReceiveCompletions([completion]));
    }
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

  postReply(context: SendContext, writes: readonly PreparedWrite[], sendBytes: number): void {
    for (const { write, sources } of writes) {
      this.queuePair.postRdmaWrite({
        wrId: WRITE_WR_ID,
        sges: sources.map((source) => this.regionOf(source).sge(0, source.bytes.length)),
        remoteAddress: write.target.offset,
        rkey: write.target.handle,
        signaled: false,
      });
    }
    this.queuePair.postSendOne(context.id, this.regionOf(context.buffer), 0, sendBytes);
    this.armReleaseWatch();
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
    });
  }

  /**
   * rdma_disconnect moves the QP to the error state before it tells the peer, so
   * outstanding work requests are flushed. That is needed on the passive side
   * too: a peer's DREQ alone leaves our QP retrying Sends to nobody.
   */
  disconnect(): void {
    try {
      this.cmId.disconnect();
    } catch {
      // Already disconnected: the QP went to the error state all the same.
    }
  }

  private regionOf(registration: Registration): MemoryRegion {
    const region = this.regions.get(registration);
    if (region === undefined) throw new Error('a registration this connection did not make');
    return region;
  }

  private onReceiveCompletions(completions: Completion[]): void {
    for (const completion of completions) {
      if (completion.ok) this.transport.onReceive(completion.wrId, completion.byteLength);
      else this.transport.onReceiveFlushed(completion.wrId);
    }
  }

  /** Only failures get here (successes go to the release list natively). */
  private onSendCompletions(completions: Completion[]): void {
    for (const completion of completions) {
      if (completion.wrId >= READ_WR_BASE) {
        const read = this.reads.get(completion.wrId);
        this.reads.delete(completion.wrId);
        read?.settle(completion.ok ? null : new Error(`RDMA Read ${completion.status}`));
        if (!completion.ok) this.transport.onSendFailed();
        continue;
      }
      if (completion.wrId === WRITE_WR_ID) {
        this.transport.onSendFailed();
        continue;
      }
      const wasEmpty = this.releaseList.length === 0;
      this.releaseList.push(completion.ok ? completion.wrId : completion.wrId + FAILED_SEND_MARKER);
      if (!completion.ok) this.transport.onSendFailed();
      if (wasEmpty) this.transport.onReleasePending();
    }
  }

  /** Stopgap for the native transition wake (needs A1): look while Sends are in flight. */
  private armReleaseWatch(): void {
    if (this.releaseWatch !== null) return;
    this.releaseWatch = setInterval(() => {
      if (this.releaseList.length > 0) this.transport.onReleasePending();
      if (this.transport.sendContexts.metrics.inUse === 0) this.disarmReleaseWatch();
    }, RELEASE_WATCH_INTERVAL_MS);
  }

  private disarmReleaseWatch(): void {
    if (this.releaseWatch !== null) clearInterval(this.releaseWatch);
    this.releaseWatch = null;
  }

  /**
   * The seed's teardown order: (1) the queue pair is drained — moved to the
   * error state, every posted Send completes or is flushed onto the release
   * list, which we wait for; (2) the release list is drained and (3) the
   * receive queue flushed, both by transport.finishClose(); (4) the verbs
   * objects go. If flushes do not all arrive within QP_DRAIN_WAIT_MS, the QP is
   * destroyed first — after that the device cannot touch the contexts — and the
   * contexts still posted are reclaimed (counted in `lostSends`).
   */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    this.disarmReleaseWatch();
    this.transport.beginClose();
    this.disconnect();
    const contexts = this.transport.sendContexts;
    const deadline = performance.now() + QP_DRAIN_WAIT_MS;
    while (contexts.metrics.inUse > this.releaseList.length && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const drained = contexts.metrics.inUse <= this.releaseList.length;
    if (!drained) this.queuePair.close();
    this.transport.finishClose({ reclaimPosted: !drained });
    this.stopPolling();
    this.queuePair.close();
    this.cmId.close();
    this.ringRegion.close();
    this.sendCompletions.close();
    this.receiveCompletions.close();
    this.releaseList.close();
    this.onClosed(this);
  }
}

/** Time to wait for flushed completions after a disconnect: far above rxe's flush time. */
const QP_DRAIN_WAIT_MS = 5000;
