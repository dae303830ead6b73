import { describe, expect, it } from 'vitest';
import {
  ACK_TRAILER_SIZE,
  AckReason,
  HEADER_SIZE,
  JUMBO_DATA_SIZE,
  JUMBO_HEADER_SIZE,
  PacketFlag,
  PacketType,
  RxError,
  ackTrailerOffset,
  decodeAbortCode,
  decodeAck,
  decodeHeader,
  encodeAbortBody,
  encodeAckBody,
  encodeJumbo,
  encodePacket,
  splitData,
  type PacketHeader,
} from '../dist/index.js';
import { decodeOpcode, encodeOpcode } from '../dist/wire/codec.js';

const header: PacketHeader = {
  epoch: 0x5f00_0001,
  cid: 0x0040_0002,
  callNumber: 7,
  seq: 3,
  serial: 0xfeed_beef,
  type: PacketType.DATA,
  flags: PacketFlag.CLIENT_INITIATED | PacketFlag.LAST_PACKET,
  userStatus: 9,
  securityIndex: 0,
  checksum: 0xabcd,
  serviceId: 52,
};

describe('the 28-byte header', () => {
  it('puts every field at its OpenAFS offset in network order', () => {
    const packet = encodePacket(header, undefined);
    expect(packet.byteLength).toBe(HEADER_SIZE);
    expect(Buffer.from(packet).toString('hex')).toBe('5f000001' + '00400002' + '00000007' + '00000003' + 'feedbeef' + '01' + '05' + '09' + '00' + 'abcd' + '0034');
    expect(decodeHeader(packet)).toEqual(header);
  });

  it('rejects a datagram shorter than a header', () => {
    expect(() => decodeHeader(new Uint8Array(27))).toThrow(expect.objectContaining({ code: 'ERR_RX_SHORT_PACKET' }));
  });
});

describe('ACK bodies', () => {
  const ack = {
    bufferSpace: 0,
    maxSkew: 0,
    firstPacket: 5,
    previousPacket: 8,
    serial: 77,
    reason: AckReason.OUT_OF_SEQUENCE,
    acks: Uint8Array.of(0, 1, 1),
    trailer: { maxMTU: 1444, ifMTU: 1444, rwind: 64, maxDgramPackets: 1 },
  };

  it('carry the soft-ACK table, three pad bytes, then the four-word trailer', () => {
    const body = encodeAckBody(ack);
    expect(body.byteLength).toBe(18 + 3 + 3 + ACK_TRAILER_SIZE);
    expect([...body.subarray(17, 21)]).toEqual([3, 0, 1, 1]);
    expect(new DataView(body.buffer).getUint32(ackTrailerOffset(3) + 8)).toBe(64);
    expect(decodeAck(body)).toEqual(ack);
  });

  it('decode without a trailer (old peers) and reject lying lengths and bad entries', () => {
    const body = encodeAckBody(ack);
    expect(decodeAck(body.subarray(0, 21)).trailer).toBeUndefined();
    const lying = body.slice();
    lying[17] = 200;
    expect(() => decodeAck(lying)).toThrow(RxError);
    const badEntry = body.slice();
    badEntry[18] = 7;
    expect(() => decodeAck(badEntry)).toThrow(expect.objectContaining({ code: 'ERR_RX_BAD_PACKET' }));
    expect(() => decodeAck(new Uint8Array(10))).toThrow(expect.objectContaining({ code: 'ERR_RX_SHORT_PACKET' }));
  });
});

describe('ABORT bodies', () => {
  it('carry one signed 32-bit code', () => {
    expect(decodeAbortCode(encodeAbortBody(-455))).toBe(-455);
    expect(decodeAbortCode(encodeAbortBody(363524))).toBe(363524);
    expect(() => decodeAbortCode(new Uint8Array(3))).toThrow(RxError);
  });
});

describe('rxgen opcodes', () => {
  it('are one signed 32-bit word in network order at the start of a request', () => {
    expect([...encodeOpcode(-455)]).toEqual([0xff, 0xff, 0xfe, 0x39]);
    expect([...encodeOpcode(0x1234_5678)]).toEqual([0x12, 0x34, 0x56, 0x78]);
    for (const opcode of [0, 1, 503, -455, 0x7fff_ffff, -0x8000_0000]) expect(decodeOpcode(encodeOpcode(opcode))).toBe(opcode);
    // Only the first word counts: the arguments follow it.
    expect(decodeOpcode(Uint8Array.of(0, 0, 0x01, 0xf7, 0xaa, 0xbb))).toBe(503);
  });
});

describe('jumbograms', () => {
  it('split into packets whose seq and serial follow the first, with flags from each jumbo header', () => {
    const data = [new Uint8Array(JUMBO_DATA_SIZE).fill(1), new Uint8Array(JUMBO_DATA_SIZE).fill(2), new Uint8Array(100).fill(3)];
    const packets = data.map((bytes, index) => ({
      header: { ...header, seq: 10 + index, serial: 500 + index, flags: index === 2 ? PacketFlag.LAST_PACKET | PacketFlag.CLIENT_INITIATED : PacketFlag.CLIENT_INITIATED },
      data: bytes,
    }));
    const datagram = encodeJumbo(packets);
    expect(datagram.byteLength).toBe(HEADER_SIZE + 2 * (JUMBO_DATA_SIZE + JUMBO_HEADER_SIZE) + 100);
    const split = splitData(datagram, decodeHeader(datagram));
    expect(split.map((packet) => [packet.header.seq, packet.header.serial, packet.data[0], packet.data.byteLength])).toEqual([
      [10, 500, 1, JUMBO_DATA_SIZE],
      [11, 501, 2, JUMBO_DATA_SIZE],
      [12, 502, 3, 100],
    ]);
    expect(split[2]!.header.flags & PacketFlag.LAST_PACKET).toBe(PacketFlag.LAST_PACKET);
    expect(split[0]!.header.flags & PacketFlag.JUMBO_PACKET).toBe(PacketFlag.JUMBO_PACKET);
  });

  it('reject a jumbo flag on a packet too short to hold a full jumbo buffer', () => {
    const truncated = encodePacket({ ...header, flags: PacketFlag.JUMBO_PACKET }, new Uint8Array(500));
    expect(() => splitData(truncated, decodeHeader(truncated))).toThrow(expect.objectContaining({ code: 'ERR_RX_BAD_PACKET' }));
  });
});
