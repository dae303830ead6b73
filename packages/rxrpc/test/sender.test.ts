/**
 * The sending half of a call, driven directly with scripted ACKs: the window
 * the peer advertises (rwind) and the congestion window both bound what is in
 * flight, DATA leaves in jumbograms as large as the peer's trailer allows, a
 * jumbogram the window would cut short waits for the ACK that makes room (the
 * last packet never waits), the datagram that leaves no room for a full one
 * asks for an ACK, the next call on the channel starts from the window and
 * jumbogram size the last one learned, the cheap retransmission deadline used on every ACK is
 * never later than the exact one, and a recovery sends every reported hole
 * again at once, each only once.
 */
import { describe, expect, it } from 'vitest';
import { PeerPath } from '../dist/call/peer-path.js';
import { RttEstimator } from '../dist/call/rtt.js';
import { Sender, type SenderLink } from '../dist/call/sender.js';
import {
  AckReason,
  HEADER_SIZE,
  JUMBO_DATAGRAM_SIZE,
  JUMBO_DATA_SIZE,
  PacketFlag,
  PacketType,
  SoftAck,
  decodeHeader,
  emptySnapshot,
  encodeHeader,
  fillCallOptions,
  splitData,
  type AckBody,
} from '../dist/index.js';

interface Sent {
  /** Seqs of the packets in the datagram, in order. */
  seqs: number[];
  /** REQUEST_ACK on the datagram's last packet. */
  requestsAck: boolean;
  /** MORE_PACKETS on the datagram's last packet: another datagram follows at once. */
  more: boolean;
  bytes: Uint8Array;
}

function harness(options: { initialCongestionWindow?: number; path?: PeerPath } = {}) {
  const filled = fillCallOptions({ initialCongestionWindow: options.initialCongestionWindow ?? 8 });
  const path = options.path ?? new PeerPath(filled);
  const sent: Sent[] = [];
  let serial = 1;
  const link: SenderLink = {
    options: filled,
    rtt: new RttEstimator(filled),
    path,
    counters: emptySnapshot(),
    nextSerial: () => serial++,
    nextSerials: (count) => {
      const first = serial;
      serial += count;
      return first;
    },
    transmit(packet) {
      // The sender reuses its jumbogram buffer once transmit returns, as every host copies.
      const bytes = packet.slice();
      const packets = splitData(bytes, decodeHeader(bytes));
      sent.push({
        seqs: packets.map((one) => one.header.seq),
        requestsAck: (packets[packets.length - 1]!.header.flags & PacketFlag.REQUEST_ACK) !== 0,
        more: (packets[packets.length - 1]!.header.flags & PacketFlag.MORE_PACKETS) !== 0,
        bytes,
      });
    },
    release: () => undefined,
  };
  const sender = new Sender(link);
  return { sender, sent, path };
}

/** Queues `count` full packets (the last flagged LAST_PACKET when `last`), each filled with its seq. */
function queue(sender: Sender, count: number, last = true): void {
  for (let index = 0; index < count; index++) {
    const isLast = last && index === count - 1;
    sender.enqueue((seq) => {
      const packet = new Uint8Array(HEADER_SIZE + JUMBO_DATA_SIZE).fill(seq & 0xff);
      encodeHeader(
        { epoch: 1, cid: 4, callNumber: 1, seq, serial: 0, type: PacketType.DATA, flags: isLast ? PacketFlag.LAST_PACKET : 0, userStatus: 0, securityIndex: 0, checksum: 0, serviceId: 42 },
        packet,
      );
      return packet;
    }, isLast);
  }
}

function ack(firstPacket: number, options: { rwind?: number; jumbo?: number; soft?: number[]; serial?: number } = {}): AckBody {
  return {
    bufferSpace: 0,
    maxSkew: 0,
    firstPacket,
    previousPacket: 0,
    serial: options.serial ?? 0,
    reason: AckReason.DELAY,
    acks: Uint8Array.from(options.soft ?? []),
    trailer: { maxMTU: JUMBO_DATAGRAM_SIZE, ifMTU: 1444, rwind: options.rwind ?? 32, maxDgramPackets: options.jumbo ?? 4 },
  };
}

const flatten = (sent: Sent[]): number[] => sent.flatMap((datagram) => datagram.seqs);

describe('Sender', () => {
  it('keeps no more than the peer window and the congestion window beyond the hard-ACK point', () => {
    const { sender, sent } = harness({ initialCongestionWindow: 8 });
    queue(sender, 100);
    sender.transmitReady(0);
    // Before the peer speaks: single packets, 8 of them (cwnd and the conservative peer window).
    expect(sent.map((datagram) => datagram.seqs.length)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // The peer advertises a window of 12 and hard-ACKs everything: cwnd grows to 16, the peer's 12 bound.
    sent.length = 0;
    expect(sender.onAck(ack(9, { rwind: 12 }), 1)).toBe(true);
    sender.transmitReady(1);
    expect(flatten(sent)).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    // Nothing more while those 12 are unacknowledged, however often we try.
    sent.length = 0;
    sender.transmitReady(2);
    expect(sent).toEqual([]);
    // Soft-ACKs do not open the window: only the hard-ACK point moves it.
    expect(sender.onAck(ack(9, { rwind: 12, soft: [SoftAck.ACK, SoftAck.ACK, SoftAck.ACK, SoftAck.ACK] }), 3)).toBe(true);
    sender.transmitReady(3);
    expect(sent).toEqual([]);
  });

  it('packs full jumbograms and holds one the window would cut short until an ACK makes room', () => {
    const { sender, sent } = harness({ initialCongestionWindow: 32 });
    queue(sender, 60);
    expect(sender.onAck(ack(1, { rwind: 10 }), 0)).toBe(true);
    sender.transmitReady(0);
    // Window 10, jumbograms of 4: two full ones go, the last 2 slots stay empty rather than carry a short one.
    expect(sent.map((datagram) => datagram.seqs)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    // The second one leaves no room for a full jumbogram: it asks for the ACK that reopens the
    // window; the first tells the receiver that another follows at once.
    expect(sent.map((datagram) => datagram.requestsAck)).toEqual([false, true]);
    expect(sent.map((datagram) => datagram.more)).toEqual([true, false]);
    expect(sent.every((datagram) => datagram.bytes.byteLength === JUMBO_DATAGRAM_SIZE)).toBe(true);
    // Three packets hard-ACKed: room for 5, one full jumbogram goes, 1 slot stays empty.
    sent.length = 0;
    expect(sender.onAck(ack(4, { rwind: 10 }), 1)).toBe(true);
    sender.transmitReady(1);
    expect(sent.map((datagram) => datagram.seqs)).toEqual([[9, 10, 11, 12]]);
    // One more: room for 2 while 9 are in flight: held.
    sent.length = 0;
    expect(sender.onAck(ack(5, { rwind: 10 }), 2)).toBe(true);
    sender.transmitReady(2);
    expect(sent).toEqual([]);
  });

  it('sends the tail short without waiting, and a window smaller than a jumbogram still moves', () => {
    const { sender, sent } = harness({ initialCongestionWindow: 32 });
    queue(sender, 6);
    expect(sender.onAck(ack(1, { rwind: 32 }), 0)).toBe(true);
    sender.transmitReady(0);
    expect(sent.map((datagram) => datagram.seqs)).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
    // The last datagram ends the data: nothing more to wait for, no ACK requested for the window.
    expect(sent.map((datagram) => [datagram.more, datagram.requestsAck])).toEqual([
      [true, false],
      [false, false],
    ]);

    const small = harness({ initialCongestionWindow: 32 });
    queue(small.sender, 9);
    expect(small.sender.onAck(ack(1, { rwind: 3 }), 0)).toBe(true);
    small.sender.transmitReady(0);
    expect(small.sent.map((datagram) => datagram.seqs)).toEqual([[1, 2, 3]]);
    for (const firstPacket of [4, 7]) {
      expect(small.sender.onAck(ack(firstPacket, { rwind: 3 }), 1)).toBe(true);
      small.sender.transmitReady(1);
    }
    expect(flatten(small.sent)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(small.sender.allAcked()).toBe(false);
    expect(small.sender.onAck(ack(10, { rwind: 3 }), 2)).toBe(true);
    expect(small.sender.allAcked()).toBe(true);
  });

  it('delivers each packet of a jumbogram with its own seq, serial and bytes', () => {
    const { sender, sent } = harness({ initialCongestionWindow: 32 });
    queue(sender, 9);
    expect(sender.onAck(ack(1, { rwind: 32 }), 0)).toBe(true);
    sender.transmitReady(0);
    const packets = sent.flatMap((datagram) => splitData(datagram.bytes, decodeHeader(datagram.bytes)));
    expect(packets.map((packet) => packet.header.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(packets.map((packet) => packet.header.serial)).size).toBe(9);
    for (const packet of packets) {
      expect(packet.data.byteLength).toBe(JUMBO_DATA_SIZE);
      expect(packet.data.every((byte) => byte === (packet.header.seq & 0xff))).toBe(true);
    }
    expect(packets[8]!.header.flags & PacketFlag.LAST_PACKET).toBe(PacketFlag.LAST_PACKET);
  });

  it('arms the retransmission timer no later than the exact deadline, also after a soft-ACK is taken back', () => {
    const { sender } = harness({ initialCongestionWindow: 32 });
    queue(sender, 40);
    const check = (): number => {
      const exact = sender.retransmitDeadlineMs();
      const bound = sender.retransmitDeadlineBoundMs();
      expect(exact).toBeDefined();
      expect(bound).toBeLessThanOrEqual(exact!);
      return exact!;
    };
    expect(sender.onAck(ack(1, { rwind: 32 }), 0)).toBe(true);
    sender.transmitReady(100); // 1–32 at t=100
    const rto = check() - 100;
    expect(sender.onAck(ack(5, { rwind: 32 }), 150)).toBe(true);
    sender.transmitReady(150); // 33–36 at t=150
    // 5–32 soft-ACKed: only 33–36 (sent at 150) are timed.
    expect(sender.onAck(ack(5, { rwind: 32, soft: Array(28).fill(SoftAck.ACK) }), 160)).toBe(true);
    expect(check()).toBe(150 + rto);
    // The peer takes back its soft-ACK of 32 (sent at 100): the timer covers it again, at once.
    expect(sender.onAck(ack(5, { rwind: 32, soft: [...Array(27).fill(SoftAck.ACK), SoftAck.NACK] }), 170)).toBe(true);
    expect(sender.retransmitDeadlineBoundMs()).toBe(100 + rto);
    expect(check()).toBe(100 + rto);
    // Everything hard-ACKed: no deadline at all.
    expect(sender.onAck(ack(37, { rwind: 32 }), 180)).toBe(true);
    expect(sender.retransmitDeadlineMs()).toBeUndefined();
    expect(sender.retransmitDeadlineBoundMs()).toBeUndefined();
  });

  it('recovers from a lost jumbogram by sending all its packets again on the third report, once', () => {
    const { sender, sent } = harness({ initialCongestionWindow: 32 });
    queue(sender, 40);
    expect(sender.onAck(ack(1, { rwind: 32 }), 0)).toBe(true);
    sender.transmitReady(0); // 1–32 in 8 jumbograms; say 5–8 are lost
    sent.length = 0;
    const report = (soft: number): AckBody => ack(5, { rwind: 32, soft: [0, 0, 0, 0, ...Array(soft).fill(SoftAck.ACK)] });
    expect(sender.onAck(report(2), 1)).toBe(true);
    expect(sender.onAck(report(4), 2)).toBe(true);
    // Two reports are not yet a loss (reordering): nothing sent again.
    expect(sent).toEqual([]);
    // The third report: every hole goes again, as single packets asking for an ACK.
    expect(sender.onAck(report(6), 3)).toBe(true);
    expect(sent.map((datagram) => datagram.seqs)).toEqual([[5], [6], [7], [8]]);
    expect(sent.every((datagram) => datagram.requestsAck)).toBe(true);
    // More reports of the same holes send nothing again.
    sent.length = 0;
    expect(sender.onAck(report(8), 4)).toBe(true);
    expect(sender.onAck(report(10), 5)).toBe(true);
    expect(sent).toEqual([]);
    // Within the same recovery, a new hole (20) is sent at its first report; the repaired ones are not.
    const partial = [SoftAck.ACK, ...Array(10).fill(SoftAck.ACK), SoftAck.NACK, SoftAck.ACK];
    expect(sender.onAck(ack(9, { rwind: 32, soft: partial }), 6)).toBe(true);
    expect(sent.map((datagram) => datagram.seqs)).toEqual([[20]]);
  });

  it('starts the next call on the channel from what the last one learned of the peer', () => {
    const first = harness({ initialCongestionWindow: 8 });
    queue(first.sender, 20);
    first.sender.transmitReady(0);
    expect(first.sent.map((datagram) => datagram.seqs.length)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    for (const firstPacket of [9, 21]) {
      expect(first.sender.onAck(ack(firstPacket, { rwind: 24 }), 1)).toBe(true);
      first.sender.transmitReady(1);
    }
    expect(first.sender.allAcked()).toBe(true);
    // The next call: full jumbograms up to the peer's window of 24 before it has said a word.
    const next = harness({ path: first.path });
    queue(next.sender, 40);
    next.sender.transmitReady(2);
    expect(next.sent.map((datagram) => datagram.seqs.length)).toEqual([4, 4, 4, 4, 4, 4]);
    // A timeout collapses the window; the next call starts at the initial window again and may
    // slow-start past the threshold the loss set.
    next.sender.onRetransmitTimeout(3);
    expect(next.path.congestionWindow).toBe(1);
    expect(next.path.slowStartThreshold).toBeLessThan(24);
    const after = harness({ initialCongestionWindow: 8, path: next.path });
    expect(after.path.congestionWindow).toBe(8);
    expect(after.path.slowStartThreshold).toBe(255);
    // A channel's first call knows nothing yet.
    const fresh = harness({ initialCongestionWindow: 8 });
    queue(fresh.sender, 40);
    fresh.sender.transmitReady(0);
    expect(flatten(fresh.sent)).toHaveLength(8);
  });
});
