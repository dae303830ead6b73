/**
 * The race the four-channel design exists to fix: a call's final ACK
 * overtaken by the next call's first DATA on the same channel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckReason, HEADER_SIZE, PacketFlag, PacketType, RxClient, RxServer, type RxServerStats } from '../dist/index.js';
import { Relay, type RelayedPacket } from './helpers/relay.js';
import { RawPeer } from './helpers/raw-peer.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const CALLS_PER_CHANNEL = 10_000;
const ACK_REASON_OFFSET = HEADER_SIZE + 16;

function nullRequest(): Uint8Array {
  const request = new Uint8Array(4);
  new DataView(request.buffer).setInt32(0, 1);
  return request;
}

function sleepRequest(milliseconds: number): Uint8Array {
  const request = new Uint8Array(8);
  new DataView(request.buffer).setInt32(0, 5);
  new DataView(request.buffer).setUint32(4, milliseconds);
  return request;
}

/** Holds every final ACK from the client until the next call's first DATA on that channel has gone out. */
function finalAcksBehindNextCall() {
  const held: RelayedPacket[][] = [[], [], [], []];
  const calls: Set<number>[] = [new Set(), new Set(), new Set(), new Set()];
  const policy = (packet: RelayedPacket): RelayedPacket[] => {
    const channel = packet.header.cid & 3;
    if (packet.direction !== 'to-server') return [packet];
    const reason = packet.bytes[ACK_REASON_OFFSET];
    const isPingTraffic = reason === AckReason.PING || reason === AckReason.PING_RESPONSE;
    if (packet.header.type === PacketType.ACK && !isPingTraffic) {
      held[channel]!.push(packet);
      return [];
    }
    if (packet.header.type === PacketType.DATA && packet.header.seq === 1) {
      calls[channel]!.add(packet.header.callNumber);
      return [packet, ...held[channel]!.splice(0)];
    }
    return [packet];
  };
  return { policy, held, callsSeen: () => calls.map((set) => set.size) };
}

describe('channel race: the next call overtakes the final ACK', () => {
  let server: RxServer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it(`completes ${CALLS_PER_CHANNEL} back-to-back calls per channel with every final ACK reordered, never answering BUSY`, async () => {
    const before = await server.stats();
    const shim = finalAcksBehindNextCall();
    const relay = await Relay.start(server.port, shim.policy);
    // The race needs a final ACK per call, as OpenAFS's rx client sends it (ours defers it by default).
    const client = await RxClient.open({ call: { finalAckDelayMs: 0 } });
    const connection = client.connect('127.0.0.1', relay.port, 42);
    let failures = 0;
    const lane = async (channel: number): Promise<void> => {
      for (let index = 0; index < CALLS_PER_CHANNEL; index++) {
        await connection.call(nullRequest(), { channel }).catch(() => (failures += 1));
      }
    };
    await Promise.all([0, 1, 2, 3].map(lane));
    for (const channelHeld of shim.held) for (const packet of channelHeld.splice(0)) relay.forward(packet);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after: RxServerStats = await server.stats();
    const clientStats = client.stats();
    await client.close();
    await relay.close();

    expect(failures).toBe(0);
    expect(shim.callsSeen()).toEqual([CALLS_PER_CHANNEL, CALLS_PER_CHANNEL, CALLS_PER_CHANNEL, CALLS_PER_CHANNEL]);
    expect(after.counters.busyPacketsSent - before.counters.busyPacketsSent).toBe(0);
    expect(clientStats.busyPacketsRead).toBe(0);
    // Every call but each channel's last was completed by the next call's DATA, and its ACK came late.
    expect(after.counters.callsCompletedByNextCall - before.counters.callsCompletedByNextCall).toBe(4 * (CALLS_PER_CHANNEL - 1));
    expect(after.counters.staleFinalAcks - before.counters.staleFinalAcks).toBeGreaterThanOrEqual(4 * (CALLS_PER_CHANNEL - 1));
    expect(after.counters.callsStarted - before.counters.callsStarted).toBe(4 * CALLS_PER_CHANNEL);
  }, 120_000);

  it('answers BUSY when the previous call on the channel is really still running, and serves the call once it is free', async () => {
    const before = await server.stats();
    const peer = await RawPeer.open();
    const channel0 = { epoch: 0x5151, cid: 0x2000 };
    peer.send('127.0.0.1', server.port, { ...channel0, callNumber: 1 }, sleepRequest(300));
    // Call 2 on the same channel while Sleep(300) runs: the server must refuse it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    peer.send('127.0.0.1', server.port, { ...channel0, callNumber: 2 }, nullRequest());
    const busy = await peer.expect((header) => header.type === PacketType.BUSY);
    expect(busy.header.callNumber).toBe(2);
    expect(busy.header.cid).toBe(channel0.cid);
    // The same call on another channel of the connection is served at once.
    peer.send('127.0.0.1', server.port, { ...channel0, cid: channel0.cid | 1, callNumber: 1 }, nullRequest());
    const otherChannel = await peer.expect((header) => header.type === PacketType.DATA && header.cid === (channel0.cid | 1));
    expect(otherChannel.header.flags & PacketFlag.LAST_PACKET).toBe(PacketFlag.LAST_PACKET);
    // Once Sleep's reply is out, call 2 supersedes call 1 and is answered.
    await peer.expect((header) => header.type === PacketType.DATA && header.callNumber === 1 && header.cid === channel0.cid, 3000);
    peer.send('127.0.0.1', server.port, { ...channel0, callNumber: 2 }, nullRequest());
    await peer.expect((header) => header.type === PacketType.DATA && header.callNumber === 2);
    const after = await server.stats();
    await peer.close();
    expect(after.counters.busyPacketsSent - before.counters.busyPacketsSent).toBe(1);
  });
});

describe('our client meets a BUSY server channel', () => {
  it('sends the call again on another channel and gets the answer', async () => {
    // A scripted server: BUSY for any call on channel 0, an empty reply on the others.
    const scripted = await RawPeer.open();
    const seenChannels: number[] = [];
    scripted.socket.on('message', (bytes, remote) => {
      const channel = bytes.readUInt32BE(4) & 3;
      if (bytes[20] !== PacketType.DATA) return;
      seenChannels.push(channel);
      const reply = Buffer.from(bytes.subarray(0, 28));
      reply[20] = channel === 0 ? PacketType.BUSY : PacketType.DATA;
      reply[21] = channel === 0 ? 0 : PacketFlag.LAST_PACKET;
      scripted.socket.send(reply, remote.port, remote.address);
    });
    const client = await RxClient.open({ call: { idleDeadMs: 2_000 } });
    try {
      const blocker = client.connect('127.0.0.1', scripted.socket.address().port, 42);
      const reply = await blocker.call(nullRequest());
      expect(reply.byteLength).toBe(0);
      expect(seenChannels[0]).toBe(0);
      expect(seenChannels.at(-1)).not.toBe(0);
      expect(client.stats().busyPacketsRead).toBeGreaterThanOrEqual(1);
    } finally {
      await client.close();
      await scripted.close();
    }
  });
});
