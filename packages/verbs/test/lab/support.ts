/**
 * Shared by the lab tests and their peer processes (run by `node` directly,
 * so: erasable TypeScript only, `.ts` imports). Builds on the package's
 * built output, exactly what a consumer gets.
 *
 * The echo protocol (Send/Receive, one message in flight per connection):
 * - the server's accept private data advertises its RDMA region:
 *   address u64 BE, rkey u32 BE, length u32 BE (16 bytes); the region is
 *   pre-filled with `pattern(REGION_SEED, length)`;
 * - a message starting with 'E' comes back unchanged (same length);
 * - 'D' + offset u32 BE + length u32 BE comes back as 'D' + the SHA-256 of
 *   that range of the server's region.
 */
import { createHash } from 'node:crypto';
import {
  connect,
  listen,
  openDevice,
  type CmId,
  type Completion,
  type CompletionQueue,
  type Device,
  type Listener,
  type MemoryRegion,
  type ProtectionDomain,
  type QueuePair,
} from '../../dist/index.js';

export const LAB_DEVICE = process.env['RXE_LAB_DEVICE'] ?? 'rxe0';
export const LAB_ADDRESS = process.env['RXE_LAB_ADDR'] ?? '192.0.2.1';
/** Largest message either side sends or receives. */
export const MESSAGE_MAX = 1 << 20;
/** Receives the echo server keeps posted per connection. */
export const ECHO_RECEIVES = 4;
/** Size of the server's RDMA region. */
export const REGION_LENGTH = 1 << 20;
export const REGION_SEED = 7;

/** Deterministic bytes: the same seed and length give the same buffer. */
export function pattern(seed: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Resolves completions by wrId; routes the rest to `unclaimed`. */
export class CompletionRouter {
  readonly #waiting = new Map<number, { resolve: (completion: Completion) => void }>();
  unclaimed: (completion: Completion) => void = () => {};
  readonly completionQueue: CompletionQueue;

  constructor(device: Device, depth: number, busyPollMicros = 0) {
    this.completionQueue = device.createCompletionQueue({
      depth,
      busyPollMicros,
      onCompletions: (completions) => {
        for (const completion of completions) this.#route(completion);
      },
    });
  }

  /** The completion of `wrId` (posted or about to be). */
  completion(wrId: number): Promise<Completion> {
    return new Promise((resolve) => this.#waiting.set(wrId, { resolve }));
  }

  #route(completion: Completion): void {
    const waiter = this.#waiting.get(completion.wrId);
    if (waiter === undefined) return this.unclaimed(completion);
    this.#waiting.delete(completion.wrId);
    waiter.resolve(completion);
  }
}

/** The device, a PD and helpers every peer needs. */
export function openLab(): { device: Device; protectionDomain: ProtectionDomain } {
  const device = openDevice(LAB_DEVICE);
  return { device, protectionDomain: device.allocateProtectionDomain() };
}

/** Closes a test's verbs objects, users before what they use (CM id, CQs, lists, regions, PD, device). */
export function closeAll(...objects: readonly { close(): void }[]): void {
  for (const object of objects) object.close();
}

/** One accepted echo connection and its resources. */
interface EchoConnection {
  cmId: CmId;
  router: CompletionRouter;
  receiveRegion: MemoryRegion<Buffer>;
  replyRegion: MemoryRegion<Buffer>;
  rdmaRegion: MemoryRegion<Buffer>;
}

export interface EchoServer {
  readonly listener: Listener;
  readonly port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Called when a connection ends (peer disconnect, flush error or kill). */
  onConnectionEnd: (reason: string) => void;
  close(): void;
}

/** Starts the echo server on `port` (0: any) in this process. */
export function startEchoServer(port: number, busyPollMicros = 0): EchoServer {
  const { device, protectionDomain } = openLab();
  const listener = listen({ address: LAB_ADDRESS, port });
  const connections = new Set<EchoConnection>();
  const server: EchoServer = {
    listener,
    port: listener.port,
    accepted: 0,
    onConnectionEnd: () => {},
    close() {
      listener.close();
      for (const connection of connections) endConnection(connection);
      protectionDomain.close();
      device.close();
    },
  };
  const endConnection = (connection: EchoConnection): void => {
    if (!connections.delete(connection)) return;
    connection.cmId.close();
    connection.router.completionQueue.close();
    for (const region of [connection.receiveRegion, connection.replyRegion, connection.rdmaRegion]) region.close();
  };
  listener.on('connection', ({ cmId }) => {
    const connection = acceptEcho(device, protectionDomain, cmId, busyPollMicros);
    connections.add(connection);
    server.accepted++;
    const end = (reason: string) => {
      if (!connections.has(connection)) return;
      endConnection(connection);
      server.onConnectionEnd(reason);
    };
    cmId.on('disconnected', (event) => end(event.type));
    connection.router.unclaimed = (completion) => {
      if (!completion.ok) end(completion.status);
      else serveEcho(connection, completion);
    };
  });
  return server;
}

function acceptEcho(device: Device, protectionDomain: ProtectionDomain, cmId: CmId, busyPollMicros: number): EchoConnection {
  const router = new CompletionRouter(device, 4 * ECHO_RECEIVES, busyPollMicros);
  const receiveRegion = protectionDomain.registerMemory(Buffer.alloc(ECHO_RECEIVES * MESSAGE_MAX));
  const replyRegion = protectionDomain.registerMemory(Buffer.alloc(64));
  const rdmaRegion = protectionDomain.registerMemory(pattern(REGION_SEED, REGION_LENGTH), { remoteRead: true, remoteWrite: true });
  const queuePair = cmId.createQueuePair({
    protectionDomain,
    sendCompletionQueue: router.completionQueue,
    recvCompletionQueue: router.completionQueue,
    maxSendWr: ECHO_RECEIVES + 1,
    maxRecvWr: ECHO_RECEIVES,
  });
  for (let slot = 0; slot < ECHO_RECEIVES; slot++) queuePair.postRecv(slot, [receiveRegion.sge(slot * MESSAGE_MAX, MESSAGE_MAX)]);
  const advertisement = Buffer.alloc(16);
  advertisement.writeBigUInt64BE(BigInt(rdmaRegion.address), 0);
  advertisement.writeUInt32BE(rdmaRegion.rkey, 8);
  advertisement.writeUInt32BE(rdmaRegion.length, 12);
  void cmId.accept({ privateData: advertisement }).catch(() => {});
  return { cmId, router, receiveRegion, replyRegion, rdmaRegion };
}

/** Receive slot `s` is echoed from where it landed; its Send's wrId is
 *  1000 + s, and the Receive is reposted when that Send completes. */
function serveEcho(connection: EchoConnection, completion: Completion): void {
  const queuePair = connection.cmId.queuePair!;
  if (completion.opcode === 'IBV_WC_SEND') {
    if (completion.wrId >= 1000) {
      const slot = completion.wrId - 1000;
      queuePair.postRecv(slot, [connection.receiveRegion.sge(slot * MESSAGE_MAX, MESSAGE_MAX)]);
    }
    return;
  }
  const slot = completion.wrId;
  const start = slot * MESSAGE_MAX;
  const message = connection.receiveRegion.buffer.subarray(start, start + completion.byteLength);
  if (message[0] === 0x44 /* 'D' */ && message.length === 9) {
    const offset = message.readUInt32BE(1);
    const length = message.readUInt32BE(5);
    const reply = connection.replyRegion.buffer;
    reply[0] = 0x44;
    sha256(connection.rdmaRegion.buffer.subarray(offset, offset + length)).copy(reply, 1);
    queuePair.postSend({ wrId: 2000, sges: [connection.replyRegion.sge(0, 33)] });
    queuePair.postRecv(slot, [connection.receiveRegion.sge(start, MESSAGE_MAX)]);
    return;
  }
  queuePair.postSend({ wrId: 1000 + slot, sges: [connection.receiveRegion.sge(start, completion.byteLength)] });
}

/** The client side of the echo protocol. */
export class EchoClient {
  readonly cmId: CmId;
  readonly router: CompletionRouter;
  readonly queuePair: QueuePair;
  readonly sendRegion: MemoryRegion<Buffer>;
  readonly receiveRegion: MemoryRegion<Buffer>;
  readonly remote: { address: bigint; rkey: number; length: number };
  #nextWrId = 1;

  private constructor(cmId: CmId, router: CompletionRouter, sendRegion: MemoryRegion<Buffer>, receiveRegion: MemoryRegion<Buffer>) {
    this.cmId = cmId;
    this.router = router;
    this.queuePair = cmId.queuePair!;
    this.sendRegion = sendRegion;
    this.receiveRegion = receiveRegion;
    const advertisement = cmId.peerPrivateData;
    this.remote = {
      address: advertisement.readBigUInt64BE(0),
      rkey: advertisement.readUInt32BE(8),
      length: advertisement.readUInt32BE(12),
    };
  }

  static async connect(device: Device, protectionDomain: ProtectionDomain, port: number, busyPollMicros = 0): Promise<EchoClient> {
    const router = new CompletionRouter(device, 16, busyPollMicros);
    const sendRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_MAX));
    const receiveRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_MAX));
    const cmId = await connect({
      address: LAB_ADDRESS,
      port,
      createQueuePair: (id) =>
        id.createQueuePair({ protectionDomain, sendCompletionQueue: router.completionQueue, recvCompletionQueue: router.completionQueue, maxSendWr: 8, maxRecvWr: 4 }),
    });
    return new EchoClient(cmId, router, sendRegion, receiveRegion);
  }

  #wrId(): number {
    return this.#nextWrId++;
  }

  /** Sends `message` (first byte 'E' or 'D') and resolves with the reply. */
  async request(message: Uint8Array): Promise<Buffer> {
    const receiveId = this.#wrId();
    const sendId = this.#wrId();
    const received = this.router.completion(receiveId);
    const sent = this.router.completion(sendId);
    this.queuePair.postRecv(receiveId, [this.receiveRegion.sge()]);
    this.sendRegion.buffer.set(message);
    this.queuePair.postSend({ wrId: sendId, sges: [this.sendRegion.sge(0, message.length)] });
    const [sendCompletion, receiveCompletion] = await Promise.all([sent, received]);
    assertOk(sendCompletion);
    assertOk(receiveCompletion);
    return this.receiveRegion.buffer.subarray(0, receiveCompletion.byteLength);
  }

  /** SHA-256 of a range of the server's region, computed by the server. */
  async remoteDigest(offset: number, length: number): Promise<Buffer> {
    const message = Buffer.alloc(9);
    message[0] = 0x44;
    message.writeUInt32BE(offset, 1);
    message.writeUInt32BE(length, 5);
    const reply = await this.request(message);
    return Buffer.from(reply.subarray(1, 33));
  }

  /** RDMA Write `length` bytes of the send region to the server's region at `remoteOffset`. */
  async write(localOffset: number, length: number, remoteOffset: number): Promise<Completion> {
    const wrId = this.#wrId();
    const done = this.router.completion(wrId);
    this.queuePair.postRdmaWrite({ wrId, sges: [this.sendRegion.sge(localOffset, length)], remoteAddress: this.remote.address + BigInt(remoteOffset), rkey: this.remote.rkey });
    return done;
  }

  /** RDMA Read `length` bytes of the server's region at `remoteOffset` into the receive region. */
  async read(remoteOffset: number, length: number, localOffset: number): Promise<Completion> {
    const wrId = this.#wrId();
    const done = this.router.completion(wrId);
    this.queuePair.postRdmaRead({ wrId, sges: [this.receiveRegion.sge(localOffset, length)], remoteAddress: this.remote.address + BigInt(remoteOffset), rkey: this.remote.rkey });
    return done;
  }

  close(): void {
    this.cmId.close();
    this.router.completionQueue.close();
    this.sendRegion.close();
    this.receiveRegion.close();
  }
}

export function assertOk(completion: Completion): void {
  if (!completion.ok) throw new Error(`completion ${completion.wrId} (${completion.opcode}) failed: ${completion.status}`);
}
