/**
 * Errors with stable codes. Operating errors (a peer's malformed header, a
 * reply that does not fit the client's chunks) are SvcRdmaError; programmer
 * errors are node:assert failures.
 *
 * A rejected transport header is a HeaderRejection: it names the reason and the
 * answer RFC 8166 prescribes for it, so the transport never has to interpret
 * messages to decide between RDMA_ERROR, a silent drop and a disconnect.
 */

export const SvcRdmaErrorCode = {
  /** The transport header broke a sanity check or an implementation limit (see `reason`). */
  BAD_HEADER: 'ERR_SVCRDMA_BAD_HEADER',
  /** The reply cannot be conveyed with the chunks and inline size the client offered. */
  REPLY_TOO_LARGE: 'ERR_SVCRDMA_REPLY_TOO_LARGE',
  /** An option is out of range or of the wrong type. */
  BAD_OPTION: 'ERR_SVCRDMA_BAD_OPTION',
  /** The RDMA-CM private data is not RFC 8797 private data. */
  BAD_PRIVATE_DATA: 'ERR_SVCRDMA_BAD_PRIVATE_DATA',
  /** The connection went away (or the client was closed) before the reply came. */
  DISCONNECTED: 'ERR_SVCRDMA_DISCONNECTED',
  /** The responder answered the call with RDMA_ERROR (ERR_VERS or ERR_CHUNK). */
  RDMA_ERROR: 'ERR_SVCRDMA_RDMA_ERROR',
  /** No reply within the call's time limit. */
  TIMEOUT: 'ERR_SVCRDMA_TIMEOUT',
} as const;
export type SvcRdmaErrorCode = (typeof SvcRdmaErrorCode)[keyof typeof SvcRdmaErrorCode];

export class SvcRdmaError extends Error {
  readonly code: SvcRdmaErrorCode;

  constructor(code: SvcRdmaErrorCode, message: string) {
    super(message);
    this.name = 'SvcRdmaError';
    this.code = code;
  }
}

/** What the responder does with a message it cannot serve (RFC 8166 §4.5, §4.2.4). */
export const RejectAnswer = {
  /** RDMA_ERROR / ERR_VERS with the supported version range. */
  ERR_VERS: 'err-vers',
  /** RDMA_ERROR / ERR_CHUNK. */
  ERR_CHUNK: 'err-chunk',
  /** Nothing is sent: there is no call to answer (or no XID to answer it with). */
  DROP: 'drop',
  /** The connection is closed: the peer broke the transport's own contract. */
  DISCONNECT: 'disconnect',
} as const;
export type RejectAnswer = (typeof RejectAnswer)[keyof typeof RejectAnswer];

/**
 * Every way a transport header can be refused, each with the answer it gets.
 * Sanity checks catch headers that cannot be right; implementation limits
 * catch headers that may be legal but would make us do unbounded work.
 */
export const HeaderRejectReason = {
  // -- Framing ---------------------------------------------------------------
  /** Fewer bytes than the fixed header: no XID to name in an RDMA_ERROR. */
  SHORT_FIXED_HEADER: { name: 'short-fixed-header', answer: RejectAnswer.DROP },
  /** rdma_vers is not 1. */
  UNSUPPORTED_VERSION: { name: 'unsupported-version', answer: RejectAnswer.ERR_VERS },
  /** rdma_proc is not one of the five RFC 8166 values. */
  UNKNOWN_PROCEDURE: { name: 'unknown-procedure', answer: RejectAnswer.ERR_CHUNK },
  /** RDMA_MSGP is deprecated (RFC 8166 §4.2.4); we do not parse padded messages. */
  PADDED_MESSAGE: { name: 'padded-message', answer: RejectAnswer.ERR_CHUNK },
  /** RDMA_DONE is deprecated and never answered. */
  DONE_MESSAGE: { name: 'done-message', answer: RejectAnswer.DROP },
  /** A requester's RDMA_ERROR has no call to answer. */
  ERROR_MESSAGE: { name: 'error-message', answer: RejectAnswer.DROP },
  /** The chunk lists run past the end of the received bytes. */
  TRUNCATED_CHUNK_LISTS: { name: 'truncated-chunk-lists', answer: RejectAnswer.ERR_CHUNK },
  /** An optional-data discriminator is neither 0 nor 1. */
  BAD_DISCRIMINATOR: { name: 'bad-discriminator', answer: RejectAnswer.ERR_CHUNK },
  // -- Implementation limits ---------------------------------------------------
  TOO_MANY_READ_SEGMENTS: { name: 'too-many-read-segments', answer: RejectAnswer.ERR_CHUNK },
  TOO_MANY_WRITE_CHUNKS: { name: 'too-many-write-chunks', answer: RejectAnswer.ERR_CHUNK },
  TOO_MANY_WRITE_SEGMENTS: { name: 'too-many-write-segments', answer: RejectAnswer.ERR_CHUNK },
  // -- Sanity checks: segments --------------------------------------------------
  /** Handle 0 is never a registration a requester hands out. */
  INVALID_HANDLE: { name: 'invalid-handle', answer: RejectAnswer.ERR_CHUNK },
  /** A Read segment of 0 bytes conveys nothing and only costs an RDMA Read. */
  EMPTY_READ_SEGMENT: { name: 'empty-read-segment', answer: RejectAnswer.ERR_CHUNK },
  /** A Write or Reply chunk with no segments cannot receive anything. */
  EMPTY_WRITE_CHUNK: { name: 'empty-write-chunk', answer: RejectAnswer.ERR_CHUNK },
  /** offset + length passes 2^64: the segment wraps the requester's address space. */
  SEGMENT_WRAPS: { name: 'segment-wraps', answer: RejectAnswer.ERR_CHUNK },
  // -- Sanity checks: chunk lengths -------------------------------------------------
  READ_CHUNK_TOO_LONG: { name: 'read-chunk-too-long', answer: RejectAnswer.ERR_CHUNK },
  READ_LIST_TOO_LONG: { name: 'read-list-too-long', answer: RejectAnswer.ERR_CHUNK },
  WRITE_CHUNK_TOO_LONG: { name: 'write-chunk-too-long', answer: RejectAnswer.ERR_CHUNK },
  REPLY_CHUNK_TOO_LONG: { name: 'reply-chunk-too-long', answer: RejectAnswer.ERR_CHUNK },
  // -- Sanity checks: positions -----------------------------------------------------
  /** A data-item position that is not a multiple of 4 cannot start an XDR item. */
  MISALIGNED_POSITION: { name: 'misaligned-position', answer: RejectAnswer.ERR_CHUNK },
  /** Positions go backwards or a chunk starts inside the previous chunk's data. */
  OVERLAPPING_READ_CHUNKS: { name: 'overlapping-read-chunks', answer: RejectAnswer.ERR_CHUNK },
  /** A chunk's position lies past the end of the RPC message it belongs to. */
  READ_CHUNK_BEYOND_MESSAGE: { name: 'read-chunk-beyond-message', answer: RejectAnswer.ERR_CHUNK },
  /** A segment with position zero that does not follow the other position-zero segments. */
  SCATTERED_CALL_CHUNK: { name: 'scattered-call-chunk', answer: RejectAnswer.ERR_CHUNK },
  // -- Sanity checks: message shape -------------------------------------------------
  /** RDMA_MSG carries the call inline, so a position-zero chunk contradicts it. */
  CALL_CHUNK_WITH_MSG: { name: 'call-chunk-with-msg', answer: RejectAnswer.ERR_CHUNK },
  /** RDMA_NOMSG call without a position-zero Read chunk: the call is nowhere. */
  NOMSG_WITHOUT_CALL_CHUNK: { name: 'nomsg-without-call-chunk', answer: RejectAnswer.ERR_CHUNK },
  /** RDMA_NOMSG with bytes after the header: the call cannot be in two places. */
  NOMSG_WITH_INLINE_BODY: { name: 'nomsg-with-inline-body', answer: RejectAnswer.ERR_CHUNK },
  /** RDMA_MSG with no bytes after the header: there is no RPC call. */
  MSG_WITHOUT_BODY: { name: 'msg-without-body', answer: RejectAnswer.ERR_CHUNK },
} as const;
export type HeaderRejectReason = (typeof HeaderRejectReason)[keyof typeof HeaderRejectReason];

/** A transport header we refuse, with the answer it gets and the XID to answer with. */
export class HeaderRejection extends SvcRdmaError {
  readonly reason: HeaderRejectReason;
  /** rdma_xid of the message, or null when the header was too short to carry one. */
  readonly xid: number | null;

  constructor(reason: HeaderRejectReason, xid: number | null, detail: string) {
    super(SvcRdmaErrorCode.BAD_HEADER, `${reason.name}: ${detail}`);
    this.name = 'HeaderRejection';
    this.reason = reason;
    this.xid = xid;
  }

  get answer(): RejectAnswer {
    return this.reason.answer;
  }
}
