/**
 * Per-connection packet serial counters.
 *
 * Serials are connection-wide (every packet of a connection gets the next
 * one) while the connection's channels run on different threads, so each
 * counter is one Int32 slot of a SharedArrayBuffer advanced with
 * Atomics.add: a lock-free counter, the only state threads share, and it is
 * connection state, not channel state. Life: the table is created by the
 * endpoint's owner (server or client) on the main thread with a fixed number
 * of slots; the main thread assigns a slot when it creates a connection and
 * resets it; channel threads only advance it.
 */
import assert from 'node:assert/strict';

export class SerialTable {
  readonly counters: Int32Array;

  constructor(slotsOrBuffer: number | SharedArrayBuffer) {
    const buffer = typeof slotsOrBuffer === 'number' ? new SharedArrayBuffer(slotsOrBuffer * 4) : slotsOrBuffer;
    this.counters = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.counters.buffer as SharedArrayBuffer;
  }

  reset(slot: number): void {
    assert.ok(slot >= 0 && slot < this.counters.length, 'serial slot in range');
    Atomics.store(this.counters, slot, 0);
  }

  /**
   * Reserves `count` consecutive serials and returns the first. Serial
   * numbers start at 1: OpenAFS treats serial 0 as "never sent".
   */
  next(slot: number, count = 1): number {
    return (Atomics.add(this.counters, slot, count) + 1) >>> 0;
  }
}
