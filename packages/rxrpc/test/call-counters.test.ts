/**
 * callsPerChannel and callsStarted count each call our Node client makes
 * exactly once — whether the channels live on workers (counts summed over
 * them) or on the routing thread, for back-to-back calls on one connection
 * and for calls queued behind busy channels on several connections, and
 * however many stats() reads overlap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxClient, RxServer, type RxServerStats } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const Null = BENCH_PACKAGE.procedures[0]!;
const CLIENTS = 4;
const CONCURRENT_CALLS_PER_CLIENT = 25;
const SEQUENTIAL_CALLS = 100;

const callsCounted = (after: RxServerStats, before: RxServerStats): number =>
  after.counters.callsPerChannel.reduce((sum, count, channel) => sum + count - before.counters.callsPerChannel[channel]!, 0);

describe.each([{ workers: 2 }, { workers: 4 }, { workers: 0 }])('call counters with $workers channel workers', ({ workers }) => {
  let server: RxServer;
  let clients: RxClient[];
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers });
    clients = await Promise.all(Array.from({ length: CLIENTS }, () => RxClient.open()));
  });
  afterAll(async () => {
    await Promise.all(clients?.map((client) => client.close()) ?? []);
    await server?.close();
  });

  it(`counts ${SEQUENTIAL_CALLS} back-to-back calls on one connection exactly`, async () => {
    const connection = clients[0]!.connect('127.0.0.1', server.port, 42);
    const before = await server.stats();
    for (let index = 0; index < SEQUENTIAL_CALLS; index++) await connection.invoke(Null, {});
    const after = await server.stats();
    expect(callsCounted(after, before)).toBe(SEQUENTIAL_CALLS);
    expect(after.counters.callsStarted - before.counters.callsStarted).toBe(SEQUENTIAL_CALLS);
  });

  it(`counts ${CLIENTS} x ${CONCURRENT_CALLS_PER_CLIENT} calls queued on four channels per connection exactly, in overlapping stats reads`, async () => {
    const connections = clients.map((client) => client.connect('127.0.0.1', server.port, 42));
    const before = await server.stats();
    await Promise.all(connections.flatMap((connection) => Array.from({ length: CONCURRENT_CALLS_PER_CLIENT }, () => connection.invoke(Null, {}))));
    const reads = await Promise.all([1, 2, 3, 4].map(() => server.stats()));
    for (const after of reads) {
      expect(callsCounted(after, before)).toBe(CLIENTS * CONCURRENT_CALLS_PER_CLIENT);
      expect(after.counters.callsStarted - before.counters.callsStarted).toBe(CLIENTS * CONCURRENT_CALLS_PER_CLIENT);
      // Every channel index was used: 25 calls at once on a connection keep its four channels busy.
      for (const [channel, count] of after.counters.callsPerChannel.entries()) expect(count - before.counters.callsPerChannel[channel]!).toBeGreaterThan(0);
    }
  });
});
