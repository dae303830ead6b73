/**
 * A client's final ACK (Channel): owed when a call completes, dropped when
 * the channel's next call starts first (its DATA acknowledges the reply and
 * the server completes the old call on it), sent after finalAckDelayMs when
 * no call follows, and at once with finalAckDelayMs 0, as OpenAFS's client does.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RxClient, RxServer, type CounterSnapshot } from '../dist/index.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const CALLS = 50;
const nullRequest = (): Uint8Array => Uint8Array.of(0, 0, 0, 1);
const finalAcksSent = (stats: CounterSnapshot): number => stats.ackPacketsSent - stats.pingPacketsSent;

describe('final ACK of a client call', () => {
  let server: RxServer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it(`sends none for ${CALLS - 1} of ${CALLS} back-to-back calls on a channel, and the last one after the delay`, async () => {
    const client = await RxClient.open();
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      const before = await server.stats();
      for (let index = 0; index < CALLS; index++) expect(await connection.call(nullRequest(), { channel: 0 })).toHaveLength(0);
      // Read before any timer can run: each call started in the microtasks after the previous one completed.
      expect(finalAcksSent(client.stats())).toBe(0);
      const afterCalls = await server.stats();
      expect(afterCalls.counters.callsCompletedByNextCall - before.counters.callsCompletedByNextCall).toBe(CALLS - 1);
      // The last call's ACK follows on its own and completes the server's call.
      await vi.waitFor(async () => {
        expect(finalAcksSent(client.stats())).toBe(1);
        expect((await server.stats()).activeCallsPerWorker).toEqual([0, 0]);
      });
      expect((await server.stats()).counters.callsCompleted - before.counters.callsCompleted).toBe(CALLS);
    } finally {
      await client.close();
    }
  });

  it('sends one per call at once with finalAckDelayMs 0', async () => {
    const client = await RxClient.open({ call: { finalAckDelayMs: 0 } });
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      for (let index = 0; index < CALLS; index++) await connection.call(nullRequest(), { channel: 0 });
      expect(finalAcksSent(client.stats())).toBe(CALLS);
    } finally {
      await client.close();
    }
  });

  it('sends the owed ACK when the connection closes before the delay runs out', async () => {
    const client = await RxClient.open({ call: { finalAckDelayMs: 10_000 } });
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      await connection.call(nullRequest(), { channel: 0 });
      expect(finalAcksSent(client.stats())).toBe(0);
      connection.close();
      expect(finalAcksSent(client.stats())).toBe(1);
      await vi.waitFor(async () => expect((await server.stats()).activeCallsPerWorker).toEqual([0, 0]));
    } finally {
      await client.close();
    }
  });
});
