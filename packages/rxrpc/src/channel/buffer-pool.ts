/**
 * A bounded pool of packet buffers, one per thread.
 *
 * Life: created by the thread that hosts channels (a channel worker, or the
 * client's main thread); touched only by that thread. Buffers leave through
 * acquire() into a call's transmit queue, come back through the owning
 * channel's release list, which the channel drains here between calls.
 */
import assert from 'node:assert/strict';
import { HEADER_SIZE, MAX_DATA_PER_PACKET } from '../protocol.js';

/** Every pooled buffer fits the largest packet we send. */
export const POOL_BUFFER_SIZE = HEADER_SIZE + MAX_DATA_PER_PACKET;

export class BufferPool {
  /** Free buffers; never more than `capacity`, the rest go to the garbage collector. */
  private readonly free: ArrayBuffer[] = [];
  readonly capacity: number;
  allocations = 0;

  constructor(capacity: number) {
    assert.ok(Number.isInteger(capacity) && capacity >= 0, 'pool capacity is a count');
    this.capacity = capacity;
  }

  get available(): number {
    return this.free.length;
  }

  acquire(size: number): Uint8Array {
    // Checked before the message is built: this runs for every packet a call sends.
    if (size > POOL_BUFFER_SIZE) assert.fail(`packet of ${size} bytes does not fit a pool buffer`);
    const buffer = this.free.pop();
    if (buffer !== undefined) return new Uint8Array(buffer, 0, size);
    this.allocations += 1;
    return new Uint8Array(new ArrayBuffer(POOL_BUFFER_SIZE), 0, size);
  }

  /** Returns a buffer; buffers not from a pool (or beyond capacity) are simply dropped. */
  put(packet: Uint8Array): boolean {
    if (packet.buffer.byteLength !== POOL_BUFFER_SIZE || this.free.length >= this.capacity) return false;
    this.free.push(packet.buffer as ArrayBuffer);
    return true;
  }
}
