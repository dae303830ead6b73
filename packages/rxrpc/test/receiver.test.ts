/**
 * When the receiving half of a call ACKs at once: asked to (REQUEST_ACK), out
 * of sequence, every ackEveryPackets packets, and at the end of the sender's
 * burst (a packet that is neither followed by another of its jumbogram nor
 * flagged MORE_PACKETS) unless it is the last packet, which the reply or the
 * final ACK acknowledges. Otherwise the ACK waits (ackDelayMs).
 */
import { describe, expect, it } from 'vitest';
import { Receiver } from '../dist/call/receiver.js';
import { AckReason, PacketFlag, PacketType, fillCallOptions, type DataPacket } from '../dist/index.js';

function packet(seq: number, flags: number): DataPacket {
  return {
    header: { epoch: 1, cid: 4, callNumber: 1, seq, serial: seq, type: PacketType.DATA, flags, userStatus: 0, securityIndex: 0, checksum: 0, serviceId: 42 },
    data: new Uint8Array(16),
  };
}

/** The ACK reason each packet gets, in order (undefined: the ACK waits). */
function reasons(flagsBySeq: number[]): (number | undefined)[] {
  const receiver = new Receiver(fillCallOptions({ ackEveryPackets: 4 }));
  return flagsBySeq.map((flags, index) => {
    const outcome = receiver.accept(packet(index + 1, flags));
    if (outcome.kind !== 'accepted') throw new Error(`packet ${index + 1} ${outcome.kind}`);
    if (outcome.ackNow !== undefined) receiver.onAckSent();
    return outcome.ackNow;
  });
}

const { MORE_PACKETS: MORE, JUMBO_PACKET: JUMBO, LAST_PACKET: LAST, REQUEST_ACK } = PacketFlag;

describe('Receiver ACK policy', () => {
  it('ACKs at once where the sender pauses, not inside its burst', () => {
    // A burst of three single packets: the third ends it.
    expect(reasons([MORE, MORE, 0])).toEqual([undefined, undefined, AckReason.IDLE]);
    // A 3-packet jumbogram that ends a burst: only its last packet ends it.
    expect(reasons([JUMBO | MORE, JUMBO | MORE, 0])).toEqual([undefined, undefined, AckReason.IDLE]);
    // The same jumbogram with more to follow: no ACK yet.
    expect(reasons([JUMBO | MORE, JUMBO | MORE, MORE])).toEqual([undefined, undefined, undefined]);
  });

  it('leaves the last packet to the reply, and still ACKs on request and every ackEveryPackets', () => {
    expect(reasons([MORE, LAST])).toEqual([undefined, undefined]);
    expect(reasons([LAST])).toEqual([undefined]);
    expect(reasons([MORE, MORE | REQUEST_ACK])).toEqual([undefined, AckReason.REQUESTED]);
    expect(reasons([MORE, MORE, MORE, MORE, MORE])).toEqual([undefined, undefined, undefined, AckReason.DELAY, undefined]);
  });
});
