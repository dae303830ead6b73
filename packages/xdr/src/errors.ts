/**
 * XDR errors with stable codes. Decoders throw only XdrError for bad input, so a
 * transport can turn any of them into a protocol reply (GARBAGE_ARGS, a dropped
 * record) without inspecting messages.
 */

export const XdrErrorCode = {
  /** The input ended before the item being read. */
  SHORT_BUFFER: 'ERR_XDR_SHORT_BUFFER',
  /** A length (opaque, string, array) is larger than the declared maximum. */
  LENGTH_EXCEEDS_MAX: 'ERR_XDR_LENGTH_EXCEEDS_MAX',
  /** The 0-3 pad bytes after an opaque or string are not zero (RFC 4506 §4.10). */
  BAD_PADDING: 'ERR_XDR_BAD_PADDING',
  /** A boolean (or optional-data flag) is neither 0 nor 1. */
  BAD_BOOL: 'ERR_XDR_BAD_BOOL',
  /** An enum value is not one of the declared identifiers. */
  BAD_ENUM: 'ERR_XDR_BAD_ENUM',
  /** A union discriminant selects no arm and the union has no default arm. */
  BAD_UNION_DISCRIMINANT: 'ERR_XDR_BAD_UNION_DISCRIMINANT',
  /** Bytes remain after the last item of a message that must be consumed whole. */
  TRAILING_BYTES: 'ERR_XDR_TRAILING_BYTES',
  /** Recursive data (optional-data chains that are not lists) nests deeper than allowed. */
  DEPTH_EXCEEDED: 'ERR_XDR_DEPTH_EXCEEDED',
  /** A read chunk placed at an XDR position does not match the item found there. */
  BAD_CHUNK: 'ERR_XDR_BAD_CHUNK',
  /** Encoding would exceed the writer's maximum size or its caller-supplied buffer. */
  ENCODE_OVERFLOW: 'ERR_XDR_ENCODE_OVERFLOW',
  /** A value handed to an encoder does not fit its XDR type (range, length, type). */
  BAD_VALUE: 'ERR_XDR_BAD_VALUE',
} as const;

export type XdrErrorCode = (typeof XdrErrorCode)[keyof typeof XdrErrorCode];

export class XdrError extends Error {
  readonly code: XdrErrorCode;
  /** Byte offset in the input (decode) or output (encode) where the problem was found. */
  readonly offset: number;

  constructor(code: XdrErrorCode, message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = 'XdrError';
    this.code = code;
    this.offset = offset;
  }
}

export function isXdrError(error: unknown): error is XdrError {
  return error instanceof XdrError;
}
