/**
 * FileExtents: a memory-store file's data, in extents of up to 1 MiB.
 *
 * Life: created by MemoryStore for each regular file, owned by the file's node, main thread
 * only; dropped with the node. A READ inside one extent is answered with a view of it (no copy)
 * and the extent is marked lent: the reply still holds the view until the transport has sent
 * it (svcrdma keeps a READ's data until its Send completes), so a lent extent is never written
 * again — the next write to it copies it first and writes the copy. Lent extents are therefore
 * freed by the garbage collector once the last reply holding them is gone.
 *
 * Why extents: one Buffer per file, grown by doubling, copied the file at every doubling and
 * zero-filled its new capacity, and truncating it zero-filled the old bytes; a READ had to copy
 * its data out (a later WRITE may change it before the device reads it). For the kernel
 * client's 1 MiB READs and WRITEs at 1 MiB offsets, an extent is now allocated once, filled by
 * one WRITE's data, and lent to every READ of it.
 *
 * Invariant: the bytes of an extent at or past the file's size are zero, and the bytes past an
 * extent's length (or of a missing extent: a hole) read as zero.
 */

/** Bytes of a full extent: the kernel client's rsize/wsize (maxTransferBytes, 1 MiB). */
export const extentBytes = 1 << 20;
/** A new extent's least capacity: small files take 4 KiB, then grow by doubling up to extentBytes. */
const extentBytesMin = 4096;

export class FileExtents {
  /** By index (file offset / extentBytes); undefined: a hole. */
  private readonly extents: (Buffer | undefined)[] = [];
  /** True for an extent a READ's reply may still hold (copied before its next write). */
  private readonly lent: boolean[] = [];
  /** Bytes of all extents: the file's `used`, counted against the store's maxBytes. */
  allocatedBytes = 0;

  /** How many bytes write(offset, length) would add to allocatedBytes (checked before writing). */
  growthOf(offset: number, length: number): number {
    let growth = 0;
    const end = offset + length;
    if (length === 0) return growth;
    for (let index = Math.floor(offset / extentBytes); index * extentBytes < end; index++) {
      const kept = this.extents[index]?.length ?? 0;
      growth += capacityFor(kept, Math.min(end - index * extentBytes, extentBytes)) - kept;
    }
    return growth;
  }

  write(offset: number, data: Uint8Array): void {
    const end = offset + data.byteLength;
    if (data.byteLength === 0) return;
    for (let index = Math.floor(offset / extentBytes); index * extentBytes < end; index++) {
      const base = index * extentBytes;
      const from = Math.max(offset, base) - base;
      const to = Math.min(end - base, extentBytes);
      this.writable(index, from, to).set(data.subarray(base + from - offset, base + to - offset), from);
    }
  }

  /**
   * Bytes [start, end) of the file (end ≤ its size): a view of the extent when the range lies
   * in one (the extent is then lent), else a copy.
   */
  read(start: number, end: number): Buffer {
    if (end <= start) return Buffer.alloc(0);
    const index = Math.floor(start / extentBytes);
    const base = index * extentBytes;
    const extent = this.extents[index];
    if (extent !== undefined && end - base <= extent.length) {
      this.lent[index] = true;
      return extent.subarray(start - base, end - base);
    }
    const data = Buffer.alloc(end - start);
    for (let piece = index; piece * extentBytes < end; piece++) {
      const bytes = this.extents[piece];
      if (bytes === undefined) continue;
      const pieceBase = piece * extentBytes;
      const from = Math.max(start, pieceBase) - pieceBase;
      const to = Math.min(end - pieceBase, bytes.length);
      if (to > from) bytes.copy(data, pieceBase + from - start, from, to);
    }
    return data;
  }

  /** The file shrinks to `size` (≤ its size): whole extents past it are dropped, the rest of the last one zeroed. */
  truncate(size: number): void {
    const extentsKept = Math.ceil(size / extentBytes);
    for (let index = extentsKept; index < this.extents.length; index++) this.allocatedBytes -= this.extents[index]?.length ?? 0;
    if (this.extents.length > extentsKept) {
      this.extents.length = extentsKept;
      this.lent.length = Math.min(this.lent.length, extentsKept);
    }
    const within = size - (extentsKept - 1) * extentBytes;
    const last = this.extents[extentsKept - 1];
    if (size % extentBytes !== 0 && last !== undefined && within < last.length) this.writable(extentsKept - 1, within, within).fill(0, within);
  }

  /** Extent `index` with room for [from, to) and safe to write: a lent one is copied first. */
  private writable(index: number, from: number, to: number): Buffer {
    const extent = this.extents[index];
    const kept = extent?.length ?? 0;
    if (extent !== undefined && to <= kept && this.lent[index] !== true) return extent;
    const capacity = capacityFor(kept, to);
    // Unzeroed: every byte is copied, written by the caller, or zeroed below.
    const fresh = Buffer.allocUnsafe(capacity);
    if (extent !== undefined) extent.copy(fresh, 0, 0, kept);
    if (from > kept) fresh.fill(0, kept, from);
    if (capacity > Math.max(kept, to)) fresh.fill(0, Math.max(kept, to), capacity);
    this.extents[index] = fresh;
    this.lent[index] = false;
    this.allocatedBytes += capacity - kept;
    return fresh;
  }
}

/** An extent's capacity once it must hold `to` bytes: as kept if it fits, else doubled (at least `to`), at most extentBytes. */
function capacityFor(kept: number, to: number): number {
  return to <= kept ? kept : Math.min(extentBytes, Math.max(to, kept * 2, extentBytesMin));
}
