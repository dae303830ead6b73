/**
 * XdrWriter: the XDR encoder.
 *
 * Life: created by whoever encodes one message (the ONC RPC dispatcher creates one
 * per reply, a client one per call); used on one thread, synchronously; dropped
 * with the message. `finish()` hands its bytes over as an XdrEncoding; the writer
 * must not be used afterwards (the encoding shares its buffer).
 *
 * Two modes:
 *   growable  - starts at `initialBytes`, doubles up to `maxBytes`;
 *   fixed     - writes into a caller's buffer and never grows.
 * Either way an encoding that does not fit throws ERR_XDR_ENCODE_OVERFLOW.
 *
 * Bulk data is never copied: an opaque of at least `bulkThresholdBytes` is kept
 * as a reference (an XdrBulkItem) at its position in the stream, with its pad
 * recorded but not written. A stream transport gathers inline slices, bulk data
 * and pads into one write (`XdrEncoding.toChunks()`); an RDMA transport can move
 * DDP-eligible bulk items into write chunks and send only the inline part.
 */
import { XdrError, XdrErrorCode } from './errors.js';
import { XDR_LENGTH_MAX, xdrPadding } from './wire.js';
import { dataViewOf } from './data-view-cache.js';
import { XdrEncoding, type XdrBulkItem } from './encoding.js';
import type { XdrStringEncoding } from './reader.js';

export interface XdrWriterOptions {
  /** First buffer size of a growable writer. */
  initialBytes?: number;
  /** Bound on the whole encoding (inline + bulk) of a growable writer. */
  maxBytes?: number;
  /** Opaque data at least this long is referenced, not copied. */
  bulkThresholdBytes?: number;
  /** Encode into this buffer instead of allocating; the writer does not grow. */
  buffer?: Uint8Array;
  /** How JS strings become XDR string bytes; pair with the reader's (see XdrReaderOptions). */
  stringEncoding?: XdrStringEncoding;
}

interface FilledXdrWriterOptions {
  initialBytes: number;
  maxBytes: number;
  bulkThresholdBytes: number;
}

const defaultWriterOptions: FilledXdrWriterOptions = {
  // Most RPC replies (attributes, status) fit; the slab allocator serves it.
  initialBytes: 512,
  // Largest NFS READ/WRITE payload (1 MiB) plus generous headers.
  maxBytes: 4 * 1024 * 1024,
  // Below this a copy is cheaper than tracking a separate chunk.
  bulkThresholdBytes: 1024,
};

function optionValue(options: XdrWriterOptions, field: keyof FilledXdrWriterOptions): number {
  const value = options[field];
  if (value === undefined) return defaultWriterOptions[field];
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`XdrWriter option ${field} must be a non-negative safe integer, got ${String(value)}`);
  }
  return value;
}

const hyperMin = -(2n ** 63n);
const hyperMax = 2n ** 63n - 1n;
const uhyperMax = 2n ** 64n - 1n;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class XdrWriter {
  private buffer: Buffer;
  private offset = 0;
  private readonly growable: boolean;
  private readonly maxBytes: number;
  private readonly bulkThresholdBytes: number;
  private bulk: XdrBulkItem[] | null = null;
  /** Bytes (with pads) held by bulk items: counted against maxBytes. */
  private bulkBytes = 0;
  private readonly stringEncoding: XdrStringEncoding;

  constructor(options: XdrWriterOptions = {}) {
    // Read field by field (no merged copy): a writer is made per reply on the hot path.
    this.bulkThresholdBytes = optionValue(options, 'bulkThresholdBytes');
    this.stringEncoding = options.stringEncoding ?? 'utf8';
    if (options.buffer !== undefined) {
      this.buffer = asBuffer(options.buffer);
      this.growable = false;
      this.maxBytes = this.buffer.length;
    } else {
      this.maxBytes = optionValue(options, 'maxBytes');
      this.buffer = Buffer.allocUnsafe(Math.min(optionValue(options, 'initialBytes'), this.maxBytes));
      this.growable = true;
    }
  }

  /** Bytes written so far, counting bulk items and their pads. */
  get byteLength(): number {
    return this.offset + this.bulkBytes;
  }

  writeInt(value: number): void {
    if ((value | 0) !== value) this.badValue(`int ${String(value)} is not a signed 32-bit integer`);
    this.reserve(4);
    this.buffer.writeInt32BE(value, this.offset);
    this.offset += 4;
  }

  writeUint(value: number): void {
    if (value >>> 0 !== value) this.badValue(`unsigned int ${String(value)} is not an unsigned 32-bit integer`);
    this.reserve(4);
    this.buffer.writeUInt32BE(value, this.offset);
    this.offset += 4;
  }

  writeHyper(value: bigint): void {
    if (typeof value !== 'bigint' || value < hyperMin || value > hyperMax) {
      this.badValue(`hyper ${String(value)} is not a signed 64-bit bigint`);
    }
    this.writeHalves(value);
  }

  writeUhyper(value: bigint): void {
    if (typeof value !== 'bigint' || value < 0n || value > uhyperMax) {
      this.badValue(`unsigned hyper ${String(value)} is not an unsigned 64-bit bigint`);
    }
    this.writeHalves(value);
  }

  writeFloat(value: number): void {
    if (typeof value !== 'number') this.badValue('float must be a number');
    this.reserve(4);
    this.buffer.writeFloatBE(value, this.offset);
    this.offset += 4;
  }

  writeDouble(value: number): void {
    if (typeof value !== 'number') this.badValue('double must be a number');
    this.reserve(8);
    this.buffer.writeDoubleBE(value, this.offset);
    this.offset += 8;
  }

  writeBool(value: boolean): void {
    if (typeof value !== 'boolean') this.badValue(`bool ${String(value)} is not a boolean`);
    this.reserve(4);
    this.buffer.writeUInt32BE(value ? 1 : 0, this.offset);
    this.offset += 4;
  }

  /** Enum values are checked against the declared identifiers. */
  writeEnum(value: number, allowed: ReadonlySet<number>, typeName: string): void {
    if (!allowed.has(value)) this.badValue(`${String(value)} is not a value of enum ${typeName}`);
    this.writeInt(value);
  }

  /** The presence flag of optional-data (RFC 4506 §4.19). */
  writeOptionalFlag(present: boolean): void {
    this.writeBool(present);
  }

  /** The count of a variable-length array, checked against its maximum. */
  writeArrayLength(length: number, max: number): void {
    if (!Number.isSafeInteger(length) || length < 0 || length > max) {
      this.badValue(`array of ${String(length)} elements exceeds its maximum of ${max}`);
    }
    this.writeUint(length);
  }

  /** Fixed-length opaque[n]: exactly `length` bytes then pad. */
  writeFixedOpaque(bytes: Uint8Array, length: number, ddpEligible = false): void {
    if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
      this.badValue(`opaque[${length}] needs exactly ${length} bytes`);
    }
    this.writeOpaqueBody(bytes, ddpEligible);
  }

  /** Variable-length opaque<max>: length, bytes, pad. */
  writeVariableOpaque(bytes: Uint8Array, max: number = XDR_LENGTH_MAX, ddpEligible = false): void {
    if (!(bytes instanceof Uint8Array)) this.badValue('opaque data must be a Uint8Array');
    if (bytes.length > max) this.badValue(`opaque of ${bytes.length} bytes exceeds its maximum of ${max}`);
    this.writeUint(bytes.length);
    this.writeOpaqueBody(bytes, ddpEligible);
  }

  /** string<max>, encoded as UTF-8 (or latin1, see stringEncoding); max counts bytes. */
  writeString(value: string, max: number = XDR_LENGTH_MAX): void {
    if (typeof value !== 'string') this.badValue('string value must be a string');
    const length = Buffer.byteLength(value, this.stringEncoding);
    if (length > max) this.badValue(`string of ${length} bytes exceeds its maximum of ${max}`);
    const padding = xdrPadding(length);
    this.reserve(4 + length + padding);
    this.buffer.writeUInt32BE(length, this.offset);
    this.buffer.write(value, this.offset + 4, length, this.stringEncoding);
    this.offset += 4 + length;
    this.writeZeroPad(padding);
  }

  /** Bytes that are already XDR (e.g. a pre-encoded body): copied as they are. */
  writeRaw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.offset);
    this.offset += bytes.length;
  }

  /** Hands the encoding over. The writer must not be used afterwards. */
  finish(): XdrEncoding {
    const inline = this.buffer.subarray(0, this.offset);
    return new XdrEncoding(inline, this.bulk ?? [], this.offset + this.bulkBytes);
  }

  /** Range already checked by the caller; setBig(U)Int64 take the value modulo 2^64. */
  private writeHalves(value: bigint): void {
    this.reserve(8);
    dataViewOf(this.buffer.buffer).setBigUint64(this.buffer.byteOffset + this.offset, BigInt.asUintN(64, value));
    this.offset += 8;
  }

  private writeOpaqueBody(bytes: Uint8Array, ddpEligible: boolean): void {
    const padding = xdrPadding(bytes.length);
    if (bytes.length >= this.bulkThresholdBytes && bytes.length > 0) {
      this.reserveBulk(bytes.length + padding);
      (this.bulk ??= []).push({ position: this.offset, data: bytes, padding, ddpEligible });
      this.bulkBytes += bytes.length + padding;
      return;
    }
    this.reserve(bytes.length + padding);
    this.buffer.set(bytes, this.offset);
    this.offset += bytes.length;
    this.writeZeroPad(padding);
  }

  private writeZeroPad(padding: number): void {
    for (let index = 0; index < padding; index++) this.buffer[this.offset++] = 0;
  }

  private reserveBulk(bytes: number): void {
    if (this.offset + this.bulkBytes + bytes > this.maxBytes) this.overflow(bytes);
  }

  private reserve(bytes: number): void {
    const needed = this.offset + bytes;
    if (needed <= this.buffer.length && needed + this.bulkBytes <= this.maxBytes) return;
    if (!this.growable || needed + this.bulkBytes > this.maxBytes) this.overflow(bytes);
    let size = Math.max(this.buffer.length * 2, 64);
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(Math.min(size, this.maxBytes - this.bulkBytes));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  private overflow(bytes: number): never {
    throw new XdrError(
      XdrErrorCode.ENCODE_OVERFLOW,
      `encoding ${bytes} more bytes exceeds the writer's limit of ${this.maxBytes}`,
      this.byteLength,
    );
  }

  private badValue(message: string): never {
    throw new XdrError(XdrErrorCode.BAD_VALUE, message, this.byteLength);
  }
}
