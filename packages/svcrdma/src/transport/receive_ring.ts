/**
 * Receive slots of one transport: `credits` are kept posted, as many again may
 * be held by calls being served (their arguments are views of the slot), so a
 * client that sends its next call as soon as it sees a reply never finds the
 * Receive Queue empty.
 *
 * Life: created with the transport, which registers `buffer` once; slots move
 * free -> posted -> completed (queued for a worker) -> held (the call is being
 * served) -> free at release. Touched only by the thread serving the
 * transport; the completion callback that marks a slot completed runs there too.
 */
import assert from 'node:assert';

type SlotState = 'free' | 'posted' | 'completed' | 'held';

export interface CompletedReceive {
  readonly slot: number;
  /** The received message: a view of the slot. */
  readonly bytes: Uint8Array;
}

export class ReceiveRing {
  /** All slots' memory, registered once for the transport's life. */
  readonly buffer: Uint8Array;
  /** The same memory as big-endian words (a received header read in place). */
  readonly words: DataView;
  readonly slotCount: number;
  private readonly states: SlotState[];
  private readonly free: number[] = [];
  /** Completed receives in arrival order, waiting for a worker. Bounded by slotCount. */
  private readonly completed: CompletedReceive[] = [];
  posted = 0;

  constructor(
    /** Receives kept posted: the credits granted. */
    readonly credits: number,
    readonly slotBytes: number,
  ) {
    // Posted slots plus the same number held by calls in service.
    this.slotCount = credits * 2;
    this.buffer = new Uint8Array(this.slotCount * slotBytes);
    this.words = new DataView(this.buffer.buffer);
    this.states = new Array<SlotState>(this.slotCount).fill('free');
    for (let slot = this.slotCount - 1; slot >= 0; slot--) this.free.push(slot);
  }

  /** Slots to post to bring the posted count back to the credits, marked posted. */
  takeSlotsToPost(): number[] {
    const slots: number[] = [];
    while (this.posted < this.credits && this.free.length > 0) {
      const slot = this.free.pop()!;
      this.states[slot] = 'posted';
      this.posted++;
      slots.push(slot);
    }
    return slots;
  }

  /** A posted slot was filled with `byteLength` bytes. */
  complete(slot: number, byteLength: number): void {
    // The message is built only when the check fails: this runs for every Receive.
    if (this.states[slot] !== 'posted') assert.fail(`receive slot ${slot} completed while ${this.states[slot]}`);
    assert(byteLength <= this.slotBytes);
    this.states[slot] = 'completed';
    this.posted--;
    const start = slot * this.slotBytes;
    this.completed.push({ slot, bytes: this.buffer.subarray(start, start + byteLength) });
  }

  /** A posted slot was flushed (the QP is in error): it only goes back to free. */
  flush(slot: number): void {
    assert.equal(this.states[slot], 'posted');
    this.posted--;
    this.release(slot);
  }

  /** The oldest completed receive, now held by its caller until release(). */
  next(): CompletedReceive | undefined {
    const receive = this.completed.shift();
    if (receive !== undefined) this.states[receive.slot] = 'held';
    return receive;
  }

  get pending(): number {
    return this.completed.length;
  }

  /** Completed receives nobody will serve (teardown): back to free. */
  flushCompleted(): number {
    const count = this.completed.length;
    for (const receive of this.completed.splice(0)) this.release(receive.slot);
    return count;
  }

  release(slot: number): void {
    assert(this.states[slot] === 'held' || this.states[slot] === 'completed' || this.states[slot] === 'posted');
    this.states[slot] = 'free';
    this.free.push(slot);
  }

  get slotsFree(): number {
    return this.free.length;
  }
}
