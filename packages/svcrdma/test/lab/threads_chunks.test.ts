/**
 * Inside the rxe lab: chunk I/O on worker threads (SvcRdmaThreadedServer),
 * from a bare verbs peer that offers its memory byte by byte — a 1 MiB
 * argument pulled by RDMA Read from a data-item Read chunk (a WRITE), a 1 MiB
 * result pushed by RDMA Write into a Write chunk (a READ), a long call from a
 * position-zero chunk, a long reply into a Reply chunk; chunk lists the
 * server cannot honour answered ERR_CHUNK, a Read chunk with a handle the peer
 * never registered ending in a clean disconnect while another peer is served;
 * afterwards every gauge back to 0. Then, on a server whose Send Queue holds
 * one such reply at a time, the sq-wait drain point (replies that wait for
 * Send Queue room are sent once the waiting worker drains after its wake) and
 * the teardown drain point (a Send in flight at the disconnect is released
 * after the queue pair drained).
 */
import { until } from '@roce-rpc/lab';
import { readReplyBody, writeCallHeader, authNone } from '@roce-rpc/oncrpc';
import { XdrReader, XdrWriter } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReplyHeader, encodeCallHeader, RdmaProcedure, SvcRdmaThreadedServer, type CallHeaderFields, type ReadChunk, type RdmaSegment, type WriteChunk } from '../../dist/index.js';
import { BarePeer } from './bare_peer.ts';
import { CHUNK_PROGRAM, CHUNK_VERSION, ChunkProcedure, pattern } from './chunk_service.mjs';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
/** Not 20049 (the kernel's) nor the other lab servers' ports. */
const PORT = 20062;
/** The narrow server of the sq-wait test. */
const NARROW_PORT = 20063;
const THREADS = 2;
const MiB = 1 << 20;
const REPLY_WAIT_MS = 60_000;

let server: SvcRdmaThreadedServer;
let peer: BarePeer;
let peerOpen = false;

beforeAll(async () => {
  server = await SvcRdmaThreadedServer.listen({ address, port: PORT, threads: THREADS, serviceModule: new URL('./chunk_service.mjs', import.meta.url) });
  peer = await BarePeer.connect({ address, port: PORT });
  peerOpen = true;
});

afterAll(async () => {
  if (peerOpen) peer.close();
  await server?.close();
});

function rpcCall(xid: number, procedure: number, argument?: number): Buffer {
  const writer = new XdrWriter();
  writeCallHeader(writer, { xid, program: CHUNK_PROGRAM, version: CHUNK_VERSION, procedure, credential: authNone, verifier: authNone });
  if (argument !== undefined) writer.writeUint(argument);
  return writer.finish().toBuffer();
}

function header(xid: number, chunks: Partial<CallHeaderFields>): Buffer {
  return encodeCallHeader({ xid, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk: null, ...chunks });
}

/** `count` segments of equal length covering [offset, offset + bytes) of the peer's sink. */
function sinkSegments(from: BarePeer, offset: number, bytes: number, count: number): RdmaSegment[] {
  const each = bytes / count;
  return Array.from({ length: count }, (_, index) => ({ handle: from.sink.rkey, length: each, offset: BigInt(from.sink.address + offset + index * each) }));
}

function chunkOf(segments: RdmaSegment[]): WriteChunk {
  return { segments, length: segments.reduce((bytes, segment) => bytes + segment.length, 0) };
}

async function exchange(from: BarePeer, message: Buffer): Promise<Buffer> {
  const before = from.replies.length;
  from.send(message);
  expect(await from.pollUntil(() => from.replies.length > before, REPLY_WAIT_MS)).toBe(true);
  return from.replies[before]!;
}

/** The RPC reply's result word after the transport header (`bytes` from offset `start`). */
function resultWord(bytes: Buffer, start: number, end = bytes.length): number {
  const reader = new XdrReader(bytes.subarray(start, end));
  const xid = reader.readUint();
  expect(reader.readUint()).toBe(1); // REPLY
  readReplyBody(reader, xid);
  return reader.readUint();
}

describe('chunk I/O on worker threads, from a bare verbs peer on rxe0', () => {
  it('pulls a 1 MiB argument from a data-item Read chunk (4 segments) with RDMA Read, byte-exact', async () => {
    pattern(MiB).copy(peer.sink.buffer);
    const inline = rpcCall(101, ChunkProcedure.CHECK, MiB); // the opaque's length word; its data goes by Read chunk
    const dataItem: ReadChunk = { position: inline.length, ...chunkOf(sinkSegments(peer, 0, MiB, 4)) };
    const reply = await exchange(peer, Buffer.concat([header(101, { readChunks: [dataItem] }), inline]));
    const transport = decodeReplyHeader(reply);
    expect(transport).toMatchObject({ kind: 'reply', xid: 101, procedure: RdmaProcedure.MSG });
    if (transport.kind !== 'reply') return;
    expect(resultWord(reply, transport.headerBytes)).toBe(MiB); // CHECK found every byte where it belongs
    const metrics = server.metrics();
    expect(metrics.transports.readCalls).toBe(1);
    expect(metrics.transports.readBytes).toBe(MiB);
    expect(metrics.workers.inlineReplies).toBeGreaterThanOrEqual(1);
  });

  it('pushes a 1 MiB DDP result into a 2-segment Write chunk with RDMA Write, byte-exact, the Writes released with their Send', async () => {
    peer.sink.buffer.fill(0);
    const writeChunk = chunkOf(sinkSegments(peer, 0, MiB, 2));
    const reply = await exchange(peer, Buffer.concat([header(102, { writeList: [writeChunk] }), rpcCall(102, ChunkProcedure.READ, MiB)]));
    const transport = decodeReplyHeader(reply);
    expect(transport).toMatchObject({ kind: 'reply', xid: 102, procedure: RdmaProcedure.MSG });
    if (transport.kind !== 'reply') return;
    expect(transport.writeList[0]!.segments.map((segment) => segment.length)).toEqual([MiB / 2, MiB / 2]);
    expect(peer.sink.buffer.equals(pattern(MiB))).toBe(true);
    // Inline: the RPC reply header and the opaque's length word; its data went by RDMA Write.
    expect(resultWord(reply, transport.headerBytes)).toBe(MiB);
    const metrics = server.metrics();
    expect(metrics.workers.chunkReplies).toBe(1);
    expect(metrics.transports.writtenBytes).toBe(MiB);
    // The write buffer goes back only with its send context, in a drain (here the idle self-enqueue's or the next RPC's).
    await until(() => server.gauges().chunkBuffersInUse === 0 && server.gauges().sendContextsInUse === 0, 'the drain that releases the Writes with their Send');
  });

  it('serves a long call from a position-zero Read chunk (RDMA_NOMSG), its 100 000-byte argument inside the call', async () => {
    const writer = new XdrWriter();
    writeCallHeader(writer, { xid: 103, program: CHUNK_PROGRAM, version: CHUNK_VERSION, procedure: ChunkProcedure.CHECK, credential: authNone, verifier: authNone });
    writer.writeVariableOpaque(pattern(100_000));
    const longCall = writer.finish().toBuffer();
    longCall.copy(peer.sink.buffer);
    const callChunk: ReadChunk = { position: 0, ...chunkOf(sinkSegments(peer, 0, longCall.length, 1)) };
    const reply = await exchange(peer, header(103, { procedure: RdmaProcedure.NOMSG, callChunk }));
    const transport = decodeReplyHeader(reply);
    expect(transport).toMatchObject({ kind: 'reply', xid: 103 });
    if (transport.kind !== 'reply') return;
    expect(resultWord(reply, transport.headerBytes)).toBe(100_000);
  });

  it('writes a 200 000-byte reply into the Reply chunk (RDMA_NOMSG), byte-exact', async () => {
    peer.sink.buffer.fill(0);
    const replyChunk = chunkOf(sinkSegments(peer, 0, 256 * 1024, 2));
    const reply = decodeReplyHeader(await exchange(peer, Buffer.concat([header(104, { replyChunk }), rpcCall(104, ChunkProcedure.BIG, 200_000)])));
    expect(reply).toMatchObject({ kind: 'reply', xid: 104, procedure: RdmaProcedure.NOMSG });
    if (reply.kind !== 'reply') return;
    const reader = new XdrReader(peer.sink.buffer, { end: reply.replyChunk!.length });
    const xid = reader.readUint();
    expect(reader.readUint()).toBe(1);
    readReplyBody(reader, xid);
    expect(Buffer.from(reader.readVariableOpaque()).equals(pattern(200_000))).toBe(true);
    expect(reader.remaining).toBe(0);
  });

  it('answers ERR_CHUNK for chunk lists it cannot honour (five Write chunks, a Write chunk too small, a Read list beyond its limits) and keeps serving', async () => {
    const errorsBefore = server.metrics().workers.errorReplies;
    const small = chunkOf(sinkSegments(peer, 0, 4096, 1));
    const fiveChunks = header(105, { writeList: [small, small, small, small, small] });
    expect(decodeReplyHeader(await exchange(peer, Buffer.concat([fiveChunks, rpcCall(105, ChunkProcedure.NULL)])))).toMatchObject({ kind: 'error', xid: 105, errorCode: 2 });
    const tooSmall = header(106, { writeList: [small] });
    expect(decodeReplyHeader(await exchange(peer, Buffer.concat([tooSmall, rpcCall(106, ChunkProcedure.READ, 100_000)])))).toMatchObject({ kind: 'error', xid: 106, errorCode: 2 });
    const hugeSegment: RdmaSegment = { handle: peer.sink.rkey, length: 0xffff_fff0, offset: BigInt(peer.sink.address) };
    const inline = rpcCall(107, ChunkProcedure.CHECK, 16);
    const overflowing = header(107, { readChunks: [{ position: inline.length, length: hugeSegment.length, segments: [hugeSegment] }] });
    expect(decodeReplyHeader(await exchange(peer, Buffer.concat([overflowing, inline])))).toMatchObject({ kind: 'error', xid: 107, errorCode: 2 });
    const metrics = server.metrics();
    expect(metrics.workers.errorReplies - errorsBefore).toBe(3);
    expect(metrics.workers.chunkErrors).toBeGreaterThanOrEqual(1); // the too-small Write chunk, past the decoder
    const ok = decodeReplyHeader(await exchange(peer, Buffer.concat([header(108, {}), rpcCall(108, ChunkProcedure.NULL)])));
    expect(ok).toMatchObject({ kind: 'reply', xid: 108 });
  });

  it('a Read chunk with a handle the peer never registered: that connection is closed cleanly, the other is served', async () => {
    const hostile = await BarePeer.connect({ address, port: PORT });
    try {
      const inline = rpcCall(201, ChunkProcedure.CHECK, 4096);
      const unregistered: RdmaSegment = { handle: (hostile.sink.rkey ^ 0x5a5a_5a00) >>> 0, length: 4096, offset: BigInt(hostile.sink.address) };
      hostile.send(Buffer.concat([header(201, { readChunks: [{ position: inline.length, length: 4096, segments: [unregistered] }] }), inline]));
      expect(await hostile.pollUntil(() => hostile.disconnected, REPLY_WAIT_MS)).toBe(true);
      expect(server.metrics().transports.readFailures).toBeGreaterThanOrEqual(1);
      const ok = decodeReplyHeader(await exchange(peer, Buffer.concat([header(202, {}), rpcCall(202, ChunkProcedure.NULL)])));
      expect(ok).toMatchObject({ kind: 'reply', xid: 202 });
    } finally {
      hostile.close();
    }
  });

  it('leaves every gauge at 0 once the peers are gone', async () => {
    peer.close();
    peerOpen = false;
    await until(() => server.connections.size === 0, 'every teardown');
    expect(server.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
    const metrics = server.metrics();
    console.log(`chunk counters: workers ${JSON.stringify(metrics.workers)}; transports ${JSON.stringify(metrics.transports)}`);
    expect(metrics.accepted).toBe(metrics.closed);
    expect(metrics.transports.lostSends).toBe(0);
    expect(metrics.workers.failures).toBe(0);
  });
});

describe('drain points sq-wait and teardown on worker threads, with chunk I/O', () => {
  /** Each READ reply of the sq-wait test takes the whole Send Queue: WRITE_SEGMENTS RDMA Writes and its Send. */
  const SEND_QUEUE_DEPTH = 8;
  const WRITE_SEGMENTS = SEND_QUEUE_DEPTH - 1;
  const SEGMENT_BYTES = 32 * 1024;
  const CALLS = 6;
  /** Connections the teardown test may try before its window (a Send in flight at the disconnect) is hit. */
  const TEARDOWN_ATTEMPTS = 5;
  /**
   * One worker, so that no other worker's drain (empty-free-list, between-rpcs) can release what the
   * waiting worker's sq-wait drain must: with two, a fresh-clone CI run saw sqWaits 1 and
   * released['sq-wait'] 0.
   */
  const NARROW_THREADS = 1;
  let narrow: SvcRdmaThreadedServer;

  beforeAll(async () => {
    narrow = await SvcRdmaThreadedServer.listen({
      address,
      port: NARROW_PORT,
      threads: NARROW_THREADS,
      credits: 4,
      sendContextsMax: 4,
      sendQueueDepth: SEND_QUEUE_DEPTH,
      serviceModule: new URL('./chunk_service.mjs', import.meta.url),
    });
  });

  afterAll(async () => {
    await narrow?.close();
  });

  it('a reply short of Send Queue room waits, is woken by the release-list transition, drains after the wait and is sent (fails without that drain: the waiters time out)', async () => {
    // The client posts no Receive at first: the first reply's Send waits in RNR retries holding the
    // whole Send Queue, so the worker building the second reply must wait; the Receives posted once
    // it waits complete that Send, whose transition wakes the worker.
    const client = await BarePeer.connect({ address, port: NARROW_PORT, receivesAtConnect: false });
    try {
      const bytes = WRITE_SEGMENTS * SEGMENT_BYTES;
      const writeChunk = chunkOf(sinkSegments(client, 0, bytes, WRITE_SEGMENTS));
      for (let call = 0; call < CALLS; call++) client.send(Buffer.concat([header(300 + call, { writeList: [writeChunk] }), rpcCall(300 + call, ChunkProcedure.READ, bytes)]));
      await until(() => narrow.metrics().transports.sqWaits >= 1, 'a worker waiting for Send Queue room');
      client.postReceives();
      expect(await client.pollUntil(() => client.replies.length === CALLS, REPLY_WAIT_MS)).toBe(true);
      for (const reply of client.replies) expect(decodeReplyHeader(reply)).toMatchObject({ kind: 'reply', procedure: RdmaProcedure.MSG });
      expect(client.sink.buffer.subarray(0, bytes).equals(pattern(bytes))).toBe(true);
      const metrics = narrow.metrics();
      console.log(`sq-wait: workers ${JSON.stringify(metrics.workers)}; transports ${JSON.stringify(metrics.transports)}`);
      expect(metrics.workers.chunkReplies).toBe(CALLS);
      expect(metrics.transports.droppedReplies).toBe(0);
      expect(metrics.transports.released['sq-wait']).toBeGreaterThanOrEqual(1);
    } finally {
      client.close();
      await until(() => narrow.connections.size === 0, 'the narrow connection\'s teardown');
      expect(narrow.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
    }
  });

  it('a Send still in flight when the client disconnects is released by the teardown drain, after the queue pair drained (fails without it: the context leaks)', async () => {
    // The window: the server posted the reply (its Writes reach the peer's memory) and its Send has
    // not completed yet; the orderly disconnect then closes the transport (no worker takes it any
    // more) and the flushed Send is left to the teardown. A few tries, as the window is ~0.1 s in the guest.
    for (let attempt = 0; attempt < TEARDOWN_ATTEMPTS && (narrow.metrics().transports.released.teardown ?? 0) === 0; attempt++) {
      const leaving = await BarePeer.connect({ address, port: NARROW_PORT });
      leaving.sink.buffer.fill(0);
      const writeChunk = chunkOf(sinkSegments(leaving, 0, MiB, 1));
      leaving.send(Buffer.concat([header(400 + attempt, { writeList: [writeChunk] }), rpcCall(400 + attempt, ChunkProcedure.READ, MiB)]));
      await leaving.pollUntil(() => leaving.sink.buffer[0] !== 0, REPLY_WAIT_MS);
      leaving.cmId.disconnect();
      await until(() => narrow.connections.size === 0, `attempt ${attempt}: the teardown`);
      leaving.close();
    }
    const metrics = narrow.metrics();
    console.log(`teardown: workers ${JSON.stringify(metrics.workers)}; transports ${JSON.stringify(metrics.transports)}`);
    expect(metrics.transports.released.teardown).toBeGreaterThanOrEqual(1);
    expect(metrics.transports.lostSends).toBe(0);
    expect(narrow.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
  });
});

