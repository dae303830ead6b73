/**
 * Decoded chunk lists: plain immutable values made by the transport-header
 * decoder (or by a client building its call), read by the reply planner and the
 * RDMA Read/Write paths. They hold no resources: handles and offsets name the
 * requester's memory, which the requester owns.
 */
import type { RdmaProcedure } from '../protocol.js';

/** A piece of the requester's registered memory (RFC 8166 §3.4.3). */
export interface RdmaSegment {
  /** R_key, uint32. */
  readonly handle: number;
  /** Bytes, uint32. */
  readonly length: number;
  /** Remote virtual address, uint64. */
  readonly offset: bigint;
}

/** Segments with one XDR position: the data of one item (or of the whole call at position 0). */
export interface ReadChunk {
  /** Byte offset of the item in the reassembled RPC message; 0 for a long call. */
  readonly position: number;
  readonly segments: readonly RdmaSegment[];
  /** Sum of the segment lengths. */
  readonly length: number;
}

/** Segments the responder fills with RDMA Write: one result item, or the Reply chunk. */
export interface WriteChunk {
  readonly segments: readonly RdmaSegment[];
  /** Sum of the segment lengths: how many bytes the chunk can take. */
  readonly length: number;
}

/** The fields of an RDMA_MSG / RDMA_NOMSG call header: what a requester encodes, what the decoder returns. */
export interface CallHeaderFields {
  readonly xid: number;
  /** Credits the requester asks for. */
  readonly credits: number;
  readonly procedure: typeof RdmaProcedure.MSG | typeof RdmaProcedure.NOMSG;
  /** The position-zero Read chunk carrying the whole call (RDMA_NOMSG), or null. */
  readonly callChunk: ReadChunk | null;
  /** Data-item Read chunks, by ascending position, not overlapping. */
  readonly readChunks: readonly ReadChunk[];
  /** Write chunks, one per DDP-eligible result item, in result order. */
  readonly writeList: readonly WriteChunk[];
  readonly replyChunk: WriteChunk | null;
}

/** A decoded call header: its checked fields, plus the version and the sizes the decoder measured. */
export interface CallTransportHeader extends CallHeaderFields {
  readonly version: number;
  /** Bytes of transport header; the inline RPC message (if any) starts here. */
  readonly headerBytes: number;
  /** Bytes of RPC message received inline after the header. */
  readonly inlineBodyBytes: number;
}
