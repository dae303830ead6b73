/**
 * The requester's side: decodes the transport header of a reply (RDMA_MSG,
 * RDMA_NOMSG or RDMA_ERROR). Used by this package's client. Pure; throws
 * HeaderRejection (answer DROP: a requester never answers a reply) for anything
 * malformed, so a bad reply retires nothing it should not.
 */
import { XdrReader, isXdrError } from '@roce-rpc/xdr';
import { HeaderRejectReason } from '../errors.js';
import {
  ITEM_ABSENT,
  ITEM_PRESENT,
  MAX_SEGMENTS_PER_WRITE_CHUNK,
  MAX_WRITE_CHUNKS,
  RdmaErrorCode,
  RdmaProcedure,
} from '../protocol.js';
import type { RdmaSegment, WriteChunk } from './chunks.js';
import { decodeFixedHeader, reject } from './decode.js';

export type ReplyTransportHeader =
  | {
      readonly kind: 'reply';
      readonly xid: number;
      readonly credits: number;
      readonly procedure: typeof RdmaProcedure.MSG | typeof RdmaProcedure.NOMSG;
      /** Write chunks with the lengths the responder actually wrote. */
      readonly writeList: readonly WriteChunk[];
      readonly replyChunk: WriteChunk | null;
      readonly headerBytes: number;
    }
  | {
      readonly kind: 'error';
      readonly xid: number;
      readonly credits: number;
      readonly errorCode: RdmaErrorCode;
      /** The responder's supported range, for ERR_VERS. */
      readonly versionLow: number | null;
      readonly versionHigh: number | null;
    };

export function decodeReplyHeader(message: Uint8Array): ReplyTransportHeader {
  const { reader, xid, credits, procedure } = decodeFixedHeader(message);
  try {
    if (procedure === RdmaProcedure.ERROR) return decodeError(reader, xid, credits);
    if (procedure !== RdmaProcedure.MSG && procedure !== RdmaProcedure.NOMSG) {
      reject(HeaderRejectReason.UNKNOWN_PROCEDURE, xid, `procedure ${procedure} in a reply`);
    }
    if (present(reader, xid)) reject(HeaderRejectReason.BAD_DISCRIMINATOR, xid, 'a reply with a Read list');
    const writeList: WriteChunk[] = [];
    while (present(reader, xid)) {
      if (writeList.length === MAX_WRITE_CHUNKS) reject(HeaderRejectReason.TOO_MANY_WRITE_CHUNKS, xid, 'in a reply');
      writeList.push(decodeWriteChunk(reader, xid));
    }
    const replyChunk = present(reader, xid) ? decodeWriteChunk(reader, xid) : null;
    return { kind: 'reply', xid, credits, procedure, writeList, replyChunk, headerBytes: reader.position };
  } catch (error) {
    if (!isXdrError(error)) throw error;
    return reject(HeaderRejectReason.TRUNCATED_CHUNK_LISTS, xid, error.message);
  }
}

function decodeError(reader: XdrReader, xid: number, credits: number): ReplyTransportHeader {
  const errorCode = reader.readUint();
  if (errorCode === RdmaErrorCode.VERS) {
    const versionLow = reader.readUint();
    const versionHigh = reader.readUint();
    return { kind: 'error', xid, credits, errorCode, versionLow, versionHigh };
  }
  if (errorCode === RdmaErrorCode.CHUNK) return { kind: 'error', xid, credits, errorCode, versionLow: null, versionHigh: null };
  return reject(HeaderRejectReason.UNKNOWN_PROCEDURE, xid, `RDMA_ERROR code ${errorCode}`);
}

function present(reader: XdrReader, xid: number): boolean {
  const discriminator = reader.readUint();
  if (discriminator !== ITEM_PRESENT && discriminator !== ITEM_ABSENT) {
    reject(HeaderRejectReason.BAD_DISCRIMINATOR, xid, `discriminator ${discriminator}`);
  }
  return discriminator === ITEM_PRESENT;
}

function decodeWriteChunk(reader: XdrReader, xid: number): WriteChunk {
  const count = reader.readUint();
  if (count > MAX_SEGMENTS_PER_WRITE_CHUNK) reject(HeaderRejectReason.TOO_MANY_WRITE_SEGMENTS, xid, `${count} in a reply`);
  const segments: RdmaSegment[] = [];
  let length = 0;
  for (let index = 0; index < count; index++) {
    const segment = { handle: reader.readUint(), length: reader.readUint(), offset: reader.readUhyper() };
    segments.push(segment);
    length += segment.length;
  }
  return { segments, length };
}
