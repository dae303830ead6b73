/**
 * The sending half of a call: the transmit queue, the congestion window and
 * retransmission.
 *
 * Life: created by its Call, touched only by the thread that owns the call's
 * channel, dropped with the call. Each queued packet is a complete wire
 * packet (header + data); only its serial is restamped per transmission.
 * Packets the peer hard-ACKs leave the queue through `onHardAcked`, which the
 * call hands to its channel's release list.
 *
 * Window: at most min(cwnd, peer rwind) packets beyond the hard-ACK point are
 * in flight. Slow start grows cwnd by one per newly ACKed packet up to
 * ssthresh, congestion avoidance by one per window; three ACKs that report a
 * hole below soft-ACKed packets start a fast recovery (ssthresh = cwnd/2, the
 * holes sent again at once); a retransmission timeout sets cwnd back to 1.
 */
import assert from 'node:assert/strict';
import { countRtt, type CounterSnapshot } from '../metrics.js';
import type { FilledCallOptions } from '../options.js';
import {
  HEADER_OFFSET,
  HEADER_SIZE,
  JUMBO_DATA_SIZE,
  JUMBO_DATAGRAM_SIZE,
  JUMBO_HEADER_OFFSET,
  JUMBO_HEADER_SIZE,
  JUMBO_PACKETS_MAX,
  MAX_SOFT_ACKS,
  PacketFlag,
  SoftAck,
} from '../protocol.js';
import { seqBefore, stampSerial, type AckBody, type AckTrailer } from '../wire/codec.js';
import type { PeerPath } from './peer-path.js';
import type { RttEstimator } from './rtt.js';

interface TransmitEntry {
  seq: number;
  packet: Uint8Array;
  /** Serial of the latest transmission; 0 before the first. */
  serial: number;
  sentAtMs: number;
  transmissions: number;
  softAcked: boolean;
  /** The recovery (Sender.recoveries) that last sent this packet again; 0 for none. */
  recovery: number;
}

export interface SenderLink {
  readonly options: FilledCallOptions;
  readonly rtt: RttEstimator;
  readonly path: PeerPath;
  readonly counters: CounterSnapshot;
  nextSerial(): number;
  /** The first of `count` consecutive serials (a jumbogram's packets take serial, serial + 1, ...). */
  nextSerials(count: number): number;
  /** Sends or copies `packet` before returning: the caller reuses its buffer. */
  transmit(packet: Uint8Array): void;
  /** Takes ownership of a packet buffer the peer will never ask for again. */
  release(packet: Uint8Array): void;
}

/**
 * Where jumbograms are assembled: transmit copies before returning, so one
 * buffer per thread serves every call (module state is per worker thread).
 */
const jumbogramScratch = new Uint8Array(JUMBO_DATAGRAM_SIZE);

/** Flags a queued packet gets anew on each transmission. */
const BURST_FLAGS = PacketFlag.REQUEST_ACK | PacketFlag.MORE_PACKETS;

/** Reports of a hole that trigger a fast retransmit: TCP's three duplicate ACKs. */
const FAST_RETRANSMIT_THRESHOLD = 3;

export class Sender {
  private readonly link: SenderLink;
  /** seq -> entry for every packet not yet hard-ACKed. Bounded by options.sendQueuePackets. */
  private readonly queue = new Map<number, TransmitEntry>();
  /** Every seq <= hardAck is hard-ACKed and released. */
  hardAck = 0;
  /** The next seq to assign. */
  nextSeq = 1;
  /** The first seq never transmitted. */
  private nextToTransmit = 1;
  /** The seq that carries LAST_PACKET, once queued. */
  lastSeq: number | undefined;
  /** The peer's window and jumbogram size and our congestion window: the channel's, carried across its calls. */
  private readonly path: PeerPath;
  private congestionCredit = 0;
  private holeReports = 0;
  /** The packets of the datagram being sent (reused: one datagram at a time); at most JUMBO_PACKETS_MAX. */
  private readonly run: TransmitEntry[] = [];
  /** The holes the latest ACK reported; bounded by its soft-ACK table (MAX_SOFT_ACKS). */
  private readonly holes: TransmitEntry[] = [];
  /** While recovering from holes: the last seq sent before the recovery began. */
  private recoveryPoint: number | undefined;
  /** Recoveries begun; a packet sent again in one carries its number. */
  private recoveries = 0;
  /**
   * No later than the send time of the oldest in-flight packet the peer has
   * not soft-ACKed. Sends never lower that time and ACKs only raise it, so
   * it stays a bound until a soft-ACK is taken back (applySoftAcks clears it).
   */
  private oldestSentAtBoundMs: number | undefined;

  constructor(link: SenderLink) {
    this.link = link;
    this.path = link.path;
    // A call starts from the window the last one reached (never below the initial one) and may
    // slow-start beyond it: a loss in an earlier call does not cap this one's growth for good.
    this.path.congestionWindow = Math.max(this.path.congestionWindow, link.options.initialCongestionWindow);
    this.path.slowStartThreshold = MAX_SOFT_ACKS;
  }

  get queuedPackets(): number {
    return this.queue.size;
  }

  hasTransmitted(): boolean {
    return this.nextToTransmit > 1;
  }

  hasRoom(): boolean {
    return this.queue.size < this.link.options.sendQueuePackets;
  }

  /** True once the last packet is queued and the peer hard-ACKed everything. */
  allAcked(): boolean {
    return this.lastSeq !== undefined && this.hardAck >= this.lastSeq;
  }

  /** True once the last packet is queued (the application has nothing more to send). */
  finished(): boolean {
    return this.lastSeq !== undefined;
  }

  /** Queues one complete DATA packet; `build` gets its seq. */
  enqueue(build: (seq: number) => Uint8Array, last: boolean): void {
    assert.ok(this.hasRoom(), 'writers wait for room in the transmit queue');
    assert.equal(this.lastSeq, undefined, 'nothing is queued after the last packet');
    const seq = this.nextSeq;
    this.nextSeq += 1;
    this.queue.set(seq, { seq, packet: build(seq), serial: 0, sentAtMs: 0, transmissions: 0, softAcked: false, recovery: 0 });
    if (last) this.lastSeq = seq;
  }

  private windowLimit(): number {
    return Math.max(1, Math.min(this.path.congestionWindow, this.path.peerWindow, MAX_SOFT_ACKS));
  }

  private inFlight(): number {
    return this.nextToTransmit - this.hardAck - 1;
  }

  /**
   * Sends never-sent packets while the window allows, several per jumbogram
   * when the peer takes them. A jumbogram the window would cut short waits
   * while packets are in flight (their ACK reopens the window), as OpenAFS's
   * sender holds back an incomplete group: a receiver that frees its window
   * a few packets at a time (the rx C client hard-ACKs every third packet it
   * reads) would otherwise get a stream of small datagrams, each costing it
   * a wake-up and an ACK.
   */
  transmitReady(nowMs: number): number {
    let sent = 0;
    const limit = this.windowLimit();
    const fullRun = Math.min(this.path.peerJumboPackets, limit);
    while (this.nextToTransmit < this.nextSeq && this.inFlight() < limit) {
      const room = limit - this.inFlight();
      const run = this.nextRun(room);
      if (run.length === room && room < fullRun && this.inFlight() > 0 && !this.endsWithLast(run)) break;
      this.nextToTransmit += run.length;
      const more = this.nextToTransmit < this.nextSeq;
      const stalls = more && limit - this.inFlight() < fullRun;
      // Ask for an ACK when the window leaves no room for the next full datagram: it reopens the
      // window at once. MORE_PACKETS tells the receiver another datagram follows at once, so it
      // need not ACK this one.
      const extraFlags = stalls ? PacketFlag.REQUEST_ACK : more ? PacketFlag.MORE_PACKETS : 0;
      if (run.length === 1) this.send(run[0]!, nowMs, extraFlags);
      else this.sendJumbo(run, nowMs, extraFlags);
      sent += run.length;
    }
    return sent;
  }

  private endsWithLast(run: TransmitEntry[]): boolean {
    return run[run.length - 1]!.seq === this.lastSeq;
  }

  /** Consecutive never-sent packets for one datagram: all but the last must be full jumbo buffers. */
  private nextRun(room: number): TransmitEntry[] {
    const run = this.run;
    run.length = 0;
    const most = Math.min(room, this.path.peerJumboPackets);
    for (let seq = this.nextToTransmit; seq < this.nextSeq && run.length < most; seq++) {
      const entry = this.queue.get(seq);
      assert.ok(entry !== undefined, 'every seq between the hard-ACK point and nextSeq is queued');
      run.push(entry);
      if (entry.packet.byteLength !== HEADER_SIZE + JUMBO_DATA_SIZE) break;
    }
    return run;
  }

  /**
   * One jumbogram: the first packet whole (JUMBO_PACKET set in the datagram
   * only), then per further packet a jumbo header and its data. The queued
   * packets stay plain, so a retransmission goes out on its own.
   */
  private sendJumbo(run: TransmitEntry[], nowMs: number, extraFlags: number): void {
    const last = run[run.length - 1]!;
    const datagram = jumbogramScratch.subarray(0, HEADER_SIZE + (run.length - 1) * (JUMBO_DATA_SIZE + JUMBO_HEADER_SIZE) + last.packet.byteLength - HEADER_SIZE);
    const firstSerial = this.link.nextSerials(run.length);
    this.oldestSentAtBoundMs ??= nowMs;
    let offset = 0;
    for (let index = 0; index < run.length; index++) {
      const entry = run[index]!;
      const packet = entry.packet;
      packet[HEADER_OFFSET.flags] = (packet[HEADER_OFFSET.flags]! & ~BURST_FLAGS) | (entry === last ? extraFlags : extraFlags & PacketFlag.MORE_PACKETS);
      entry.serial = (firstSerial + index) >>> 0;
      stampSerial(packet, entry.serial);
      entry.sentAtMs = nowMs;
      entry.transmissions = 1;
      const more = entry === last ? 0 : PacketFlag.JUMBO_PACKET;
      if (index === 0) {
        datagram.set(packet, 0);
        datagram[HEADER_OFFSET.flags] = packet[HEADER_OFFSET.flags]! | more;
        offset = packet.byteLength;
        continue;
      }
      datagram[offset + JUMBO_HEADER_OFFSET.flags] = packet[HEADER_OFFSET.flags]! | more;
      datagram[offset + JUMBO_HEADER_OFFSET.checksum] = packet[HEADER_OFFSET.checksum]!;
      datagram[offset + JUMBO_HEADER_OFFSET.checksum + 1] = packet[HEADER_OFFSET.checksum + 1]!;
      datagram.set(packet.subarray(HEADER_SIZE), offset + JUMBO_HEADER_SIZE);
      offset += JUMBO_HEADER_SIZE + packet.byteLength - HEADER_SIZE;
    }
    this.link.counters.dataPacketsSent += run.length;
    assert.equal(offset, datagram.byteLength, 'the jumbogram is exactly filled');
    this.link.transmit(datagram);
  }

  private send(entry: TransmitEntry, nowMs: number, extraFlags: number): void {
    const retransmission = entry.transmissions > 0;
    const flagsAt = HEADER_OFFSET.flags;
    entry.packet[flagsAt] = (entry.packet[flagsAt]! & ~BURST_FLAGS) | extraFlags | (retransmission ? PacketFlag.REQUEST_ACK : 0);
    entry.serial = this.link.nextSerial();
    stampSerial(entry.packet, entry.serial);
    entry.sentAtMs = nowMs;
    entry.transmissions += 1;
    this.oldestSentAtBoundMs = Math.min(this.oldestSentAtBoundMs ?? nowMs, nowMs);
    if (retransmission) this.link.counters.dataPacketsReSent += 1;
    else this.link.counters.dataPacketsSent += 1;
    this.link.transmit(entry.packet);
  }

  /** The reply to a request, or the next call on the channel, proves every packet arrived. */
  acknowledgeAll(): void {
    const through = this.nextSeq - 1;
    this.advanceHardAck(through + 1);
  }

  /**
   * Applies an ACK. Returns false when it is impossible (ACKs packets never
   * sent): the caller aborts the call with RX_PROTOCOL_ERROR.
   */
  onAck(ack: AckBody, nowMs: number): boolean {
    const firstPacket = ack.firstPacket;
    if (seqBefore(this.nextToTransmit, firstPacket) || firstPacket + ack.acks.byteLength - 1 >= this.nextToTransmit + MAX_SOFT_ACKS) {
      return false;
    }
    if (ack.trailer !== undefined) this.applyTrailer(ack.trailer);
    this.sampleRtt(ack, nowMs);
    const newlyAcked = this.advanceHardAck(firstPacket);
    if (newlyAcked > 0) this.link.rtt.onProgress();
    this.applySoftAcks(ack);
    this.adjustCongestionWindow(newlyAcked);
    this.holes.length = 0;
    return true;
  }

  private applyTrailer(trailer: AckTrailer): void {
    this.path.peerWindow = Math.max(1, Math.min(trailer.rwind, MAX_SOFT_ACKS));
    const fitInMtu = Math.floor((trailer.maxMTU - HEADER_SIZE + JUMBO_HEADER_SIZE) / (JUMBO_DATA_SIZE + JUMBO_HEADER_SIZE));
    this.path.peerJumboPackets = Math.max(1, Math.min(trailer.maxDgramPackets, fitInMtu, JUMBO_PACKETS_MAX));
  }

  private sampleRtt(ack: AckBody, nowMs: number): void {
    // Only packets in flight carry serials (the queue beyond them may hold hundreds never sent);
    // an ACK usually names one of the latest sent, so the search starts there.
    for (let seq = this.nextToTransmit - 1; seq > this.hardAck; seq--) {
      const entry = this.queue.get(seq);
      if (entry !== undefined && entry.serial === ack.serial && entry.transmissions === 1) {
        this.link.rtt.addSample(nowMs - entry.sentAtMs);
        countRtt(this.link.counters, nowMs - entry.sentAtMs);
        return;
      }
    }
  }

  private advanceHardAck(firstPacket: number): number {
    let acked = 0;
    // Bounded by the queue: each turn removes one entry.
    while (this.hardAck + 1 < firstPacket && this.hardAck + 1 < this.nextSeq) {
      this.hardAck += 1;
      const entry = this.queue.get(this.hardAck);
      assert.ok(entry !== undefined, 'hard-ACKed packets were queued');
      this.queue.delete(this.hardAck);
      if (entry.transmissions > 0) acked += 1;
      this.link.release(entry.packet);
    }
    if (this.nextToTransmit <= this.hardAck) this.nextToTransmit = this.hardAck + 1;
    if (this.inFlight() === 0) this.oldestSentAtBoundMs = undefined;
    return acked;
  }

  /** Marks soft-ACKs; collects in `holes` the NACKed packets we sent that have a soft-ACKed packet after them. */
  private applySoftAcks(ack: AckBody): void {
    this.holes.length = 0;
    let softAckedAfter = false;
    for (let index = ack.acks.byteLength - 1; index >= 0; index--) {
      const entry = this.queue.get(ack.firstPacket + index);
      if (entry === undefined) continue;
      if (ack.acks[index] === SoftAck.ACK) {
        entry.softAcked = true;
        softAckedAfter = true;
      } else {
        // A soft-ACK taken back puts the packet under the retransmission timer again.
        if (entry.softAcked) this.oldestSentAtBoundMs = undefined;
        entry.softAcked = false;
        if (softAckedAfter && entry.transmissions > 0) this.holes.push(entry);
      }
    }
  }

  /**
   * Slow start and congestion avoidance; fast recovery on holes. The third
   * ACK in a row that reports holes halves the window once and starts a
   * recovery that lasts until everything sent before it is hard-ACKed; during
   * it every hole an ACK reports is sent again, once (a loss of several
   * packets, e.g. a whole jumbogram dropped by a full socket buffer, is
   * repaired in one round trip instead of one hole per retransmission timeout).
   */
  private adjustCongestionWindow(newlyAcked: number): void {
    if (this.recoveryPoint !== undefined && this.hardAck >= this.recoveryPoint) {
      this.recoveryPoint = undefined;
      this.holeReports = 0;
    }
    if (this.holes.length > 0) {
      if (this.recoveryPoint === undefined) {
        this.holeReports += 1;
        if (this.holeReports < FAST_RETRANSMIT_THRESHOLD) return;
        this.path.slowStartThreshold = Math.max(2, Math.floor(this.path.congestionWindow / 2));
        this.path.congestionWindow = this.path.slowStartThreshold;
        this.recoveryPoint = this.nextToTransmit - 1;
        this.recoveries += 1;
      }
      this.retransmitHoles();
      return;
    }
    if (newlyAcked === 0) return;
    this.holeReports = 0;
    if (this.recoveryPoint !== undefined) return;
    if (this.path.congestionWindow < this.path.slowStartThreshold) {
      this.path.congestionWindow = Math.min(this.path.congestionWindow + newlyAcked, MAX_SOFT_ACKS);
    } else {
      this.congestionCredit += newlyAcked;
      if (this.congestionCredit >= this.path.congestionWindow) {
        this.congestionCredit -= this.path.congestionWindow;
        this.path.congestionWindow = Math.min(this.path.congestionWindow + 1, MAX_SOFT_ACKS);
      }
    }
  }

  /** Sends each reported hole not yet sent again in this recovery, lowest first. */
  private retransmitHoles(): void {
    for (let index = this.holes.length - 1; index >= 0; index--) {
      const entry = this.holes[index]!;
      if (entry.recovery === this.recoveries) continue;
      entry.recovery = this.recoveries;
      this.link.counters.dataPacketsPushed += 1;
      // Keeps its first send time: if this copy is lost too, the timer fires on the original schedule.
      this.send(entry, entry.sentAtMs, 0);
    }
  }

  /**
   * A deadline no later than the retransmission timeout's, for arming the
   * call's timer on every ACK without scanning the window: an early timer
   * only makes the caller ask `retransmitDeadlineMs` for the exact one.
   */
  retransmitDeadlineBoundMs(): number | undefined {
    if (this.inFlight() === 0 || this.oldestSentAtBoundMs === undefined) return this.retransmitDeadlineMs();
    return this.oldestSentAtBoundMs + this.link.rtt.retransmitTimeoutMs();
  }

  /** When the oldest unACKed packet times out; undefined when nothing is in flight. */
  retransmitDeadlineMs(): number | undefined {
    let oldest: number | undefined;
    for (let seq = this.hardAck + 1; seq < this.nextToTransmit; seq++) {
      const entry = this.queue.get(seq);
      if (entry === undefined || entry.softAcked) continue;
      oldest = oldest === undefined ? entry.sentAtMs : Math.min(oldest, entry.sentAtMs);
    }
    this.oldestSentAtBoundMs = oldest;
    return oldest === undefined ? undefined : oldest + this.link.rtt.retransmitTimeoutMs();
  }

  /** Retransmission timeout: resend what the peer has not soft-ACKed, within a collapsed window. */
  onRetransmitTimeout(nowMs: number): void {
    this.link.rtt.onTimeout();
    this.path.slowStartThreshold = Math.max(2, Math.floor(this.path.congestionWindow / 2));
    this.path.congestionWindow = 1;
    this.holeReports = 0;
    this.recoveryPoint = undefined;
    let resent = 0;
    const budget = Math.max(1, Math.min(this.path.slowStartThreshold, this.path.peerWindow));
    for (let seq = this.hardAck + 1; seq < this.nextToTransmit && resent < budget; seq++) {
      const entry = this.queue.get(seq);
      if (entry === undefined || entry.softAcked) continue;
      this.send(entry, nowMs, 0);
      resent += 1;
    }
  }

  /** Drops every queued packet (call ended in error), handing buffers back. */
  discard(): void {
    // Most calls end with every packet hard-ACKed: an empty queue needs no iterator and no new table.
    if (this.queue.size === 0) return;
    for (const entry of this.queue.values()) this.link.release(entry.packet);
    this.queue.clear();
  }
}
