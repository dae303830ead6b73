/**
 * RdmaRpcClient: an RPC-over-RDMA requester for tests and benchmarks: calls
 * ONC RPC procedures inline (RDMA_MSG) over one connection and honours the
 * server's credit grant.
 *
 * Life: `RdmaRpcClient.connect()` opens the device, registers `slots` send and
 * receive buffers, posts the Receives and connects with RFC 8797 private data;
 * the caller owns it and ends it with close(). Main thread.
 *
 * Flow control (RFC 8166 §3.3.1): until the first reply the client assumes one
 * credit; afterwards at most the last granted number of calls are in flight.
 * Calls beyond it wait in a bounded queue, in order.
 */
import { XdrReader, XdrWriter, type XdrCodec } from '@roce-rpc/xdr';
import { authNone, readReplyBody, writeCallHeader, MessageType, type OpaqueAuth } from '@roce-rpc/oncrpc';
import {
  connect,
  openDevice,
  type CmId,
  type Completion,
  type CompletionQueue,
  type Device,
  type MemoryRegion,
  type ProtectionDomain,
  type QueuePair,
} from '@roce-rpc/verbs';
import { decodeReplyHeader } from '../header/decode_reply.js';
import { encodeCallHeader } from '../header/encode.js';
import { defaultConnectPrivateData, encodeConnectPrivateData } from '../header/private_data.js';
import { DEFAULT_PORT, DEFAULT_RECEIVE_INLINE_BYTES, RdmaProcedure, RdmaErrorCode } from '../protocol.js';
import { SvcRdmaError, SvcRdmaErrorCode } from '../errors.js';
import { EventLoopPoller } from '../transport/completion_poller.js';

export interface RdmaRpcClientOptions {
  address: string;
  port?: number;
  /** Calls the client can have in flight (buffers registered, credits requested). Default 32. */
  slots?: number;
  /** Bytes of each send and receive buffer. Default 4096. */
  inlineBytes?: number;
  /** Per call. Default 10 000. */
  timeoutMs?: number;
  credential?: OpaqueAuth;
  /** The completion thread keeps polling this long after a completion. Default 0. */
  busyPollMicros?: number;
  /**
   * 'polled' (default): a notified CQ whose completions the event loop takes, woken once per burst
   * and then every loop turn while it lasts (EventLoopPoller.watch, as the server); 'threaded': a
   * completion thread hands each batch to a callback.
   */
  completions?: 'threaded' | 'polled';
  /**
   * 'polled': after a wake the event loop keeps taking completions every turn until this long
   * passes without one (EventLoopPoller's burst window). Default 20; 0..1000.
   */
  burstWindowMs?: number;
}

/** Longest burst window a client may ask for (its event loop spins meanwhile). */
const BURST_WINDOW_MS_MAX = 1000;

interface PendingCall {
  readonly xid: number;
  readonly message: Buffer;
  readonly result: XdrCodec<unknown>;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | null;
}

/** Calls allowed to wait for a credit before call() refuses more. */
const QUEUED_CALLS_MAX = 4096;

export class RdmaRpcClient {
  readonly metrics = { calls: 0, replies: 0, rdmaErrors: 0, badReplies: 0, creditWaits: 0 };
  /** Credits granted by the server's last reply (1 until then). */
  credits = 1;
  private readonly pending = new Map<number, PendingCall>();
  private readonly queued: PendingCall[] = [];
  private readonly freeSendSlots: number[] = [];
  private nextXid = (Math.random() * 0x1_0000_0000) >>> 0;
  private closed = false;

  private constructor(
    private readonly cmId: CmId,
    private readonly resources: ClientResources,
    private readonly options: Required<Omit<RdmaRpcClientOptions, 'port'>>,
  ) {
    for (let slot = options.slots - 1; slot >= 0; slot--) this.freeSendSlots.push(slot);
    resources.onSend = (completion) => this.onSendCompletion(completion);
    resources.onReceive = (completion) => this.onReceiveCompletion(completion);
    cmId.on('disconnected', () => this.failAll(new SvcRdmaError(SvcRdmaErrorCode.DISCONNECTED, 'connection closed')));
  }

  static async connect(options: RdmaRpcClientOptions): Promise<RdmaRpcClient> {
    const filled = {
      address: options.address,
      slots: options.slots ?? 32,
      inlineBytes: options.inlineBytes ?? DEFAULT_RECEIVE_INLINE_BYTES,
      timeoutMs: options.timeoutMs ?? 10_000,
      credential: options.credential ?? authNone,
      busyPollMicros: options.busyPollMicros ?? 0,
      completions: options.completions ?? 'polled',
      burstWindowMs: options.burstWindowMs ?? 20,
    };
    if (!Number.isInteger(filled.burstWindowMs) || filled.burstWindowMs < 0 || filled.burstWindowMs > BURST_WINDOW_MS_MAX) {
      throw new SvcRdmaError(SvcRdmaErrorCode.BAD_OPTION, `burstWindowMs must be an integer in [0, ${BURST_WINDOW_MS_MAX}], got ${filled.burstWindowMs}`);
    }
    let resources: ClientResources | undefined;
    const inline = filled.inlineBytes;
    const cmId = await connect({
      address: filled.address,
      port: options.port ?? DEFAULT_PORT,
      privateData: encodeConnectPrivateData({ sendBytes: inline, receiveBytes: inline, remoteInvalidate: false }),
      createQueuePair: (id) => {
        resources = new ClientResources(id, filled.slots, inline, filled.busyPollMicros, filled.completions === 'polled', filled.burstWindowMs);
        return resources.queuePair;
      },
    });
    return new RdmaRpcClient(cmId, resources!, filled);
  }

  /**
   * The server's receive size. verbs' connect() does not hand us the accept's
   * private data yet, so this is the RFC 8166 default: calls stay within 1 KiB.
   */
  readonly peerReceiveBytes = defaultConnectPrivateData.receiveBytes;

  /** Calls a procedure; resolves with its decoded result, rejects with OncRpcError / SvcRdmaError. */
  call<Argument, Result>(
    program: number,
    version: number,
    procedure: number,
    argumentCodec: XdrCodec<Argument>,
    argument: Argument,
    resultCodec: XdrCodec<Result>,
  ): Promise<Result> {
    if (this.closed) return Promise.reject(new SvcRdmaError(SvcRdmaErrorCode.DISCONNECTED, 'client closed'));
    if (this.queued.length >= QUEUED_CALLS_MAX) {
      return Promise.reject(new SvcRdmaError(SvcRdmaErrorCode.BAD_OPTION, `more than ${QUEUED_CALLS_MAX} calls waiting for credits`));
    }
    const xid = (this.nextXid = (this.nextXid + 1) >>> 0);
    const message = this.encodeCall(xid, program, version, procedure, argumentCodec, argument);
    this.metrics.calls++;
    return new Promise<Result>((resolve, reject) => {
      const call: PendingCall = { xid, message, result: resultCodec as XdrCodec<unknown>, resolve: resolve as (value: unknown) => void, reject, timer: null };
      call.timer = setTimeout(() => this.expire(call), this.options.timeoutMs);
      this.queued.push(call);
      this.sendQueued();
    });
  }

  private encodeCall<Argument>(xid: number, program: number, version: number, procedure: number, codec: XdrCodec<Argument>, argument: Argument): Buffer {
    const writer = new XdrWriter({ bulkThresholdBytes: Number.MAX_SAFE_INTEGER });
    writeCallHeader(writer, { xid, program, version, procedure, credential: this.options.credential, verifier: authNone });
    codec.encode(writer, argument);
    const header = encodeCallHeader({
      xid,
      credits: this.options.slots,
      procedure: RdmaProcedure.MSG,
      callChunk: null,
      readChunks: [],
      writeList: [],
      replyChunk: null,
    });
    const message = Buffer.concat([header, writer.finish().toBuffer()]);
    if (message.length > Math.min(this.options.inlineBytes, this.peerReceiveBytes)) {
      throw new SvcRdmaError(SvcRdmaErrorCode.REPLY_TOO_LARGE, `a ${message.length}-byte call does not fit inline (long calls are not supported yet)`);
    }
    return message;
  }

  private sendQueued(): void {
    while (this.queued.length > 0 && this.pending.size < this.credits && this.freeSendSlots.length > 0) {
      const call = this.queued.shift()!;
      const slot = this.freeSendSlots.pop()!;
      this.pending.set(call.xid, call);
      this.resources.send(slot, call.message);
    }
    if (this.queued.length > 0) this.metrics.creditWaits++;
  }

  private onSendCompletion(completion: Completion): void {
    this.freeSendSlots.push(completion.wrId);
    if (!completion.ok) this.failAll(new SvcRdmaError(SvcRdmaErrorCode.DISCONNECTED, `send failed: ${completion.status}`));
    else this.sendQueued();
  }

  private onReceiveCompletion(completion: Completion): void {
    if (!completion.ok) return; // flushed at disconnect
    const bytes = this.resources.receiveView(completion.wrId, completion.byteLength);
    try {
      this.deliver(bytes);
    } finally {
      if (!this.closed) this.resources.postReceive(completion.wrId);
      this.sendQueued();
    }
  }

  private deliver(bytes: Buffer): void {
    let header;
    try {
      header = decodeReplyHeader(bytes);
    } catch {
      this.metrics.badReplies++;
      return;
    }
    const call = this.pending.get(header.xid);
    this.credits = Math.max(1, Math.min(header.credits, this.options.slots));
    if (call === undefined) {
      this.metrics.badReplies++;
      return;
    }
    this.settle(call);
    if (header.kind === 'error') {
      this.metrics.rdmaErrors++;
      const what = header.errorCode === RdmaErrorCode.VERS ? 'ERR_VERS' : 'ERR_CHUNK';
      call.reject(new SvcRdmaError(SvcRdmaErrorCode.RDMA_ERROR, `server answered RDMA_ERROR ${what}`));
      return;
    }
    this.metrics.replies++;
    try {
      const reader = new XdrReader(bytes, { offset: header.headerBytes });
      const xid = reader.readUint();
      if (reader.readUint() !== MessageType.REPLY) throw new SvcRdmaError(SvcRdmaErrorCode.BAD_HEADER, 'not an RPC reply');
      readReplyBody(reader, xid);
      call.resolve(call.result.decode(reader));
    } catch (error) {
      call.reject(error as Error);
    }
  }

  private settle(call: PendingCall): void {
    this.pending.delete(call.xid);
    if (call.timer !== null) clearTimeout(call.timer);
  }

  private expire(call: PendingCall): void {
    const index = this.queued.indexOf(call);
    if (index >= 0) this.queued.splice(index, 1);
    this.settle(call);
    call.reject(new SvcRdmaError(SvcRdmaErrorCode.TIMEOUT, `call ${call.xid} timed out`));
  }

  private failAll(error: SvcRdmaError): void {
    for (const call of [...this.pending.values(), ...this.queued.splice(0)]) {
      this.settle(call);
      call.reject(error);
    }
  }

  /** Disconnects and releases every resource. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.cmId.established) {
      const disconnected = new Promise((resolve) => this.cmId.once('disconnected', resolve));
      this.cmId.disconnect();
      await disconnected;
    }
    this.failAll(new SvcRdmaError(SvcRdmaErrorCode.DISCONNECTED, 'client closed'));
    this.resources.queuePair.close();
    this.cmId.close();
    this.resources.close();
  }
}

/**
 * The client's verbs objects: device, PD, one CQ for both directions, the QP
 * and `slots` send and receive buffers in two registered regions.
 */
class ClientResources {
  readonly device: Device;
  readonly protectionDomain: ProtectionDomain;
  readonly completions: CompletionQueue;
  readonly queuePair: QueuePair;
  private readonly sendBuffer: Buffer;
  private readonly receiveBuffer: Buffer;
  private readonly sendRegion: MemoryRegion;
  private readonly receiveRegion: MemoryRegion;
  onSend: (completion: Completion) => void = () => {};
  private readonly poller: EventLoopPoller;
  onReceive: (completion: Completion) => void = () => {};

  constructor(
    cmId: CmId,
    readonly slots: number,
    readonly slotBytes: number,
    busyPollMicros: number,
    polled: boolean,
    burstWindowMs: number,
  ) {
    this.poller = new EventLoopPoller(burstWindowMs);
    this.device = openDevice(cmId.deviceName);
    this.protectionDomain = this.device.allocateProtectionDomain();
    const route = (completion: Completion) => {
      // A flushed completion's opcode is undefined: the wrId tells the direction.
      if (completion.wrId >= RECEIVE_WR_BASE) this.onReceive({ ...completion, wrId: completion.wrId - RECEIVE_WR_BASE });
      else this.onSend(completion);
    };
    if (polled) {
      this.completions = this.poller.watch(this.device, { depth: slots * 2, busyPollMicros }, route).completionQueue;
    } else {
      this.completions = this.device.createCompletionQueue({
        depth: slots * 2,
        busyPollMicros,
        onCompletions: (completions) => completions.forEach(route),
      });
    }
    this.queuePair = cmId.createQueuePair({
      protectionDomain: this.protectionDomain,
      sendCompletionQueue: this.completions,
      recvCompletionQueue: this.completions,
      maxSendWr: slots,
      maxRecvWr: slots,
    });
    this.sendBuffer = Buffer.alloc(slots * slotBytes);
    this.receiveBuffer = Buffer.alloc(slots * slotBytes);
    this.sendRegion = this.protectionDomain.registerMemory(this.sendBuffer);
    this.receiveRegion = this.protectionDomain.registerMemory(this.receiveBuffer);
    for (let slot = 0; slot < slots; slot++) this.postReceive(slot);
  }

  send(slot: number, message: Buffer): void {
    message.copy(this.sendBuffer, slot * this.slotBytes);
    this.queuePair.postSendOne(slot, this.sendRegion, slot * this.slotBytes, message.length);
  }

  postReceive(slot: number): void {
    this.queuePair.postRecvOne(RECEIVE_WR_BASE + slot, this.receiveRegion, slot * this.slotBytes, this.slotBytes);
  }

  receiveView(slot: number, byteLength: number): Buffer {
    return this.receiveBuffer.subarray(slot * this.slotBytes, slot * this.slotBytes + byteLength);
  }

  close(): void {
    this.poller.close();
    this.sendRegion.close();
    this.receiveRegion.close();
    this.completions.close();
    this.protectionDomain.close();
    this.device.close();
  }
}

/** Receive wrIds start here so one CQ can tell them from Send wrIds even when flushed. */
const RECEIVE_WR_BASE = 1 << 20;
