/**
 * RPC-over-RDMA version 1 wire protocol (RFC 8166 §4-5, RDMA-CM private data
 * from RFC 8797): every constant and layout this package puts on or reads from
 * the wire, and nothing else. All fields are XDR (RFC 4506): big-endian, 4-byte
 * units. Derived limits show their arithmetic so the decoder, the encoder and
 * the tests share one truth.
 */

// ---------------------------------------------------------------------------
// XDR units.
// ---------------------------------------------------------------------------
/** RFC 4506 §3: every XDR item occupies a multiple of this many bytes. */
export const XDR_UNIT_BYTES = 4;
/** An XDR uint32 / enum / bool / optional-data discriminator. */
export const WORD_BYTES = 4;
/** An XDR uint64 (hyper). */
export const HYPER_BYTES = 8;
/** Optional-data discriminators (RFC 4506 §4.19): the list continues / ends. */
export const ITEM_PRESENT = 1;
export const ITEM_ABSENT = 0;

// ---------------------------------------------------------------------------
// The fixed header (16 bytes), first in every RPC-over-RDMA message.
//
//   0          4          8           12          16
//   +----------+----------+-----------+-----------+---------- - -
//   | rdma_xid | rdma_vers| rdma_credit| rdma_proc | body (by proc)
//   +----------+----------+-----------+-----------+---------- - -
// ---------------------------------------------------------------------------
export const FIXED_HEADER_OFFSET = {
  /** Mirrors the RPC message's XID, so an RDMA_ERROR can name the call it rejects. */
  xid: 0,
  version: 4,
  /** Requested credits in a call, granted credits in a reply (RFC 8166 §3.3.1). */
  credits: 8,
  procedure: 12,
} as const;
export const FIXED_HEADER_BYTES = 4 * WORD_BYTES;

/** The only version this implementation speaks (rdma_vers). */
export const RPCRDMA_VERSION = 1;

/** rdma_proc values (RFC 8166 §4.2.4). */
export const RdmaProcedure = {
  /** An RPC message follows the transport header inline (or partly in chunks). */
  MSG: 0,
  /** No RPC message inline: it travels in a position-zero Read chunk (call) or the Reply chunk (reply). */
  NOMSG: 1,
  /** Padded message: deprecated by RFC 8166 §4.2.4; we never send it and answer it with ERR_CHUNK. */
  MSGP: 2,
  /** Requester's "done with the Read chunk": deprecated; a responder drops it. */
  DONE: 3,
  /** Transport-level error about the message with this XID. */
  ERROR: 4,
} as const;
export type RdmaProcedure = (typeof RdmaProcedure)[keyof typeof RdmaProcedure];

/** rdma_err values carried by RDMA_ERROR (RFC 8166 §4.2.5). */
export const RdmaErrorCode = {
  /** Unsupported rdma_vers; followed by the supported range (low, high). */
  VERS: 1,
  /** Any header, chunk or reply-resource problem; no further fields. */
  CHUNK: 2,
} as const;
export type RdmaErrorCode = (typeof RdmaErrorCode)[keyof typeof RdmaErrorCode];

// ---------------------------------------------------------------------------
// The RDMA segment (16 bytes): a piece of registered memory on the requester.
//
//   0         4         8                     16
//   +---------+---------+---------------------+
//   | handle  | length  | offset (uint64)     |
//   +---------+---------+---------------------+
// handle = R_key, offset = remote virtual address (RFC 8166 §3.4.3).
// ---------------------------------------------------------------------------
export const SEGMENT_OFFSET = { handle: 0, length: 4, offset: 8 } as const;
export const SEGMENT_BYTES = 2 * WORD_BYTES + HYPER_BYTES; // 16

// ---------------------------------------------------------------------------
// The Read list (RFC 8166 §4.3.1): a linked list of Read segments, each with the
// XDR position of the data it replaces. Segments with equal positions that follow
// each other form one Read chunk. Position 0 carries the whole RPC call (a "long
// call", sent with RDMA_NOMSG).
//
//   +---------+----------+---------+---------+--------------+     +---------+
//   | present | position | handle  | length  | offset       | ... | absent  |
//   +---------+----------+---------+---------+--------------+     +---------+
// ---------------------------------------------------------------------------
export const READ_SEGMENT_BYTES = WORD_BYTES + SEGMENT_BYTES; // position + segment = 20
/** One Read list entry with its present discriminator: 4 + 20 = 24. */
export const READ_LIST_ENTRY_BYTES = WORD_BYTES + READ_SEGMENT_BYTES;

// ---------------------------------------------------------------------------
// The Write list (RFC 8166 §4.3.2): a linked list of Write chunks; each chunk is
// a counted array of segments the responder fills with RDMA Write. The Reply
// chunk (§4.3.3) is one optional Write chunk for a reply too long to send inline.
//
//   +---------+---------+---------+-----+---------+     +---------+
//   | present | count N | seg 0   | ... | seg N-1 | ... | absent  |
//   +---------+---------+---------+-----+---------+     +---------+
// ---------------------------------------------------------------------------
/** present discriminator + segment count: 8. */
export const WRITE_CHUNK_HEADER_BYTES = 2 * WORD_BYTES;

/** The three chunk lists, all empty: read-list end, write-list end, reply chunk absent. */
export const EMPTY_CHUNK_LISTS_BYTES = 3 * WORD_BYTES; // 12
/** RDMA_MSG / RDMA_NOMSG with no chunks: 16 + 12 = 28 (Linux's RPCRDMA_HDRLEN_MIN). */
export const MIN_MESSAGE_HEADER_BYTES = FIXED_HEADER_BYTES + EMPTY_CHUNK_LISTS_BYTES;
/** RDMA_MSGP adds rdma_align and rdma_thresh before the chunk lists: 28 + 8 = 36. */
export const MIN_PADDED_HEADER_BYTES = MIN_MESSAGE_HEADER_BYTES + 2 * WORD_BYTES;
/** RDMA_ERROR with ERR_CHUNK: fixed header + rdma_err = 20. */
export const ERROR_CHUNK_BYTES = FIXED_HEADER_BYTES + WORD_BYTES;
/** RDMA_ERROR with ERR_VERS: fixed header + rdma_err + low + high = 28. */
export const ERROR_VERS_BYTES = FIXED_HEADER_BYTES + 3 * WORD_BYTES;

// ---------------------------------------------------------------------------
// Inline thresholds and credits.
// ---------------------------------------------------------------------------
/**
 * RFC 8166 §3.3.3: without another agreement, each peer assumes the other
 * receives at most 1024 bytes inline. A client that sends RFC 8797 private data
 * tells us its real receive size instead.
 */
export const RFC8166_DEFAULT_INLINE_BYTES = 1024;
/**
 * Our receive buffer per posted Receive, advertised in our RFC 8797 private data:
 * 4096 is Linux's svcrdma_max_req_size default (RPCRDMA_DEF_INLINE_THRESH) and
 * what the Linux client expects; 4 KiB holds every NFS call but WRITE payloads.
 */
export const DEFAULT_RECEIVE_INLINE_BYTES = 4096;
/** Linux's bounds on that size (min_max_inline .. max_max_inline). */
export const MIN_RECEIVE_INLINE_BYTES = 4096;
export const MAX_RECEIVE_INLINE_BYTES = 65536;

/**
 * Credits (RFC 8166 §3.3.1): how many calls a client may have outstanding, each
 * matched by a Receive we posted. 64 is Linux's svcrdma_max_requests default;
 * 4..16384 are the bounds it accepts. A grant is never 0 (that would deadlock
 * the client, §3.3.1).
 */
export const DEFAULT_CREDITS = 64;
export const MIN_CREDITS = 4;
export const MAX_CREDITS = 16384;
export const MIN_CREDIT_GRANT = 1;

// ---------------------------------------------------------------------------
// Payload limits. A responder must bound what a hostile header can make it read
// (RDMA Read) or write (RDMA Write) before it allocates anything.
// ---------------------------------------------------------------------------
/** Largest NFS READ/WRITE payload we serve: 1 MiB (Linux RPCSVC_MAXPAYLOAD). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/**
 * A position-zero Read chunk or a Reply chunk holds a whole RPC message: the
 * payload plus its RPC and NFS headers. Linux allows two extra pages:
 * 1 MiB + 2 * 4096 = 1 056 768.
 */
export const PAGE_BYTES = 4096;
export const MAX_SPECIAL_CHUNK_BYTES = MAX_PAYLOAD_BYTES + 2 * PAGE_BYTES;
/** A data-item Read chunk or a Write chunk carries at most one payload. */
export const MAX_DATA_CHUNK_BYTES = MAX_PAYLOAD_BYTES;

// ---------------------------------------------------------------------------
// Segment and chunk counts. Any count is already bounded by how many entries fit
// in one Receive buffer; the explicit maxima below also bound the work (RDMA
// Reads/Writes posted) that one call can cause.
// ---------------------------------------------------------------------------
/**
 * Read segments that fit in the largest Receive buffer after the fixed header
 * and the two list terminators: (65536 - 16 - 12) / 24 = 2729. A 4 KiB buffer
 * holds (4096 - 28) / 24 = 169.
 */
export const READ_SEGMENTS_PER_BUFFER_MAX = Math.floor(
  (MAX_RECEIVE_INLINE_BYTES - MIN_MESSAGE_HEADER_BYTES) / READ_LIST_ENTRY_BYTES,
);
/**
 * Implementation limit on Read segments per call: a 1 MiB payload split into
 * 4 KiB pages needs 256 segments, plus 2 for a position-zero chunk's headers.
 */
export const MAX_READ_SEGMENTS = MAX_PAYLOAD_BYTES / PAGE_BYTES + 2; // 258
/**
 * Implementation limit on Write chunks per call: one per DDP-eligible result.
 * NFSv3/v4 READ and READLINK have one; NFSv4 COMPOUNDs with several READs are
 * bounded by this (older Linux servers accepted exactly one).
 */
export const MAX_WRITE_CHUNKS = 4;
/** Implementation limit on segments in one Write or Reply chunk: 1 MiB in 4 KiB pages, + 2 for headers. */
export const MAX_SEGMENTS_PER_WRITE_CHUNK = MAX_PAYLOAD_BYTES / PAGE_BYTES + 2; // 258
/**
 * Segments across the Write list and Reply chunk together: each becomes an RDMA
 * Write the reply path must post: 4 chunks * 258 + 258 = 1290.
 */
export const MAX_WRITE_SEGMENTS_TOTAL = (MAX_WRITE_CHUNKS + 1) * MAX_SEGMENTS_PER_WRITE_CHUNK;

/** R_keys are 32-bit; 0 is never a valid registration handed out by a provider we accept. */
export const INVALID_HANDLE = 0;

// ---------------------------------------------------------------------------
// RDMA-CM private data (RFC 8797), 8 bytes in the connect request and reply.
//
//   0                 4       5       6           7           8
//   +-----------------+-------+-------+-----------+-----------+
//   | magic           | vers  | flags | send size | recv size |
//   +-----------------+-------+-------+-----------+-----------+
// Sizes are encoded as (bytes / 1024) - 1, so 1 KiB .. 256 KiB.
// ---------------------------------------------------------------------------
export const CM_PRIVATE_DATA_OFFSET = { magic: 0, version: 4, flags: 5, sendSize: 6, receiveSize: 7 } as const;
export const CM_PRIVATE_DATA_BYTES = 8;
export const CM_PRIVATE_DATA_MAGIC = 0xf6ab0e18;
export const CM_PRIVATE_DATA_VERSION = 1;
/** The sender can receive Send With Invalidate (remote invalidation). */
export const CM_FLAG_REMOTE_INVALIDATE = 0x01;
export const CM_SIZE_UNIT_BYTES = 1024;
/** An encoded size byte of 255 means (255 + 1) * 1024 = 256 KiB. */
export const CM_SIZE_MAX_BYTES = 256 * CM_SIZE_UNIT_BYTES;

/** IANA-assigned port for NFS over RDMA (RFC 5666 §9 / RFC 8267). */
export const DEFAULT_PORT = 20049;
