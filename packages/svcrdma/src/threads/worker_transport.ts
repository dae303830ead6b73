/**
 * WorkerTransport: one worker thread's view of a native service transport —
 * the svc_recv steps after `take` (which received the calls queued on it, up
 * to the queue's callsPerTake, and let other workers take the transport:
 * svc_xprt_received): for each call in order pull its Read chunks, process,
 * reply (RDMA Writes chained before the Send); then release (the drain) and
 * take the next calls — the inline replies, the release and the take in one
 * native call, the replies' Sends in one chained post (one doorbell).
 *
 * Replies are posted in call order, and never held behind a procedure that
 * answers later: the replies staged so far are posted before the worker
 * waits on a promise, and before a reply that has a send context of its own.
 *
 * Life: created by a worker the first time it takes the transport, dropped when
 * the main thread says the transport was torn down (or a native call finds it
 * gone). Worker thread only. The Receive slots, the send contexts' buffers and
 * the chunk buffers are the transport's registered memory, seen here as
 * external ArrayBuffers: a call's bytes are read in place from its slot and its
 * pulled Read chunks from its read buffer, both held until the release. An
 * inline reply (or RDMA_ERROR) is encoded into the worker's seat area (its
 * staging bytes, service_seat.rs), which the native end of the call copies into
 * the send context it gets; a reply with RDMA Writes gets its send context
 * first, is encoded straight into its buffer, and the bytes it Writes are copied
 * end to end into the write buffer that goes with the context, given back by
 * the drain that releases the context.
 *
 * A plain call (RDMA_MSG without chunks, nearly every call without bulk
 * data) is recognised by the native take, which leaves its xid and credits in
 * the mailbox: the worker dispatches the RPC message behind the header and,
 * for a reply without bulk items that fits inline, writes the fixed RDMA_MSG
 * reply header itself — no decoder, plan or encoder objects per RPC. Every
 * other call, and a plain call's bulk or long reply, takes the full path.
 *
 * Limits of a worker (answered RDMA_ERROR / ERR_CHUNK, counted in
 * `chunkErrors`): a Read list the native side refuses (beyond a chunk buffer,
 * more Reads than the Send Queue holds), a reply whose Writes exceed a chunk
 * buffer or the Send Queue, a reply that fits nowhere (planReply).
 */
import { HeaderRejection, RejectAnswer } from '../errors.js';
import { MIN_MESSAGE_HEADER_BYTES } from '../protocol.js';
import type { CallTransportHeader, RdmaSegment, ReadChunk } from '../header/chunks.js';
import { decodeCallHeader } from '../header/decode.js';
import { encodeErrorHeader, encodePlainReplyHeader, encodeReplyHeader } from '../header/encode.js';
import { grantCredits } from '../reply/credits.js';
import { planReply, type ReplyBody, type ReplyPlan } from '../reply/plan.js';
import type { RdmaWrite } from '../reply/scatter.js';
import type { CallHandler, RdmaCallContext } from '../transport/transport.js';
import type { XdrReadChunk } from '@roce-rpc/xdr';
import { callWord, CallWord, CONTEXT_FACTOR, MAILBOX_WORDS, MailboxWord, nativeService, ReadStatus, NATIVE_WAIT_MAX_MS, SEGMENT_WORDS, STAGING_BYTES, STAGING_OFFSET } from './native_service.js';
import type { WorkerCounterRow } from './worker_metrics.js';

const callContext: RdmaCallContext = { transport: 'rdma' };
/**
 * Longest a call's Reads may take before the transport is closed: far above a
 * 1 MiB Read in the loaded emulated lab (≈ 0.1-1 s); each native wait is at
 * most NATIVE_WAIT_MAX_MS, so the worker's event loop still turns between.
 */
const READ_WAIT_TOTAL_MS = 30_000;

/** The call as the dispatcher reads it. */
interface AssembledCall {
  readonly message: Uint8Array;
  readonly readChunks: readonly XdrReadChunk[];
}

type SendablePlan = Exclude<ReplyPlan, { kind: 'error' }>;

/**
 * What the end of a call posts: `length` staged bytes (context null: an inline
 * reply or RDMA_ERROR), or a send context's reply after its Writes.
 */
interface ReplyOrder {
  readonly length: number;
  readonly context: number | null;
  readonly writes: Uint32Array;
  readonly counter: 'inlineReplies' | 'chunkReplies' | 'errorReplies';
}

export class WorkerTransport {
  private readonly receiveArea: Uint8Array;
  private readonly sendArea: Uint8Array;
  private readonly chunkArea: Uint8Array;
  /** The seat's mailbox words and staging bytes (replies end to end, posted before one more might not fit). */
  private readonly mailbox: Uint32Array;
  private readonly staging: Uint8Array;
  /** The staging bytes as words, for a plain call's reply header. */
  private readonly stagingWords: DataView;
  /** Replies staged and not posted yet (their lengths in the mailbox), and their bytes. */
  private stagedReplies = 0;
  private stagedBytes = 0;
  private readonly slotBytes: number;
  private readonly contextBytes: number;
  private readonly chunkBytes: number;
  private readonly credits: number;
  private readonly sendQueueDepth: number;

  constructor(
    readonly id: number,
    private readonly queueId: number,
    private readonly seat: number,
    private readonly handler: CallHandler,
    private readonly counters: WorkerCounterRow,
    seatArea: ArrayBuffer,
  ) {
    const buffers = nativeService.serviceTransportBuffers(id);
    this.receiveArea = new Uint8Array(buffers.receive);
    this.sendArea = new Uint8Array(buffers.send);
    this.chunkArea = new Uint8Array(buffers.chunk);
    this.slotBytes = buffers.slotBytes;
    // The context buffer is sized to the client's receive size: our largest Send.
    this.contextBytes = buffers.contextBytes;
    this.mailbox = new Uint32Array(seatArea, 0, MAILBOX_WORDS);
    this.staging = new Uint8Array(seatArea, STAGING_OFFSET, STAGING_BYTES);
    this.stagingWords = new DataView(seatArea, STAGING_OFFSET, STAGING_BYTES);
    this.chunkBytes = buffers.chunkBytes;
    this.credits = buffers.credits;
    this.sendQueueDepth = buffers.sendQueueDepth;
  }

  /**
   * Serves the calls the take left in the seat's mailbox, then — one native
   * call — posts their staged replies, releases them and, if `takeWaitMs` > 0,
   * takes the next calls: returns their transport (0: none). Synchronous when
   * the procedures answer synchronously (NULL, most of them): a promise only
   * once a procedure returned one, so the common RPC pays no microtask hops.
   */
  serveCalls(takeWaitMs: number): number | Promise<number> {
    return this.serveFrom(0, this.mailbox[MailboxWord.CALLS]!, takeWaitMs);
  }

  private serveFrom(first: number, calls: number, takeWaitMs: number): number | Promise<number> {
    for (let index = first; index < calls; index++) {
      try {
        const reply = this.process(index);
        if (reply instanceof Promise) {
          // The replies of the calls before it do not wait for this procedure.
          this.postStaged();
          return reply.then(
            (settled) => {
              this.queueReplyOrAbandon(settled);
              return this.serveFrom(index + 1, calls, takeWaitMs);
            },
            (error: unknown) => {
              this.abandon();
              throw error;
            },
          );
        }
        this.queueReply(reply);
      } catch (error) {
        this.abandon();
        throw error;
      }
    }
    return nativeService.serviceTransportFinishCall(this.id, this.seat, this.queueId, takeWaitMs, this.unstage());
  }

  private queueReplyOrAbandon(reply: ReplyOrder | null): void {
    try {
      this.queueReply(reply);
    } catch (error) {
      this.abandon();
      throw error;
    }
  }

  /** Our error, not the procedure's (the dispatcher answers those): the transport closes, the calls are released, the staged replies dropped. */
  private abandon(): void {
    this.counters.add('failures');
    nativeService.serviceTransportClose(this.id);
    nativeService.serviceTransportFinishCall(this.id, this.seat, this.queueId, 0, this.unstage());
  }

  /** Counts a reply (before the native call that posts it, which may block in the next take); a staged one waits for the others, one with its own context is posted now, after them. */
  private queueReply(reply: ReplyOrder | null): void {
    if (reply === null) return;
    this.counters.add(reply.counter);
    if (reply.context === null) {
      this.mailbox[MailboxWord.REPLY_LENGTHS + this.stagedReplies++] = reply.length;
      this.stagedBytes += reply.length;
      return;
    }
    nativeService.serviceTransportPostReplies(this.id, this.seat, this.queueId, this.unstage(), reply.context, reply.length, reply.writes);
  }

  private postStaged(): void {
    if (this.stagedReplies > 0) nativeService.serviceTransportPostReplies(this.id, this.seat, this.queueId, this.unstage());
  }

  /** The count of staged replies, handed to a native call that posts them. */
  private unstage(): number {
    const staged = this.stagedReplies;
    this.stagedReplies = 0;
    this.stagedBytes = 0;
    return staged;
  }

  /** Where the next reply is staged: the replies so far are posted first if one of a send context's size might not fit behind them. */
  private nextStaging(): number {
    if (this.stagedBytes + this.contextBytes > STAGING_BYTES) this.postStaged();
    return this.stagedBytes;
  }

  private stagingView(): Uint8Array {
    const offset = this.nextStaging();
    return this.staging.subarray(offset, offset + this.contextBytes);
  }

  private process(index: number): ReplyOrder | null | Promise<ReplyOrder | null> {
    this.counters.add('calls');
    const mailbox = this.mailbox;
    const start = mailbox[callWord(index, CallWord.SLOT)]! * this.slotBytes;
    const message = this.receiveArea.subarray(start, start + mailbox[callWord(index, CallWord.BYTE_LENGTH)]!);
    const plainHeaderBytes = mailbox[callWord(index, CallWord.PLAIN_HEADER_BYTES)]!;
    if (plainHeaderBytes !== 0) return this.processPlain(message, plainHeaderBytes, mailbox[callWord(index, CallWord.PLAIN_XID)]!, mailbox[callWord(index, CallWord.PLAIN_CREDITS)]!);
    let header: CallTransportHeader;
    try {
      header = decodeCallHeader(message);
    } catch (error) {
      if (!(error instanceof HeaderRejection)) throw error;
      return this.answerRejection(error);
    }
    const call = this.assembleCall(header, message);
    if (call === null) return this.answerChunkError(header);
    const reply = this.handler.handleCall(call.message, callContext, call.readChunks.length > 0 ? { readChunks: call.readChunks } : undefined);
    if (reply instanceof Promise) return reply.then((settled) => this.answer(header, settled));
    return this.answer(header, reply);
  }

  /** A plain call (its header decoded natively, in the mailbox): the RPC message behind the header dispatched. */
  private processPlain(received: Uint8Array, headerBytes: number, xid: number, credits: number): ReplyOrder | null | Promise<ReplyOrder | null> {
    const reply = this.handler.handleCall(received.subarray(headerBytes), callContext);
    if (reply instanceof Promise) return reply.then((settled) => this.answerPlain(received, xid, credits, settled));
    return this.answerPlain(received, xid, credits, reply);
  }

  /**
   * A plain call's reply: without bulk items and within the client's inline
   * size, staged behind the fixed RDMA_MSG reply header (what planReply and
   * encodeReplyHeader produce for a call without chunks); otherwise planned
   * from the fully decoded header (bulk items inline, or ERR_CHUNK).
   */
  private answerPlain(received: Uint8Array, xid: number, credits: number, reply: { message: ReplyBody } | null): ReplyOrder | null {
    if (reply === null) return null;
    const body = reply.message;
    if (body.bulk.length > 0 || MIN_MESSAGE_HEADER_BYTES + body.byteLength > this.contextBytes) return this.answer(decodeCallHeader(received), reply);
    const words = this.stagingWords;
    const offset = this.nextStaging();
    const headerBytes = encodePlainReplyHeader(words, offset, xid, grantCredits(credits, this.credits));
    this.staging.set(body.inline, offset + headerBytes);
    return { length: headerBytes + body.byteLength, context: null, writes: emptySegments, counter: 'inlineReplies' };
  }

  /** The procedure's reply (null: none is sent) planned and encoded. */
  private answer(header: CallTransportHeader, reply: { message: ReplyBody } | null): ReplyOrder | null {
    if (reply === null) return null;
    const plan = planReply({
      xid: header.xid,
      credits: grantCredits(header.credits, this.credits),
      body: reply.message,
      writeList: header.writeList,
      replyChunk: header.replyChunk,
      sendLimitBytes: this.contextBytes,
    });
    if (plan.kind === 'error' || !this.fitsChunkBuffer(plan.writes)) return this.answerChunkError(header);
    return this.encodeReply(plan);
  }

  /**
   * The RPC call: the inline message, or for a long call the position-zero
   * chunk's data, with data-item chunks at their XDR positions — all pulled by
   * RDMA Read into one read buffer, end to end, held until the release. Null:
   * ERR_CHUNK (the list is beyond our limits, or the Reads failed).
   */
  private assembleCall(header: CallTransportHeader, received: Uint8Array): AssembledCall | null {
    const inline = received.subarray(header.headerBytes);
    if (header.callChunk === null && header.readChunks.length === 0) return { message: inline, readChunks: [] };
    const chunks: ReadChunk[] = header.callChunk === null ? [...header.readChunks] : [header.callChunk, ...header.readChunks];
    const buffer = this.pullChunks(chunks.flatMap((chunk) => chunk.segments));
    if (buffer === null) return null;
    let cursor = buffer * this.chunkBytes;
    const pulled = chunks.map((chunk) => this.chunkArea.subarray(cursor, (cursor += chunk.length)));
    if (header.callChunk === null) {
      return { message: inline, readChunks: header.readChunks.map((chunk, index) => ({ position: chunk.position, data: pulled[index]! })) };
    }
    return { message: pulled[0]!, readChunks: header.readChunks.map((chunk, index) => ({ position: chunk.position, data: pulled[index + 1]! })) };
  }

  /**
   * RDMA Reads of `segments` into a read buffer; blocks this worker (in native
   * waits of at most NATIVE_WAIT_MAX_MS) until they completed, failed, or
   * READ_WAIT_TOTAL_MS passed (then the transport closes: the Reads may still
   * land, the teardown takes the buffer back). Returns the buffer or null.
   */
  private pullChunks(segments: readonly RdmaSegment[]): number | null {
    let status = nativeService.serviceTransportReadChunks(this.id, this.seat, segmentList(segments), NATIVE_WAIT_MAX_MS);
    for (const deadline = performance.now() + READ_WAIT_TOTAL_MS; status === ReadStatus.BUSY || status === ReadStatus.IN_FLIGHT; ) {
      if (performance.now() > deadline) {
        nativeService.serviceTransportClose(this.id);
        return null;
      }
      status =
        status === ReadStatus.BUSY
          ? nativeService.serviceTransportReadChunks(this.id, this.seat, segmentList(segments), NATIVE_WAIT_MAX_MS)
          : nativeService.serviceTransportReadWait(this.id, this.seat, NATIVE_WAIT_MAX_MS);
    }
    return status >= 0 ? status : null;
  }

  /** The reply's Writes fit one write buffer and the Send Queue (beside the Send). */
  private fitsChunkBuffer(writes: readonly RdmaWrite[]): boolean {
    return writes.length < this.sendQueueDepth && writeBytes(writes) <= this.chunkBytes;
  }

  /** An inline reply is staged; one with Writes is built in the send context it gets (null: none came free, dropped). */
  private encodeReply(plan: SendablePlan): ReplyOrder | null {
    if (plan.writes.length === 0) return { length: this.encodeInline(plan, this.stagingView()), context: null, writes: emptySegments, counter: 'inlineReplies' };
    const acquired = this.getSendContext(plan.writes.length + 1, true);
    if (acquired === null) {
      this.counters.add('chunkReplies');
      return null;
    }
    const { context, writeBuffer } = acquired;
    const length = this.encodeInline(plan, this.contextBuffer(context));
    return { length, context, writes: this.stageWrites(plan.writes, writeBuffer!), counter: 'chunkReplies' };
  }

  /** The transport header, then the inline part of the reply pulled up behind it (one SGE per Send); returns the length. */
  private encodeInline(plan: SendablePlan, buffer: Uint8Array): number {
    let length = encodeReplyHeader(plan.header, buffer).length;
    for (const part of plan.sendParts) {
      buffer.set(part, length);
      length += part.length;
    }
    return length;
  }

  /** Copies each Write's sources end to end into the write buffer; returns the Writes' segment list. */
  private stageWrites(writes: readonly RdmaWrite[], writeBuffer: number): Uint32Array {
    let cursor = writeBuffer * this.chunkBytes;
    for (const write of writes) {
      for (const source of write.sources) {
        this.chunkArea.set(source, cursor);
        cursor += source.length;
      }
    }
    return segmentList(writes.map((write) => write.target));
  }

  private answerChunkError(header: CallTransportHeader): ReplyOrder {
    this.counters.add('chunkErrors');
    return this.encodeError(header.xid, header.credits, RejectAnswer.ERR_CHUNK);
  }

  private answerRejection(rejection: HeaderRejection): ReplyOrder | null {
    this.counters.add('rejected');
    if (rejection.answer === RejectAnswer.DISCONNECT) {
      nativeService.serviceTransportClose(this.id);
      return null;
    }
    if (rejection.answer === RejectAnswer.DROP || rejection.xid === null) return null;
    // The call's credit request is unknown: grant what is posted, as Linux's sc_fc_credits does.
    return this.encodeError(rejection.xid, this.credits, rejection.answer);
  }

  /** An RDMA_ERROR, staged. */
  private encodeError(xid: number, requestedCredits: number, answer: RejectAnswer): ReplyOrder {
    const length = encodeErrorHeader(xid, grantCredits(requestedCredits, this.credits), answer, this.stagingView()).length;
    return { length, context: null, writes: emptySegments, counter: 'errorReplies' };
  }

  /**
   * A send context with Send Queue room for `workRequests` and, if asked, a
   * write buffer (drain points empty-free-list and sq-wait are native), or
   * null: the reply is dropped (counted natively). Only replies with Writes get one here; the
   * native post gets one for each staged reply.
   */
  private getSendContext(workRequests: number, withWriteBuffer: boolean): { context: number; writeBuffer: number | null } | null {
    const acquired = nativeService.serviceTransportGetSendContext(this.id, this.seat, NATIVE_WAIT_MAX_MS, workRequests, withWriteBuffer);
    if (acquired < 0) return null;
    const writeBuffer = Math.floor(acquired / CONTEXT_FACTOR) - 1;
    return { context: acquired % CONTEXT_FACTOR, writeBuffer: writeBuffer >= 0 ? writeBuffer : null };
  }

  private contextBuffer(context: number): Uint8Array {
    return this.sendArea.subarray(context * this.contextBytes, (context + 1) * this.contextBytes);
  }

}

const emptySegments = new Uint32Array(0);

/** The native segment list: handle, length, address high and low words per segment. */
function segmentList(segments: readonly RdmaSegment[]): Uint32Array {
  const words = new Uint32Array(segments.length * SEGMENT_WORDS);
  segments.forEach((segment, index) => {
    words.set([segment.handle, segment.length, Number(segment.offset >> 32n), Number(segment.offset & 0xffff_ffffn)], index * SEGMENT_WORDS);
  });
  return words;
}

function writeBytes(writes: readonly RdmaWrite[]): number {
  let bytes = 0;
  for (const write of writes) bytes += write.target.length;
  return bytes;
}
