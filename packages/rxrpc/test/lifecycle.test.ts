/**
 * Ownership and teardown: every call ends, every handler returns, and the
 * hard-ACKed packet buffers come back through the channels' release lists
 * into the workers' pools. Also the receive path for jumbograms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JUMBO_DATA_SIZE, PacketFlag, PacketType, RxClient, RxServer, encodeJumbo } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';
import { RawPeer } from './helpers/raw-peer.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const [Null, , , Receive] = BENCH_PACKAGE.procedures;

describe('call and buffer lifecycle on the server', () => {
  let server: RxServer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('ends every call, returns every handler and drains hard-ACKed buffers back into the pools', async () => {
    const client = await RxClient.open();
    const connection = client.connect('127.0.0.1', server.port, 42);
    const before = await server.stats();
    await Promise.all(
      [0, 1, 2, 3].map(async (channel) => {
        const call = await connection.startSplit(Receive!, { length: 256 * 1024 }, { channel });
        while ((await call.read()) !== undefined);
        await call.finish();
      }),
    );
    for (let index = 0; index < 20; index++) await connection.invoke(Null!, {});
    await client.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await server.stats();
    // 4 Receive calls of 256 KiB: 186 reply packets each, all hard-ACKed, all released.
    expect(after.counters.buffersReleased - before.counters.buffersReleased).toBeGreaterThanOrEqual(4 * 186);
    expect(after.poolAvailablePerWorker.reduce((sum, free) => sum + free, 0)).toBeGreaterThanOrEqual(186);
    expect(after.handlersRunning).toBe(0);
    expect(after.activeCallsPerWorker).toEqual([0, 0]);
    expect(after.counters.callsStarted - before.counters.callsStarted).toBe(24);
    expect(after.counters.callsFailed - before.counters.callsFailed).toBe(0);
  });

  it('splits a jumbogram into its packets and answers the whole request', async () => {
    const peer = await RawPeer.open();
    try {
      const payload = new Uint8Array(2 * JUMBO_DATA_SIZE + 100).map((_, index) => index & 0xff);
      const request = new Uint8Array(8 + payload.byteLength);
      const view = new DataView(request.buffer);
      view.setInt32(0, 2);
      view.setUint32(4, payload.byteLength);
      request.set(payload, 8);
      const base = { epoch: 0x7777, cid: 0x4000, callNumber: 1, serial: 10, type: PacketType.DATA, userStatus: 0, securityIndex: 0, checksum: 0, serviceId: 42 };
      const pieces = [request.subarray(0, JUMBO_DATA_SIZE), request.subarray(JUMBO_DATA_SIZE, 2 * JUMBO_DATA_SIZE), request.subarray(2 * JUMBO_DATA_SIZE)];
      const datagram = encodeJumbo(
        pieces.map((data, index) => ({
          header: { ...base, seq: 1 + index, serial: 10 + index, flags: PacketFlag.CLIENT_INITIATED | (index === 2 ? PacketFlag.LAST_PACKET : 0) },
          data,
        })),
      );
      peer.socket.send(datagram, server.port, '127.0.0.1');
      const last = await peer.expect((header) => header.type === PacketType.DATA && header.epoch === 0x7777 && (header.flags & PacketFlag.LAST_PACKET) !== 0);
      // The peer never ACKs, so the server may retransmit: keep one copy of each seq.
      const bySeq = new Map(
        peer.received
          .filter((packet) => packet.header.type === PacketType.DATA && packet.header.epoch === 0x7777)
          .map((packet) => [packet.header.seq, packet.bytes.subarray(28)] as const),
      );
      const replyData = [...bySeq].sort(([a], [b]) => a - b).map(([, data]) => data);
      const reply = Buffer.concat(replyData);
      expect(last.header.seq).toBe(replyData.length);
      expect(reply.equals(Buffer.from(request.subarray(4)))).toBe(true);
    } finally {
      await peer.close();
    }
  });
});
