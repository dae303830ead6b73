/**
 * A channel: one of the four call slots of a connection (cid & 3).
 *
 * Life: created with its connection (all four at once) in the thread the
 * stable placement assigns it; lives as long as the connection. Its state —
 * call number, current call, last ended call, release list, RTT, peer path —
 * is touched only by that one thread, in packet arrival order, so it needs no
 * locks.
 *
 * The race this structure fixes: the client's final ACK for call N and the
 * first DATA of call N+1 may arrive in either order. Both go through this
 * one ordered queue; when call N+1's DATA comes first and call N has queued
 * its whole reply, the DATA proves the client got that reply, so call N is
 * completed and call N+1 started — no BUSY. The late ACK for N is then just
 * a stale packet. BUSY is sent only when call N is really still in progress
 * (its handler has not finished the reply).
 *
 * A client channel owes the final ACK of its last completed call; it waits
 * finalAckDelayMs on the thread's timer wheel and is dropped when the next
 * call starts first, since that call's DATA acknowledges the reply. Back to
 * back, a call then costs one datagram each way instead of three.
 */
import assert from 'node:assert/strict';
import { Call, type CallEvents, type CallLink } from '../call/call.js';
import { PeerPath } from '../call/peer-path.js';
import { RttEstimator } from '../call/rtt.js';
import { AckReason, HEADER_SIZE, PacketFlag, PacketType } from '../protocol.js';
import { decodeAck, encodeAckBody, encodePacket, localAckTrailer, splitData, type PacketHeader } from '../wire/codec.js';
import type { BufferPool } from './buffer-pool.js';
import type { WheelEntry } from './timer-wheel.js';

export type ChannelLink = Omit<CallLink, 'rtt' | 'path' | 'release' | 'acquireBuffer' | 'headerTemplate'> & {
  readonly pool: BufferPool;
  headerTemplate(channel: number): ReturnType<CallLink['headerTemplate']>;
  /** Server side: a new call arrived; start the service handler for it. */
  callStarted(call: Call, channel: Channel): void;
  /** A call ended; the channel is free for the next one. */
  callEnded(call: Call, channel: Channel): void;
};

interface EndedCall {
  callNumber: number;
  completed: boolean;
  receivedThrough: number;
  /** Serial of the reply packet that completed it: the one its final ACK answers. */
  latestSerial: number;
}

/**
 * The channel is its calls' link (and hears of their end) through methods
 * of its own: one class for every channel of every connection, so the code
 * on a call's path sees the same call targets whichever connection it serves
 * (a closure per channel made V8 drop its optimized code for each new one).
 */
export class Channel implements CallLink, CallEvents, WheelEntry {
  readonly index: number;
  private readonly link: ChannelLink;
  readonly isClient: boolean;
  readonly options: ChannelLink['options'];
  readonly counters: ChannelLink['counters'];
  readonly timers: ChannelLink['timers'];
  readonly rtt: RttEstimator;
  readonly path: PeerPath;
  /** The header fields every packet of this channel shares, built once (calls copy it into theirs). */
  private readonly template: ReturnType<CallLink['headerTemplate']>;
  /** Number of the current call, or of the last one. */
  callNumber = 0;
  call: Call | undefined;
  /** When the current call started (link.nowMs), for the channel's busy time. */
  private callStartedMs = 0;
  private lastEnded: EndedCall | undefined;
  /**
   * Hard-ACKed packet buffers of the current call, returned to the pool
   * between calls. Bounded by the transmit queue bound; a call that streams
   * more than that (a bulk reply) drains it into the pool when it is full,
   * so its later packets are built in recycled buffers, not new ones.
   */
  private readonly releaseList: Uint8Array[] = [];
  /** Client: lastEnded's final ACK is still to be sent (the wheel holds the channel meanwhile). */
  private finalAckOwed = false;
  /** The channel's place in its thread's TimerWheel, for the owed final ACK (owned by the wheel). */
  wheelSlot = -1;
  wheelAtMs = Number.POSITIVE_INFINITY;
  wheelPrevious: WheelEntry | undefined = undefined;
  wheelNext: WheelEntry | undefined = undefined;

  constructor(link: ChannelLink, index: number) {
    this.link = link;
    this.index = index;
    this.isClient = link.isClient;
    this.options = link.options;
    this.counters = link.counters;
    this.timers = link.timers;
    this.rtt = new RttEstimator(link.options);
    this.path = new PeerPath(link.options);
    this.template = Object.freeze(link.headerTemplate(index));
  }

  headerTemplate(): ReturnType<CallLink['headerTemplate']> {
    return this.template;
  }

  nextSerial(): number {
    return this.link.nextSerial();
  }

  nextSerials(count: number): number {
    return this.link.nextSerials(count);
  }

  transmit(packet: Uint8Array): void {
    this.link.transmit(packet);
  }

  acquireBuffer(size: number): Uint8Array {
    return this.link.pool.acquire(size);
  }

  nowMs(): number {
    return this.link.nowMs();
  }

  /** A packet of the current call the peer has hard-ACKed: onto the release list. */
  release(packet: Uint8Array): void {
    if (this.releaseList.length >= this.link.options.sendQueuePackets) this.drainReleaseList();
    this.releaseList.push(packet);
  }

  /** Between calls: hand hard-ACKed buffers back to the thread's pool. */
  private drainReleaseList(): void {
    for (const packet of this.releaseList) if (this.link.pool.put(packet)) this.link.counters.buffersReleased += 1;
    this.releaseList.length = 0;
  }

  private newCall(callNumber: number): Call {
    this.drainReleaseList();
    this.callNumber = callNumber;
    this.link.counters.callsPerChannel[this.index]! += 1;
    this.callStartedMs = this.link.nowMs();
    const call = new Call(this, callNumber, this);
    this.call = call;
    return call;
  }

  ended(call: Call): void {
    if (this.call !== call) return;
    this.call = undefined;
    this.link.counters.channelBusyMs[this.index]! += this.link.nowMs() - this.callStartedMs;
    const completed = call.phase === 'complete';
    this.lastEnded = { callNumber: call.callNumber, completed, receivedThrough: call.receivedThrough, latestSerial: call.latestReceivedSerial };
    if (this.link.isClient && completed && this.options.finalAckDelayMs > 0) {
      this.finalAckOwed = true;
      this.timers.schedule(this, this.link.nowMs() + this.options.finalAckDelayMs);
    }
    this.drainReleaseList();
    this.link.callEnded(call, this);
  }

  /** Client side: starts the next call on this (free) channel. */
  startClientCall(): Call {
    assert.ok(this.link.isClient, 'only clients start calls');
    assert.equal(this.call, undefined, 'a channel carries one call at a time');
    if (this.finalAckOwed) {
      // The new call's first DATA acknowledges the previous reply.
      this.finalAckOwed = false;
      this.timers.cancel(this);
    }
    return this.newCall((this.callNumber + 1) >>> 0);
  }

  /** The owed final ACK's delay ran out with no next call: send it. */
  onWheelTimer(): void {
    this.sendOwedFinalAck();
  }

  private sendOwedFinalAck(): void {
    if (!this.finalAckOwed) return;
    this.finalAckOwed = false;
    this.timers.cancel(this);
    const ended = this.lastEnded!;
    this.sendStatelessAck(ended.callNumber, ended.latestSerial, AckReason.DELAY, ended.receivedThrough);
  }

  /** Every packet for this channel, in arrival order (`header` decoded from `datagram`). */
  receive(header: PacketHeader, datagram: Uint8Array): void {
    if (!this.link.isClient && header.type === PacketType.DATA && header.callNumber > this.callNumber) {
      const started = this.startServerCall(header);
      if (started === undefined) return;
      // The handler starts with its first packet already taken: a one-packet request is whole at once.
      for (const packet of splitData(datagram, header)) started.onData(packet);
      this.link.callStarted(started, this);
      return;
    }
    const call = this.call;
    // DATA is split from the datagram itself; only the other types need a view of the body.
    if (call === undefined || header.callNumber !== call.callNumber) return this.receiveStale(header, datagram.subarray(HEADER_SIZE));
    switch (header.type) {
      case PacketType.DATA:
        for (const packet of splitData(datagram, header)) call.onData(packet);
        return;
      case PacketType.ACK:
        return call.onAck(header, datagram.subarray(HEADER_SIZE));
      case PacketType.ABORT:
        return call.onAbort(datagram.subarray(HEADER_SIZE));
      case PacketType.ACKALL:
        return call.onAckAll();
      case PacketType.BUSY:
        return this.link.isClient ? call.onBusy() : undefined;
      default:
        this.link.counters.packetsRejected += 1;
    }
  }

  /** Server: the first DATA of a new call number starts a call; undefined when answered BUSY. */
  private startServerCall(header: PacketHeader): Call | undefined {
    const previous = this.call;
    if (previous !== undefined) {
      if (!previous.canBeSuperseded()) {
        this.sendBusy(header);
        return undefined;
      }
      previous.supersede();
    }
    return this.newCall(header.callNumber);
  }

  private receiveStale(header: PacketHeader, body: Uint8Array): void {
    if (header.type === PacketType.ACK && (header.flags & PacketFlag.REQUEST_ACK) !== 0 && decodeAck(body).reason === AckReason.PING) {
      // A ping about a call we no longer (or do not yet) hold still measures the path: answer it.
      this.sendStatelessAck(header.callNumber, header.serial, AckReason.PING_RESPONSE, 0);
      return;
    }
    const ended = this.lastEnded;
    const forLastEnded = ended !== undefined && header.callNumber === ended.callNumber;
    if (header.type === PacketType.ACK && !this.link.isClient && header.callNumber < this.callNumber) {
      this.link.counters.staleFinalAcks += 1;
      return;
    }
    if (header.type === PacketType.DATA && this.link.isClient && forLastEnded && ended.completed) {
      // Our final ACK was lost or is still owed: the server retransmits its reply. ACK it now.
      this.finalAckOwed = false;
      this.timers.cancel(this);
      this.sendStatelessAck(header.callNumber, header.serial, AckReason.DUPLICATE, ended.receivedThrough);
      return;
    }
    if (forLastEnded && header.type === PacketType.ACK) return;
    this.link.counters.packetsRejected += 1;
    if (header.type === PacketType.DATA) this.link.counters.spuriousPacketsRead += 1;
  }

  private controlHeader(callNumber: number, type: number, flags: number): PacketHeader {
    return {
      ...this.template,
      callNumber,
      seq: 0,
      serial: this.link.nextSerial(),
      type,
      flags: flags | (this.link.isClient ? PacketFlag.CLIENT_INITIATED : 0),
    };
  }

  private sendBusy(header: PacketHeader): void {
    this.link.transmit(encodePacket(this.controlHeader(header.callNumber, PacketType.BUSY, 0), undefined));
    this.link.counters.busyPacketsSent += 1;
  }

  /** An ACK from the channel itself, for a call it no longer holds: `receivedThrough` is all it claims. */
  private sendStatelessAck(callNumber: number, serial: number, reason: AckReason, receivedThrough: number): void {
    const body = encodeAckBody({
      bufferSpace: 0,
      maxSkew: 0,
      firstPacket: receivedThrough + 1,
      previousPacket: receivedThrough,
      serial,
      reason,
      acks: new Uint8Array(0),
      trailer: localAckTrailer(this.link.options.receiveWindow),
    });
    this.link.transmit(encodePacket(this.controlHeader(callNumber, PacketType.ACK, 0), body));
    this.link.counters.ackPacketsSent += 1;
  }

  /** The connection is going away: fail whatever call is running. */
  close(error: import('../errors.js').RxError): void {
    // The server holds the last reply until it is acknowledged: do not leave it waiting for its timeouts.
    this.sendOwedFinalAck();
    this.call?.fail(error);
    this.drainReleaseList();
  }
}
