/**
 * BarePeer: an RPC-over-RDMA requester made of bare verbs, for fault tests
 * that need to misbehave at the verbs level — post more Sends than its
 * credits, offer chunks with handles it never registered, vanish. One QP, one polled CQ, a send area of SEND_SLOTS slots (each Send
 * keeps its bytes until it completes), Receives for REPLY_SLOTS replies, and a
 * 1 MiB `sink` the server may RDMA Write (Write chunks) and Read (Read chunks).
 *
 * Life: `BarePeer.connect()` creates and owns every verbs object; close()
 * (orderly) or destroyQueuePair() + close() (abrupt) ends it. Main thread.
 */
import { connect, openDevice, type CmId, type Completion, type CompletionQueue, type Device, type MemoryRegion, type ProtectionDomain, type QueuePair } from '@roce-rpc/verbs';
import { encodeConnectPrivateData } from '../../dist/index.js';

const INLINE_BYTES = 4096;
/** Calls a peer may have posted at once: three times the largest grant the fault tests use. */
export const SEND_SLOTS = 64;
const REPLY_SLOTS = SEND_SLOTS;
const COMPLETION_DEPTH = 4 * SEND_SLOTS;
const SEND_WR_BASE = 1_000_000;

export interface BarePeerOptions {
  address: string;
  port: number;
  /** False: no Receive is posted until `postReceives()`, so the server's Sends wait in RNR retries (default true). */
  receivesAtConnect?: boolean;
}

export class BarePeer {
  /** Completions polled so far, by status. */
  readonly statuses = new Map<string, number>();
  readonly replies: Buffer[] = [];
  /** Set when the server disconnected us (its DREQ arrived). */
  disconnected = false;
  private nextSendSlot = 0;
  private readonly device: Device;
  private readonly protectionDomain: ProtectionDomain;
  private readonly completions: CompletionQueue;
  private readonly sendArea: MemoryRegion<Buffer>;
  private readonly receiveArea: MemoryRegion<Buffer>;
  readonly sink: MemoryRegion<Buffer>;

  private constructor(
    readonly cmId: CmId,
    parts: { device: Device; protectionDomain: ProtectionDomain; completions: CompletionQueue; sendArea: MemoryRegion<Buffer>; receiveArea: MemoryRegion<Buffer>; sink: MemoryRegion<Buffer> },
  ) {
    this.device = parts.device;
    this.protectionDomain = parts.protectionDomain;
    this.completions = parts.completions;
    this.sendArea = parts.sendArea;
    this.receiveArea = parts.receiveArea;
    this.sink = parts.sink;
    cmId.once('disconnected', () => (this.disconnected = true));
  }

  static async connect(options: BarePeerOptions): Promise<BarePeer> {
    let parts: ConstructorParameters<typeof BarePeer>[1] | undefined;
    const cmId = await connect({
      address: options.address,
      port: options.port,
      privateData: encodeConnectPrivateData({ sendBytes: INLINE_BYTES, receiveBytes: INLINE_BYTES, remoteInvalidate: false }),
      createQueuePair: (id) => {
        const device = openDevice(id.deviceName);
        const protectionDomain = device.allocateProtectionDomain();
        const completions = device.createCompletionQueue({ depth: COMPLETION_DEPTH });
        const queuePair = id.createQueuePair({ protectionDomain, sendCompletionQueue: completions, recvCompletionQueue: completions, maxSendWr: SEND_SLOTS, maxRecvWr: REPLY_SLOTS });
        const receiveArea = protectionDomain.registerMemory(Buffer.alloc(REPLY_SLOTS * INLINE_BYTES));
        if (options.receivesAtConnect ?? true) postReceives(queuePair, receiveArea);
        const sendArea = protectionDomain.registerMemory(Buffer.alloc(SEND_SLOTS * INLINE_BYTES));
        const sink = protectionDomain.registerMemory(Buffer.alloc(1 << 20), { remoteWrite: true, remoteRead: true });
        parts = { device, protectionDomain, completions, sendArea, receiveArea, sink };
        return queuePair;
      },
    });
    return new BarePeer(cmId, parts!);
  }

  /** Posts a Receive in every reply slot (a peer connected with `receivesAtConnect: false`). */
  postReceives(): void {
    postReceives(this.cmId.queuePair!, this.receiveArea);
  }

  /** Posts `message` as one Send in the next slot, without waiting. */
  send(message: Buffer): void {
    const slot = this.nextSendSlot++ % SEND_SLOTS;
    message.copy(this.sendArea.buffer, slot * INLINE_BYTES);
    this.cmId.queuePair!.postSendOne(SEND_WR_BASE + slot, this.sendArea, slot * INLINE_BYTES, message.length);
  }

  /**
   * Polls until `done()` or the time is up, every 2 ms (a peer spinning here
   * starves rxe's retry timers in the emulated guest), keeping each reply and
   * counting every completion's status.
   */
  async pollUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!done() && performance.now() < deadline) {
      for (const completion of this.completions.poll(16, 0)) this.take(completion);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return done();
  }

  count(status: string): number {
    return this.statuses.get(status) ?? 0;
  }

  private take(completion: Completion): void {
    this.statuses.set(completion.status, this.count(completion.status) + 1);
    if (completion.ok && completion.wrId < SEND_WR_BASE) {
      const slot = completion.wrId;
      this.replies.push(Buffer.from(this.receiveArea.buffer.subarray(slot * INLINE_BYTES, slot * INLINE_BYTES + completion.byteLength)));
      this.cmId.queuePair!.postRecvOne(slot, this.receiveArea, slot * INLINE_BYTES, INLINE_BYTES);
    }
  }

  /** Destroys the id (and the QP, if still there) without a disconnect, then every other object. */
  close(): void {
    this.cmId.close();
    for (const closable of [this.sendArea, this.receiveArea, this.sink, this.completions, this.protectionDomain, this.device]) closable.close();
  }
}

function postReceives(queuePair: QueuePair, receiveArea: MemoryRegion<Buffer>): void {
  for (let slot = 0; slot < REPLY_SLOTS; slot++) queuePair.postRecvOne(slot, receiveArea, slot * INLINE_BYTES, INLINE_BYTES);
}
