/**
 * The receiving half of a call: reassembly, the soft-ACK table and the
 * decision of when to ACK.
 *
 * Life: created by its Call, touched only by the thread that owns the call's
 * channel. Holds at most `receiveWindow` packets: the hard-ACK point
 * (firstPacket) is the next packet the application will take, packets past
 * it are soft-ACKed, anything beyond firstPacket + window is dropped with an
 * EXCEEDS_WINDOW ACK.
 */
import assert from 'node:assert/strict';
import type { FilledCallOptions } from '../options.js';
import { AckReason, PacketFlag, SoftAck } from '../protocol.js';
import type { DataPacket } from '../wire/codec.js';

export type ReceiveOutcome =
  | { kind: 'accepted'; ackNow: AckReason | undefined }
  | { kind: 'duplicate' }
  | { kind: 'exceeds-window' }
  | { kind: 'protocol-error'; reason: string };

/**
 * Packets arrive as views into a whole cross-thread batch (up to 256 KiB):
 * holding such a view would pin the batch, so a hostile peer could make a
 * window of 64 small packets pin 16 MiB. Views of much larger buffers are copied.
 */
function ownedCopy(data: Uint8Array): Uint8Array {
  return data.buffer.byteLength > 2 * data.byteLength + 64 ? data.slice() : data;
}

export class Receiver {
  private readonly options: FilledCallOptions;
  /** seq -> data for packets received but not yet taken. Bounded by receiveWindow. */
  private readonly held = new Map<number, Uint8Array>();
  /** The next seq the application takes: every seq below it is hard-ACKed. */
  firstPacket = 1;
  /** Highest seq received so far (0 = none). */
  highestSeq = 0;
  /** The seq flagged LAST_PACKET, once seen. */
  lastSeq: number | undefined;
  /** Packets accepted since the last ACK we sent. */
  unackedPackets = 0;
  /** Serial of the latest DATA packet, echoed in ACKs. */
  latestSerial = 0;

  constructor(options: FilledCallOptions) {
    this.options = options;
  }

  /** True when every packet up to LAST_PACKET has been taken by the application. */
  complete(): boolean {
    return this.lastSeq !== undefined && this.firstPacket > this.lastSeq;
  }

  /** True when every packet up to LAST_PACKET has arrived (taken or not). */
  allArrived(): boolean {
    if (this.lastSeq === undefined) return false;
    for (let seq = this.firstPacket; seq <= this.lastSeq; seq++) if (!this.held.has(seq)) return false;
    return true;
  }

  accept(packet: DataPacket): ReceiveOutcome {
    const { seq, flags, serial } = packet.header;
    if (seq === 0) return { kind: 'protocol-error', reason: 'DATA packet with seq 0' };
    if (this.lastSeq !== undefined && seq > this.lastSeq) {
      return { kind: 'protocol-error', reason: `DATA seq ${seq} after LAST_PACKET seq ${this.lastSeq}` };
    }
    if ((flags & PacketFlag.LAST_PACKET) !== 0) {
      if (seq < this.highestSeq) return { kind: 'protocol-error', reason: `LAST_PACKET seq ${seq} below seq ${this.highestSeq}` };
      this.lastSeq = seq;
    }
    this.latestSerial = serial;
    if (seq < this.firstPacket || this.held.has(seq)) return { kind: 'duplicate' };
    if (seq >= this.firstPacket + this.options.receiveWindow) return { kind: 'exceeds-window' };
    const outOfSequence = seq > this.highestSeq + 1;
    this.held.set(seq, ownedCopy(packet.data));
    this.highestSeq = Math.max(this.highestSeq, seq);
    this.unackedPackets += 1;
    return { kind: 'accepted', ackNow: this.ackReasonFor(flags, outOfSequence) };
  }

  private ackReasonFor(flags: number, outOfSequence: boolean): AckReason | undefined {
    if ((flags & PacketFlag.REQUEST_ACK) !== 0) return AckReason.REQUESTED;
    if (outOfSequence) return AckReason.OUT_OF_SEQUENCE;
    if (this.unackedPackets >= this.options.ackEveryPackets) return AckReason.DELAY;
    // The sender's burst ends here (the packet is not followed by another of its jumbogram and
    // lacks MORE_PACKETS) before the end of its data: it may be waiting for this ACK to open its
    // window, and a delayed ACK would stall it for ackDelayMs. The last packet needs none: the
    // reply or the final ACK acknowledges it.
    if ((flags & (PacketFlag.MORE_PACKETS | PacketFlag.JUMBO_PACKET | PacketFlag.LAST_PACKET)) === 0) return AckReason.IDLE;
    return undefined;
  }

  /** Moves the in-order packets that have arrived onto `queue`, advancing the hard-ACK point. */
  takeReadyInto(queue: Uint8Array[]): void {
    // Bounded by the window: each turn removes one held packet.
    for (;;) {
      const data = this.held.get(this.firstPacket);
      if (data === undefined) break;
      this.held.delete(this.firstPacket);
      this.firstPacket += 1;
      queue.push(data);
    }
    assert.ok(this.held.size <= this.options.receiveWindow, 'held packets stay within the window');
  }

  /** The soft-ACK table from firstPacket through the highest packet seen. */
  softAckTable(): Uint8Array {
    const count = Math.max(0, Math.min(this.highestSeq - this.firstPacket + 1, this.options.receiveWindow));
    const table = new Uint8Array(count);
    for (let index = 0; index < count; index++) {
      table[index] = this.held.has(this.firstPacket + index) ? SoftAck.ACK : SoftAck.NACK;
    }
    return table;
  }

  onAckSent(): void {
    this.unackedPackets = 0;
  }
}
