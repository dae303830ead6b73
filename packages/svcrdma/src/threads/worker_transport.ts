/**
 * WorkerTransport: one worker thread's view of a native service transport —
 * the svc_recv steps after `take`: receive one RPC, let other workers take the
 * transport (svc_xprt_received), process, reply, release (the drain).
 *
 * Life: created by a worker the first time it takes the transport, dropped when
 * the main thread says the transport was torn down (or a native call finds it
 * gone). Worker thread only. The Receive slots and the send contexts' buffers
 * are the transport's registered memory, seen here as external ArrayBuffers:
 * a call's bytes are read in place from its slot, which stays held until the
 * release; the reply is encoded straight into a send context's buffer.
 *
 * What runs here: inline calls (RDMA_MSG without chunks) and inline replies
 * (RDMA_MSG), transport-header rejections (RDMA_ERROR or a drop). A call that
 * carries a Read list (a long call or a data-item chunk), and a reply that
 * needs RDMA Writes (Write chunks or the Reply chunk) are answered RDMA_ERROR /
 * ERR_CHUNK and counted in `unsupportedChunks`: the worker threads cannot post
 * RDMA Reads or Writes yet (see the README).
 */
import { HeaderRejection, RejectAnswer } from '../errors.js';
import type { CallTransportHeader } from '../header/chunks.js';
import { decodeCallHeader } from '../header/decode.js';
import { encodeErrorHeader, encodeReplyHeader } from '../header/encode.js';
import { grantCredits } from '../reply/credits.js';
import { planReply, type ReplyPlan } from '../reply/plan.js';
import type { CallHandler, RdmaCallContext } from '../transport/transport.js';
import { nativeService, RECEIVE_SLOT_FACTOR, NATIVE_WAIT_MAX_MS } from './native_service.js';
import type { WorkerCounterRow } from './worker_metrics.js';

const callContext: RdmaCallContext = { transport: 'rdma' };

export class WorkerTransport {
  private readonly receiveArea: Uint8Array;
  private readonly sendArea: Uint8Array;
  private readonly slotBytes: number;
  private readonly contextBytes: number;
  private readonly credits: number;

  constructor(
    readonly id: number,
    private readonly queueId: number,
    private readonly seat: number,
    private readonly handler: CallHandler,
    private readonly counters: WorkerCounterRow,
  ) {
    const buffers = nativeService.serviceTransportBuffers(id);
    this.receiveArea = new Uint8Array(buffers.receive);
    this.sendArea = new Uint8Array(buffers.send);
    this.slotBytes = buffers.slotBytes;
    // The context buffer is sized to the client's receive size: our largest Send.
    this.contextBytes = buffers.contextBytes;
    this.credits = buffers.credits;
  }

  /** The worker took this transport (it owns BUSY): one RPC, or only a release. */
  async serveOne(): Promise<void> {
    const received = nativeService.serviceTransportNextReceive(this.id, this.seat);
    // The receive step is over: another worker may take the next call now.
    nativeService.serviceQueueReceived(this.queueId, this.seat, this.id);
    try {
      if (received >= 0) await this.process(Math.floor(received / RECEIVE_SLOT_FACTOR), received % RECEIVE_SLOT_FACTOR);
    } catch (error) {
      this.counters.add('failures');
      nativeService.serviceTransportClose(this.id);
      throw error;
    } finally {
      nativeService.serviceTransportRelease(this.id, this.seat);
    }
  }

  private async process(slot: number, byteLength: number): Promise<void> {
    this.counters.add('calls');
    const start = slot * this.slotBytes;
    const message = this.receiveArea.subarray(start, start + byteLength);
    let header: CallTransportHeader;
    try {
      header = decodeCallHeader(message);
    } catch (error) {
      if (!(error instanceof HeaderRejection)) throw error;
      return this.answerRejection(error);
    }
    if (header.callChunk !== null || header.readChunks.length > 0) return this.refuseChunks(header);
    const reply = await this.handler.handleCall(message.subarray(header.headerBytes), callContext);
    if (reply === null) return;
    const plan = planReply({
      xid: header.xid,
      credits: grantCredits(header.credits, this.credits),
      body: reply.message,
      writeList: header.writeList,
      replyChunk: header.replyChunk,
      sendLimitBytes: this.contextBytes,
    });
    if (plan.kind === 'error' || plan.writes.length > 0) return this.refuseChunks(header);
    this.sendInline(plan);
  }

  private sendInline(plan: Exclude<ReplyPlan, { kind: 'error' }>): void {
    const context = this.getSendContext();
    if (context === null) return;
    const buffer = this.contextBuffer(context);
    let length = encodeReplyHeader(plan.header, buffer).length;
    for (const part of plan.sendParts) {
      buffer.set(part, length);
      length += part.length;
    }
    this.post(context, length, 'inlineReplies');
  }

  /** RDMA Read/Write chunks are not served on worker threads yet: ERR_CHUNK, counted. */
  private refuseChunks(header: CallTransportHeader): void {
    this.counters.add('unsupportedChunks');
    this.sendError(header.xid, header.credits, RejectAnswer.ERR_CHUNK);
  }

  private answerRejection(rejection: HeaderRejection): void {
    this.counters.add('rejected');
    if (rejection.answer === RejectAnswer.DISCONNECT) return nativeService.serviceTransportClose(this.id);
    if (rejection.answer === RejectAnswer.DROP || rejection.xid === null) return;
    // The call's credit request is unknown: grant what is posted, as Linux's sc_fc_credits does.
    this.sendError(rejection.xid, this.credits, rejection.answer);
  }

  private sendError(xid: number, requestedCredits: number, answer: RejectAnswer): void {
    const context = this.getSendContext();
    if (context === null) return;
    const length = encodeErrorHeader(xid, grantCredits(requestedCredits, this.credits), answer, this.contextBuffer(context)).length;
    this.post(context, length, 'errorReplies');
  }

  /** A send context (drain points empty-free-list and sq-wait are native), or null: the reply is dropped. */
  private getSendContext(): number | null {
    const context = nativeService.serviceTransportGetSendContext(this.id, this.seat, NATIVE_WAIT_MAX_MS);
    if (context >= 0) return context;
    this.counters.add('droppedReplies');
    return null;
  }

  private contextBuffer(context: number): Uint8Array {
    return this.sendArea.subarray(context * this.contextBytes, (context + 1) * this.contextBytes);
  }

  private post(context: number, length: number, counter: 'inlineReplies' | 'errorReplies'): void {
    if (nativeService.serviceTransportPostSend(this.id, this.seat, context, length)) this.counters.add(counter);
    else this.counters.add('droppedReplies');
  }
}
