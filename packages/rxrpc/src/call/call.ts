/**
 * One call on one channel: request and reply, both roles.
 *
 * Life: created by a Channel when a call starts (the client's startCall, or
 * the server's first DATA of a new call number); owned by that channel and
 * touched only by the channel's thread; ended by the channel (complete,
 * superseded by the next call, aborted, or dead), after which it holds no
 * buffers: the sender hands every packet to the channel's release list.
 *
 * Phases. Client: sending the request -> receiving the reply -> complete
 * (its channel then owes the final ACK, see Channel). Server: receiving the request -> sending the reply ->
 * complete when the reply is hard-ACKed, an ACKALL arrives, or the next call
 * on the channel starts (which proves the client has the whole reply).
 */
import assert from 'node:assert/strict';
import { RxError } from '../errors.js';
import { countRtt, type CounterSnapshot } from '../metrics.js';
import type { FilledCallOptions } from '../options.js';
import {
  AckReason,
  HEADER_OFFSET,
  HEADER_SIZE,
  MAX_DATA_PER_PACKET,
  PacketFlag,
  PacketType,
  RxErrorCode,
} from '../protocol.js';
import { decodeAbortCode, decodeAck, encodeAbortBody, encodeAckBody, encodeHeader, encodePacket, localAckTrailer, stampSeq, type DataPacket, type PacketHeader } from '../wire/codec.js';
import { Receiver } from './receiver.js';
import type { TimerWheel, WheelEntry } from '../channel/timer-wheel.js';
import type { PeerPath } from './peer-path.js';
import type { RttEstimator } from './rtt.js';
import { Sender } from './sender.js';

/** What a call needs from its channel and connection. */
export interface CallLink {
  readonly isClient: boolean;
  readonly options: FilledCallOptions;
  readonly rtt: RttEstimator;
  /** The channel's knowledge of the peer's window and ours, carried across its calls. */
  readonly path: PeerPath;
  readonly counters: CounterSnapshot;
  /** The thread's one timer, shared by all its calls. */
  readonly timers: TimerWheel;
  /** Header fields shared by every packet of the connection's channel (the same object every time: copy, never change). */
  headerTemplate(): Readonly<Omit<PacketHeader, 'callNumber' | 'seq' | 'serial' | 'type' | 'flags'>>;
  nextSerial(): number;
  nextSerials(count: number): number;
  transmit(packet: Uint8Array): void;
  acquireBuffer(size: number): Uint8Array;
  release(packet: Uint8Array): void;
  nowMs(): number;
}

export type CallPhase = 'sending' | 'receiving' | 'complete' | 'failed';

/** The most ping serials a call remembers: keepalives are seconds apart, so a few cover any RTT. */
const PING_MEMORY = 4;
/** Reads the application may leave untaken before we stop taking packets off the window. */
const READ_QUEUE_PACKETS_MAX = 256;

export interface CallEvents {
  /** The call ended (complete or failed); the channel frees it. */
  ended(call: Call): void;
}

export class Call implements WheelEntry {
  readonly callNumber: number;
  readonly link: CallLink;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  phase: CallPhase;
  error: RxError | undefined;
  /** Set by the application-side stream: data, end of data or room to write appeared, or the call ended. */
  onWake: (() => void) | undefined;
  /** Packets taken off the receive window, waiting for the application. Bounded by READ_QUEUE_PACKETS_MAX. */
  private readonly readQueue: Uint8Array[] = [];
  private readonly events: CallEvents;
  /** Serial -> send time of our pings; created by the first ping (most calls never ping). */
  private pings: Map<number, number> | undefined;
  private readonly startedAtMs: number;
  private lastReceivedAtMs: number;
  private lastSentAtMs: number;
  private delayedAckAtMs: number | undefined;
  /** The call's place in its thread's TimerWheel (owned by the wheel). */
  wheelSlot = -1;
  wheelAtMs = Number.POSITIVE_INFINITY;
  wheelPrevious: WheelEntry | undefined = undefined;
  wheelNext: WheelEntry | undefined = undefined;
  /**
   * Data the application wrote that is not yet packed into queued packets.
   * Bounded by one write beyond the transmit queue: CallStream writers wait
   * for writable() before writing again.
   */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** The application ended its side; pending bytes and LAST_PACKET go out as the queue makes room. */
  private endRequested = false;
  private pinged = false;
  /** Encoded on the first DATA packet we build (most server calls send one). */
  private dataHeader: Uint8Array | undefined;

  constructor(link: CallLink, callNumber: number, events: CallEvents) {
    this.link = link;
    this.callNumber = callNumber;
    this.events = events;
    this.sender = new Sender(link);
    this.receiver = new Receiver(link.options);
    this.phase = link.isClient ? 'sending' : 'receiving';
    this.startedAtMs = link.nowMs();
    this.lastReceivedAtMs = this.startedAtMs;
    this.lastSentAtMs = this.startedAtMs;
    link.counters.callsStarted += 1;
    this.armTimer();
  }

  // -------------------------------------------------------------------------
  // Packets from the peer.
  // -------------------------------------------------------------------------

  onData(packet: DataPacket): void {
    this.lastReceivedAtMs = this.link.nowMs();
    if (this.phase === 'complete' || this.phase === 'failed') return;
    if (this.link.isClient && this.phase === 'sending') this.startReceivingReply();
    if (this.phase !== 'receiving') {
      // A server that is replying gets a request retransmission: the reply in flight answers it.
      this.link.counters.dupPacketsRead += 1;
      this.sendAck(AckReason.DUPLICATE, packet.header.serial);
      return;
    }
    const outcome = this.receiver.accept(packet);
    switch (outcome.kind) {
      case 'protocol-error':
        this.abort(RxErrorCode.PROTOCOL_ERROR, outcome.reason);
        return;
      case 'duplicate':
        this.link.counters.dupPacketsRead += 1;
        this.sendAck(AckReason.DUPLICATE, packet.header.serial);
        return;
      case 'exceeds-window':
        this.sendAck(AckReason.EXCEEDS_WINDOW, packet.header.serial);
        return;
      case 'accepted':
        this.link.counters.dataPacketsRead += 1;
        this.takeReadable();
        if (outcome.ackNow !== undefined) this.sendAck(outcome.ackNow, packet.header.serial);
        else this.scheduleDelayedAck();
        this.afterReceive();
    }
  }

  private startReceivingReply(): void {
    // The first reply packet proves the server has the whole request.
    this.sender.acknowledgeAll();
    this.phase = 'receiving';
  }

  private takeReadable(): void {
    if (this.readQueue.length >= READ_QUEUE_PACKETS_MAX) return;
    this.receiver.takeReadyInto(this.readQueue);
  }

  private afterReceive(): void {
    if (this.link.isClient && this.receiver.complete()) {
      // Otherwise the channel sends it later, unless the next call's DATA acknowledges the reply first.
      if (this.link.options.finalAckDelayMs === 0) this.sendAck(AckReason.DELAY, this.receiver.latestSerial);
      this.finish();
      return;
    }
    this.onWake?.();
    this.armTimer();
  }

  onAck(header: PacketHeader, body: Uint8Array): void {
    this.lastReceivedAtMs = this.link.nowMs();
    this.link.counters.ackPacketsRead += 1;
    const ack = decodeAck(body);
    if (ack.reason === AckReason.PING_RESPONSE) this.samplePing(ack.serial);
    if ((header.flags & PacketFlag.REQUEST_ACK) !== 0 && ack.reason === AckReason.PING) {
      this.sendAck(AckReason.PING_RESPONSE, header.serial);
    }
    if (this.phase === 'complete' || this.phase === 'failed') return;
    // ACKs only steer our sender while we are the side sending data.
    if (this.phase !== 'sending') return this.armTimer();
    if (!this.sender.onAck(ack, this.lastReceivedAtMs)) {
      this.abort(RxErrorCode.PROTOCOL_ERROR, `ACK firstPacket ${ack.firstPacket} covers packets never sent`);
      return;
    }
    this.afterSenderProgress();
  }

  /** ACKALL: the peer has everything we sent on this call. */
  onAckAll(): void {
    this.lastReceivedAtMs = this.link.nowMs();
    if (this.phase !== 'sending') return;
    this.sender.acknowledgeAll();
    this.afterSenderProgress();
  }

  onAbort(body: Uint8Array): void {
    let code: number = RxErrorCode.PROTOCOL_ERROR;
    try {
      code = decodeAbortCode(body);
    } catch {
      // A short ABORT still ends the call; its code is unknown.
    }
    this.fail(new RxError('ERR_RX_CALL_ABORTED', `peer aborted call ${this.callNumber} with code ${code}`, code));
  }

  onBusy(): void {
    this.link.counters.busyPacketsRead += 1;
    this.fail(new RxError('ERR_RX_BUSY', `peer is busy on this channel (call ${this.callNumber})`, RxErrorCode.CALL_DEAD));
  }

  /** The server saw the next call's first DATA: the client has this call's whole reply. */
  supersede(): void {
    if (this.phase === 'complete' || this.phase === 'failed') return;
    assert.ok(this.canBeSuperseded(), 'only a call whose reply is fully queued is superseded');
    this.sender.acknowledgeAll();
    this.link.counters.callsCompletedByNextCall += 1;
    this.finish();
  }

  /** Server side: true when the handler has queued its whole reply (or the call already ended). */
  canBeSuperseded(): boolean {
    return this.phase === 'complete' || this.phase === 'failed' || this.sender.finished();
  }

  private samplePing(serial: number): void {
    const sentAt = this.pings?.get(serial);
    if (sentAt === undefined) return;
    this.pings!.delete(serial);
    const rttMs = this.link.nowMs() - sentAt;
    this.link.rtt.addSample(rttMs);
    countRtt(this.link.counters, rttMs);
  }

  private afterSenderProgress(): void {
    if (!this.link.isClient && this.sender.allAcked()) return this.finish();
    this.packPending(this.endRequested);
    this.sender.transmitReady(this.link.nowMs());
    this.onWake?.();
    this.armTimer();
  }

  // -------------------------------------------------------------------------
  // The application side.
  // -------------------------------------------------------------------------

  /** True when write() can queue more without exceeding the transmit queue bound. */
  writable(): boolean {
    return this.phase === 'sending' && this.sender.hasRoom();
  }

  /** The request (client) or reply (server) may be written: server writes begin the reply. */
  canWrite(): boolean {
    if (this.link.isClient) return this.phase === 'sending';
    return this.phase === 'sending' || (this.phase === 'receiving' && this.receiver.complete() && this.readQueue.length === 0);
  }

  /** Queues data; returns false when the queue is full (wait for wake()). */
  write(data: Uint8Array): boolean {
    assert.ok(this.canWrite(), `call ${this.callNumber} cannot write in phase ${this.phase}`);
    if (!this.link.isClient && this.phase === 'receiving') this.phase = 'sending';
    this.pending.push(data);
    this.pendingBytes += data.byteLength;
    this.packPending(false);
    this.sender.transmitReady(this.link.nowMs());
    this.pingIfUnmeasured();
    this.armTimer();
    return this.sender.hasRoom();
  }

  /** Queues the rest of the data and the LAST_PACKET flag. */
  end(): void {
    assert.ok(this.canWrite(), `call ${this.callNumber} cannot end in phase ${this.phase}`);
    if (!this.link.isClient && this.phase === 'receiving') this.phase = 'sending';
    this.endRequested = true;
    this.packPending(true);
    this.delayedAckAtMs = undefined;
    this.lastSentAtMs = this.link.nowMs();
    this.sender.transmitReady(this.lastSentAtMs);
    this.pingIfUnmeasured();
    this.armTimer();
  }

  /**
   * A client channel with no RTT sample yet pings once, right after its first
   * DATA (so the peer already knows the call): the response's serial gives the
   * RTT that drives retransmission.
   *
   * A server never pings for a sample: its first DATA is its reply, and a ping
   * right behind a reply's last packet reaches a client that is ending the
   * call. OpenAFS's rx client answers a ping before it applies the ping's ACK
   * body and releases the call lock to send the answer; its application thread
   * can start the next call on the channel meanwhile, and the old call's
   * firstPacket is then applied to the new call's transmit queue: packets we
   * never received count as acknowledged, our real ACKs look stale to it, and
   * the call dies RX_CALL_DEAD. Server RTT samples come from the ACKs of the
   * reply's packets instead (Sender.sampleRtt).
   */
  private pingIfUnmeasured(): void {
    const now = this.link.nowMs();
    if (!this.link.isClient || this.pinged || !this.link.rtt.wantsPing(now) || !this.sender.hasTransmitted()) return;
    this.pinged = true;
    this.link.rtt.pingedAtMs = now;
    this.sendPing(AckReason.PING);
  }

  /** Moves pending bytes into full packets; with `last`, flushes the remainder as the final packet. */
  private packPending(last: boolean): void {
    if (this.sender.lastSeq !== undefined) return;
    while (this.sender.hasRoom() && (this.pendingBytes > MAX_DATA_PER_PACKET || (last && this.sender.lastSeq === undefined))) {
      const size = Math.min(this.pendingBytes, MAX_DATA_PER_PACKET);
      const isLast = last && size === this.pendingBytes;
      this.sender.enqueue((seq) => this.buildDataPacket(seq, size, isLast), isLast);
    }
  }

  private buildDataPacket(seq: number, size: number, last: boolean): Uint8Array {
    const packet = this.link.acquireBuffer(HEADER_SIZE + size);
    packet.set(this.dataHeader ??= this.encodeDataHeader());
    stampSeq(packet, seq);
    if (last) packet[HEADER_OFFSET.flags] = packet[HEADER_OFFSET.flags]! | PacketFlag.LAST_PACKET;
    let offset = HEADER_SIZE;
    // Bounded by size: each turn consumes bytes from the pending list.
    while (offset < HEADER_SIZE + size) {
      const head = this.pending[0]!;
      const take = Math.min(head.byteLength, HEADER_SIZE + size - offset);
      packet.set(head.subarray(0, take), offset);
      offset += take;
      if (take === head.byteLength) this.pending.shift();
      else this.pending[0] = head.subarray(take);
    }
    this.pendingBytes -= size;
    return packet;
  }

  /** The header every DATA packet of this call starts from: only seq, serial and per-packet flags differ. */
  private encodeDataHeader(): Uint8Array {
    const header = new Uint8Array(HEADER_SIZE);
    const flags = this.link.isClient ? PacketFlag.CLIENT_INITIATED : 0;
    encodeHeader({ ...this.link.headerTemplate(), callNumber: this.callNumber, seq: 0, serial: 0, type: PacketType.DATA, flags }, header);
    return header;
  }

  /** Takes one chunk of received data; undefined when none is ready. */
  read(): Uint8Array | undefined {
    const chunk = this.readQueue.shift();
    if (chunk !== undefined && this.phase === 'receiving') {
      const before = this.receiver.firstPacket;
      this.takeReadable();
      // Taking packets reopened the peer's window: tell it soon, or finish if that was the last.
      if (this.receiver.firstPacket !== before) {
        this.scheduleDelayedAck();
        this.afterReceive();
      } else if (!this.link.isClient && this.readEnded()) {
        this.onWake?.();
      }
    }
    return chunk;
  }

  /** Server side: every packet of the request has arrived and is queued for the application. */
  requestArrived(): boolean {
    return !this.link.isClient && this.phase === 'receiving' && this.receiver.complete();
  }

  /** True when all data from the peer has been read by the application. */
  readEnded(): boolean {
    if (this.readQueue.length > 0) return false;
    if (this.link.isClient) return this.phase === 'complete';
    return this.receiver.complete();
  }

  // -------------------------------------------------------------------------
  // Control packets.
  // -------------------------------------------------------------------------

  private sendControl(type: number, flags: number, body: Uint8Array | undefined): number {
    const serial = this.link.nextSerial();
    const header: PacketHeader = {
      ...this.link.headerTemplate(),
      callNumber: this.callNumber,
      seq: 0,
      serial,
      type,
      flags: flags | (this.link.isClient ? PacketFlag.CLIENT_INITIATED : 0),
    };
    this.link.transmit(encodePacket(header, body));
    this.lastSentAtMs = this.link.nowMs();
    return serial;
  }

  sendAck(reason: AckReason, serial: number): void {
    const flags = reason === AckReason.PING ? PacketFlag.REQUEST_ACK : 0;
    const body = encodeAckBody({
      bufferSpace: 0,
      maxSkew: 0,
      firstPacket: this.receiver.firstPacket,
      previousPacket: this.receiver.highestSeq,
      serial,
      reason,
      acks: this.receiver.softAckTable(),
      trailer: localAckTrailer(this.link.options.receiveWindow),
    });
    const sentSerial = this.sendControl(PacketType.ACK, flags | PacketFlag.SLOW_START_OK, body);
    this.link.counters.ackPacketsSent += 1;
    this.receiver.onAckSent();
    this.delayedAckAtMs = undefined;
    if (reason === AckReason.PING) {
      this.link.counters.pingPacketsSent += 1;
      this.pings ??= new Map();
      if (this.pings.size >= PING_MEMORY) this.pings.delete(this.pings.keys().next().value!);
      this.pings.set(sentSerial, this.link.nowMs());
    }
  }

  private sendPing(reason: AckReason): void {
    this.sendAck(reason, 0);
  }

  /** Ends the call with an ABORT to the peer. */
  abort(code: number, reason: string): void {
    if (this.phase === 'complete' || this.phase === 'failed') return;
    this.sendControl(PacketType.ABORT, 0, encodeAbortBody(code));
    this.link.counters.abortPacketsSent += 1;
    this.fail(new RxError('ERR_RX_CALL_ABORTED', `call ${this.callNumber} aborted locally: ${reason}`, code));
  }

  // -------------------------------------------------------------------------
  // Timers: one wheel entry per call, set to the earliest of its deadlines.
  // -------------------------------------------------------------------------

  private scheduleDelayedAck(): void {
    this.delayedAckAtMs ??= this.link.nowMs() + this.link.options.ackDelayMs;
    this.armTimer();
  }

  private nextDeadlineMs(): number {
    const options = this.link.options;
    let deadline = this.lastReceivedAtMs + options.idleDeadMs;
    if (options.hardDeadMs > 0) deadline = Math.min(deadline, this.startedAtMs + options.hardDeadMs);
    deadline = Math.min(deadline, this.lastSentAtMs + options.keepaliveMs);
    if (this.delayedAckAtMs !== undefined) deadline = Math.min(deadline, this.delayedAckAtMs);
    const retransmitAt = this.phase === 'sending' ? this.sender.retransmitDeadlineBoundMs() : undefined;
    if (retransmitAt !== undefined) deadline = Math.min(deadline, retransmitAt);
    return deadline;
  }

  private armTimer(): void {
    if (this.phase === 'complete' || this.phase === 'failed') return;
    const deadline = this.nextDeadlineMs();
    // An earlier deadline already set only fires early; onWheelTimer re-arms for the rest.
    if (this.wheelSlot >= 0 && this.wheelAtMs <= deadline) return;
    this.link.timers.schedule(this, deadline);
  }

  onWheelTimer(): void {
    if (this.phase === 'complete' || this.phase === 'failed') return;
    const now = this.link.nowMs();
    const options = this.link.options;
    if (now >= this.lastReceivedAtMs + options.idleDeadMs) {
      return this.fail(new RxError('ERR_RX_CALL_DEAD', `call ${this.callNumber} heard nothing for ${options.idleDeadMs} ms`, RxErrorCode.CALL_DEAD));
    }
    if (options.hardDeadMs > 0 && now >= this.startedAtMs + options.hardDeadMs) {
      return this.abort(RxErrorCode.CALL_TIMEOUT, `call lasted longer than ${options.hardDeadMs} ms`);
    }
    if (this.delayedAckAtMs !== undefined && now >= this.delayedAckAtMs) this.sendAck(AckReason.DELAY, this.receiver.latestSerial);
    const retransmitAt = this.phase === 'sending' ? this.sender.retransmitDeadlineMs() : undefined;
    if (retransmitAt !== undefined && now >= retransmitAt) {
      this.sender.onRetransmitTimeout(now);
      this.lastSentAtMs = now;
    }
    if (now >= this.lastSentAtMs + options.keepaliveMs) this.sendPing(AckReason.PING);
    this.armTimer();
  }

  private stopTimer(): void {
    this.link.timers.cancel(this);
  }

  // -------------------------------------------------------------------------
  // Ending.
  // -------------------------------------------------------------------------

  private finish(): void {
    this.phase = 'complete';
    this.stopTimer();
    this.sender.discard();
    this.link.counters.callsCompleted += 1;
    this.onWake?.();
    this.events.ended(this);
  }

  fail(error: RxError): void {
    if (this.phase === 'complete' || this.phase === 'failed') return;
    this.phase = 'failed';
    this.error = error;
    this.stopTimer();
    this.sender.discard();
    this.link.counters.callsFailed += 1;
    this.onWake?.();
    this.events.ended(this);
  }

  /** Serial of the latest packet we received: the one a final ACK answers. */
  get latestReceivedSerial(): number {
    return this.receiver.latestSerial;
  }

  /** Seq of the last packet we received; the client re-ACKs it when the server retransmits. */
  get receivedThrough(): number {
    return this.receiver.firstPacket - 1;
  }
}
