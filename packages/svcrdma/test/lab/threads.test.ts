/**
 * Inside the rxe lab: RPCs served by worker threads (SvcRdmaThreadedServer).
 * Two connections served in parallel by two threads; a procedure that blocks
 * its thread does not stall another connection; a flood on one connection
 * does not starve another; a worker that dies mid-RPC is replaced and its
 * connection goes on; the release list's trailing edge is drained by the
 * native self-enqueue; after the clients leave every gauge is back to 0 and no
 * verbs object is left.
 */
import { liveObjects } from '@roce-rpc/verbs';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdmaRpcClient, SvcRdmaThreadedServer } from '../../dist/index.js';
import { THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure } from './thread_service.ts';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
/** Not 20049 (the kernel's) nor the other lab servers' ports. */
const PORT = 20061;
const THREADS = 2;

let server: SvcRdmaThreadedServer;
/** Verbs objects once a first connection came and went (the server keeps its device and PD). */
let baseline: Record<string, number> | null = null;

beforeAll(async () => {
  server = await SvcRdmaThreadedServer.listen({ address, port: PORT, threads: THREADS, serviceModule: new URL('./thread_service.ts', import.meta.url) });
});

afterAll(async () => {
  await server?.close();
});

const connect = (timeoutMs = 20_000) => RdmaRpcClient.connect({ address, port: PORT, timeoutMs });
const nullCall = (client: RdmaRpcClient) => client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.NULL, xdrVoid, undefined, xdrVoid);
const sleepCall = (client: RdmaRpcClient, milliseconds: number) =>
  client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.SLEEP, xdrUint, milliseconds, xdrUint) as Promise<number>;

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  for (const deadline = performance.now() + timeoutMs; !condition(); ) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('worker threads on rxe0', () => {
  it('serves NULL calls on a worker thread, not on the main thread', async () => {
    const client = await connect();
    try {
      await nullCall(client);
      const served = (await client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.THREAD, xdrVoid, undefined, xdrUint)) as number;
      expect(served).toBeGreaterThan(0);
      const metrics = server.metrics();
      expect(metrics.workers.calls).toBeGreaterThanOrEqual(2);
      expect(metrics.workers.inlineReplies).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
    }
    await until(() => server.connections.size === 0, 'the first teardown');
    baseline = liveObjects();
  });

  it('serves two connections in parallel on two threads', async () => {
    const [first, second] = await Promise.all([connect(), connect()]);
    try {
      await Promise.all([nullCall(first!), nullCall(second!)]);
      const started = performance.now();
      const threads = await Promise.all([sleepCall(first!, 1500), sleepCall(second!, 1500)]);
      const elapsed = performance.now() - started;
      console.log(`two 1500 ms procedures on two connections: ${elapsed.toFixed(0)} ms, threads ${threads.join(', ')}`);
      expect(new Set(threads).size).toBe(2);
      expect(elapsed).toBeLessThan(2900);
    } finally {
      await Promise.all([first!.close(), second!.close()]);
    }
  });

  it('a procedure that blocks its thread does not stall another connection', async () => {
    const [slow, quick] = await Promise.all([connect(), connect()]);
    try {
      await Promise.all([nullCall(slow!), nullCall(quick!)]);
      let slowDone = false;
      const slowCall = sleepCall(slow!, 3000).then(() => (slowDone = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      let quickCalls = 0;
      while (!slowDone && quickCalls < 20) {
        await nullCall(quick!);
        quickCalls++;
      }
      console.log(`NULL calls on the other connection while SLEEP(3000) ran: ${quickCalls}`);
      expect(quickCalls).toBe(20);
      expect(slowDone).toBe(false);
      await slowCall;
    } finally {
      await Promise.all([slow!.close(), quick!.close()]);
    }
  });

  it('a flood on one connection does not starve another', async () => {
    const [flooder, victim] = await Promise.all([connect(), connect()]);
    try {
      let flooding = true;
      let flooded = 0;
      const floodTimes: number[] = [];
      const lane = async () => {
        for (; flooding; flooded++) {
          const begin = performance.now();
          await nullCall(flooder!);
          floodTimes.push(performance.now() - begin);
        }
      };
      const lanes = Array.from({ length: 16 }, lane);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const times: number[] = [];
      const floodedBefore = flooded;
      for (let call = 0; call < 30; call++) {
        const begin = performance.now();
        await nullCall(victim!);
        times.push(performance.now() - begin);
      }
      const floodedDuring = flooded - floodedBefore;
      flooding = false;
      await Promise.all(lanes);
      times.sort((a, b) => a - b);
      floodTimes.sort((a, b) => a - b);
      const median = times[times.length >> 1]!;
      const floodMedian = floodTimes[floodTimes.length >> 1]!;
      console.log(
        `victim: 30 NULL calls during ${floodedDuring} calls of a 16-deep flood (flood median ${floodMedian.toFixed(1)} ms, worst ${floodTimes.at(-1)!.toFixed(1)} ms): ` +
          `median ${median.toFixed(1)} ms, slowest ${times.slice(-5).map((time) => time.toFixed(1)).join(', ')} ms; queue ${JSON.stringify(server.metrics().queue)}`,
      );
      // Served while the flood went on, and not queued behind it: the flooding transport is in the
      // service queue at most once, so a victim call waits for about one flood RPC, not sixteen.
      // The slowest victim calls (seconds on the loaded lab) are not spent in the service queue:
      // the queue's counters show the workers sleeping, often timing out, meanwhile.
      expect(floodedDuring).toBeGreaterThan(30);
      expect(median).toBeLessThan(floodMedian * 2);
    } finally {
      await Promise.all([flooder!.close(), victim!.close()]);
    }
  });

  it('a worker that dies mid-RPC is replaced and its connection is served again', async () => {
    const client = await connect(3000);
    try {
      await nullCall(client);
      const restarts = server.metrics().workers.workerRestarts;
      await expect(client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.DIE, xdrVoid, undefined, xdrVoid)).rejects.toThrow();
      await until(() => server.metrics().workers.workerRestarts === restarts + 1, 'the replacement worker');
      for (let call = 0; call < 10; call++) await nullCall(client);
      expect(server.connections.size).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('drains the trailing edge of an idle connection through the native self-enqueue', async () => {
    const client = await connect();
    try {
      for (let round = 0; round < 10; round++) {
        await nullCall(client);
        await until(() => server.gauges().sendContextsInUse === 0, `round ${round}: the last send context released without another RPC`);
      }
      const transports = server.metrics().transports;
      console.log(`transport counters: ${JSON.stringify(transports)}`);
      expect(transports.selfEnqueues).toBeGreaterThanOrEqual(1);
      expect(transports.released['self-enqueue']).toBeGreaterThanOrEqual(1);
      expect(transports.failedSends).toBe(0);
    } finally {
      await client.close();
    }
  });

  it('leaves every gauge at 0 and no verbs object behind once the clients are gone', async () => {
    await until(() => server.connections.size === 0, 'every teardown');
    expect(server.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0 });
    const metrics = server.metrics();
    expect(metrics.accepted).toBe(metrics.closed);
    expect(metrics.transports.lostSends).toBe(0);
    expect(metrics.transports.drains['between-rpcs']).toBeGreaterThan(0);
    expect(liveObjects()).toEqual(baseline);
  });
});
