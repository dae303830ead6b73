/**
 * Transport-header encoders: the responder's reply and RDMA_ERROR headers, and
 * the requester's call header (used by this package's client). Pure: each
 * encodes into a caller's buffer (a send context's registered header buffer)
 * or a fresh one, and returns the encoded bytes as a view of it.
 */
import assert from 'node:assert';
import { XdrWriter } from '@roce-rpc/xdr';
import { RejectAnswer } from '../errors.js';
import {
  ERROR_VERS_BYTES,
  FIXED_HEADER_BYTES,
  SEGMENT_BYTES,
  WORD_BYTES,
  WRITE_CHUNK_HEADER_BYTES,
  ITEM_ABSENT,
  ITEM_PRESENT,
  MIN_MESSAGE_HEADER_BYTES,
  RdmaErrorCode,
  RdmaProcedure,
  RPCRDMA_VERSION,
} from '../protocol.js';
import type { CallHeaderFields, RdmaSegment, WriteChunk } from './chunks.js';

/** The header of a reply: Write chunks carry the lengths actually written. */
export interface ReplyHeaderFields {
  readonly xid: number;
  /** Credits granted, never 0. */
  readonly credits: number;
  readonly procedure: typeof RdmaProcedure.MSG | typeof RdmaProcedure.NOMSG;
  readonly writeList: readonly WriteChunk[];
  readonly replyChunk: WriteChunk | null;
}

/** Largest header these encoders write when the caller gives no buffer: one 4 KiB Send. */
const defaultHeaderBufferBytes = 4096;

export function encodeReplyHeader(fields: ReplyHeaderFields, target?: Uint8Array): Buffer {
  assert(fields.credits > 0, 'a credit grant of 0 would deadlock the requester');
  const writer = headerWriter(target);
  writeFixedHeader(writer, fields.xid, fields.credits, fields.procedure);
  writer.writeUint(ITEM_ABSENT); // replies never carry a Read list (RFC 8166 §4.3.1)
  writeWriteList(writer, fields.writeList);
  writeOptionalWriteChunk(writer, fields.replyChunk);
  return writer.finish().inline;
}

/**
 * The reply header of a plain call (see isPlainCall) whose reply goes inline
 * without bulk items: what encodeReplyHeader writes for RDMA_MSG with no
 * chunks, written as seven words at `offset` of `words` without a writer or
 * field objects. Returns its length, MIN_MESSAGE_HEADER_BYTES.
 */
export function encodePlainReplyHeader(words: DataView, offset: number, xid: number, credits: number): number {
  assert(credits > 0, 'a credit grant of 0 would deadlock the requester');
  words.setUint32(offset, xid);
  words.setUint32(offset + 4, RPCRDMA_VERSION);
  words.setUint32(offset + 8, credits);
  words.setUint32(offset + 12, RdmaProcedure.MSG);
  // Replies carry no Read list; no Write list, no Reply chunk.
  words.setUint32(offset + 16, ITEM_ABSENT);
  words.setUint32(offset + 20, ITEM_ABSENT);
  words.setUint32(offset + 24, ITEM_ABSENT);
  return MIN_MESSAGE_HEADER_BYTES;
}

/** Bytes encodeReplyHeader will write for these fields, without encoding them. */
export function replyHeaderBytes(fields: ReplyHeaderFields): number {
  // fixed header, Read list terminator, Write list terminator, Reply chunk discriminator
  let bytes = FIXED_HEADER_BYTES + 3 * WORD_BYTES;
  for (const chunk of fields.writeList) bytes += WRITE_CHUNK_HEADER_BYTES + chunk.segments.length * SEGMENT_BYTES;
  // A present Reply chunk replaces its absent discriminator with present + count + segments.
  if (fields.replyChunk !== null) bytes += WORD_BYTES + fields.replyChunk.segments.length * SEGMENT_BYTES;
  return bytes;
}

/**
 * RDMA_ERROR for a rejected call. ERR_VERS names the range we support (1..1);
 * any other answer that sends something is ERR_CHUNK.
 */
export function encodeErrorHeader(xid: number, credits: number, answer: RejectAnswer, target?: Uint8Array): Buffer {
  assert(answer === RejectAnswer.ERR_VERS || answer === RejectAnswer.ERR_CHUNK, `answer ${answer} sends no RDMA_ERROR`);
  const writer = headerWriter(target, ERROR_VERS_BYTES);
  writeFixedHeader(writer, xid, credits, RdmaProcedure.ERROR);
  if (answer === RejectAnswer.ERR_VERS) {
    writer.writeUint(RdmaErrorCode.VERS);
    writer.writeUint(RPCRDMA_VERSION);
    writer.writeUint(RPCRDMA_VERSION);
  } else {
    writer.writeUint(RdmaErrorCode.CHUNK);
  }
  return writer.finish().inline;
}

export function encodeCallHeader(fields: CallHeaderFields, target?: Uint8Array): Buffer {
  const writer = headerWriter(target);
  writeFixedHeader(writer, fields.xid, fields.credits, fields.procedure);
  const chunks = fields.callChunk === null ? fields.readChunks : [fields.callChunk, ...fields.readChunks];
  for (const chunk of chunks) {
    for (const segment of chunk.segments) {
      writer.writeUint(ITEM_PRESENT);
      writer.writeUint(chunk.position);
      writeSegment(writer, segment);
    }
  }
  writer.writeUint(ITEM_ABSENT);
  writeWriteList(writer, fields.writeList);
  writeOptionalWriteChunk(writer, fields.replyChunk);
  return writer.finish().inline;
}

function headerWriter(target: Uint8Array | undefined, maxBytes = defaultHeaderBufferBytes): XdrWriter {
  return target === undefined ? new XdrWriter({ initialBytes: maxBytes, maxBytes }) : new XdrWriter({ buffer: target });
}

function writeFixedHeader(writer: XdrWriter, xid: number, credits: number, procedure: RdmaProcedure): void {
  writer.writeUint(xid);
  writer.writeUint(RPCRDMA_VERSION);
  writer.writeUint(credits);
  writer.writeUint(procedure);
}

function writeWriteList(writer: XdrWriter, chunks: readonly WriteChunk[]): void {
  for (const chunk of chunks) {
    writer.writeUint(ITEM_PRESENT);
    writeWriteChunkBody(writer, chunk);
  }
  writer.writeUint(ITEM_ABSENT);
}

function writeOptionalWriteChunk(writer: XdrWriter, chunk: WriteChunk | null): void {
  if (chunk === null) {
    writer.writeUint(ITEM_ABSENT);
    return;
  }
  writer.writeUint(ITEM_PRESENT);
  writeWriteChunkBody(writer, chunk);
}

function writeWriteChunkBody(writer: XdrWriter, chunk: WriteChunk): void {
  writer.writeUint(chunk.segments.length);
  for (const segment of chunk.segments) writeSegment(writer, segment);
}

function writeSegment(writer: XdrWriter, segment: RdmaSegment): void {
  writer.writeUint(segment.handle);
  writer.writeUint(segment.length);
  writer.writeUhyper(segment.offset);
}
