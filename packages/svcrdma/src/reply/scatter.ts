/**
 * Laying bytes onto a client's Write or Reply chunk: which local views go into
 * which remote segment, and what the echoed chunk (lengths actually written)
 * says. Pure; views are subarrays of the caller's buffers, never copies.
 */
import assert from 'node:assert';
import type { RdmaSegment, WriteChunk } from '../header/chunks.js';

/** One RDMA Write: gather `sources` into the remote `target` (handle, offset, length = bytes written). */
export interface RdmaWrite {
  readonly target: RdmaSegment;
  readonly sources: readonly Uint8Array[];
}

export interface ScatterResult {
  readonly writes: readonly RdmaWrite[];
  /** The chunk as echoed in the reply header: same segments, lengths = bytes written (0 for unused). */
  readonly written: WriteChunk;
}

function byteLength(pieces: readonly Uint8Array[]): number {
  let bytes = 0;
  for (const piece of pieces) bytes += piece.length;
  return bytes;
}

/**
 * Fills the chunk's segments in order with `pieces`. Segments are filled whole
 * before the next is started, as RFC 8166 §3.4.6 asks of a responder.
 * @throws AssertionError if the pieces do not fit: callers check lengths first
 */
export function scatterOntoChunk(pieces: readonly Uint8Array[], chunk: WriteChunk): ScatterResult {
  const total = byteLength(pieces);
  assert(total <= chunk.length, `${total} bytes do not fit a ${chunk.length}-byte chunk`);
  const writes: RdmaWrite[] = [];
  const segments: RdmaSegment[] = [];
  let pieceIndex = 0;
  let pieceOffset = 0;
  let remaining = total;
  for (const segment of chunk.segments) {
    const bytes = Math.min(segment.length, remaining);
    segments.push({ handle: segment.handle, length: bytes, offset: segment.offset });
    if (bytes === 0) continue;
    const sources: Uint8Array[] = [];
    let needed = bytes;
    while (needed > 0) {
      const piece = pieces[pieceIndex] as Uint8Array;
      const take = Math.min(piece.length - pieceOffset, needed);
      if (take > 0) sources.push(piece.subarray(pieceOffset, pieceOffset + take));
      needed -= take;
      pieceOffset += take;
      if (pieceOffset === piece.length) {
        pieceIndex++;
        pieceOffset = 0;
      }
    }
    writes.push({ target: { handle: segment.handle, length: bytes, offset: segment.offset }, sources });
    remaining -= bytes;
  }
  assert(remaining === 0);
  return { writes, written: { segments, length: total } };
}

/** The chunk echoed untouched by data: every segment written with 0 bytes. */
export function unusedChunk(chunk: WriteChunk): WriteChunk {
  return { segments: chunk.segments.map((segment) => ({ ...segment, length: 0 })), length: 0 };
}
