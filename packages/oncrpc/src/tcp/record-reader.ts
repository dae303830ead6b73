/**
 * RecordReader: reassembles RFC 5531 §11 record-marked records from a byte
 * stream (TCP).
 *
 * Life: one per connection, created and owned by the connection (server or
 * client side), fed every chunk the socket delivers, on the main thread;
 * dropped with the connection.
 *
 * A record that arrives in one chunk and one fragment - the common case - is
 * handed over as a view of that chunk, no copy; otherwise its fragments are
 * collected and joined once when the last one arrives.
 *
 * Delivery can be stopped by the sink (its in-flight bound is reached): the rest
 * of the current chunk is held - at most one socket chunk - until `resume()`.
 *
 * Limits: a record larger than `maxRecordBytes`, or made of more than
 * `maxFragmentsPerRecord` fragments (a stream of tiny fragments costs per-fragment
 * work for no data), is a protocol violation: `push` throws an OncRpcError and the
 * owner must close the connection. Nothing is buffered beyond the current record.
 */
import assert from 'node:assert';
import { OncRpcError, OncRpcErrorCode } from '../errors.js';
import { RECORD_FRAGMENT_LENGTH_MASK, RECORD_HEADER_BYTES, RECORD_LAST_FRAGMENT } from '../protocol.js';

/**
 * A paused socket delivers at most the chunk already in flight; a few more
 * than that means the owner forgot to pause.
 */
const heldChunksMax = 4;

export interface RecordLimits {
  maxRecordBytes: number;
  maxFragmentsPerRecord: number;
}

export interface RecordSink {
  /** Takes one record; returns false to stop delivery until `resume()`. */
  onRecord(record: Buffer): boolean;
}

export class RecordReader {
  private readonly header = Buffer.alloc(RECORD_HEADER_BYTES);
  private headerBytes = 0;
  /** Bytes of the current fragment still to come; -1 while reading a header. */
  private fragmentRemaining = -1;
  private lastFragment = false;
  private pieces: Buffer[] = [];
  private recordBytes = 0;
  private fragments = 0;
  /** Chunks (the first from heldOffset) waiting while delivery is stopped. */
  private readonly held: Buffer[] = [];
  private heldOffset = 0;
  private deliveryStopped = false;

  constructor(
    private readonly limits: RecordLimits,
    private readonly sink: RecordSink,
  ) {}

  /** True while a record (or its header) is partly received: an EOF now truncates it. */
  get midRecord(): boolean {
    return this.headerBytes > 0 || this.fragmentRemaining >= 0 || this.pieces.length > 0 || this.fragments > 0;
  }

  /** Consumes one chunk; delivers the records it completes to the sink, in order. */
  push(chunk: Buffer): void {
    if (this.deliveryStopped) {
      // The owner paused its socket, but a chunk already read may still arrive.
      assert(this.held.length < heldChunksMax, 'chunks keep arriving while delivery is stopped');
      this.held.push(chunk);
      return;
    }
    this.consume(chunk, 0);
  }

  /** True while the sink has stopped delivery (received bytes may be held). */
  get stopped(): boolean {
    return this.deliveryStopped;
  }

  /** Restarts delivery after the sink returned false. */
  resume(): void {
    this.deliveryStopped = false;
    while (this.held.length > 0 && !this.deliveryStopped) {
      const chunk = this.held.shift()!;
      const offset = this.heldOffset;
      this.heldOffset = 0;
      this.consume(chunk, offset);
    }
  }

  private consume(chunk: Buffer, start: number): void {
    let offset = start;
    while (offset < chunk.length) {
      if (this.fragmentRemaining < 0) {
        offset = this.readHeader(chunk, offset);
      } else {
        const take = Math.min(this.fragmentRemaining, chunk.length - offset);
        if (take > 0) this.pieces.push(chunk.subarray(offset, offset + take));
        offset += take;
        this.fragmentRemaining -= take;
        if (this.fragmentRemaining === 0) this.endFragment();
      }
      if (this.deliveryStopped) {
        if (offset < chunk.length) {
          this.held.unshift(chunk);
          this.heldOffset = offset;
        }
        return;
      }
    }
  }

  private readHeader(chunk: Buffer, offset: number): number {
    if (this.headerBytes === 0 && chunk.length - offset >= RECORD_HEADER_BYTES) {
      this.startFragment(chunk.readUInt32BE(offset));
      return offset + RECORD_HEADER_BYTES;
    }
    const take = Math.min(RECORD_HEADER_BYTES - this.headerBytes, chunk.length - offset);
    chunk.copy(this.header, this.headerBytes, offset, offset + take);
    this.headerBytes += take;
    if (this.headerBytes === RECORD_HEADER_BYTES) {
      this.headerBytes = 0;
      this.startFragment(this.header.readUInt32BE(0));
    }
    return offset + take;
  }

  private startFragment(word: number): void {
    const length = word & RECORD_FRAGMENT_LENGTH_MASK;
    this.lastFragment = (word & RECORD_LAST_FRAGMENT) !== 0;
    this.fragments++;
    this.recordBytes += length;
    if (this.recordBytes > this.limits.maxRecordBytes) {
      throw new OncRpcError(
        OncRpcErrorCode.RECORD_TOO_LARGE,
        `record of at least ${this.recordBytes} bytes exceeds maxRecordBytes ${this.limits.maxRecordBytes}`,
      );
    }
    if (this.fragments > this.limits.maxFragmentsPerRecord) {
      throw new OncRpcError(OncRpcErrorCode.BAD_RECORD, `record has more than ${this.limits.maxFragmentsPerRecord} fragments`);
    }
    this.fragmentRemaining = length;
    if (length === 0) this.endFragment();
  }

  private endFragment(): void {
    this.fragmentRemaining = -1;
    if (!this.lastFragment) return;
    const record = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.recordBytes);
    this.pieces = [];
    this.recordBytes = 0;
    this.fragments = 0;
    if (!this.sink.onRecord(record)) this.deliveryStopped = true;
  }
}

/** The fragment header of a single-fragment record of `length` bytes. */
export function recordMark(length: number): Buffer {
  const mark = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  mark.writeUInt32BE((RECORD_LAST_FRAGMENT | length) >>> 0, 0);
  return mark;
}
