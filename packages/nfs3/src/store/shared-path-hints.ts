/**
 * SharedPathHints: inode -> path hints shared by the DirectoryStores of one export on svcrdma's
 * worker threads, in one SharedArrayBuffer.
 *
 * Each worker has its own inode -> path cache, and a handle one worker made (a CREATE's new
 * file, a directory it listed) is a miss in another's cache: without a hint, that costs a
 * breadth-first walk of the export with an lstat per entry — while a tree is copied in, nearly
 * every call that reaches the other thread. A store publishes every path it learns here and
 * reads a hint before walking. A hint is only a candidate: the store checks it with lstat
 * (inode, device, generation) exactly as its own cached paths, so a stale, overwritten or torn
 * hint costs one lstat and the walk, never a wrong object.
 *
 * Layout: `slots` fixed records, the slot chosen by the inode's low bits (a newer path for
 * another inode in the same slot replaces the older: a bounded table, no growth). A record is a
 * sequence word (odd while written: a seqlock; a writer that finds it odd skips, a reader that
 * sees it odd or changed takes no hint), the inode, the path's length and up to PATH_BYTES_MAX
 * bytes of path (longer paths are not shared: their misses walk).
 *
 * Life: created by NfsServer on the main thread when the export is served from worker threads;
 * its buffer goes to every worker in serviceOptions (shared, not copied), where each
 * DirectoryStore wraps it with `SharedPathHints.over`. Lives as long as the server; any thread.
 */
import { Nfs3Error, Nfs3ErrorCode } from '../errors.js';

/** Paths up to this many bytes (latin1) are shared; a deep tree's longer ones are found by walking. */
const PATH_BYTES_MAX = 240;
/** sequence (4) + length (4) + inode (8) + path. */
const SLOT_BYTES = 16 + PATH_BYTES_MAX;
/** 16 384 slots: 4 MiB, hints for the objects of a working set of that size. */
export const DEFAULT_PATH_HINT_SLOTS = 16_384;
const SLOTS_MAX = 1 << 20;

export class SharedPathHints {
  private readonly words: Int32Array;
  private readonly inodes: BigUint64Array;
  private readonly bytes: Uint8Array;
  private readonly mask: number;

  private constructor(readonly buffer: SharedArrayBuffer) {
    const slots = buffer.byteLength / SLOT_BYTES;
    if (!Number.isInteger(slots) || slots < 1 || slots > SLOTS_MAX || (slots & (slots - 1)) !== 0) {
      throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `path hints need a SharedArrayBuffer of a power-of-two number (≤ ${SLOTS_MAX}) of ${SLOT_BYTES}-byte slots`);
    }
    this.words = new Int32Array(buffer);
    this.inodes = new BigUint64Array(buffer);
    this.bytes = new Uint8Array(buffer);
    this.mask = slots - 1;
  }

  static create(slots = DEFAULT_PATH_HINT_SLOTS): SharedPathHints {
    return new SharedPathHints(new SharedArrayBuffer(slots * SLOT_BYTES));
  }

  /** The hints another thread created, over the same memory. */
  static over(buffer: SharedArrayBuffer): SharedPathHints {
    if (!(buffer instanceof SharedArrayBuffer)) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'path hints must be a SharedArrayBuffer');
    return new SharedPathHints(buffer);
  }

  publish(inode: bigint, path: string): void {
    if (path.length > PATH_BYTES_MAX) return;
    const slot = Number(inode & BigInt(this.mask));
    const sequenceIndex = (slot * SLOT_BYTES) >> 2;
    const sequence = Atomics.load(this.words, sequenceIndex);
    // Odd: another thread is writing this slot; a hint may be dropped, never torn.
    if ((sequence & 1) === 1 || Atomics.compareExchange(this.words, sequenceIndex, sequence, sequence + 1) !== sequence) return;
    this.inodes[(slot * SLOT_BYTES + 8) >> 3] = inode;
    this.bytes.set(Buffer.from(path, 'latin1'), slot * SLOT_BYTES + 16);
    Atomics.store(this.words, sequenceIndex + 1, path.length);
    Atomics.store(this.words, sequenceIndex, sequence + 2);
  }

  /** The last path published for `inode`, or undefined (none, replaced, or being written). */
  lookup(inode: bigint): string | undefined {
    const slot = Number(inode & BigInt(this.mask));
    const sequenceIndex = (slot * SLOT_BYTES) >> 2;
    const sequence = Atomics.load(this.words, sequenceIndex);
    if ((sequence & 1) === 1 || sequence === 0) return undefined;
    if (this.inodes[(slot * SLOT_BYTES + 8) >> 3] !== inode) return undefined;
    const length = Atomics.load(this.words, sequenceIndex + 1);
    const start = slot * SLOT_BYTES + 16;
    const path = Buffer.from(this.bytes.subarray(start, start + Math.min(length, PATH_BYTES_MAX))).toString('latin1');
    return Atomics.load(this.words, sequenceIndex) === sequence ? path : undefined;
  }
}
