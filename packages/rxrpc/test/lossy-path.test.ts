/**
 * A loopback relay that drops 30% of datagrams in each direction, reorders
 * and duplicates others: every call still completes with the right data and
 * no procedure runs twice for one call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxClient, RxServer } from '../dist/index.js';
import { Relay, type RelayedPacket } from './helpers/relay.js';

const serviceModule = new URL('./fixtures/counting-service.ts', import.meta.url);
const CALLS = 120;

/** A small deterministic generator so a failure replays the same losses. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function lossyPolicy(seed: number) {
  const next = random(seed);
  const counts = { dropped: 0, duplicated: 0, delayed: 0, forwarded: 0 };
  return {
    counts,
    policy(packet: RelayedPacket, relay: Relay): RelayedPacket[] {
      const roll = next();
      if (roll < 0.3) {
        counts.dropped += 1;
        return [];
      }
      if (roll < 0.4) {
        counts.duplicated += 1;
        setTimeout(() => relay.forward(packet), 1 + next() * 5);
        return [packet];
      }
      if (roll < 0.55) {
        counts.delayed += 1;
        setTimeout(() => relay.forward(packet), 1 + next() * 15);
        return [];
      }
      counts.forwarded += 1;
      return [packet];
    },
  };
}

describe('a lossy, reordering, duplicating path', () => {
  let server: RxServer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2, call: { minRetransmitTimeoutMs: 20 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it(`completes ${CALLS} calls with correct data and runs each procedure exactly once`, async () => {
    const lossy = lossyPolicy(0x5eed);
    const relay = await Relay.start(server.port, (packet, self) => lossy.policy(packet, self));
    const client = await RxClient.open({ call: { minRetransmitTimeoutMs: 20 } });
    const connection = client.connect('127.0.0.1', relay.port, 77);
    const serverBefore = await server.stats();
    const payload = (id: number): Uint8Array => {
      const size = id % 3 === 0 ? 5_000 : 64;
      const bytes = new Uint8Array(4 + size).map((_, index) => (index * 31 + id) & 0xff);
      new DataView(bytes.buffer).setUint32(0, id);
      return bytes;
    };
    const lane = async (first: number): Promise<number[]> => {
      const counts: number[] = [];
      for (let id = first; id < CALLS; id += 4) {
        const request = payload(id);
        const opcode = Uint8Array.of(0, 0, 0, 1);
        const reply = await connection.call(Buffer.concat([opcode, request]));
        const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
        counts.push(view.getUint32(0));
        expect(Buffer.from(reply.subarray(4)).equals(Buffer.from(request.subarray(4)))).toBe(true);
      }
      return counts;
    };
    const counts = (await Promise.all([0, 1, 2, 3].map(lane))).flat();
    const stats = client.stats();
    const serverAfter = await server.stats();
    await client.close();
    await relay.close();
    expect(counts).toHaveLength(CALLS);
    expect(counts.every((count) => count === 1)).toBe(true);
    expect(lossy.counts.dropped).toBeGreaterThan(CALLS / 2);
    expect(lossy.counts.duplicated).toBeGreaterThan(0);
    expect(stats.dataPacketsReSent).toBeGreaterThan(0);
    // Retransmitted and duplicated first DATA packets start no second call: each call is counted once.
    const perChannel = serverAfter.counters.callsPerChannel.map((count, channel) => count - serverBefore.counters.callsPerChannel[channel]!);
    expect(perChannel.reduce((sum, count) => sum + count, 0)).toBe(CALLS);
    expect(serverAfter.counters.callsStarted - serverBefore.counters.callsStarted).toBe(CALLS);
  }, 120_000);
});
