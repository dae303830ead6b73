/**
 * XdrEncoding: the finished output of an XdrWriter - one inline buffer plus the
 * bulk items that were referenced instead of copied.
 *
 * Life: created by XdrWriter.finish(); owned by whoever sends it (a transport);
 * immutable; the bulk items' buffers belong to the code that produced the value
 * (e.g. a READ handler's file cache) and must stay unchanged until the send completes.
 */

/** Opaque data kept by reference at `position` (an offset in `inline`). */
export interface XdrBulkItem {
  /** Offset in the inline buffer where the data (then its pad) belongs. */
  readonly position: number;
  readonly data: Uint8Array;
  /** Zero bytes that follow the data in the XDR stream (0-3); not in `inline`. */
  readonly padding: number;
  /** The interface marks this item as eligible for direct data placement (RFC 8166 §6). */
  readonly ddpEligible: boolean;
}

const zeroPad: readonly Buffer[] = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];

export class XdrEncoding {
  constructor(
    /** Every byte of the stream except bulk data and bulk pads. */
    readonly inline: Buffer,
    /** In stream order; positions are non-decreasing. */
    readonly bulk: readonly XdrBulkItem[],
    /** Length of the whole XDR stream (inline + bulk + bulk pads). */
    readonly byteLength: number,
  ) {}

  /** The stream as an ordered list of buffers (inline slices, bulk data, pads), no copies. */
  toChunks(): Uint8Array[] {
    if (this.bulk.length === 0) return [this.inline];
    const chunks: Uint8Array[] = [];
    let inlineOffset = 0;
    for (const item of this.bulk) {
      if (item.position > inlineOffset) chunks.push(this.inline.subarray(inlineOffset, item.position));
      chunks.push(item.data);
      if (item.padding > 0) chunks.push(zeroPad[item.padding] as Buffer);
      inlineOffset = item.position;
    }
    if (inlineOffset < this.inline.length) chunks.push(this.inline.subarray(inlineOffset));
    return chunks;
  }

  /** The stream in one buffer: copies bulk data, for callers that need contiguous bytes. */
  toBuffer(): Buffer {
    if (this.bulk.length === 0) return this.inline;
    return Buffer.concat(this.toChunks(), this.byteLength);
  }
}
