/**
 * XDR wire constants (RFC 4506). Every item occupies a multiple of this unit;
 * the derived limits below are what the encoder and decoder enforce.
 */

/** RFC 4506 §3: the basic block size; items are padded to a multiple of it. */
export const XDR_UNIT_BYTES = 4;

/** Largest length an XDR length prefix can carry (unsigned 32-bit). */
export const XDR_LENGTH_MAX = 0xffff_ffff;

/** The smallest encoding of any array element: every XDR item but void takes at least one unit. */
export const XDR_ELEMENT_BYTES_MIN = XDR_UNIT_BYTES;

/** Pad bytes needed after `length` bytes of opaque data. */
export function xdrPadding(length: number): number {
  return (XDR_UNIT_BYTES - (length & 3)) & 3;
}

/** Bytes that `length` bytes of opaque data occupy once padded. */
export function xdrPaddedLength(length: number): number {
  return length + xdrPadding(length);
}
