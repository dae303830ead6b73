import { XdrWriter, type XdrEncoding } from '@roce-rpc/xdr';
import { describe, expect, it } from 'vitest';
import {
  decodeReplyHeader,
  encodeReplyHeader,
  planReply,
  RdmaProcedure,
  replyHeaderBytes,
  ReplyRejectReason,
  scatterOntoChunk,
  type RdmaWrite,
  type ReplyPlan,
  type WriteChunk,
} from '../src/index.js';

/** An NFS-READ-like reply: status words, a DDP-eligible opaque, trailing words. */
function readReply(dataBytes: number, trailingWords = 2): { body: XdrEncoding; data: Buffer } {
  const data = Buffer.alloc(dataBytes);
  for (let index = 0; index < dataBytes; index++) data[index] = (index * 7 + 3) & 0xff;
  const writer = new XdrWriter({ bulkThresholdBytes: 256 });
  for (let index = 0; index < 6; index++) writer.writeUint(0x1000 + index);
  writer.writeVariableOpaque(data, 1 << 20, true);
  for (let index = 0; index < trailingWords; index++) writer.writeUint(0xeeee0000 + index);
  return { body: writer.finish(), data };
}

function plainReply(bytes: number): XdrEncoding {
  const writer = new XdrWriter({ bulkThresholdBytes: 1 << 30 });
  writer.writeVariableOpaque(Buffer.alloc(bytes - 4, 0x42), 1 << 20, false);
  return writer.finish();
}

function chunk(handle: number, ...lengths: number[]): WriteChunk {
  const segments = lengths.map((length, index) => ({ handle: handle + index, length, offset: BigInt(0x10000 * (index + 1)) }));
  return { segments, length: lengths.reduce((sum, length) => sum + length, 0) };
}

/** The client's memory after the Writes: handle -> bytes written at the segment start. */
function remoteMemory(writes: readonly RdmaWrite[]): Map<number, Buffer> {
  const memory = new Map<number, Buffer>();
  for (const write of writes) {
    const bytes = Buffer.concat(write.sources.map((source) => Buffer.from(source)));
    expect(bytes.length).toBe(write.target.length);
    memory.set(write.target.handle, bytes);
  }
  return memory;
}

function chunkContents(memory: Map<number, Buffer>, written: WriteChunk): Buffer {
  return Buffer.concat(written.segments.filter((segment) => segment.length > 0).map((segment) => memory.get(segment.handle)!));
}

function expectPlan(plan: ReplyPlan): Exclude<ReplyPlan, { kind: 'error' }> {
  if (plan.kind === 'error') throw new Error(`unexpected ${plan.reason}: ${plan.detail}`);
  expect(encodeReplyHeader(plan.header).length).toBe(plan.headerBytes);
  return plan;
}

const base = { xid: 7, credits: 32, sendLimitBytes: 1024 };

describe('a reply that fits the client inline goes in one Send', () => {
  it('sends a small reply inline as RDMA_MSG with the whole stream', () => {
    const body = plainReply(100);
    const plan = expectPlan(planReply({ ...base, body, writeList: [], replyChunk: null }));
    expect(plan.kind).toBe('inline');
    expect(plan.header.procedure).toBe(RdmaProcedure.MSG);
    expect(plan.writes).toEqual([]);
    expect(Buffer.concat(plan.sendParts)).toEqual(body.toBuffer());
  });

  it('stays inline up to the exact byte of the limit and moves to the Reply chunk one word later', () => {
    const headerBytes = replyHeaderBytes({ xid: 0, credits: 1, procedure: 0, writeList: [], replyChunk: null });
    const fits = plainReply(1024 - headerBytes);
    expect(planReply({ ...base, body: fits, writeList: [], replyChunk: chunk(9, 4096) }).kind).toBe('inline');
    const over = plainReply(1024 - headerBytes + 4);
    expect(planReply({ ...base, body: over, writeList: [], replyChunk: chunk(9, 4096) }).kind).toBe('reply-chunk');
  });

  it('leaves a Reply chunk the client offered out of an inline reply (the Linux client refuses it with RDMA_MSG)', () => {
    const plan = expectPlan(planReply({ ...base, body: plainReply(64), writeList: [], replyChunk: chunk(9, 4096) }));
    expect(plan.header.replyChunk).toBeNull();
    const decoded = decodeReplyHeader(encodeReplyHeader(plan.header));
    expect(decoded).toMatchObject({ kind: 'reply', replyChunk: null });
  });
});

describe('DDP-eligible results are pushed through Write chunks', () => {
  it('writes a 64 KiB READ payload across the segments and sends the rest inline', () => {
    const { body, data } = readReply(65536);
    const writeChunk = chunk(0x20, 32768, 32768, 8192);
    const plan = expectPlan(planReply({ ...base, body, writeList: [writeChunk], replyChunk: null }));
    expect(plan.kind).toBe('inline');
    expect(plan.writes.map((write) => write.target.length)).toEqual([32768, 32768]);
    expect(plan.header.writeList[0]!.segments.map((segment) => segment.length)).toEqual([32768, 32768, 0]);
    expect(chunkContents(remoteMemory(plan.writes), plan.header.writeList[0]!)).toEqual(data);
    // Inline: six words, the opaque's length word, two trailing words; no payload, no pad.
    expect(Buffer.concat(plan.sendParts).length).toBe(9 * 4);
    expect(plan.writtenBytes).toBe(65536);
  });

  it('writes an odd-length payload without its XDR pad, and sends no pad inline', () => {
    const { body, data } = readReply(1001);
    const plan = expectPlan(planReply({ ...base, body, writeList: [chunk(0x20, 4096)], replyChunk: null }));
    expect(plan.header.writeList[0]!.length).toBe(1001);
    expect(chunkContents(remoteMemory(plan.writes), plan.header.writeList[0]!)).toEqual(data);
    expect(Buffer.concat(plan.sendParts).length).toBe(body.byteLength - 1004);
  });

  it('echoes a Write chunk the reply did not need with zero lengths and writes nothing', () => {
    const plan = expectPlan(planReply({ ...base, body: plainReply(40), writeList: [chunk(0x20, 4096, 4096)], replyChunk: null }));
    expect(plan.writes).toEqual([]);
    expect(plan.header.writeList).toEqual([{ segments: chunk(0x20, 0, 0).segments, length: 0 }]);
  });

  it('keeps DDP items beyond the last Write chunk inline', () => {
    const writer = new XdrWriter({ bulkThresholdBytes: 16 });
    writer.writeVariableOpaque(Buffer.alloc(100, 1), 1000, true);
    writer.writeVariableOpaque(Buffer.alloc(200, 2), 1000, true);
    const body = writer.finish();
    const plan = expectPlan(planReply({ ...base, body, writeList: [chunk(0x20, 512)], replyChunk: null }));
    expect(plan.header.writeList[0]!.length).toBe(100);
    expect(Buffer.concat(plan.sendParts)).toEqual(Buffer.concat([body.inline.subarray(0, 4), body.inline.subarray(4, 8), Buffer.alloc(200, 2)]));
  });

  it('answers ERR_CHUNK when a payload is longer than its Write chunk', () => {
    const { body } = readReply(8192);
    const plan = planReply({ ...base, body, writeList: [chunk(0x20, 4096)], replyChunk: null });
    expect(plan).toMatchObject({ kind: 'error', reason: ReplyRejectReason.WRITE_CHUNK_TOO_SMALL });
  });
});

describe('a reply too long for the client goes through the Reply chunk', () => {
  it('writes the whole reply into the Reply chunk as RDMA_NOMSG with nothing inline', () => {
    const body = plainReply(10000);
    const plan = expectPlan(planReply({ ...base, body, writeList: [], replyChunk: chunk(0x30, 4096, 4096, 4096) }));
    expect(plan.kind).toBe('reply-chunk');
    expect(plan.header.procedure).toBe(RdmaProcedure.NOMSG);
    expect(plan.sendParts).toEqual([]);
    expect(plan.header.replyChunk!.segments.map((segment) => segment.length)).toEqual([4096, 4096, 1808]);
    expect(chunkContents(remoteMemory(plan.writes), plan.header.replyChunk!)).toEqual(body.toBuffer());
  });

  it('puts a DDP payload in the Reply chunk too and echoes the Write list empty, as the Linux client requires', () => {
    const { body } = readReply(3000, 400);
    const plan = expectPlan(planReply({ ...base, body, writeList: [chunk(0x20, 4096)], replyChunk: chunk(0x30, 8192) }));
    expect(plan.kind).toBe('reply-chunk');
    expect(plan.header.writeList[0]!.length).toBe(0);
    expect(chunkContents(remoteMemory(plan.writes), plan.header.replyChunk!)).toEqual(body.toBuffer());
  });

  it('uses the Write chunk beside the Reply chunk only when the whole reply does not fit the Reply chunk', () => {
    const { body, data } = readReply(6000, 400);
    const plan = expectPlan(planReply({ ...base, body, writeList: [chunk(0x20, 8192)], replyChunk: chunk(0x30, 2048) }));
    expect(plan.kind).toBe('reply-chunk');
    const memory = remoteMemory(plan.writes);
    expect(chunkContents(memory, plan.header.writeList[0]!)).toEqual(data);
    expect(plan.header.replyChunk!.length).toBe(body.byteLength - 6000);
    expect(plan.writtenBytes).toBe(body.byteLength);
  });

  it('answers ERR_CHUNK when the reply fits neither inline nor a Reply chunk', () => {
    expect(planReply({ ...base, body: plainReply(5000), writeList: [], replyChunk: null })).toMatchObject({
      kind: 'error',
      reason: ReplyRejectReason.REPLY_TOO_LARGE,
    });
    expect(planReply({ ...base, body: plainReply(5000), writeList: [], replyChunk: chunk(0x30, 4096) })).toMatchObject({
      kind: 'error',
      reason: ReplyRejectReason.REPLY_TOO_LARGE,
    });
  });
});

describe('scattering onto a chunk', () => {
  it('fills segments whole, in order, across source boundaries, without copying', () => {
    const first = Buffer.from('abcdefgh');
    const second = Buffer.from('ijkl');
    const result = scatterOntoChunk([first, second], chunk(1, 5, 5, 5));
    expect(result.writes.map((write) => Buffer.concat(write.sources).toString())).toEqual(['abcde', 'fghij', 'kl']);
    expect(result.writes[0]!.sources[0]!.buffer).toBe(first.buffer);
    expect(result.written.segments.map((segment) => segment.length)).toEqual([5, 5, 2]);
  });

  it('refuses bytes that do not fit: the planner must check first', () => {
    expect(() => scatterOntoChunk([Buffer.alloc(11)], chunk(1, 5, 5))).toThrow(/do not fit/);
  });
});
