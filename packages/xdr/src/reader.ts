/**
 * XdrReader: the XDR decoder.
 *
 * Life: created per message by whoever decodes it (a dispatcher, a client), over
 * bytes it does not own and never copies: opaque data comes back as subarrays of
 * the input, so the input must stay unchanged while decoded values are in use.
 * Single-threaded, synchronous; dropped with the message.
 *
 * Every read is bounds-checked before it touches the input, and every length is
 * checked against both its declared maximum and the bytes that remain, so a hostile
 * length can neither allocate a huge array nor read past the end. All failures
 * are XdrError with a stable code.
 *
 * Read chunks (RPC-over-RDMA, RFC 8166 §3.5.3): data that a transport pulled
 * separately can be placed back at its XDR position; the opaque item found there
 * takes the chunk's bytes instead of inline bytes (no inline data or pad).
 */
import { XdrError, XdrErrorCode } from './errors.js';
import { dataViewOf } from './data-view-cache.js';
import { XDR_ELEMENT_BYTES_MIN, XDR_LENGTH_MAX, xdrPadding } from './wire.js';

/** Opaque data delivered out of band, to be found at `position` in the XDR stream. */
export interface XdrReadChunk {
  /** Offset in the XDR stream (counted from the reader's start, chunks included). */
  readonly position: number;
  readonly data: Uint8Array;
}

export interface XdrReaderOptions {
  /** Where decoding starts in the input. */
  offset?: number;
  /** Where the message ends (exclusive). */
  end?: number;
  /** Out-of-band opaque data, sorted by position. */
  readChunks?: readonly XdrReadChunk[];
  /** Bound on nested recursive items (not lists: those decode iteratively). */
  maxDepth?: number;
  /**
   * How XDR strings become JS strings. 'utf8' (default) for text; 'latin1' maps
   * each byte to one char, lossless for names that are bytes (POSIX file names).
   */
  stringEncoding?: XdrStringEncoding;
}

export type XdrStringEncoding = 'utf8' | 'latin1';

/**
 * Recursion through optional-data other than linked lists is rare; 64 levels
 * cover every interface we know while keeping the JS stack far from its limit.
 */
const defaultMaxDepth = 64;

const emptyOpaque = Buffer.alloc(0);
const noChunks: readonly XdrReadChunk[] = [];

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class XdrReader {
  readonly buffer: Buffer;
  private offset: number;
  private start: number;
  private end: number;
  private readChunks: readonly XdrReadChunk[];
  private nextChunkIndex = 0;
  /** Stream bytes delivered by chunks so far (stream position = inline + this). */
  private chunkBytes = 0;
  private depth = 0;
  private maxDepth: number;
  private stringEncoding: XdrStringEncoding = 'utf8';

  constructor(bytes: Uint8Array, options?: XdrReaderOptions) {
    this.buffer = asBuffer(bytes);
    this.offset = 0;
    this.start = 0;
    this.end = this.buffer.length;
    this.readChunks = noChunks;
    this.maxDepth = defaultMaxDepth;
    // The common case - a whole buffer, no options - skips all the checks below.
    if (options !== undefined) this.applyOptions(options);
  }

  private applyOptions(options: XdrReaderOptions): void {
    const start = options.offset ?? 0;
    const end = options.end ?? this.buffer.length;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > this.buffer.length) {
      throw new RangeError(`XdrReader range [${start}, ${end}) is outside the input of ${this.buffer.length} bytes`);
    }
    this.offset = start;
    this.start = start;
    this.end = end;
    this.readChunks = options.readChunks ?? noChunks;
    this.maxDepth = options.maxDepth ?? defaultMaxDepth;
    this.stringEncoding = options.stringEncoding ?? 'utf8';
  }

  /** Offset of the next byte in the input buffer. */
  get position(): number {
    return this.offset;
  }

  /** Inline bytes not yet consumed. */
  get remaining(): number {
    return this.end - this.offset;
  }

  readInt(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  readUint(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  readHyper(): bigint {
    this.need(8);
    const value = dataViewOf(this.buffer.buffer).getBigInt64(this.buffer.byteOffset + this.offset);
    this.offset += 8;
    return value;
  }

  readUhyper(): bigint {
    this.need(8);
    const value = dataViewOf(this.buffer.buffer).getBigUint64(this.buffer.byteOffset + this.offset);
    this.offset += 8;
    return value;
  }

  readFloat(): number {
    this.need(4);
    const value = this.buffer.readFloatBE(this.offset);
    this.offset += 4;
    return value;
  }

  readDouble(): number {
    this.need(8);
    const value = this.buffer.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  readBool(): boolean {
    const value = this.readUint();
    if (value > 1) this.fail(XdrErrorCode.BAD_BOOL, `bool is ${value}, not 0 or 1`, 4);
    return value === 1;
  }

  readEnum(allowed: ReadonlySet<number>, typeName: string): number {
    const value = this.readInt();
    if (!allowed.has(value)) this.fail(XdrErrorCode.BAD_ENUM, `${value} is not a value of enum ${typeName}`, 4);
    return value;
  }

  /** The presence flag of optional-data. */
  readOptionalFlag(): boolean {
    return this.readBool();
  }

  /**
   * The count of a variable-length array. Checked against `max` and against the
   * bytes left (each element takes at least `elementBytesMin`), so the caller can
   * size its array from the result safely.
   */
  readArrayLength(max: number = XDR_LENGTH_MAX, elementBytesMin: number = XDR_ELEMENT_BYTES_MIN): number {
    const length = this.readUint();
    if (length > max) this.fail(XdrErrorCode.LENGTH_EXCEEDS_MAX, `array of ${length} elements exceeds its maximum of ${max}`, 4);
    if (length * elementBytesMin > this.end - this.offset + this.pendingChunkBytes()) {
      this.fail(XdrErrorCode.SHORT_BUFFER, `array of ${length} elements cannot fit in the ${this.remaining} bytes left`, 4);
    }
    return length;
  }

  /** opaque[length]: a zero-copy view of the data; the pad must be zero. */
  readFixedOpaque(length: number): Buffer {
    return this.readOpaqueBody(length);
  }

  /** opaque<max>: a zero-copy view of the data. */
  readVariableOpaque(max: number = XDR_LENGTH_MAX): Buffer {
    const length = this.readUint();
    if (length > max) this.fail(XdrErrorCode.LENGTH_EXCEEDS_MAX, `opaque of ${length} bytes exceeds its maximum of ${max}`, 4);
    return this.readOpaqueBody(length);
  }

  /** string<max>, decoded as UTF-8 (or latin1, see stringEncoding). */
  readString(max: number = XDR_LENGTH_MAX): string {
    const length = this.readUint();
    if (length > max) this.fail(XdrErrorCode.LENGTH_EXCEEDS_MAX, `string of ${length} bytes exceeds its maximum of ${max}`, 4);
    const padding = xdrPadding(length);
    this.need(length + padding);
    const value = this.buffer.toString(this.stringEncoding, this.offset, this.offset + length);
    this.offset += length;
    this.checkZeroPad(padding);
    return value;
  }

  /** Bytes that are already XDR, as a view (e.g. an opaque_auth body the caller parses later). */
  readRaw(length: number): Buffer {
    this.need(length);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** Enters one level of recursive data; pair with leave(). */
  enter(): void {
    if (++this.depth > this.maxDepth) {
      this.depth = 0;
      this.fail(XdrErrorCode.DEPTH_EXCEEDED, `recursive data nests deeper than ${this.maxDepth} levels`, 0);
    }
  }

  leave(): void {
    this.depth--;
  }

  /** Throws ERR_XDR_TRAILING_BYTES unless every byte (and read chunk) was consumed. */
  assertFinished(): void {
    if (this.offset !== this.end) {
      this.fail(XdrErrorCode.TRAILING_BYTES, `${this.end - this.offset} bytes left after the last item`, 0);
    }
    if (this.nextChunkIndex !== this.readChunks.length) {
      this.fail(XdrErrorCode.BAD_CHUNK, 'a read chunk was not consumed by any item', 0);
    }
  }

  private readOpaqueBody(length: number): Buffer {
    // Empty bodies (AUTH_NONE credentials and verifiers) share one view: no allocation.
    if (length === 0 && this.readChunks.length === 0) return emptyOpaque;
    if (this.nextChunkIndex < this.readChunks.length && this.streamPosition() === this.readChunks[this.nextChunkIndex]!.position) {
      return this.takeChunk(length);
    }
    const padding = xdrPadding(length);
    this.need(length + padding);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    this.checkZeroPad(padding);
    return view;
  }

  private takeChunk(length: number): Buffer {
    const chunk = this.readChunks[this.nextChunkIndex]!;
    if (chunk.data.length !== length) {
      this.fail(XdrErrorCode.BAD_CHUNK, `read chunk of ${chunk.data.length} bytes where the item holds ${length}`, 0);
    }
    this.nextChunkIndex++;
    this.chunkBytes += length + xdrPadding(length);
    return asBuffer(chunk.data);
  }

  private streamPosition(): number {
    return this.offset - this.start + this.chunkBytes;
  }

  private pendingChunkBytes(): number {
    let bytes = 0;
    for (let index = this.nextChunkIndex; index < this.readChunks.length; index++) bytes += this.readChunks[index]!.data.length;
    return bytes;
  }

  private checkZeroPad(padding: number): void {
    for (let index = 0; index < padding; index++) {
      if (this.buffer[this.offset + index] !== 0) {
        this.fail(XdrErrorCode.BAD_PADDING, 'pad bytes after opaque data are not zero', -index);
      }
    }
    this.offset += padding;
  }

  private need(bytes: number): void {
    if (bytes > this.end - this.offset) {
      this.fail(XdrErrorCode.SHORT_BUFFER, `need ${bytes} bytes, ${this.end - this.offset} left`, 0);
    }
  }

  private fail(code: XdrErrorCode, message: string, rewind: number): never {
    throw new XdrError(code, message, this.offset - rewind);
  }
}
