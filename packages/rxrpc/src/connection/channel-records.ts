/**
 * The words a server's threads share about each connection besides its
 * serial counter (serial-table.ts), one record per serial slot in a
 * SharedArrayBuffer. Each word has one writer at a time, read and written
 * with Atomics; none of it is a channel's call state, which stays with the
 * channel's thread:
 *
 *   activity   set by a channel worker that read one of the connection's
 *              packets from its own socket (steered routing, where the
 *              routing thread never sees them); taken (cleared) by the
 *              routing thread's idle reaper, which counts the connection as
 *              active.
 *   newest[c]  the newest call number routed to channel c, written by the
 *              thread that routes the channel's packets (the channel's
 *              worker when steered, else the routing thread); read by the
 *              routing thread when that worker dies, to abort that call.
 *   dead[c]    the call a dead worker took with it, written by the routing
 *              thread before it starts the replacement; read by whichever
 *              thread routes the channel's packets, which answers that call's
 *              packets with its ABORT and drops older ones.
 *
 * Life: created by RxServer.prepare on the main thread with one record per
 * possible connection (maxConnections); its buffer goes to every channel
 * worker at start. The routing thread resets a record when it creates the
 * connection, before any worker hears of it.
 */
import assert from 'node:assert/strict';
import { CHANNELS_PER_CONNECTION } from '../protocol.js';

const ACTIVITY = 0;
const NEWEST = 1;
const DEAD = NEWEST + CHANNELS_PER_CONNECTION;
const RECORD_WORDS = DEAD + CHANNELS_PER_CONNECTION;

/** What the router does with a client packet of call `callNumber` on a channel. */
export const CallAdmission = {
  DELIVER: 0,
  /** Of the call a dead worker took: answer with its ABORT again. */
  DEAD_CALL: 1,
  /** Older than that call: drop. */
  STALE: 2,
} as const;
export type CallAdmission = (typeof CallAdmission)[keyof typeof CallAdmission];

export class ChannelRecords {
  private readonly words: Int32Array;

  constructor(slotsOrBuffer: number | SharedArrayBuffer) {
    const buffer = typeof slotsOrBuffer === 'number' ? new SharedArrayBuffer(slotsOrBuffer * RECORD_WORDS * 4) : slotsOrBuffer;
    this.words = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  reset(slot: number): void {
    assert.ok(slot >= 0 && (slot + 1) * RECORD_WORDS <= this.words.length, 'record slot in range');
    for (let word = 0; word < RECORD_WORDS; word++) Atomics.store(this.words, slot * RECORD_WORDS + word, 0);
  }

  /**
   * Marks the connection active. Stores only when the flag is clear: it is
   * set for nearly every packet, by each worker that hosts one of the
   * connection's channels, and a store per packet would move the record's
   * cache line between their cores every time; a load keeps it shared.
   */
  touch(slot: number): void {
    const index = slot * RECORD_WORDS + ACTIVITY;
    if (Atomics.load(this.words, index) === 0) Atomics.store(this.words, index, 1);
  }

  /** True when a worker read a packet of the connection since the last call. */
  takeActivity(slot: number): boolean {
    return Atomics.exchange(this.words, slot * RECORD_WORDS + ACTIVITY, 0) !== 0;
  }

  /** Notes call `callNumber` arriving on `channel`; says whether it may reach the channel. */
  admit(slot: number, channel: number, callNumber: number): CallAdmission {
    const base = slot * RECORD_WORDS;
    const dead = Atomics.load(this.words, base + DEAD + channel) >>> 0;
    if (dead !== 0 && callNumber <= dead) return callNumber === dead ? CallAdmission.DEAD_CALL : CallAdmission.STALE;
    if (callNumber > Atomics.load(this.words, base + NEWEST + channel) >>> 0) Atomics.store(this.words, base + NEWEST + channel, callNumber | 0);
    return CallAdmission.DELIVER;
  }

  /** The channel's worker died: its newest call (0 if none) becomes the dead one. */
  markDead(slot: number, channel: number): number {
    const base = slot * RECORD_WORDS;
    const newest = Atomics.load(this.words, base + NEWEST + channel);
    if (newest !== 0) Atomics.store(this.words, base + DEAD + channel, newest);
    return newest >>> 0;
  }
}
