/**
 * RdmaTransport: one RPC-over-RDMA connection on the server side — the
 * svcxprt_rdma of Linux.
 *
 * Life: created by the server when it accepts a connection (the QP, its CQs
 * and the registered memory come from the device side through `port` and
 * `resources`); owned by the server's connection table; served by the
 * ServicePool's workers, one RPC at a time per worker; closed by close(),
 * which follows the seed's teardown order: drain the queue pair (every posted
 * Send has completed or been flushed onto the release list), drain the release
 * list, flush the receive queue, destroy the contexts.
 *
 * An RPC's path (serveOne): take the oldest completed Receive; a plain call
 * (RDMA_MSG without chunks, nearly every call without bulk data) goes straight
 * to the dispatcher and, if its reply fits inline without bulk items, is
 * answered behind the fixed reply header — no decoder, plan or encoder objects,
 * no promise when the procedure answers synchronously. Any other call: decode
 * the transport header (a rejection becomes RDMA_ERROR or a drop); pull any Read
 * chunks into the transport's read sinks; hand the RPC message to the
 * dispatcher; plan the reply (inline, Write chunks, Reply chunk); get a send
 * context; encode header + inline reply into it; post the RDMA Writes, then
 * the Send and the release list's drain in one call into the verbs core
 * (drain point between-rpcs); release: the Receive slot and the read sinks go
 * back (an RPC that sent no reply drains here instead).
 *
 * Threading: the thread that created it (the main thread). Completions are
 * routed on that thread's event loop; the release list is appended natively.
 */
import assert from 'node:assert';
import type { XdrBulkItem, XdrReadChunk } from '@roce-rpc/xdr';
import { HeaderRejection, RejectAnswer } from '../errors.js';
import type { CallTransportHeader, RdmaSegment, ReadChunk } from '../header/chunks.js';
import { decodeCallHeader, isPlainCall } from '../header/decode.js';
import { encodeErrorHeader, encodePlainReplyHeader, encodeReplyHeader } from '../header/encode.js';
import { grantCredits } from '../reply/credits.js';
import { MIN_MESSAGE_HEADER_BYTES } from '../protocol.js';
import { planReply, type ReplyBody, type ReplyPlan } from '../reply/plan.js';
import type { RdmaWrite } from '../reply/scatter.js';
import { ReadSinks } from './read_sinks.js';
import { ReceiveRing, type CompletedReceive } from './receive_ring.js';
import { DrainPoint, SendContextPool, type Registration, type SendContext, type SendResources } from './send_context.js';
import type { Servable, ServicePool } from './service_pool.js';

/** An RDMA Write ready to post: remote target plus registered local pieces. */
export interface PreparedWrite {
  readonly write: RdmaWrite;
  readonly sources: readonly Registration[];
}

/** What the transport needs from its queue pair. */
export interface QueuePairPort {
  /** Posts a Receive into `length` bytes at `offset` of the ring's registered buffer. */
  postReceive(slot: number, offset: number, length: number): void;
  /**
   * Posts the Writes (unsignaled) then the Send of `sendBytes` of the
   * context's buffer, signaled with wrId = context.id; then takes the Send
   * completions reported so far onto the release list and drains it into
   * `drainInto` (the between-RPCs drain, in the same call as the post).
   * Returns how many ids it drained.
   */
  postReply(context: SendContext, writes: readonly PreparedWrite[], sendBytes: number, drainInto: Float64Array): number;
  /**
   * Someone waits (true) or no longer waits (false) for Send completions to
   * free Send Queue room or a context: they must then raise events.
   */
  awaitSendCompletions(waiting: boolean): void;
  /**
   * RDMA Reads `segments` (the requester's memory) into `target` from byte
   * `offset` on, one after another; resolves when all completed, rejects if one
   * failed. Each segment takes a Send Queue entry until it completes.
   */
  readInto(segments: readonly RdmaSegment[], target: Registration, offset: number): Promise<void>;
  /** Starts an orderly disconnect. */
  disconnect(): void;
}

/** Where a call came from, as the ONC RPC dispatcher's handlers see it. */
export interface RdmaCallContext {
  readonly transport: 'rdma';
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

/** The ONC RPC side: the oncrpc Dispatcher satisfies it. */
export interface CallHandler {
  handleCall(
    bytes: Uint8Array,
    context: RdmaCallContext,
    options?: { readChunks?: readonly XdrReadChunk[] },
  ): { message: ReplyBody } | Promise<{ message: ReplyBody }> | null;
}

export interface TransportParameters {
  readonly credits: number;
  readonly receiveInlineBytes: number;
  readonly sendQueueDepth: number;
  readonly sendContextsMax: number;
  /** The client's receive size (RFC 8797), our inline threshold towards it. */
  readonly peerReceiveBytes: number;
}

export interface TransportMetrics {
  calls: number;
  rejected: Record<string, number>;
  errorReplies: number;
  inlineReplies: number;
  replyChunkReplies: number;
  writtenBytes: number;
  /** Bytes pulled with RDMA Read (long calls and data-item chunks). */
  readBytes: number;
  /** The release list went empty -> non-empty while nobody was waiting: the transport enqueued itself. */
  selfEnqueues: number;
  /** Replies that waited for Send Queue space (or a send context). */
  sqWaits: number;
  /** Releases that found no RPC (the self-enqueue path). */
  emptyReceives: number;
}

type TransportState = 'open' | 'closing' | 'closed';

/**
 * SGEs per RDMA Write work request: a Write chunk segment typically gathers an
 * inline slice, the payload and its pad; more pieces are copied into one.
 */
export const WRITE_SGES_MAX = 4;

export class RdmaTransport implements Servable {
  queued = false;
  readonly ring: ReceiveRing;
  readonly sendContexts: SendContextPool;
  readonly metrics: TransportMetrics = {
    calls: 0,
    rejected: {},
    errorReplies: 0,
    inlineReplies: 0,
    replyChunkReplies: 0,
    writtenBytes: 0,
    readBytes: 0,
    selfEnqueues: 0,
    sqWaits: 0,
    emptyReceives: 0,
  };
  private state: TransportState = 'open';
  private sqAvailable: number;
  /** Workers waiting for Send Queue space or a context; woken by a release-list transition. */
  private readonly sendWaiters: (() => void)[] = [];
  private readonly sendLimitBytes: number;
  private readonly pool: ServicePool;
  private readonly callContext: RdmaCallContext;
  /** Registered buffers RDMA Reads pull into, kept between RPCs. */
  readonly readSinks: ReadSinks;
  /** Read sinks holding pulled data, by Receive slot, given back when the RPC is released. */
  private readonly pulled = new Map<number, Registration[]>();

  constructor(
    private readonly port: QueuePairPort,
    private readonly resources: SendResources,
    private readonly handler: CallHandler,
    pool: ServicePool,
    readonly parameters: TransportParameters,
    peer: { remoteAddress?: string; remotePort?: number } = {},
  ) {
    this.pool = pool;
    this.ring = new ReceiveRing(parameters.credits, parameters.receiveInlineBytes);
    this.sendContexts = new SendContextPool(resources, parameters.sendContextsMax, parameters.receiveInlineBytes);
    this.readSinks = new ReadSinks(resources);
    this.sqAvailable = parameters.sendQueueDepth;
    this.sendLimitBytes = Math.min(parameters.peerReceiveBytes, parameters.receiveInlineBytes);
    this.callContext = { transport: 'rdma', ...peer };
  }

  /** Posts the initial Receives: one per credit. Call before accepting. */
  start(): void {
    this.postReceives();
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Receive completion (on this thread): queue the call and enqueue the transport. */
  onReceive(slot: number, byteLength: number): void {
    this.ring.complete(slot, byteLength);
    // Replace the Receive at once, as svc_rdma_wc_receive does, so credits stay posted.
    if (this.state === 'open') this.postReceives();
    this.pool.enqueue(this);
  }

  /** Receive flushed (QP in error): the slot only goes back. */
  onReceiveFlushed(slot: number): void {
    this.ring.flush(slot);
    this.beginClose();
  }

  /**
   * The release list went empty -> non-empty (the native transition, the
   * seed's llist_add() returning true). A worker waiting for Send Queue space
   * takes it (and drains after its wait); otherwise the transport marks itself
   * as having work and enqueues itself, so an idle worker runs receive (finds
   * nothing) and release, draining the trailing edge of a burst.
   */
  onReleasePending(): void {
    if (this.sendWaiters.length > 0) {
      this.wakeSendWaiters();
      return;
    }
    this.metrics.selfEnqueues++;
    this.pool.enqueue(this);
  }

  /** A Send failed or was flushed: its context is released by a drain like any other; the connection closes. */
  onSendFailed(): void {
    this.beginClose();
  }

  /**
   * svc_recv for this transport: one RPC, or only a release when nothing was
   * received. Synchronous when the call is answered synchronously (a plain call
   * to a procedure that returns its reply): no promise, no microtask hop.
   */
  serveOne(): Promise<void> | void {
    const receive = this.ring.next();
    if (receive === undefined) {
      this.metrics.emptyReceives++;
      this.release(null);
      return;
    }
    // Others may serve the next call while this one is processed (svc_xprt_received).
    if (this.ring.pending > 0) this.pool.enqueue(this);
    let processed: boolean | Promise<boolean>;
    try {
      processed = this.process(receive);
    } catch (error) {
      this.failServing(receive);
      throw error;
    }
    if (!(processed instanceof Promise)) return this.release(receive, processed);
    return processed.then(
      (drainedWithReply) => this.release(receive, drainedWithReply),
      (error: unknown) => {
        this.failServing(receive);
        throw error;
      },
    );
  }

  /**
   * Handler bugs are answered by the dispatcher; an error here is ours: drop the
   * connection, not the process (the pool reports it), and release the call.
   */
  private failServing(receive: CompletedReceive): void {
    this.beginClose();
    this.release(receive);
  }

  /**
   * xpo_release_ctxt: the Receive slot goes back, then the release list is
   * drained — unless the reply's post just drained it in the same native call.
   */
  private release(receive: CompletedReceive | null, drainedWithReply = false): void {
    if (receive !== null) {
      for (const sink of this.pulled.get(receive.slot) ?? []) this.readSinks.giveBack(sink);
      this.pulled.delete(receive.slot);
      this.ring.release(receive.slot);
      if (this.state === 'open') this.postReceives();
    }
    // After teardown the final drain is done and the release list is gone.
    if (this.state === 'closed' || drainedWithReply) return;
    this.drainSendContexts(receive === null ? DrainPoint.SELF_ENQUEUE : DrainPoint.BETWEEN_RPCS);
  }

  private drainSendContexts(point: DrainPoint): number {
    const failedBefore = this.sendContexts.metrics.failedSends;
    return this.afterDrain(this.sendContexts.drain(point), failedBefore);
  }

  /** Send Queue entries back; a failed Send closes the transport; waiters re-check. */
  private afterDrain(released: number, failedBefore: number): number {
    this.sqAvailable += this.sendContexts.takeReleasedWorkRequests();
    // A failed or flushed Send: the QP is in error (svcrdma's XPT_CLOSE).
    if (this.sendContexts.metrics.failedSends > failedBefore) this.beginClose();
    // What this drain freed may be what a waiting worker needs: its transition was taken here.
    if (released > 0) this.wakeSendWaiters();
    return released;
  }

  /**
   * Every waiter re-checks (and waits again if still short): one transition may
   * free room for several, and a waiter left asleep would wait for a Send that
   * may never come (lost wake-up). Bounded by the service pool's workers.
   */
  private wakeSendWaiters(): void {
    if (this.sendWaiters.length === 0) return;
    for (const waiter of this.sendWaiters.splice(0)) waiter();
    this.port.awaitSendCompletions(false);
  }

  /**
   * Serves one call; true when its reply's post drained the release list (the
   * between-RPCs drain). A plain call (isPlainCall) goes to the dispatcher
   * without a decoded header; any other is decoded and checked in full.
   */
  private process(receive: CompletedReceive): boolean | Promise<boolean> {
    this.metrics.calls++;
    if (!isPlainCall(this.ring.words, receive.bytes.byteOffset, receive.bytes.length)) return this.processDecoded(receive);
    const reply = this.handler.handleCall(receive.bytes.subarray(MIN_MESSAGE_HEADER_BYTES), this.callContext);
    if (reply instanceof Promise) return reply.then((settled) => this.answerPlain(receive, settled));
    return this.answerPlain(receive, reply);
  }

  /**
   * A plain call's reply: without bulk items and within the client's inline
   * size, behind the fixed reply header (encodePlainReplyHeader: what
   * planReply and encodeReplyHeader produce for a call without chunks);
   * otherwise planned from the fully decoded header (bulk items inline,
   * or ERR_CHUNK).
   */
  private answerPlain(receive: CompletedReceive, reply: { message: ReplyBody } | null): boolean | Promise<boolean> {
    if (reply === null || this.state !== 'open') return false;
    const body = reply.message;
    if (body.bulk.length > 0 || MIN_MESSAGE_HEADER_BYTES + body.byteLength > this.sendLimitBytes) {
      return this.answerDecoded(receive, decodeCallHeader(receive.bytes), reply);
    }
    const acquired = this.acquireSendResources(1);
    if (acquired instanceof Promise) return acquired.then((context) => context !== null && this.sendPlainReply(receive, context, body));
    return acquired !== null && this.sendPlainReply(receive, acquired, body);
  }

  private sendPlainReply(receive: CompletedReceive, context: SendContext, body: ReplyBody): boolean {
    const received = this.ring.words;
    const at = receive.bytes.byteOffset;
    const credits = grantCredits(received.getUint32(at + 8), this.parameters.credits);
    const length = encodePlainReplyHeader(this.sendContexts.words, context.buffer.offset, received.getUint32(at), credits);
    context.buffer.bytes.set(body.inline, length);
    this.metrics.inlineReplies++;
    return this.post(context, [], length + body.byteLength, 1);
  }

  private async processDecoded(receive: CompletedReceive): Promise<boolean> {
    let header: CallTransportHeader;
    try {
      header = decodeCallHeader(receive.bytes);
    } catch (error) {
      if (!(error instanceof HeaderRejection)) throw error;
      return (await this.answerRejection(error)) ?? false;
    }
    // Most calls are inline: no Read to wait for, so no promise to wait on either.
    const call = hasReadChunks(header)
      ? await this.assembleCall(header, receive)
      : { message: receive.bytes.subarray(header.headerBytes), readChunks: noReadChunks };
    if (call === null) return this.sendError(header.xid, header.credits, RejectAnswer.ERR_CHUNK);
    const reply = await this.handler.handleCall(call.message, this.callContext, call.readChunks.length > 0 ? { readChunks: call.readChunks } : undefined);
    return this.answerDecoded(receive, header, reply);
  }

  private answerDecoded(receive: CompletedReceive, header: CallTransportHeader, reply: { message: ReplyBody } | null): boolean | Promise<boolean> {
    if (reply === null || this.state !== 'open') return false;
    this.retireSinksInReply(receive, reply.message.bulk);
    const plan = planReply({
      xid: header.xid,
      credits: grantCredits(header.credits, this.parameters.credits),
      body: reply.message,
      writeList: header.writeList,
      replyChunk: header.replyChunk,
      sendLimitBytes: this.sendLimitBytes,
    });
    if (plan.kind === 'error') {
      this.metrics.rejected[plan.reason] = (this.metrics.rejected[plan.reason] ?? 0) + 1;
      return this.sendError(header.xid, header.credits, RejectAnswer.ERR_CHUNK);
    }
    return this.sendReply(plan, reply.message);
  }

  /**
   * The RPC call as the dispatcher reads it: the inline message, or for a long
   * call the position-zero chunk's data, with data-item chunks pulled by RDMA
   * Read and placed at their XDR positions. The pulled data lives in read sinks
   * until the RPC is released (then a later call reuses them). Null when a Read
   * failed.
   */
  private async assembleCall(
    header: CallTransportHeader,
    receive: CompletedReceive,
  ): Promise<{ message: Uint8Array; readChunks: readonly XdrReadChunk[] } | null> {
    try {
      const message = header.callChunk === null ? receive.bytes.subarray(header.headerBytes) : await this.pullChunk(header.callChunk, receive);
      const readChunks: XdrReadChunk[] = [];
      for (const chunk of header.readChunks) readChunks.push({ position: chunk.position, data: await this.pullChunk(chunk, receive) });
      this.metrics.readBytes += readChunks.reduce((bytes, chunk) => bytes + chunk.data.length, header.callChunk?.length ?? 0);
      return { message, readChunks };
    } catch (error) {
      if (this.state !== 'open') return null;
      this.metrics.rejected['read-failed'] = (this.metrics.rejected['read-failed'] ?? 0) + 1;
      return null;
    }
  }

  private async pullChunk(chunk: ReadChunk, receive: CompletedReceive): Promise<Uint8Array> {
    const target = this.readSinks.take(chunk.length);
    this.readRegistrations(receive).push(target);
    await this.reserveSendQueue(chunk.segments.length);
    try {
      await this.port.readInto(chunk.segments, target, 0);
    } finally {
      this.sqAvailable += chunk.segments.length;
      // Reads free Send Queue entries without a release-list push: hand them to the waiters.
      this.wakeSendWaiters();
    }
    return target.bytes.subarray(0, chunk.length);
  }

  /**
   * A reply that sends pulled bytes back (an echo) may still be read by the device
   * after the RPC is released: such a sink is never reused (a later call's Reads
   * would overwrite it). Its Reads are done, so it is deregistered now; the reply's
   * own registrations and the send context's references keep the memory until
   * the Send completes.
   */
  private retireSinksInReply(receive: CompletedReceive, bulk: readonly XdrBulkItem[]): void {
    const held = this.pulled.get(receive.slot);
    if (held === undefined || bulk.length === 0) return;
    for (let index = held.length - 1; index >= 0; index--) {
      const sink = held[index]!;
      if (!bulk.some((item) => item.data.buffer === sink.bytes.buffer)) continue;
      held.splice(index, 1);
      sink.close();
    }
  }

  private readRegistrations(receive: CompletedReceive): Registration[] {
    let held = this.pulled.get(receive.slot);
    if (held === undefined) this.pulled.set(receive.slot, (held = []));
    return held;
  }

  private answerRejection(rejection: HeaderRejection): Promise<boolean> | void {
    const name = rejection.reason.name;
    this.metrics.rejected[name] = (this.metrics.rejected[name] ?? 0) + 1;
    if (rejection.answer === RejectAnswer.DISCONNECT) return this.beginClose();
    if (rejection.answer === RejectAnswer.DROP || rejection.xid === null) return;
    // The call's credit request is unknown: grant what is posted, as Linux's sc_fc_credits does.
    return this.sendError(rejection.xid, this.parameters.credits, rejection.answer);
  }

  private async sendError(xid: number, requestedCredits: number, answer: RejectAnswer): Promise<boolean> {
    const acquired = this.acquireSendResources(1);
    const context = acquired instanceof Promise ? await acquired : acquired;
    if (context === null) return false;
    const header = encodeErrorHeader(xid, grantCredits(requestedCredits, this.parameters.credits), answer, context.buffer.bytes);
    this.metrics.errorReplies++;
    return this.post(context, [], header.length, 1);
  }

  private async sendReply(plan: Exclude<ReplyPlan, { kind: 'error' }>, body: ReplyBody): Promise<boolean> {
    const workRequests = plan.writes.length + 1;
    const acquired = this.acquireSendResources(workRequests);
    const context = acquired instanceof Promise ? await acquired : acquired;
    if (context === null) return false;
    const bytes = context.buffer.bytes;
    let length = encodeReplyHeader(plan.header, bytes).length;
    // Pull-up: the inline reply is copied behind the header, one SGE per Send.
    for (const part of plan.sendParts) {
      bytes.set(part, length);
      length += part.length;
    }
    const writes = plan.writes.map((write) => this.prepareWrite(context, write));
    keepBulkAlive(context, body.bulk);
    if (plan.kind === 'inline') this.metrics.inlineReplies++;
    else this.metrics.replyChunkReplies++;
    this.metrics.writtenBytes += plan.writtenBytes;
    return this.post(context, writes, length, workRequests);
  }

  /**
   * Registers each source of a Write for the device (the drain closes them). A
   * Write gathering more pieces than a work request has SGEs is pulled up into
   * one buffer first.
   */
  private prepareWrite(context: SendContext, write: RdmaWrite): PreparedWrite {
    const pieces = write.sources.length > WRITE_SGES_MAX ? [Buffer.concat(write.sources)] : write.sources;
    const sources = pieces.map((source) => this.resources.register(source));
    context.sourceRegistrations.push(...sources);
    return { write, sources };
  }

  /** Posts the reply and drains the release list with it; false if the post failed (the transport closes). */
  private post(context: SendContext, writes: readonly PreparedWrite[], sendBytes: number, workRequests: number): boolean {
    const failedBefore = this.sendContexts.metrics.failedSends;
    let drained: number;
    try {
      drained = this.port.postReply(context, writes, sendBytes, this.sendContexts.drainTarget);
    } catch (error) {
      this.sendContexts.putUnposted(context);
      this.beginClose();
      return false;
    }
    // Posted before the drained ids are released: the Send may already have completed.
    this.sendContexts.markPosted(context, workRequests);
    this.sqAvailable -= workRequests;
    this.afterDrain(this.sendContexts.releaseDrained(DrainPoint.BETWEEN_RPCS, drained), failedBefore);
    return true;
  }

  /**
   * Send Queue space for `workRequests` entries and a send context. Waits for a
   * release-list transition when either is exhausted, then drains (drain point
   * sq-wait): completions that arrived during the wait did not enqueue us.
   */
  private acquireSendResources(workRequests: number): SendContext | null | Promise<SendContext | null> {
    if (workRequests > this.parameters.sendQueueDepth) assert.fail(`${workRequests} work requests exceed the Send Queue`);
    // The common case answers at once: a promise (and its microtask) only when we must wait.
    const context = this.takeSendResources(workRequests);
    if (context !== null || this.state !== 'open') return context;
    return this.waitForSendResources(workRequests);
  }

  private async waitForSendResources(workRequests: number): Promise<SendContext | null> {
    for (;;) {
      await this.waitForRelease();
      if (this.state !== 'open') return null;
      const context = this.takeSendResources(workRequests);
      if (context !== null) return context;
    }
  }

  /** A send context and Send Queue room for `workRequests` if both are there now, else null. */
  private takeSendResources(workRequests: number): SendContext | null {
    if (this.state !== 'open' || this.sqAvailable < workRequests) return null;
    return this.sendContexts.get();
  }

  /** Send Queue entries for RDMA Reads (no send context): waits like a reply does. */
  private async reserveSendQueue(workRequests: number): Promise<void> {
    assert(workRequests <= this.parameters.sendQueueDepth, `${workRequests} work requests exceed the Send Queue`);
    while (this.sqAvailable < workRequests) {
      if (this.state !== 'open') throw new Error('transport closing');
      await this.waitForRelease();
    }
    this.sqAvailable -= workRequests;
  }

  /** Waits for a release-list transition, then drains (drain point sq-wait). */
  private async waitForRelease(): Promise<void> {
    this.metrics.sqWaits++;
    await new Promise<void>((resolve) => {
      this.sendWaiters.push(resolve);
      // After the push: the route this may run reports a transition that must find the waiter.
      if (this.sendWaiters.length === 1) this.port.awaitSendCompletions(true);
    });
    this.drainSendContexts(DrainPoint.SQ_WAIT);
  }

  private postReceives(): void {
    for (const slot of this.ring.takeSlotsToPost()) {
      this.port.postReceive(slot, slot * this.ring.slotBytes, this.ring.slotBytes);
    }
  }

  /** Stops serving: no new Receives are posted, waiters give up, the peer is disconnected. */
  beginClose(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.wakeSendWaiters();
    this.port.disconnect();
  }

  /**
   * The seed's teardown, once the device side has drained the queue pair (every
   * posted Send's completion is on the release list): drain the release list,
   * then flush the receive queue, then destroy the contexts (a leak check).
   */
  finishClose(options: { reclaimPosted?: boolean } = {}): void {
    assert.notEqual(this.state, 'closed');
    this.beginClose();
    this.state = 'closed';
    this.drainSendContexts(DrainPoint.TEARDOWN);
    // Only after the QP was destroyed: Sends whose completion will never come.
    if (options.reclaimPosted) this.sendContexts.reclaimPosted();
    this.ring.flushCompleted();
    this.sendContexts.destroy();
    this.readSinks.destroy();
  }
}

const noReadChunks: readonly XdrReadChunk[] = [];

function hasReadChunks(header: CallTransportHeader): boolean {
  return header.callChunk !== null || header.readChunks.length > 0;
}

function keepBulkAlive(context: SendContext, bulk: readonly XdrBulkItem[]): void {
  for (const item of bulk) context.references.push(item.data);
}
