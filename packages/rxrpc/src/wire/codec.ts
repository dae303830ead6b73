/**
 * Encoders and decoders for the layouts in protocol.ts. Pure functions over
 * Uint8Array: safe on any thread. Decoders never trust a length they read:
 * every rejection is an RxError 'ERR_RX_SHORT_PACKET' / 'ERR_RX_BAD_PACKET'
 * with the reason, which the receive path counts and drops.
 */
import assert from 'node:assert/strict';
import { RxError, malformed } from '../errors.js';
import {
  ABORT_BODY_SIZE,
  ACK_BODY_SIZE,
  ACK_OFFSET,
  ACK_TRAILER_OFFSET,
  ACK_TRAILER_SIZE,
  DEFAULT_PACKET_SIZE,
  HEADER_OFFSET,
  HEADER_SIZE,
  JUMBO_DATAGRAM_SIZE,
  JUMBO_DATA_SIZE,
  JUMBO_PACKETS_MAX,
  JUMBO_HEADER_OFFSET,
  JUMBO_HEADER_SIZE,
  MAX_SOFT_ACKS,
  OPCODE_SIZE,
  PacketFlag,
  PacketType,
  SoftAck,
  ackTrailerOffset,
} from '../protocol.js';

export interface PacketHeader {
  epoch: number;
  cid: number;
  callNumber: number;
  seq: number;
  serial: number;
  type: number;
  flags: number;
  userStatus: number;
  securityIndex: number;
  checksum: number;
  serviceId: number;
}

export interface AckTrailer {
  maxMTU: number;
  ifMTU: number;
  rwind: number;
  maxDgramPackets: number;
}

export interface AckBody {
  bufferSpace: number;
  maxSkew: number;
  /** Packets below this are hard-ACKed: the receiver will never ask for them again. */
  firstPacket: number;
  previousPacket: number;
  /** Serial of the packet that prompted this ACK (a ping's serial for PING_RESPONSE). */
  serial: number;
  reason: number;
  /** Soft-ACK table: acks[i] describes seq firstPacket + i. */
  acks: Uint8Array;
  trailer: AckTrailer | undefined;
}

/** One DATA packet, possibly cut out of a jumbogram. */
export interface DataPacket {
  header: PacketHeader;
  data: Uint8Array;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// The header is read and written for every packet: plain byte arithmetic, no DataView per packet.
function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function readUint16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

function writeUint16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 8;
  bytes[at + 1] = value;
}

/**
 * rxgen's opcode, the signed 32-bit word a request starts with (the caller
 * checks that `request` holds OPCODE_SIZE bytes). Byte arithmetic, not a
 * DataView: a small request is a copy held in the V8 heap, and asking it for
 * its `.buffer` would first move it into an ArrayBuffer of its own (a malloc
 * per call, freed by the garbage collector).
 */
export function decodeOpcode(request: Uint8Array): number {
  return (request[0]! << 24) | (request[1]! << 16) | (request[2]! << 8) | request[3]!;
}

/** The OPCODE_SIZE bytes that start a request for `opcode`. */
export function encodeOpcode(opcode: number): Uint8Array {
  const bytes = new Uint8Array(OPCODE_SIZE);
  writeUint32(bytes, 0, opcode);
  return bytes;
}

export function decodeHeader(packet: Uint8Array): PacketHeader {
  if (packet.byteLength < HEADER_SIZE) {
    throw new RxError('ERR_RX_SHORT_PACKET', `packet of ${packet.byteLength} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  }
  return {
    epoch: readUint32(packet, HEADER_OFFSET.epoch),
    cid: readUint32(packet, HEADER_OFFSET.cid),
    callNumber: readUint32(packet, HEADER_OFFSET.callNumber),
    seq: readUint32(packet, HEADER_OFFSET.seq),
    serial: readUint32(packet, HEADER_OFFSET.serial),
    type: packet[HEADER_OFFSET.type]!,
    flags: packet[HEADER_OFFSET.flags]!,
    userStatus: packet[HEADER_OFFSET.userStatus]!,
    securityIndex: packet[HEADER_OFFSET.securityIndex]!,
    checksum: readUint16(packet, HEADER_OFFSET.checksum),
    serviceId: readUint16(packet, HEADER_OFFSET.serviceId),
  };
}

export function encodeHeader(header: PacketHeader, packet: Uint8Array): void {
  assert.ok(packet.byteLength >= HEADER_SIZE, 'packet buffer holds a header');
  writeUint32(packet, HEADER_OFFSET.epoch, header.epoch);
  writeUint32(packet, HEADER_OFFSET.cid, header.cid);
  writeUint32(packet, HEADER_OFFSET.callNumber, header.callNumber);
  writeUint32(packet, HEADER_OFFSET.seq, header.seq);
  writeUint32(packet, HEADER_OFFSET.serial, header.serial);
  packet[HEADER_OFFSET.type] = header.type;
  packet[HEADER_OFFSET.flags] = header.flags;
  packet[HEADER_OFFSET.userStatus] = header.userStatus;
  packet[HEADER_OFFSET.securityIndex] = header.securityIndex;
  writeUint16(packet, HEADER_OFFSET.checksum, header.checksum);
  writeUint16(packet, HEADER_OFFSET.serviceId, header.serviceId);
}

/** Rewrites only the serial: a retransmission keeps everything else. */
export function stampSerial(packet: Uint8Array, serial: number): void {
  writeUint32(packet, HEADER_OFFSET.serial, serial >>> 0);
}

export function stampSeq(packet: Uint8Array, seq: number): void {
  writeUint32(packet, HEADER_OFFSET.seq, seq >>> 0);
}

/** Builds a whole packet: header plus body. */
export function encodePacket(header: PacketHeader, body: Uint8Array | undefined): Uint8Array {
  const bodyLength = body?.byteLength ?? 0;
  const packet = new Uint8Array(HEADER_SIZE + bodyLength);
  encodeHeader(header, packet);
  if (body !== undefined) packet.set(body, HEADER_SIZE);
  return packet;
}

export function decodeAck(body: Uint8Array): AckBody {
  if (body.byteLength < ACK_BODY_SIZE) {
    throw new RxError('ERR_RX_SHORT_PACKET', `ACK body of ${body.byteLength} bytes is shorter than ${ACK_BODY_SIZE}`);
  }
  // Read for every ACK: byte arithmetic, no DataView per packet (as the header).
  const nAcks = body[ACK_OFFSET.nAcks]!;
  if (ACK_BODY_SIZE + nAcks > body.byteLength) {
    throw malformed(`ACK claims ${nAcks} soft-ACKs but carries ${body.byteLength - ACK_BODY_SIZE}`);
  }
  const acks = body.subarray(ACK_OFFSET.acks, ACK_OFFSET.acks + nAcks);
  for (const entry of acks) {
    if (entry !== SoftAck.ACK && entry !== SoftAck.NACK) throw malformed(`soft-ACK entry ${entry} is neither ACK nor NACK`);
  }
  const trailerAt = ackTrailerOffset(nAcks);
  const trailer =
    body.byteLength >= trailerAt + ACK_TRAILER_SIZE
      ? {
          maxMTU: readUint32(body, trailerAt + ACK_TRAILER_OFFSET.maxMTU),
          ifMTU: readUint32(body, trailerAt + ACK_TRAILER_OFFSET.ifMTU),
          rwind: readUint32(body, trailerAt + ACK_TRAILER_OFFSET.rwind),
          maxDgramPackets: readUint32(body, trailerAt + ACK_TRAILER_OFFSET.maxDgramPackets),
        }
      : undefined;
  return {
    bufferSpace: readUint16(body, ACK_OFFSET.bufferSpace),
    maxSkew: readUint16(body, ACK_OFFSET.maxSkew),
    firstPacket: readUint32(body, ACK_OFFSET.firstPacket),
    previousPacket: readUint32(body, ACK_OFFSET.previousPacket),
    serial: readUint32(body, ACK_OFFSET.serial),
    reason: body[ACK_OFFSET.reason]!,
    acks,
    trailer,
  };
}

/**
 * The trailer every ACK of ours carries: single packets up to the common
 * 1444-byte size (ifMTU), jumbograms of up to JUMBO_PACKETS_MAX packets
 * (maxMTU, maxDgramPackets), and our receive window.
 */
export function localAckTrailer(receiveWindow: number): AckTrailer {
  return { maxMTU: JUMBO_DATAGRAM_SIZE, ifMTU: DEFAULT_PACKET_SIZE, rwind: receiveWindow, maxDgramPackets: JUMBO_PACKETS_MAX };
}

export function encodeAckBody(ack: AckBody): Uint8Array {
  assert.ok(ack.acks.byteLength <= MAX_SOFT_ACKS, 'soft-ACK table fits its one-byte count');
  assert.ok(ack.trailer !== undefined, 'we always send the trailer');
  const trailerAt = ackTrailerOffset(ack.acks.byteLength);
  const body = new Uint8Array(trailerAt + ACK_TRAILER_SIZE);
  const v = view(body);
  v.setUint16(ACK_OFFSET.bufferSpace, ack.bufferSpace);
  v.setUint16(ACK_OFFSET.maxSkew, ack.maxSkew);
  v.setUint32(ACK_OFFSET.firstPacket, ack.firstPacket);
  v.setUint32(ACK_OFFSET.previousPacket, ack.previousPacket);
  v.setUint32(ACK_OFFSET.serial, ack.serial);
  v.setUint8(ACK_OFFSET.reason, ack.reason);
  v.setUint8(ACK_OFFSET.nAcks, ack.acks.byteLength);
  body.set(ack.acks, ACK_OFFSET.acks);
  v.setUint32(trailerAt + ACK_TRAILER_OFFSET.maxMTU, ack.trailer.maxMTU);
  v.setUint32(trailerAt + ACK_TRAILER_OFFSET.ifMTU, ack.trailer.ifMTU);
  v.setUint32(trailerAt + ACK_TRAILER_OFFSET.rwind, ack.trailer.rwind);
  v.setUint32(trailerAt + ACK_TRAILER_OFFSET.maxDgramPackets, ack.trailer.maxDgramPackets);
  return body;
}

export function decodeAbortCode(body: Uint8Array): number {
  if (body.byteLength < ABORT_BODY_SIZE) {
    throw new RxError('ERR_RX_SHORT_PACKET', `ABORT body of ${body.byteLength} bytes has no 4-byte code`);
  }
  return view(body).getInt32(0);
}

export function encodeAbortBody(code: number): Uint8Array {
  const body = new Uint8Array(ABORT_BODY_SIZE);
  view(body).setInt32(0, code);
  return body;
}

/**
 * Cuts a DATA datagram into its packets. A plain DATA packet gives one; a
 * jumbogram gives one per JUMBO_DATA_SIZE segment, each with the seq and
 * serial of the previous plus one and the flags of its jumbo header.
 */
export function splitData(packet: Uint8Array, header: PacketHeader): DataPacket[] {
  assert.equal(header.type, PacketType.DATA);
  const packets: DataPacket[] = [];
  let current = header;
  let offset = HEADER_SIZE;
  // Bounded by the datagram: every turn consumes at least JUMBO_DATA_SIZE bytes.
  while ((current.flags & PacketFlag.JUMBO_PACKET) !== 0) {
    const jumboAt = offset + JUMBO_DATA_SIZE;
    if (packet.byteLength < jumboAt + JUMBO_HEADER_SIZE) {
      throw malformed(`jumbo packet seq ${current.seq} is shorter than ${JUMBO_DATA_SIZE} bytes plus a jumbo header`);
    }
    packets.push({ header: current, data: packet.subarray(offset, jumboAt) });
    current = {
      ...current,
      seq: (current.seq + 1) >>> 0,
      serial: (current.serial + 1) >>> 0,
      flags: packet[jumboAt + JUMBO_HEADER_OFFSET.flags]!,
      checksum: readUint16(packet, jumboAt + JUMBO_HEADER_OFFSET.checksum),
    };
    offset = jumboAt + JUMBO_HEADER_SIZE;
  }
  packets.push({ header: current, data: packet.subarray(offset) });
  return packets;
}

/** Packs DATA packets (all but the last exactly JUMBO_DATA_SIZE) into one jumbogram. */
export function encodeJumbo(packets: readonly DataPacket[]): Uint8Array {
  assert.ok(packets.length > 0, 'a jumbogram carries at least one packet');
  const last = packets[packets.length - 1]!;
  const size = HEADER_SIZE + (packets.length - 1) * (JUMBO_DATA_SIZE + JUMBO_HEADER_SIZE) + last.data.byteLength;
  const datagram = new Uint8Array(size);
  const first = packets[0]!;
  encodeHeader({ ...first.header, flags: first.header.flags | (packets.length > 1 ? PacketFlag.JUMBO_PACKET : 0) }, datagram);
  let offset = HEADER_SIZE;
  for (let index = 0; index < packets.length; index++) {
    const packet = packets[index]!;
    datagram.set(packet.data, offset);
    offset += packet.data.byteLength;
    const next = packets[index + 1];
    if (next === undefined) break;
    assert.equal(packet.data.byteLength, JUMBO_DATA_SIZE, 'inner jumbo packets are full');
    const v = view(datagram);
    const jumboFlags = next.header.flags | (index + 2 < packets.length ? PacketFlag.JUMBO_PACKET : 0);
    v.setUint8(offset + JUMBO_HEADER_OFFSET.flags, jumboFlags);
    v.setUint8(offset + JUMBO_HEADER_OFFSET.spare, 0);
    v.setUint16(offset + JUMBO_HEADER_OFFSET.checksum, next.header.checksum);
    offset += JUMBO_HEADER_SIZE;
  }
  return datagram;
}

/** Sequence-number comparison modulo 2^32 (RFC 1982 style), for seq and serial. */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
