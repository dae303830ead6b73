/**
 * Inside the rxe lab: a bare verbs peer speaks RPC-over-RDMA to our server byte
 * by byte — a DDP-eligible result pushed into the peer's memory with RDMA
 * Write, hostile transport headers answered with RDMA_ERROR on the wire — and a
 * stream of connections that come and go while another client keeps calling.
 */
import { Dispatcher, defineProcedure, readReplyBody, writeCallHeader, authNone } from '@roce-rpc/oncrpc';
import { connect, openDevice, type CmId, type Completion, type CompletionQueue, type Device, type MemoryRegion, type ProtectionDomain } from '@roce-rpc/verbs';
import { XdrReader, XdrWriter, xdrUint, xdrVariableOpaque, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReplyHeader, encodeCallHeader, encodeConnectPrivateData, RdmaProcedure, RdmaRpcClient, SvcRdmaServer } from '../../src/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PORT = 20053;
const PROGRAM = 0x2000_0103;
/** Peers that vanish without a disconnect in one run; the issue asks for 1 000 (SVCRDMA_ABRUPT_ROUNDS=1000). */
const ABRUPT_ROUNDS = Number(process.env.SVCRDMA_ABRUPT_ROUNDS ?? 100);

function pattern(count: number): Buffer {
  const data = Buffer.alloc(count);
  for (let index = 0; index < count; index++) data[index] = (index * 31 + 7) & 0xff;
  return data;
}

const dispatcher = new Dispatcher().addVersion(
  PROGRAM,
  {
    name: 'WIRE',
    version: 1,
    procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid), defineProcedure('READ', 1, xdrUint, xdrVariableOpaque(1 << 20, true), { argument: false, result: true }),
      defineProcedure('CHECK', 2, xdrVariableOpaque(1 << 20, true), xdrUint, { argument: true, result: false }),
      defineProcedure('BIG', 3, xdrUint, xdrVariableOpaque(1 << 20)),
      defineProcedure('SLOW', 4, xdrUint, xdrUint),
    ],
  },
  {
    READ: (count: number) => pattern(count),
    CHECK: (data: Uint8Array) => (Buffer.from(data).equals(pattern(data.length)) ? data.length : 0),
    BIG: (count: number) => pattern(count),
    SLOW: async (milliseconds: number) => {
      await new Promise((resolve) => setTimeout(resolve, milliseconds));
      return milliseconds;
    },
  },
);

/** A requester built from bare verbs: one QP, a polled CQ, send/receive buffers and a Write sink. */
class BarePeer {
  private constructor(
    readonly cmId: CmId,
    readonly device: Device,
    readonly pd: ProtectionDomain,
    readonly cq: CompletionQueue,
    readonly send: MemoryRegion<Buffer>,
    readonly receive: MemoryRegion<Buffer>,
    readonly sink: MemoryRegion<Buffer>,
    readonly source: MemoryRegion<Buffer>,
  ) {}

  static async connect(): Promise<BarePeer> {
    let parts: Omit<ConstructorParameters<typeof BarePeer>, 0> | undefined;
    const cmId = await connect({
      address,
      port: PORT,
      privateData: encodeConnectPrivateData({ sendBytes: 4096, receiveBytes: 4096, remoteInvalidate: false }),
      createQueuePair: (id) => {
        const device = openDevice(id.deviceName);
        const pd = device.allocateProtectionDomain();
        const cq = device.createCompletionQueue({ depth: 64 });
        const queuePair = id.createQueuePair({ protectionDomain: pd, sendCompletionQueue: cq, recvCompletionQueue: cq });
        const receive = pd.registerMemory(Buffer.alloc(4096));
        queuePair.postRecvOne(1, receive, 0, 4096);
        parts = [
          device,
          pd,
          cq,
          pd.registerMemory(Buffer.alloc(4096)),
          receive,
          pd.registerMemory(Buffer.alloc(65536), { remoteWrite: true }),
          pd.registerMemory(Buffer.alloc(65536), { remoteRead: true }),
        ];
        return queuePair;
      },
    });
    return new BarePeer(cmId, ...parts!);
  }

  /** Posts `message` as one Send, without waiting for anything. */
  sendMessage(message: Buffer): void {
    message.copy(this.send.buffer);
    this.cmId.queuePair!.postSendOne(2, this.send, 0, message.length);
  }

  /** Sends `message`, returns the reply's bytes (the server's event loop runs meanwhile). */
  async exchange(message: Buffer): Promise<Buffer> {
    this.sendMessage(message);
    const received = await this.next((completion) => completion.wrId === 1);
    const reply = Buffer.from(this.receive.buffer.subarray(0, received.byteLength));
    this.cmId.queuePair!.postRecvOne(1, this.receive, 0, 4096);
    return reply;
  }

  /**
   * Waits for `count` completions that match, skipping others, sleeping 2 ms
   * between polls: a peer spinning here starves rxe's RNR retry timers in the
   * emulated guest (observed: replies stop arriving).
   */
  async collect(match: (completion: Completion) => boolean, count: number, timeoutMs = 60_000): Promise<number> {
    let seen = 0;
    const deadline = performance.now() + timeoutMs;
    while (seen < count && performance.now() < deadline) {
      for (const completion of this.cq.poll(16, 0)) {
        expect(completion.status).toBe('IBV_WC_SUCCESS');
        if (match(completion)) seen++;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return seen;
  }

  private async next(match: (completion: Completion) => boolean): Promise<Completion> {
    for (let turn = 0; turn < 200_000; turn++) {
      for (const completion of this.cq.poll(8, 0)) {
        expect(completion.status).toBe('IBV_WC_SUCCESS');
        if (match(completion)) return completion;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error('no reply');
  }

  async close(): Promise<void> {
    const disconnected = new Promise((resolve) => this.cmId.once('disconnected', resolve));
    this.cmId.disconnect();
    await disconnected;
    this.destroyConnection();
    this.releaseResources();
  }

  /** Closes the QP and the id without a disconnect: to the server the peer just goes. */
  destroyConnection(): void {
    this.cmId.queuePair!.close();
    this.cmId.close();
  }

  releaseResources(): void {
    for (const closable of [this.send, this.receive, this.sink, this.source, this.cq, this.pd, this.device]) closable.close();
  }
}

function rpcCall(xid: number, procedure: number, argument?: number): Buffer {
  const writer = new XdrWriter();
  writeCallHeader(writer, { xid, program: PROGRAM, version: 1, procedure, credential: authNone, verifier: authNone });
  if (argument !== undefined) writer.writeUint(argument);
  return writer.finish().toBuffer();
}

const words = (...values: number[]) => {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => bytes.writeUInt32BE(value >>> 0, index * 4));
  return bytes;
};

/**
 * A client calling NULL back to back from its own async loop while a test
 * churns other connections; stop() ends the loop, closes the client and returns
 * how many calls it completed.
 */
async function startSteadyClient(): Promise<{ stop(): Promise<number> }> {
  const client = await RdmaRpcClient.connect({ address, port: PORT });
  let calls = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await client.call(PROGRAM, 1, 0, xdrVoid, undefined, xdrVoid);
      calls++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.close();
      return calls;
    },
  };
}

let server: SvcRdmaServer;
let peer: BarePeer;

beforeAll(async () => {
  server = SvcRdmaServer.listen(dispatcher, { address, port: PORT, credits: 8 });
  peer = await BarePeer.connect();
});

afterAll(async () => {
  await peer?.close();
  await server?.close();
});

describe('RPC-over-RDMA on the wire, from a bare verbs peer', () => {
  it('pushes a 40 000-byte DDP result into the peer\'s Write chunk and sends the rest inline', async () => {
    const writeChunk = { length: 65536, segments: [{ handle: peer.sink.rkey, length: 65536, offset: BigInt(peer.sink.address) }] };
    const header = encodeCallHeader({ xid: 77, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [writeChunk], replyChunk: null });
    const reply = await peer.exchange(Buffer.concat([header, rpcCall(77, 1, 40_000)]));
    const transport = decodeReplyHeader(reply);
    expect(transport).toMatchObject({ kind: 'reply', xid: 77, procedure: RdmaProcedure.MSG });
    if (transport.kind !== 'reply') return;
    expect(transport.writeList[0]!.segments[0]).toMatchObject({ handle: peer.sink.rkey, length: 40_000 });
    expect(peer.sink.buffer.subarray(0, 40_000).equals(pattern(40_000))).toBe(true);
    // Inline: the RPC reply header and the opaque's length word; its data went by RDMA Write.
    const reader = new XdrReader(reply, { offset: transport.headerBytes });
    const xid = reader.readUint();
    expect(reader.readUint()).toBe(1);
    readReplyBody(reader, xid);
    expect(reader.readUint()).toBe(40_000);
    expect(reader.remaining).toBe(0);
  });

  it('pulls a 30 000-byte argument with RDMA Read from a data-item Read chunk, and a long call from a position-zero chunk', async () => {
    const data = pattern(30_000);
    data.copy(peer.source.buffer, 0);
    const at = (offset: number, length: number) => ({ handle: peer.source.rkey, length, offset: BigInt(peer.source.address + offset) });
    const inline = rpcCall(88, 2, 30_000); // header + the opaque's length word: the data goes by Read chunk
    const dataItem = { position: inline.length, length: 30_000, segments: [at(0, 16_384), at(16_384, 13_616)] };
    const header = encodeCallHeader({ xid: 88, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [dataItem], writeList: [], replyChunk: null });
    const reply = await peer.exchange(Buffer.concat([header, inline]));
    const transport = decodeReplyHeader(reply);
    expect(transport).toMatchObject({ kind: 'reply', xid: 88 });
    const reader = new XdrReader(reply, { offset: (transport as { headerBytes: number }).headerBytes });
    const xid = reader.readUint();
    expect(reader.readUint()).toBe(1); // REPLY
    readReplyBody(reader, xid);
    expect(reader.readUint()).toBe(30_000); // CHECK found every byte where it belongs

    const longCall = rpcCall(89, 0);
    longCall.copy(peer.source.buffer, 40_000);
    const callChunk = { position: 0, length: longCall.length, segments: [at(40_000, longCall.length)] };
    const nomsg = encodeCallHeader({ xid: 89, credits: 8, procedure: RdmaProcedure.NOMSG, callChunk, readChunks: [], writeList: [], replyChunk: null });
    expect(decodeReplyHeader(await peer.exchange(nomsg))).toMatchObject({ kind: 'reply', xid: 89 });
  });

  it('writes a reply longer than the peer\'s inline size into its Reply chunk (RDMA_NOMSG)', async () => {
    const replyChunk = { length: 16384, segments: [{ handle: peer.sink.rkey, length: 16384, offset: BigInt(peer.sink.address) }] };
    const header = encodeCallHeader({ xid: 90, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk });
    const reply = decodeReplyHeader(await peer.exchange(Buffer.concat([header, rpcCall(90, 3, 10_000)])));
    expect(reply).toMatchObject({ kind: 'reply', xid: 90, procedure: RdmaProcedure.NOMSG });
    if (reply.kind !== 'reply') return;
    const written = reply.replyChunk!.length;
    const reader = new XdrReader(peer.sink.buffer, { end: written });
    const xid = reader.readUint();
    expect(reader.readUint()).toBe(1);
    readReplyBody(reader, xid);
    expect(Buffer.from(reader.readVariableOpaque()).equals(pattern(10_000))).toBe(true);
    expect(reader.remaining).toBe(0);
  });

  it('answers every call of a client that sends three times its credits at once', async () => {
    const greedy = await BarePeer.connect();
    try {
      const calls = 3 * 8; // the server grants and posts 8 here; the rest wait in RNR retries
      for (let index = 0; index < calls - 1; index++) greedy.cmId.queuePair!.postRecvOne(100 + index, greedy.receive, 0, 4096);
      for (let index = 0; index < calls; index++) {
        const message = Buffer.concat([
          encodeCallHeader({ xid: 1000 + index, credits: 64, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk: null }),
          rpcCall(1000 + index, 0),
        ]);
        message.copy(greedy.send.buffer, index * 128); // each Send keeps its own bytes until it completes
        greedy.cmId.queuePair!.postSendOne(200 + index, greedy.send, index * 128, message.length);
      }
      // The Receive posted at connect (wrId 1) takes the first reply.
      const replies = await greedy.collect((completion) => completion.wrId === 1 || (completion.wrId >= 100 && completion.wrId < 100 + calls), calls);
      expect(replies).toBe(calls);
      const connection = [...server.connections].at(-1)!;
      expect(connection.transport.metrics.inlineReplies).toBe(calls);
    } finally {
      await greedy.close();
    }
  });

  it('answers an unsupported version with ERR_VERS and too many Write chunks with ERR_CHUNK, and keeps serving', async () => {
    expect(decodeReplyHeader(await peer.exchange(words(5, 2, 8, 0, 0, 0, 0)))).toMatchObject({ kind: 'error', xid: 5, errorCode: 1, versionLow: 1, versionHigh: 1 });
    const chunk = [1, 1, 0x1234, 8, 0, 0x1000];
    const fiveChunks = words(6, 1, 8, 0, 0, ...chunk, ...chunk, ...chunk, ...chunk, ...chunk, 0, 0);
    expect(decodeReplyHeader(await peer.exchange(Buffer.concat([fiveChunks, rpcCall(6, 0)])))).toMatchObject({ kind: 'error', xid: 6, errorCode: 2 });
    const ok = decodeReplyHeader(await peer.exchange(Buffer.concat([encodeCallHeader({ xid: 7, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk: null }), rpcCall(7, 0)])));
    expect(ok).toMatchObject({ kind: 'reply', xid: 7 });
    const [connection] = [...server.connections].filter((candidate) => candidate.transport.metrics.rejected['unsupported-version'] === 1);
    expect(connection!.transport.metrics.rejected).toMatchObject({ 'unsupported-version': 1, 'too-many-write-chunks': 1 });
  });

  it('tears down a connection whose peer vanishes mid-RPC, leaving nothing behind', async () => {
    const before = server.connections.size;
    const doomed = await BarePeer.connect();
    expect(server.connections.size).toBe(before + 1);
    const connection = [...server.connections].at(-1)!;
    const header = encodeCallHeader({ xid: 91, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk: null });
    const message = Buffer.concat([header, rpcCall(91, 4, 300)]);
    doomed.sendMessage(message);
    for (let waited = 0; connection.transport.metrics.calls === 0 && waited < 5000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    // The procedure is still running: the peer destroys its id without a disconnect.
    doomed.destroyConnection();
    for (let waited = 0; server.connections.has(connection) && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.connections.has(connection)).toBe(false);
    expect(connection.transport.sendContexts.metrics.inUse).toBe(0);
    expect(connection.openRegistrations).toBe(0);
    doomed.releaseResources();
  });

  it(`keeps serving one client through ${ABRUPT_ROUNDS} peers that send a call and vanish at once`, async () => {
    const steady = await startSteadyClient();
    for (let round = 0; round < ABRUPT_ROUNDS; round++) {
      const doomed = await BarePeer.connect();
      const header = encodeCallHeader({ xid: round, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk: null });
      const message = Buffer.concat([header, rpcCall(round, 0)]);
      doomed.sendMessage(message);
      doomed.destroyConnection(); // no disconnect: the id and QP just go
      doomed.releaseResources();
    }
    const steadyCalls = await steady.stop();
    for (let waited = 0; server.connections.size > 1 && waited < 20_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.connections.size).toBe(1); // the bare peer
    expect(steadyCalls).toBeGreaterThan(ABRUPT_ROUNDS);
    expect(server.pool.metrics.failures).toBe(0);
  });

  it('serves one client without a miss while 30 others connect, call and disconnect', async () => {
    const steady = await startSteadyClient();
    for (let round = 0; round < 30; round++) {
      const client = await RdmaRpcClient.connect({ address, port: PORT });
      await expect(client.call(PROGRAM, 1, 0, xdrVoid, undefined, xdrVoid)).resolves.toBeUndefined();
      await client.close();
    }
    const steadyCalls = await steady.stop();
    for (let waited = 0; server.connections.size > 1 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.connections.size).toBe(1); // the bare peer
    expect(steadyCalls).toBeGreaterThan(30);
  });
});
