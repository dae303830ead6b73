/**
 * What a server sends behind the last packet of its reply, on a channel that
 * has no RTT sample yet (every channel of a new connection).
 *
 * It must not ping there. OpenAFS's rx client answers a ping first, releasing
 * the call lock to send the answer, and only then applies the ping's ACK body
 * to the channel's call; its application thread, which has just taken the
 * reply, ends the call and starts the next one in that gap. The old call's
 * firstPacket then acknowledges the new call's packets we never received, our
 * real ACKs look stale to the client (firstPacket below its own), and its call
 * dies with RX_CALL_DEAD after the dead time: the "send failed: -1" that
 * peers/rxbench.c hit in about 3 % of runs of 8 back-to-back 1 MiB Sends on a
 * new connection. The scripted client here watches the wire for that ping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckReason, HEADER_SIZE, PacketFlag, PacketType, RxServer, decodeAck, encodeAckBody, type PacketHeader } from '../dist/index.js';
import { RawPeer } from './helpers/raw-peer.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const SEND_OPCODE = 3;
const NULL_OPCODE = 1;
/** Long enough for a ping queued behind the reply to reach us, even on a loaded machine. */
const QUIET_AFTER_REPLY_MS = 150;

function words(...values: number[]): Uint8Array {
  const bytes = new Uint8Array(4 * values.length);
  values.forEach((value, index) => new DataView(bytes.buffer).setUint32(4 * index, value));
  return bytes;
}

/** Packets the server sent on `epoch`'s call 1 after the reply's LAST_PACKET DATA. */
async function packetsBehindReply(peer: RawPeer, epoch: number): Promise<PacketHeader[]> {
  const reply = await peer.expect((header) => header.epoch === epoch && header.type === PacketType.DATA && (header.flags & PacketFlag.LAST_PACKET) !== 0);
  await new Promise((resolve) => setTimeout(resolve, QUIET_AFTER_REPLY_MS));
  const replyAt = peer.received.findIndex((packet) => packet.header === reply.header);
  return peer.received.slice(replyAt + 1).map((packet) => packet.header).filter((header) => header.epoch === epoch);
}

function isPing(header: PacketHeader): boolean {
  return header.type === PacketType.ACK && (header.flags & PacketFlag.REQUEST_ACK) !== 0;
}

describe.each([0, 2])('a server with %i channel workers, on a new connection', (workers) => {
  let server: RxServer;
  let peer: RawPeer;
  let nextEpoch = 0x5000 + workers * 0x100;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers });
    peer = await RawPeer.open();
  });
  afterAll(async () => {
    await peer?.close();
    await server?.close();
  });

  it('sends nothing asking for an ACK behind the reply of a split Send streamed over several packets', async () => {
    const epoch = nextEpoch++;
    const flags = PacketFlag.CLIENT_INITIATED;
    peer.send('127.0.0.1', server.port, { epoch, seq: 1, flags }, words(SEND_OPCODE, 8));
    peer.send('127.0.0.1', server.port, { epoch, seq: 2, flags: flags | PacketFlag.LAST_PACKET }, new Uint8Array(8).fill(0x5a));
    const behind = await packetsBehindReply(peer, epoch);
    expect(behind.filter(isPing)).toEqual([]);
  });

  it('sends nothing asking for an ACK behind a one-packet reply, on every channel', async () => {
    const epoch = nextEpoch++;
    for (let channel = 0; channel < 4; channel++) {
      peer.send('127.0.0.1', server.port, { epoch, cid: 0x100 | channel }, words(NULL_OPCODE));
    }
    const behind = await packetsBehindReply(peer, epoch);
    expect(behind.filter(isPing)).toEqual([]);
  });

  it('still measures the RTT, from the client ACK that names the reply packet', async () => {
    const epoch = nextEpoch++;
    const before = (await server.stats()).counters.rttSamples;
    peer.send('127.0.0.1', server.port, { epoch }, words(NULL_OPCODE));
    const reply = await peer.expect((header) => header.epoch === epoch && header.type === PacketType.DATA);
    const ack = encodeAckBody({
      bufferSpace: 0,
      maxSkew: 0,
      firstPacket: 2,
      previousPacket: 1,
      serial: reply.header.serial,
      reason: AckReason.REQUESTED,
      acks: new Uint8Array(0),
      trailer: { maxMTU: 1444, ifMTU: 1444, rwind: 32, maxDgramPackets: 1 },
    });
    peer.send('127.0.0.1', server.port, { epoch, seq: 0, type: PacketType.ACK, flags: PacketFlag.CLIENT_INITIATED }, ack);
    await expect.poll(async () => (await server.stats()).counters.rttSamples, { timeout: 2000 }).toBe(before + 1);
  });

  it('answers a ping from the client with the call state it holds', async () => {
    const epoch = nextEpoch++;
    peer.send('127.0.0.1', server.port, { epoch }, words(NULL_OPCODE));
    await peer.expect((header) => header.epoch === epoch && header.type === PacketType.DATA);
    const ping = encodeAckBody({
      bufferSpace: 0,
      maxSkew: 0,
      firstPacket: 1,
      previousPacket: 0,
      serial: 0,
      reason: AckReason.PING,
      acks: new Uint8Array(0),
      trailer: { maxMTU: 1444, ifMTU: 1444, rwind: 32, maxDgramPackets: 1 },
    });
    peer.send('127.0.0.1', server.port, { epoch, seq: 0, type: PacketType.ACK, flags: PacketFlag.CLIENT_INITIATED | PacketFlag.REQUEST_ACK }, ping);
    const response = await peer.expect((header) => header.epoch === epoch && header.type === PacketType.ACK && (header.flags & PacketFlag.REQUEST_ACK) === 0);
    const body = decodeAck(response.bytes.subarray(HEADER_SIZE));
    expect(body.reason).toBe(AckReason.PING_RESPONSE);
    expect(body.firstPacket).toBe(2);
  });
});
