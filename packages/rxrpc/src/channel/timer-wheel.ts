/**
 * One timer for every call of a thread: a hashed wheel of deadline slots
 * driven by a single interval while anything is scheduled.
 *
 * Life: created by its ChannelThread (one per channel worker, one for the
 * routing thread with `workers: 0`, one per client) and touched only by that
 * thread. Calls schedule and cancel themselves; the wheel holds a call only
 * while it has a deadline, and its interval stops at the first tick that
 * finds none left, so an idle thread has no timer keeping its event loop
 * alive. Not at once on the last cancel: back-to-back calls each schedule
 * and cancel, and a setInterval/clearInterval pair per call cost a Timeout
 * object and two timer-list operations on the latency path of every call.
 *
 * Why: a Node timer per call cost a Timeout object and a timer-list insert
 * for every deadline change (a Null call moved its timer three times: idle,
 * delayed ACK, retransmission) — a measurable share of a small call's CPU.
 * Here a deadline change is an unlink and a link in two slots' lists, which
 * run through the entries themselves: no allocation, where a Set per slot
 * reallocated its table as calls came and went (about 0.4 KB per Null call,
 * collected by the scavenger). The price is precision: a deadline fires up to
 * one tick late, far below the 5 ms ACK delay and the 40 ms minimum
 * retransmission timeout it serves.
 */
import assert from 'node:assert/strict';

/** Granularity of deadlines. */
export const TICK_MS = 2;
/** Slots in the wheel (a power of two): deadlines further than SLOTS * TICK_MS wrap and are checked once per turn. */
const SLOTS = 1024;

export interface WheelEntry {
  /** Slot the entry sits in, -1 when not scheduled. Owned by the wheel. */
  wheelSlot: number;
  /** Deadline (performance.now() ms). Owned by the wheel. */
  wheelAtMs: number;
  /** The entry's neighbours in its slot's list (undefined at the ends and when not scheduled). Owned by the wheel. */
  wheelPrevious: WheelEntry | undefined;
  wheelNext: WheelEntry | undefined;
  onWheelTimer(): void;
}

export class TimerWheel {
  /** First and last entry of each slot's list, in scheduling order. */
  private readonly heads: (WheelEntry | undefined)[] = new Array<WheelEntry | undefined>(SLOTS).fill(undefined);
  private readonly tails: (WheelEntry | undefined)[] = new Array<WheelEntry | undefined>(SLOTS).fill(undefined);
  /** Entries in the wheel; bounded by the calls of the thread (each is in at most one slot). */
  private scheduled = 0;
  private interval: NodeJS.Timeout | undefined;
  /** The last tick whose slot was processed. */
  private processedTick = 0;
  /** Reused between ticks: the entries due in one slot. */
  private readonly due: WheelEntry[] = [];

  get size(): number {
    return this.scheduled;
  }

  /** Sets (or moves) the entry's deadline; a deadline already past fires on the next tick. */
  schedule(entry: WheelEntry, atMs: number): void {
    if (this.interval === undefined) this.start();
    // A slot is processed once its tick has fully begun, so put the entry in the tick after its deadline —
    // but never in a slot already processed, which would hold it for a whole revolution.
    const tick = Math.max(Math.floor(atMs / TICK_MS) + 1, this.processedTick + 1);
    const slot = tick & (SLOTS - 1);
    if (entry.wheelSlot === slot) {
      entry.wheelAtMs = atMs;
      return;
    }
    if (entry.wheelSlot >= 0) this.unlink(entry);
    else this.scheduled += 1;
    this.link(entry, slot);
    entry.wheelAtMs = atMs;
  }

  cancel(entry: WheelEntry): void {
    if (entry.wheelSlot < 0) return;
    this.unlink(entry);
    entry.wheelSlot = -1;
    this.scheduled -= 1;
    assert.ok(this.scheduled >= 0, 'the wheel never cancels more than it scheduled');
  }

  /** Appends the entry to `slot`'s list. */
  private link(entry: WheelEntry, slot: number): void {
    const tail = this.tails[slot];
    entry.wheelSlot = slot;
    entry.wheelPrevious = tail;
    entry.wheelNext = undefined;
    if (tail === undefined) this.heads[slot] = entry;
    else tail.wheelNext = entry;
    this.tails[slot] = entry;
  }

  /** Takes the entry out of its slot's list (its wheelSlot is left to the caller). */
  private unlink(entry: WheelEntry): void {
    const slot = entry.wheelSlot;
    const { wheelPrevious: previous, wheelNext: next } = entry;
    if (previous === undefined) this.heads[slot] = next;
    else previous.wheelNext = next;
    if (next === undefined) this.tails[slot] = previous;
    else next.wheelPrevious = previous;
    entry.wheelPrevious = undefined;
    entry.wheelNext = undefined;
  }

  private start(): void {
    this.processedTick = Math.floor(performance.now() / TICK_MS);
    this.interval = setInterval(() => this.tick(), TICK_MS);
  }

  private stop(): void {
    if (this.interval !== undefined) clearInterval(this.interval);
    this.interval = undefined;
  }

  private tick(): void {
    if (this.scheduled === 0) return this.stop();
    const nowMs = performance.now();
    const currentTick = Math.floor(nowMs / TICK_MS);
    // A late turn of the event loop catches up, but one revolution visits every slot.
    const first = Math.max(this.processedTick + 1, currentTick - SLOTS + 1);
    for (let tick = first; tick <= currentTick; tick++) {
      // Set first: an entry its slot's handlers schedule for a past deadline goes to the next slot.
      this.processedTick = tick;
      this.fireDue(tick & (SLOTS - 1), nowMs);
    }
  }

  private fireDue(slot: number, nowMs: number): void {
    for (let entry = this.heads[slot]; entry !== undefined; entry = entry.wheelNext) if (entry.wheelAtMs <= nowMs) this.due.push(entry);
    // Fired entries leave the wheel first: their handlers schedule them again as needed.
    for (const entry of this.due) this.cancel(entry);
    try {
      for (const entry of this.due) entry.onWheelTimer();
    } finally {
      this.due.length = 0;
    }
  }
}
