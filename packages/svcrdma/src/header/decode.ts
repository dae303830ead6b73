/**
 * The transport-header decoder of a received call (RFC 8166 §4), the first
 * thing a worker runs on a Receive buffer, before anything is allocated or any
 * RDMA Read is posted. Pure and synchronous: it reads the bytes it is given (it
 * never keeps them) and returns plain values, or throws a HeaderRejection whose
 * reason names the RFC-prescribed answer.
 *
 * Implementation limits (HeaderLimits): how many Read segments, Write chunks and
 * Write segments one call may name. Each becomes an RDMA Read or Write we post,
 * so the limits bound the work a single Receive can cause.
 *
 * Sanity checks:
 *   - every list fits in the received bytes (a hostile count cannot make us loop
 *     or allocate past what was received);
 *   - segments: handle not 0, Read segments not empty, offset + length does not
 *     wrap 2^64, Write/Reply chunks have at least one segment;
 *   - lengths: each chunk and the whole Read list within the payload maxima,
 *     summed without 32-bit overflow (JS numbers, bounded per segment first);
 *   - positions: data-item positions are XDR-aligned (multiple of 4), strictly
 *     ascending, do not start inside the previous chunk's data, and lie within
 *     the RPC message; position-zero segments come first and only with RDMA_NOMSG;
 *   - shape: RDMA_MSG has an inline body, RDMA_NOMSG has a call chunk and no body.
 */
import { XdrReader, isXdrError, XdrErrorCode, xdrPaddedLength } from '@roce-rpc/xdr';
import { HeaderRejectReason, HeaderRejection } from '../errors.js';
import {
  FIXED_HEADER_BYTES,
  INVALID_HANDLE,
  ITEM_ABSENT,
  ITEM_PRESENT,
  MAX_DATA_CHUNK_BYTES,
  MAX_READ_SEGMENTS,
  MAX_SEGMENTS_PER_WRITE_CHUNK,
  MAX_SPECIAL_CHUNK_BYTES,
  MAX_WRITE_CHUNKS,
  MAX_WRITE_SEGMENTS_TOTAL,
  MIN_MESSAGE_HEADER_BYTES,
  RdmaProcedure,
  RPCRDMA_VERSION,
  SEGMENT_BYTES,
} from '../protocol.js';
import { type CallTransportHeader, type RdmaSegment, type ReadChunk, type WriteChunk } from './chunks.js';

/** Implementation limits; the defaults come from protocol.ts. */
export interface HeaderLimits {
  readonly maxReadSegments: number;
  readonly maxWriteChunks: number;
  readonly maxSegmentsPerWriteChunk: number;
  readonly maxWriteSegmentsTotal: number;
  /** A data-item Read chunk or one Write chunk. */
  readonly maxDataChunkBytes: number;
  /** A position-zero Read chunk, the whole Read list, or the Reply chunk. */
  readonly maxSpecialChunkBytes: number;
}

export const defaultHeaderLimits: HeaderLimits = Object.freeze({
  maxReadSegments: MAX_READ_SEGMENTS,
  maxWriteChunks: MAX_WRITE_CHUNKS,
  maxSegmentsPerWriteChunk: MAX_SEGMENTS_PER_WRITE_CHUNK,
  maxWriteSegmentsTotal: MAX_WRITE_SEGMENTS_TOTAL,
  maxDataChunkBytes: MAX_DATA_CHUNK_BYTES,
  maxSpecialChunkBytes: MAX_SPECIAL_CHUNK_BYTES,
});

const ADDRESS_MAX = 0xffff_ffff_ffff_ffffn;

/** The four words every transport header starts with, and the reader left after them. */
export interface FixedHeader {
  readonly reader: XdrReader;
  readonly xid: number;
  readonly version: number;
  readonly credits: number;
  readonly procedure: number;
}

/**
 * Reads the fixed header of a call or a reply (RFC 8166 §4.2) and checks what
 * both directions check: that it was received whole and names our version.
 * @throws HeaderRejection SHORT_FIXED_HEADER or UNSUPPORTED_VERSION
 */
export function decodeFixedHeader(message: Uint8Array): FixedHeader {
  if (message.length < FIXED_HEADER_BYTES) {
    throw new HeaderRejection(HeaderRejectReason.SHORT_FIXED_HEADER, null, `${message.length} bytes received`);
  }
  const reader = new XdrReader(message);
  const xid = reader.readUint();
  const version = reader.readUint();
  const credits = reader.readUint();
  const procedure = reader.readUint();
  if (version !== RPCRDMA_VERSION) reject(HeaderRejectReason.UNSUPPORTED_VERSION, xid, `version ${version}`);
  return { reader, xid, version, credits, procedure };
}

/**
 * Whether the `length` received bytes at `offset` of `words` are a plain call:
 * RDMA_MSG, version 1, no Read list, Write list or Reply chunk, an RPC message
 * behind the 28-byte header (MIN_MESSAGE_HEADER_BYTES), whose only varying
 * words are the xid (word 0) and the credits asked (word 2). Nearly every call
 * without bulk data (NULL, GETATTR, LOOKUP, CREATE ...) is one; anything else
 * goes to decodeCallHeader, which checks it fully. The worker-thread path
 * recognises the same header natively (crates/verbs/src/service_call_header.rs).
 */
export function isPlainCall(words: DataView, offset: number, length: number): boolean {
  return (
    length > MIN_MESSAGE_HEADER_BYTES &&
    words.getUint32(offset + 4) === RPCRDMA_VERSION &&
    words.getUint32(offset + 12) === RdmaProcedure.MSG &&
    words.getUint32(offset + 16) === ITEM_ABSENT &&
    words.getUint32(offset + 20) === ITEM_ABSENT &&
    words.getUint32(offset + 24) === ITEM_ABSENT
  );
}

/** Decoding state of one header: the reader plus what the checks need to name. */
interface Decoding {
  readonly reader: XdrReader;
  readonly xid: number;
  readonly limits: HeaderLimits;
  writeSegments: number;
}

/**
 * Decodes and checks the transport header of a call.
 * @param message the received bytes (transport header, then the inline RPC message)
 * @returns the header; the inline RPC message is `message.subarray(header.headerBytes)`
 * @throws HeaderRejection for every malformed or over-limit header; nothing else
 */
export function decodeCallHeader(message: Uint8Array, limits: HeaderLimits = defaultHeaderLimits): CallTransportHeader {
  const { reader, xid, version, credits, procedure } = decodeFixedHeader(message);
  if (procedure !== RdmaProcedure.MSG && procedure !== RdmaProcedure.NOMSG) rejectProcedure(procedure, xid);

  const decoding: Decoding = { reader, xid, limits, writeSegments: 0 };
  const lists = decodeChunkLists(decoding);
  const headerBytes = reader.position;
  const inlineBodyBytes = message.length - headerBytes;
  const header: CallTransportHeader = {
    xid,
    version,
    credits,
    procedure: procedure as typeof RdmaProcedure.MSG | typeof RdmaProcedure.NOMSG,
    ...lists,
    headerBytes,
    inlineBodyBytes,
  };
  checkMessageShape(header);
  checkReadPositions(header);
  return header;
}

function rejectProcedure(procedure: number, xid: number): never {
  switch (procedure) {
    case RdmaProcedure.MSGP:
      return reject(HeaderRejectReason.PADDED_MESSAGE, xid, 'RDMA_MSGP is not supported');
    case RdmaProcedure.DONE:
      return reject(HeaderRejectReason.DONE_MESSAGE, xid, 'RDMA_DONE is deprecated');
    case RdmaProcedure.ERROR:
      return reject(HeaderRejectReason.ERROR_MESSAGE, xid, 'RDMA_ERROR from a requester');
    default:
      return reject(HeaderRejectReason.UNKNOWN_PROCEDURE, xid, `procedure ${procedure}`);
  }
}

type ChunkLists = Pick<CallTransportHeader, 'callChunk' | 'readChunks' | 'writeList' | 'replyChunk'>;

/** The three lists; XDR-level failures (short input, bad bool) become rejections. */
function decodeChunkLists(decoding: Decoding): ChunkLists {
  try {
    const { callChunk, readChunks } = decodeReadList(decoding);
    const writeList = decodeWriteList(decoding);
    const replyChunk = itemPresent(decoding)
      ? decodeWriteChunk(decoding, decoding.limits.maxSpecialChunkBytes, HeaderRejectReason.REPLY_CHUNK_TOO_LONG)
      : null;
    return { callChunk, readChunks, writeList, replyChunk };
  } catch (error) {
    if (!isXdrError(error)) throw error;
    const reason =
      error.code === XdrErrorCode.BAD_BOOL ? HeaderRejectReason.BAD_DISCRIMINATOR : HeaderRejectReason.TRUNCATED_CHUNK_LISTS;
    return reject(reason, decoding.xid, error.message);
  }
}

function itemPresent(decoding: Decoding): boolean {
  const discriminator = decoding.reader.readUint();
  if (discriminator === ITEM_PRESENT) return true;
  if (discriminator === ITEM_ABSENT) return false;
  return reject(HeaderRejectReason.BAD_DISCRIMINATOR, decoding.xid, `discriminator ${discriminator}`);
}

/** Builds chunks while reading: consecutive segments with one position form one chunk. */
class ReadListBuilder {
  readonly callSegments: RdmaSegment[] = [];
  readonly dataChunks: { position: number; segments: RdmaSegment[] }[] = [];
  segmentCount = 0;

  add(decoding: Decoding, position: number, segment: RdmaSegment): void {
    if (position === 0) {
      if (this.dataChunks.length > 0) reject(HeaderRejectReason.SCATTERED_CALL_CHUNK, decoding.xid, 'position 0 after data items');
      this.callSegments.push(segment);
      return;
    }
    if (position % 4 !== 0) reject(HeaderRejectReason.MISALIGNED_POSITION, decoding.xid, `position ${position}`);
    const last = this.dataChunks.at(-1);
    if (last !== undefined && position === last.position) {
      last.segments.push(segment);
      return;
    }
    if (last !== undefined && position < last.position) {
      reject(HeaderRejectReason.OVERLAPPING_READ_CHUNKS, decoding.xid, `position ${position} after ${last.position}`);
    }
    this.dataChunks.push({ position, segments: [segment] });
  }
}

function decodeReadList(decoding: Decoding): Pick<ChunkLists, 'callChunk' | 'readChunks'> {
  const { reader, limits, xid } = decoding;
  const builder = new ReadListBuilder();
  while (itemPresent(decoding)) {
    if (builder.segmentCount === limits.maxReadSegments) {
      reject(HeaderRejectReason.TOO_MANY_READ_SEGMENTS, xid, `more than ${limits.maxReadSegments}`);
    }
    builder.segmentCount++;
    const position = reader.readUint();
    const segment = decodeSegment(decoding);
    if (segment.length === 0) reject(HeaderRejectReason.EMPTY_READ_SEGMENT, xid, `at position ${position}`);
    builder.add(decoding, position, segment);
  }
  const callChunk =
    builder.callSegments.length === 0
      ? null
      : sealReadChunk(decoding, 0, builder.callSegments, limits.maxSpecialChunkBytes);
  const readChunks = builder.dataChunks.map((chunk) =>
    sealReadChunk(decoding, chunk.position, chunk.segments, limits.maxDataChunkBytes),
  );
  let total = callChunk?.length ?? 0;
  for (const chunk of readChunks) total += chunk.length;
  if (total > limits.maxSpecialChunkBytes) {
    reject(HeaderRejectReason.READ_LIST_TOO_LONG, xid, `${total} bytes exceed ${limits.maxSpecialChunkBytes}`);
  }
  return { callChunk, readChunks };
}

function sealReadChunk(decoding: Decoding, position: number, segments: RdmaSegment[], maxBytes: number): ReadChunk {
  // Each segment length is a uint32, and segments are bounded in number, so the sum is exact.
  let length = 0;
  for (const segment of segments) length += segment.length;
  if (length > maxBytes) {
    reject(HeaderRejectReason.READ_CHUNK_TOO_LONG, decoding.xid, `${length} bytes at position ${position} exceed ${maxBytes}`);
  }
  return { position, segments, length };
}

function decodeWriteList(decoding: Decoding): WriteChunk[] {
  const chunks: WriteChunk[] = [];
  while (itemPresent(decoding)) {
    if (chunks.length === decoding.limits.maxWriteChunks) {
      reject(HeaderRejectReason.TOO_MANY_WRITE_CHUNKS, decoding.xid, `more than ${decoding.limits.maxWriteChunks}`);
    }
    chunks.push(decodeWriteChunk(decoding, decoding.limits.maxDataChunkBytes, HeaderRejectReason.WRITE_CHUNK_TOO_LONG));
  }
  return chunks;
}

function decodeWriteChunk(decoding: Decoding, maxBytes: number, tooLong: HeaderRejectReason): WriteChunk {
  const { reader, limits, xid } = decoding;
  const count = reader.readUint();
  if (count === 0) reject(HeaderRejectReason.EMPTY_WRITE_CHUNK, xid, 'segment count 0');
  if (count > limits.maxSegmentsPerWriteChunk) {
    reject(HeaderRejectReason.TOO_MANY_WRITE_SEGMENTS, xid, `${count} segments in one chunk`);
  }
  decoding.writeSegments += count;
  if (decoding.writeSegments > limits.maxWriteSegmentsTotal) {
    reject(HeaderRejectReason.TOO_MANY_WRITE_SEGMENTS, xid, `${decoding.writeSegments} segments in all chunks`);
  }
  if (count * SEGMENT_BYTES > reader.remaining) {
    reject(HeaderRejectReason.TRUNCATED_CHUNK_LISTS, xid, `${count} segments need ${count * SEGMENT_BYTES} bytes`);
  }
  const segments: RdmaSegment[] = [];
  let length = 0;
  for (let index = 0; index < count; index++) {
    const segment = decodeSegment(decoding);
    segments.push(segment);
    length += segment.length;
  }
  if (length > maxBytes) reject(tooLong, xid, `${length} bytes exceed ${maxBytes}`);
  return { segments, length };
}

function decodeSegment(decoding: Decoding): RdmaSegment {
  const { reader, xid } = decoding;
  const handle = reader.readUint();
  const length = reader.readUint();
  const offset = reader.readUhyper();
  if (handle === INVALID_HANDLE) reject(HeaderRejectReason.INVALID_HANDLE, xid, 'handle 0');
  if (offset + BigInt(length) > ADDRESS_MAX) {
    reject(HeaderRejectReason.SEGMENT_WRAPS, xid, `offset 0x${offset.toString(16)} + ${length} bytes`);
  }
  return { handle, length, offset };
}

function checkMessageShape(header: CallTransportHeader): void {
  const { xid } = header;
  if (header.procedure === RdmaProcedure.MSG) {
    if (header.callChunk !== null) reject(HeaderRejectReason.CALL_CHUNK_WITH_MSG, xid, 'RDMA_MSG with a position-zero chunk');
    if (header.inlineBodyBytes === 0) reject(HeaderRejectReason.MSG_WITHOUT_BODY, xid, 'RDMA_MSG with no RPC message');
    return;
  }
  if (header.callChunk === null) reject(HeaderRejectReason.NOMSG_WITHOUT_CALL_CHUNK, xid, 'RDMA_NOMSG with no call chunk');
  if (header.inlineBodyBytes !== 0) {
    reject(HeaderRejectReason.NOMSG_WITH_INLINE_BODY, xid, `${header.inlineBodyBytes} bytes after an RDMA_NOMSG header`);
  }
}

/**
 * Positions count bytes of the reassembled message: inline bytes plus the
 * (XDR-padded) data of earlier chunks. Walking the chunks in order, the inline
 * bytes consumed between them must never exceed what arrived inline (or, for a
 * long call, what the position-zero chunk holds).
 */
function checkReadPositions(header: CallTransportHeader): void {
  const inlineBytes = header.callChunk === null ? header.inlineBodyBytes : header.callChunk.length;
  let streamCursor = 0;
  let inlineConsumed = 0;
  for (const chunk of header.readChunks) {
    if (chunk.position < streamCursor) {
      reject(HeaderRejectReason.OVERLAPPING_READ_CHUNKS, header.xid, `position ${chunk.position} inside data ending at ${streamCursor}`);
    }
    inlineConsumed += chunk.position - streamCursor;
    if (inlineConsumed > inlineBytes) {
      reject(HeaderRejectReason.READ_CHUNK_BEYOND_MESSAGE, header.xid, `position ${chunk.position} past a ${inlineBytes}-byte message`);
    }
    // A chunk's data is followed by its XDR pad in the stream, not in the chunk.
    streamCursor = chunk.position + xdrPaddedLength(chunk.length);
  }
}

/** Throws the HeaderRejection that names `reason`; typed `never` so checks read as one line. */
export function reject(reason: HeaderRejectReason, xid: number | null, detail: string): never {
  throw new HeaderRejection(reason, xid, detail);
}
