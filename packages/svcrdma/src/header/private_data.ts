/**
 * RDMA-CM private data (RFC 8797): the 8 bytes each side puts in its connect
 * request or accept to announce its inline sizes. Pure. A peer that sends none
 * (or something else) gets the RFC 8166 default of 1024 bytes each way.
 */
import {
  CM_FLAG_REMOTE_INVALIDATE,
  CM_PRIVATE_DATA_BYTES,
  CM_PRIVATE_DATA_MAGIC,
  CM_PRIVATE_DATA_OFFSET,
  CM_PRIVATE_DATA_VERSION,
  CM_SIZE_MAX_BYTES,
  CM_SIZE_UNIT_BYTES,
  RFC8166_DEFAULT_INLINE_BYTES,
} from '../protocol.js';
import { SvcRdmaError, SvcRdmaErrorCode } from '../errors.js';

export interface ConnectPrivateData {
  /** Largest message the peer sends inline. */
  readonly sendBytes: number;
  /** Largest message the peer can receive inline: our inline threshold towards it. */
  readonly receiveBytes: number;
  /** The peer accepts Send With Invalidate. */
  readonly remoteInvalidate: boolean;
}

export const defaultConnectPrivateData: ConnectPrivateData = Object.freeze({
  sendBytes: RFC8166_DEFAULT_INLINE_BYTES,
  receiveBytes: RFC8166_DEFAULT_INLINE_BYTES,
  remoteInvalidate: false,
});

function encodeSize(field: string, bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < CM_SIZE_UNIT_BYTES || bytes > CM_SIZE_MAX_BYTES || bytes % CM_SIZE_UNIT_BYTES !== 0) {
    throw new SvcRdmaError(SvcRdmaErrorCode.BAD_PRIVATE_DATA, `${field} ${bytes} is not a multiple of 1 KiB in [1 KiB, 256 KiB]`);
  }
  return bytes / CM_SIZE_UNIT_BYTES - 1;
}

export function encodeConnectPrivateData(data: ConnectPrivateData): Buffer {
  const bytes = Buffer.alloc(CM_PRIVATE_DATA_BYTES);
  bytes.writeUInt32BE(CM_PRIVATE_DATA_MAGIC, CM_PRIVATE_DATA_OFFSET.magic);
  bytes[CM_PRIVATE_DATA_OFFSET.version] = CM_PRIVATE_DATA_VERSION;
  bytes[CM_PRIVATE_DATA_OFFSET.flags] = data.remoteInvalidate ? CM_FLAG_REMOTE_INVALIDATE : 0;
  bytes[CM_PRIVATE_DATA_OFFSET.sendSize] = encodeSize('sendBytes', data.sendBytes);
  bytes[CM_PRIVATE_DATA_OFFSET.receiveSize] = encodeSize('receiveBytes', data.receiveBytes);
  return bytes;
}

/**
 * Reads a peer's private data. rdma_cm pads private data with zeros up to a
 * transport-defined length, so only the first 8 bytes matter.
 * @returns the peer's sizes, or the RFC 8166 defaults if it sent no RFC 8797 data
 */
export function decodeConnectPrivateData(bytes: Uint8Array | null): ConnectPrivateData {
  if (bytes === null || bytes.length < CM_PRIVATE_DATA_BYTES) return defaultConnectPrivateData;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.readUInt32BE(CM_PRIVATE_DATA_OFFSET.magic) !== CM_PRIVATE_DATA_MAGIC) return defaultConnectPrivateData;
  if (view[CM_PRIVATE_DATA_OFFSET.version] !== CM_PRIVATE_DATA_VERSION) return defaultConnectPrivateData;
  return {
    sendBytes: ((view[CM_PRIVATE_DATA_OFFSET.sendSize] as number) + 1) * CM_SIZE_UNIT_BYTES,
    receiveBytes: ((view[CM_PRIVATE_DATA_OFFSET.receiveSize] as number) + 1) * CM_SIZE_UNIT_BYTES,
    remoteInvalidate: ((view[CM_PRIVATE_DATA_OFFSET.flags] as number) & CM_FLAG_REMOTE_INVALIDATE) !== 0,
  };
}
