/**
 * Bad input from the network: the server drops or aborts as the protocol
 * says, keeps serving, and counts every rejection.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AckReason, PacketFlag, PacketType, RxClient, RxServer, encodeAckBody } from '../dist/index.js';
import { RawPeer } from './helpers/raw-peer.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const nullRequest = Uint8Array.of(0, 0, 0, 1);

describe('hostile packets', () => {
  let server: RxServer;
  let peer: RawPeer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
    peer = await RawPeer.open();
  });
  afterAll(async () => {
    await peer?.close();
    await server?.close();
  });

  async function stillServes(): Promise<void> {
    const client = await RxClient.open();
    try {
      const reply = await client.connect('127.0.0.1', server.port, 42).call(nullRequest);
      expect(reply.byteLength).toBe(0);
    } finally {
      await client.close();
    }
  }

  it('drops runts, unknown types and non-DATA packets for unknown connections, counting each', async () => {
    const before = (await server.stats()).counters.packetsRejected;
    peer.socket.send(new Uint8Array(10), server.port, '127.0.0.1');
    peer.send('127.0.0.1', server.port, { type: 11, epoch: 1, cid: 0x400 });
    peer.send('127.0.0.1', server.port, { type: PacketType.ACK, epoch: 2, cid: 0x800 }, new Uint8Array(40));
    peer.send('127.0.0.1', server.port, { type: PacketType.ABORT, epoch: 3, cid: 0xc00 }, new Uint8Array(4));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await server.stats()).counters.packetsRejected - before).toBe(4);
    await stillServes();
  });

  it('refuses a connection to an unknown service with a connection ABORT', async () => {
    peer.send('127.0.0.1', server.port, { epoch: 4, cid: 0x1000, serviceId: 999 }, nullRequest);
    const abort = await peer.expect((header) => header.type === PacketType.ABORT && header.epoch === 4);
    expect(abort.header.callNumber).toBe(0);
    expect(abort.bytes.readInt32BE(28)).toBe(-2);
  });

  it('aborts a call whose DATA comes after its LAST_PACKET with RX_PROTOCOL_ERROR', async () => {
    const flags = PacketFlag.CLIENT_INITIATED;
    peer.send('127.0.0.1', server.port, { epoch: 5, cid: 0x1400, seq: 1, flags }, Uint8Array.of(0, 0, 0, 5));
    peer.send('127.0.0.1', server.port, { epoch: 5, cid: 0x1400, seq: 2, flags: flags | PacketFlag.LAST_PACKET }, Uint8Array.of(0, 0, 0x27, 0x10));
    peer.send('127.0.0.1', server.port, { epoch: 5, cid: 0x1400, seq: 3, flags }, new Uint8Array(8));
    const abort = await peer.expect((header) => header.type === PacketType.ABORT && header.epoch === 5);
    expect(abort.bytes.readInt32BE(28)).toBe(-5);
  });

  it('aborts a call whose peer ACKs reply packets that were never sent', async () => {
    const flags = PacketFlag.CLIENT_INITIATED;
    const sleep = Uint8Array.of(0, 0, 0, 5, 0, 0, 0, 100);
    peer.send('127.0.0.1', server.port, { epoch: 6, cid: 0x1800, flags: flags | PacketFlag.LAST_PACKET }, sleep);
    await peer.expect((header) => header.type === PacketType.DATA && header.epoch === 6);
    const forged = encodeAckBody({
      bufferSpace: 0,
      maxSkew: 0,
      firstPacket: 1_000_000,
      previousPacket: 0,
      serial: 0,
      reason: AckReason.REQUESTED,
      acks: new Uint8Array(0),
      trailer: { maxMTU: 1444, ifMTU: 1444, rwind: 32, maxDgramPackets: 1 },
    });
    // The reply is one packet: an ACK claiming a million of them is forged.
    peer.send('127.0.0.1', server.port, { epoch: 6, cid: 0x1800, seq: 0, type: PacketType.ACK, flags }, forged);
    const abort = await peer.expect((header) => header.type === PacketType.ABORT && header.epoch === 6);
    expect(abort.bytes.readInt32BE(28)).toBe(-5);
    await stillServes();
  });

  it('drops DATA beyond the receive window with an EXCEEDS_WINDOW ACK and keeps memory bounded', async () => {
    const flags = PacketFlag.CLIENT_INITIATED;
    peer.send('127.0.0.1', server.port, { epoch: 7, cid: 0x1c00, seq: 1, flags }, Uint8Array.of(0, 0, 0, 2));
    peer.send('127.0.0.1', server.port, { epoch: 7, cid: 0x1c00, seq: 5000, flags }, new Uint8Array(100));
    const ack = await peer.expect((header) => header.type === PacketType.ACK && header.epoch === 7 && header.callNumber === 1, 2000);
    expect(ack).toBeDefined();
    // Seq 1 ends the peer's burst, so its own ACK may come first.
    const reasons = (): (number | undefined)[] =>
      peer.received.filter((packet) => packet.header.epoch === 7 && packet.header.type === PacketType.ACK).map((packet) => packet.bytes[28 + 16]);
    await vi.waitFor(() => expect(reasons()).toContain(AckReason.EXCEEDS_WINDOW), { timeout: 2000 });
    await stillServes();
  });
});
