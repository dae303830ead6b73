import { describe, expect, it } from 'vitest';
import {
  decodeCallHeader,
  decodeReplyHeader,
  defaultHeaderLimits,
  encodeCallHeader,
  encodeErrorHeader,
  encodeReplyHeader,
  HeaderRejection,
  HeaderRejectReason,
  RdmaProcedure,
  RejectAnswer,
  ERROR_CHUNK_BYTES,
  ERROR_VERS_BYTES,
  MIN_MESSAGE_HEADER_BYTES,
  MAX_READ_SEGMENTS,
  MAX_WRITE_CHUNKS,
  type CallHeaderFields,
  type HeaderRejectReason as Reason,
} from '../src/index.js';
import { isPlainCall } from '../src/header/decode.js';
import { encodePlainReplyHeader } from '../src/header/encode.js';

/** Raw XDR words, for headers no encoder of ours would produce. */
function words(...values: number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => bytes.writeUInt32BE(value >>> 0, index * 4));
  return bytes;
}

const XID = 0x1234abcd;
const fixed = (procedure: number, version = 1) => words(XID, version, 32, procedure);
/** handle, length, offset(hi, lo) */
const segment = (handle: number, length: number, offsetHigh = 0, offsetLow = 0x1000) => [handle, length, offsetHigh, offsetLow];
const rpcBody = (bytes: number) => Buffer.alloc(bytes, 0x5a);

function rejectionOf(message: Uint8Array, limits = defaultHeaderLimits): HeaderRejection {
  try {
    decodeCallHeader(message, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(HeaderRejection);
    return error as HeaderRejection;
  }
  throw new Error('the header was accepted');
}

function expectRejected(message: Uint8Array, reason: Reason, limits = defaultHeaderLimits): HeaderRejection {
  const rejection = rejectionOf(message, limits);
  expect(rejection.reason.name).toBe(reason.name);
  expect(rejection.answer).toBe(reason.answer);
  expect(rejection.code).toBe('ERR_SVCRDMA_BAD_HEADER');
  return rejection;
}

const longCall: CallHeaderFields = {
  xid: XID,
  credits: 64,
  procedure: RdmaProcedure.NOMSG,
  callChunk: {
    position: 0,
    length: 8192,
    segments: [
      { handle: 0x11, length: 4096, offset: 0x7f00_0000_1000n },
      { handle: 0x12, length: 4096, offset: 0x7f00_0000_2000n },
    ],
  },
  readChunks: [{ position: 128, length: 4000, segments: [{ handle: 0x13, length: 4000, offset: 0xffff_ffff_0000_0000n }] }],
  writeList: [{ length: 65536, segments: [{ handle: 0x21, length: 65536, offset: 0x10_0000n }] }],
  replyChunk: { length: 8192, segments: [{ handle: 0x31, length: 8192, offset: 0x20_0000n }] },
};

describe('a call transport header round-trips through the encoder and the decoder', () => {
  it('keeps a long call with a data-item chunk, a write chunk and a reply chunk', () => {
    const bytes = encodeCallHeader(longCall);
    const header = decodeCallHeader(bytes);
    expect(header).toEqual({
      ...longCall,
      version: 1,
      headerBytes: bytes.length,
      inlineBodyBytes: 0,
    });
  });

  it('finds the inline RPC message after an RDMA_MSG header with a data-item chunk', () => {
    const fields: CallHeaderFields = {
      ...longCall,
      procedure: RdmaProcedure.MSG,
      callChunk: null,
      readChunks: [{ position: 20, length: 3, segments: [{ handle: 9, length: 3, offset: 1n }] }],
    };
    const header = encodeCallHeader(fields);
    const message = Buffer.concat([header, rpcBody(40)]);
    const decoded = decodeCallHeader(message);
    expect(decoded.headerBytes).toBe(header.length);
    expect(decoded.inlineBodyBytes).toBe(40);
    expect(decoded.readChunks[0]).toEqual(fields.readChunks[0]);
  });

  it('groups consecutive segments with one position into one chunk', () => {
    const message = Buffer.concat([
      fixed(RdmaProcedure.MSG),
      words(1, 8, ...segment(5, 100), 1, 8, ...segment(6, 28), 1, 200, ...segment(7, 4), 0, 0, 0),
      rpcBody(300),
    ]);
    const header = decodeCallHeader(message);
    expect(header.readChunks.map((chunk) => [chunk.position, chunk.segments.length, chunk.length])).toEqual([
      [8, 2, 128],
      [200, 1, 4],
    ]);
  });
});

describe('the fixed header decides between ERR_VERS, ERR_CHUNK and a silent drop', () => {
  it('drops anything shorter than the fixed header: there is no XID to answer', () => {
    for (let length = 0; length < 16; length++) {
      expect(expectRejected(Buffer.alloc(length), HeaderRejectReason.SHORT_FIXED_HEADER).xid).toBeNull();
    }
  });

  it('answers an unknown version with ERR_VERS, even when the rest is garbage', () => {
    const rejection = expectRejected(Buffer.concat([fixed(99, 2), words(7, 7, 7)]), HeaderRejectReason.UNSUPPORTED_VERSION);
    expect(rejection.xid).toBe(XID);
    expect(rejection.answer).toBe(RejectAnswer.ERR_VERS);
  });

  it('answers RDMA_MSGP and unknown procedures with ERR_CHUNK and drops RDMA_DONE and RDMA_ERROR', () => {
    const empty = words(0, 0, 0);
    expectRejected(Buffer.concat([fixed(RdmaProcedure.MSGP), words(4, 1024), empty]), HeaderRejectReason.PADDED_MESSAGE);
    expectRejected(Buffer.concat([fixed(5), empty]), HeaderRejectReason.UNKNOWN_PROCEDURE);
    expectRejected(Buffer.concat([fixed(0xffffffff), empty]), HeaderRejectReason.UNKNOWN_PROCEDURE);
    expectRejected(fixed(RdmaProcedure.DONE), HeaderRejectReason.DONE_MESSAGE);
    expectRejected(Buffer.concat([fixed(RdmaProcedure.ERROR), words(2)]), HeaderRejectReason.ERROR_MESSAGE);
  });
});

describe('hostile chunk lists are refused before anything is allocated', () => {
  it('refuses a header cut at every byte inside its chunk lists', () => {
    const bytes = encodeCallHeader(longCall);
    for (let length = 16; length < bytes.length; length++) {
      const rejection = rejectionOf(bytes.subarray(0, length));
      expect(rejection.reason.name).toBe(HeaderRejectReason.TRUNCATED_CHUNK_LISTS.name);
      expect(rejection.answer).toBe(RejectAnswer.ERR_CHUNK);
    }
  });

  it('refuses a discriminator that is neither 0 nor 1', () => {
    expectRejected(Buffer.concat([fixed(0), words(2, 0, 0), rpcBody(8)]), HeaderRejectReason.BAD_DISCRIMINATOR);
    expectRejected(Buffer.concat([fixed(0), words(0, 0, 0x80000000), rpcBody(8)]), HeaderRejectReason.BAD_DISCRIMINATOR);
  });

  it(`refuses more than ${MAX_READ_SEGMENTS} Read segments`, () => {
    const entries: number[] = [];
    for (let index = 0; index <= MAX_READ_SEGMENTS; index++) entries.push(1, 0, ...segment(1, 64));
    expectRejected(Buffer.concat([fixed(RdmaProcedure.NOMSG), words(...entries, 0, 0, 0)]), HeaderRejectReason.TOO_MANY_READ_SEGMENTS);
  });

  it(`refuses more than ${MAX_WRITE_CHUNKS} Write chunks`, () => {
    const chunks: number[] = [];
    for (let index = 0; index <= MAX_WRITE_CHUNKS; index++) chunks.push(1, 1, ...segment(1, 4096));
    expectRejected(Buffer.concat([fixed(0), words(0, ...chunks, 0, 0), rpcBody(8)]), HeaderRejectReason.TOO_MANY_WRITE_CHUNKS);
  });

  it('refuses a hostile segment count without reading or allocating for it', () => {
    const huge = Buffer.concat([fixed(0), words(0, 1, 0xffffffff, ...segment(1, 8)), rpcBody(8)]);
    expectRejected(huge, HeaderRejectReason.TOO_MANY_WRITE_SEGMENTS);
    const overstated = Buffer.concat([fixed(0), words(0, 1, 200, ...segment(1, 8))]);
    expectRejected(overstated, HeaderRejectReason.TRUNCATED_CHUNK_LISTS);
  });

  it('counts Write segments across the Write list and the Reply chunk', () => {
    const limits = { ...defaultHeaderLimits, maxWriteSegmentsTotal: 3 };
    const message = Buffer.concat([
      fixed(0),
      words(0, 1, 2, ...segment(1, 8), ...segment(2, 8), 0, 1, 2, ...segment(3, 8), ...segment(4, 8)),
      rpcBody(8),
    ]);
    expectRejected(message, HeaderRejectReason.TOO_MANY_WRITE_SEGMENTS, limits);
    expect(decodeCallHeader(message).replyChunk?.length).toBe(16);
  });

  it('refuses handle 0, empty Read segments, empty Write chunks and segments that wrap 2^64', () => {
    const body = rpcBody(64);
    expectRejected(Buffer.concat([fixed(0), words(1, 8, ...segment(0, 8), 0, 0, 0), body]), HeaderRejectReason.INVALID_HANDLE);
    expectRejected(Buffer.concat([fixed(0), words(0, 1, 1, ...segment(0, 8), 0, 0), body]), HeaderRejectReason.INVALID_HANDLE);
    expectRejected(Buffer.concat([fixed(0), words(1, 8, ...segment(3, 0), 0, 0, 0), body]), HeaderRejectReason.EMPTY_READ_SEGMENT);
    expectRejected(Buffer.concat([fixed(0), words(0, 1, 0, 0, 0), body]), HeaderRejectReason.EMPTY_WRITE_CHUNK);
    expectRejected(Buffer.concat([fixed(0), words(0, 0, 1, 0), body]), HeaderRejectReason.EMPTY_WRITE_CHUNK);
    const wrapping = segment(3, 0x2000, 0xffffffff, 0xfffff000);
    expectRejected(Buffer.concat([fixed(0), words(0, 1, 1, ...wrapping, 0, 0), body]), HeaderRejectReason.SEGMENT_WRAPS);
    const lastByte = segment(3, 0xfff, 0xffffffff, 0xfffff000);
    expect(decodeCallHeader(Buffer.concat([fixed(0), words(0, 1, 1, ...lastByte, 0, 0), body])).writeList).toHaveLength(1);
  });

  it('sums lengths that would overflow 32 bits without wrapping', () => {
    const body = rpcBody(64);
    // Two 2 GiB segments sum to 2^32, which a u32 sum would see as 0.
    const twoHalves = [...segment(1, 0x80000000), ...segment(2, 0x80000000)];
    expectRejected(Buffer.concat([fixed(0), words(0, 0, 1, 2, ...twoHalves), body]), HeaderRejectReason.REPLY_CHUNK_TOO_LONG);
    expectRejected(Buffer.concat([fixed(0), words(0, 1, 2, ...twoHalves, 0, 0), body]), HeaderRejectReason.WRITE_CHUNK_TOO_LONG);
    const readHalves = [1, 8, ...segment(1, 0x80000000), 1, 8, ...segment(2, 0x80000000)];
    expectRejected(Buffer.concat([fixed(0), words(...readHalves, 0, 0, 0), body]), HeaderRejectReason.READ_CHUNK_TOO_LONG);
  });

  it('bounds the whole Read list by the largest call, not only each chunk', () => {
    const oneMiB = 1024 * 1024;
    const message = Buffer.concat([
      fixed(0),
      words(1, 8, ...segment(1, oneMiB), 1, oneMiB + 16, ...segment(2, oneMiB), 0, 0, 0),
      rpcBody(64),
    ]);
    expectRejected(message, HeaderRejectReason.READ_LIST_TOO_LONG);
  });
});

describe('Read chunk positions must describe one well-formed XDR stream', () => {
  const body = rpcBody(64);

  it('refuses a data-item position that is not XDR-aligned', () => {
    expectRejected(Buffer.concat([fixed(0), words(1, 6, ...segment(1, 8), 0, 0, 0), body]), HeaderRejectReason.MISALIGNED_POSITION);
  });

  it('refuses positions that go backwards', () => {
    const entries = words(1, 16, ...segment(1, 4), 1, 8, ...segment(2, 4), 0, 0, 0);
    expectRejected(Buffer.concat([fixed(0), entries, body]), HeaderRejectReason.OVERLAPPING_READ_CHUNKS);
  });

  it('refuses a chunk that starts inside the previous chunk or its XDR pad', () => {
    const inside = words(1, 8, ...segment(1, 16), 1, 16, ...segment(2, 4), 0, 0, 0);
    expectRejected(Buffer.concat([fixed(0), inside, body]), HeaderRejectReason.OVERLAPPING_READ_CHUNKS);
    const inPad = words(1, 8, ...segment(1, 5), 1, 13 + 3, ...segment(2, 4), 0, 0, 0); // 8 + pad(5) = 16: ok
    expect(decodeCallHeader(Buffer.concat([fixed(0), inPad, body])).readChunks).toHaveLength(2);
    const intoPad = words(1, 8, ...segment(1, 9), 1, 16, ...segment(2, 4), 0, 0, 0); // 8 + pad(9) = 20 > 16
    expectRejected(Buffer.concat([fixed(0), intoPad, body]), HeaderRejectReason.OVERLAPPING_READ_CHUNKS);
  });

  it('refuses a chunk positioned past the end of the inline message', () => {
    expectRejected(Buffer.concat([fixed(0), words(1, 68, ...segment(1, 4), 0, 0, 0), body]), HeaderRejectReason.READ_CHUNK_BEYOND_MESSAGE);
    // At exactly the end of the inline bytes the item is the message's last one: accepted.
    expect(decodeCallHeader(Buffer.concat([fixed(0), words(1, 64, ...segment(1, 4), 0, 0, 0), body])).readChunks).toHaveLength(1);
    // Positions count chunk bytes too: the second chunk sits after 64 inline + 1000 chunk bytes.
    const twoChunks = words(1, 32, ...segment(1, 1000), 1, 1032 + 32, ...segment(2, 4), 0, 0, 0);
    expect(decodeCallHeader(Buffer.concat([fixed(0), twoChunks, body])).readChunks).toHaveLength(2);
    const pastEnd = words(1, 32, ...segment(1, 1000), 1, 1032 + 36, ...segment(2, 4), 0, 0, 0);
    expectRejected(Buffer.concat([fixed(0), pastEnd, body]), HeaderRejectReason.READ_CHUNK_BEYOND_MESSAGE);
  });

  it('measures the data-item positions of a long call against the position-zero chunk', () => {
    const inCall = words(1, 0, ...segment(1, 512), 1, 512, ...segment(2, 8), 0, 0, 0);
    expect(decodeCallHeader(Buffer.concat([fixed(RdmaProcedure.NOMSG), inCall])).readChunks).toHaveLength(1);
    const pastCall = words(1, 0, ...segment(1, 512), 1, 516, ...segment(2, 8), 0, 0, 0);
    expectRejected(Buffer.concat([fixed(RdmaProcedure.NOMSG), pastCall]), HeaderRejectReason.READ_CHUNK_BEYOND_MESSAGE);
  });

  it('refuses position-zero segments after data items', () => {
    const entries = words(1, 8, ...segment(1, 4), 1, 0, ...segment(2, 4), 0, 0, 0);
    expectRejected(Buffer.concat([fixed(RdmaProcedure.NOMSG), entries]), HeaderRejectReason.SCATTERED_CALL_CHUNK);
  });
});

describe('the procedure and the chunks must agree on where the call is', () => {
  it('refuses RDMA_MSG with a position-zero chunk and RDMA_MSG without a body', () => {
    expectRejected(Buffer.concat([fixed(0), words(1, 0, ...segment(1, 64), 0, 0, 0), rpcBody(8)]), HeaderRejectReason.CALL_CHUNK_WITH_MSG);
    expectRejected(Buffer.concat([fixed(0), words(0, 0, 0)]), HeaderRejectReason.MSG_WITHOUT_BODY);
  });

  it('refuses RDMA_NOMSG without a call chunk or with inline bytes', () => {
    expectRejected(Buffer.concat([fixed(RdmaProcedure.NOMSG), words(0, 0, 0)]), HeaderRejectReason.NOMSG_WITHOUT_CALL_CHUNK);
    const withBody = Buffer.concat([fixed(RdmaProcedure.NOMSG), words(1, 0, ...segment(1, 64), 0, 0, 0), rpcBody(4)]);
    expectRejected(withBody, HeaderRejectReason.NOMSG_WITH_INLINE_BODY);
  });

  it(`accepts the smallest call: a ${MIN_MESSAGE_HEADER_BYTES}-byte header and an inline body`, () => {
    const header = decodeCallHeader(Buffer.concat([fixed(0), words(0, 0, 0), rpcBody(40)]));
    expect(header).toMatchObject({ xid: XID, credits: 32, headerBytes: MIN_MESSAGE_HEADER_BYTES, inlineBodyBytes: 40 });
  });
});

describe('a plain call: the 28-byte header the RPC path answers without the decoder', () => {
  /** isPlainCall of `message` placed at an offset of a larger buffer, as in a Receive ring. */
  function plain(message: Uint8Array): boolean {
    const ring = new Uint8Array(message.length + 64);
    ring.set(message, 40);
    return isPlainCall(new DataView(ring.buffer), 40, message.length);
  }

  it('is RDMA_MSG, version 1, three empty lists and a body: what the decoder accepts as a call without chunks', () => {
    const message = Buffer.concat([fixed(RdmaProcedure.MSG), words(0, 0, 0), rpcBody(40)]);
    expect(plain(message)).toBe(true);
    expect(decodeCallHeader(message)).toMatchObject({ readChunks: [], callChunk: null, writeList: [], replyChunk: null, headerBytes: MIN_MESSAGE_HEADER_BYTES });
  });

  it('leaves every other header to the full decoder', () => {
    const others: [string, Buffer][] = [
      ['version 2', Buffer.concat([fixed(RdmaProcedure.MSG, 2), words(0, 0, 0), rpcBody(40)])],
      ['RDMA_NOMSG', Buffer.concat([fixed(RdmaProcedure.NOMSG), words(0, 0, 0), rpcBody(40)])],
      ['RDMA_MSGP', Buffer.concat([fixed(RdmaProcedure.MSGP), words(0, 0, 0), rpcBody(40)])],
      ['a Read list', Buffer.concat([fixed(RdmaProcedure.MSG), words(1, 8, ...segment(1, 64), 0, 0, 0), rpcBody(40)])],
      ['a Write list', Buffer.concat([fixed(RdmaProcedure.MSG), words(0, 1, 1, ...segment(1, 64), 0, 0), rpcBody(40)])],
      ['a Reply chunk', Buffer.concat([fixed(RdmaProcedure.MSG), words(0, 0, 1, 1, ...segment(1, 64)), rpcBody(40)])],
      ['a bad discriminator', Buffer.concat([fixed(RdmaProcedure.MSG), words(2, 0, 0), rpcBody(40)])],
      ['no body', Buffer.concat([fixed(RdmaProcedure.MSG), words(0, 0, 0)])],
    ];
    for (const [what, message] of others) expect(plain(message), what).toBe(false);
  });

  it('is answered with the header encodeReplyHeader writes for RDMA_MSG without chunks', () => {
    const target = new Uint8Array(100).fill(0xee);
    const length = encodePlainReplyHeader(new DataView(target.buffer), 8, XID, 17);
    expect(length).toBe(MIN_MESSAGE_HEADER_BYTES);
    expect(Buffer.from(target.subarray(8, 8 + length))).toEqual(
      encodeReplyHeader({ xid: XID, credits: 17, procedure: RdmaProcedure.MSG, writeList: [], replyChunk: null }),
    );
    expect(target[7]).toBe(0xee);
    expect(target[8 + length]).toBe(0xee);
    expect(() => encodePlainReplyHeader(new DataView(target.buffer), 0, XID, 0)).toThrow(/credit grant of 0/);
  });
});

describe('reply and error headers', () => {
  it(`encodes ERR_VERS in ${ERROR_VERS_BYTES} bytes naming version 1..1, and ERR_CHUNK in ${ERROR_CHUNK_BYTES}`, () => {
    expect(encodeErrorHeader(XID, 64, RejectAnswer.ERR_VERS)).toEqual(words(XID, 1, 64, 4, 1, 1, 1));
    expect(encodeErrorHeader(XID, 64, RejectAnswer.ERR_CHUNK)).toEqual(words(XID, 1, 64, 4, 2));
    expect(decodeReplyHeader(encodeErrorHeader(XID, 8, RejectAnswer.ERR_VERS))).toEqual({
      kind: 'error',
      xid: XID,
      credits: 8,
      errorCode: 1,
      versionLow: 1,
      versionHigh: 1,
    });
    expect(() => encodeErrorHeader(XID, 64, RejectAnswer.DROP)).toThrow(/sends no RDMA_ERROR/);
  });

  it('round-trips a reply header with written Write chunks and a Reply chunk', () => {
    const fields = {
      xid: XID,
      credits: 64,
      procedure: RdmaProcedure.NOMSG,
      writeList: longCall.writeList,
      replyChunk: longCall.replyChunk,
    } as const;
    const bytes = encodeReplyHeader(fields);
    expect(decodeReplyHeader(bytes)).toEqual({ kind: 'reply', ...fields, headerBytes: bytes.length });
  });

  it('writes into a caller buffer and refuses one that is too small', () => {
    const target = Buffer.alloc(64);
    const bytes = encodeReplyHeader({ xid: 1, credits: 1, procedure: 0, writeList: [], replyChunk: null }, target);
    expect(bytes.buffer).toBe(target.buffer);
    expect(bytes.length).toBe(MIN_MESSAGE_HEADER_BYTES);
    expect(() => encodeReplyHeader({ ...longCall, procedure: 0 }, Buffer.alloc(40))).toThrow(
      expect.objectContaining({ code: 'ERR_XDR_ENCODE_OVERFLOW' }),
    );
  });

  it('never grants 0 credits', () => {
    expect(() => encodeReplyHeader({ xid: 1, credits: 0, procedure: 0, writeList: [], replyChunk: null })).toThrow(/deadlock/);
  });
});
