/**
 * Inside the rxe lab: RPCs served by worker threads (SvcRdmaThreadedServer).
 * Two connections served in parallel by two threads; calls queued on one
 * connection served several per take, in order; a procedure that blocks
 * its thread does not stall another connection; a flood on one connection
 * does not starve another; a worker that dies mid-RPC is replaced and its
 * connection goes on; the release list's trailing edge is drained by the
 * native self-enqueue; after the clients leave every gauge is back to 0 and no
 * verbs object is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { until } from '@roce-rpc/lab';
import { liveObjects } from '@roce-rpc/verbs';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdmaRpcClient, SvcRdmaThreadedServer } from '../../dist/index.js';
import { THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure } from './thread_service.mjs';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
/** Not 20049 (the kernel's) nor the other lab servers' ports. */
const PORT = 20061;
const THREADS = 2;

let server: SvcRdmaThreadedServer;
/** Verbs objects once a first connection came and went (the server keeps its device and PD). */
let baseline: Record<string, number> | null = null;

beforeAll(async () => {
  server = await SvcRdmaThreadedServer.listen({ address, port: PORT, threads: THREADS, serviceModule: new URL('./thread_service.mjs', import.meta.url) });
});

afterAll(async () => {
  await server?.close();
});

const connect = (timeoutMs = 20_000) => RdmaRpcClient.connect({ address, port: PORT, timeoutMs });
const nullCall = (client: RdmaRpcClient) => client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.NULL, xdrVoid, undefined, xdrVoid);
const sleepCall = (client: RdmaRpcClient, milliseconds: number) =>
  client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.SLEEP, xdrUint, milliseconds, xdrUint) as Promise<number>;

/** The child's stdout, line by line. */
function readLines(child: ChildProcess): { next(): Promise<string> } {
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    next: async () => {
      const line = await lines.next();
      if (line.done) throw new Error('the flooding client ended without a word');
      return line.value;
    },
  };
}

/** Logs the server's side of a call every second while it is pending (where does a slow call wait?). */
async function watchSlowCall<T>(call: Promise<T>, sample: () => object): Promise<T> {
  const watch = setInterval(() => console.log(`slow call, server side: ${JSON.stringify(sample())}`), 1000);
  try {
    return await call;
  } finally {
    clearInterval(watch);
  }
}

describe('worker threads on rxe0', () => {
  it('serves NULL calls on a worker thread, not on the main thread', async () => {
    const client = await connect();
    try {
      await nullCall(client);
      const served = (await client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.THREAD, xdrVoid, undefined, xdrUint)) as number;
      expect(served).toBeGreaterThan(0);
      // An asynchronous procedure: answered once its promise settles, and the release follows it.
      const later = (await client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.LATER, xdrUint, 20, xdrUint)) as number;
      expect(later).toBeGreaterThan(0);
      const metrics = server.metrics();
      expect(metrics.workers.calls).toBeGreaterThanOrEqual(3);
      expect(metrics.workers.inlineReplies).toBeGreaterThanOrEqual(3);
      await until(() => server.gauges().sendContextsInUse === 0, 'the three replies released');
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

  it('serves the calls queued on a connection several per take, each answered, one that answers later among them', async () => {
    const [first, second, queued] = await Promise.all([connect(), connect(), connect()]);
    try {
      await Promise.all([nullCall(first!), nullCall(second!), nullCall(queued!)]);
      const before = server.metrics().workers;
      // Both threads blocked: the calls of the third connection wait queued until one is free.
      const blockers = [sleepCall(first!, 1000), sleepCall(second!, 1000)];
      await until(() => server.metrics().workers.calls === before.calls + 2, 'both threads in SLEEP');
      const later = (client: RdmaRpcClient) => client.call(THREAD_PROGRAM, THREAD_VERSION, ThreadProcedure.LATER, xdrUint, 20, xdrUint) as Promise<number>;
      const replies = await Promise.all([...Array.from({ length: 5 }, () => nullCall(queued!)), later(queued!), ...Array.from({ length: 6 }, () => nullCall(queued!))]);
      await Promise.all(blockers);
      const after = server.metrics().workers;
      console.log(`12 queued calls + 2 SLEEPs: ${after.calls - before.calls} calls in ${after.served - before.served} takes`);
      expect(replies[5]).toBeGreaterThan(0);
      expect(after.calls - before.calls).toBe(14);
      // At least one take received several of the queued calls.
      expect(after.served - before.served).toBeLessThan(14);
      await until(() => server.gauges().sendContextsInUse === 0, 'every reply released');
    } finally {
      await Promise.all([first!.close(), second!.close(), queued!.close()]);
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
      console.log(`NULL calls on the other connection while SLEEP(3000) ran: ${quickCalls}${slowDone ? ' (then it returned)' : ''}`);
      // Stalled behind the blocked thread, not one would complete before SLEEP returns.
      expect(quickCalls).toBeGreaterThanOrEqual(5);
      await slowCall;
    } finally {
      await Promise.all([slow!.close(), quick!.close()]);
    }
  });

  it('a flood on one connection does not starve another', async () => {
    // The flooder runs in its own process: in this one its completions would compete with the
    // victim's for this event loop, which is the client's business, not the server's.
    const flooder = spawn(process.execPath, [new URL('./flood_client.ts', import.meta.url).pathname, address, String(PORT), String(THREAD_PROGRAM), String(THREAD_VERSION), '16'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const output = readLines(flooder);
    expect(await output.next()).toBe('flooding');
    const victim = await connect();
    try {
      await nullCall(victim);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const takesBefore = server.metrics().queue.takes;
      const times: number[] = [];
      const victimConnection = [...server.connections].at(-1)!;
      for (let call = 0; call < 30; call++) {
        const begin = performance.now();
        await watchSlowCall(nullCall(victim), () => {
          const { receives, flags, queuedReceives, postedReceives } = victimConnection.metrics();
          return { call, receives, flags, queuedReceives, postedReceives, queue: server.metrics().queue };
        });
        times.push(performance.now() - begin);
      }
      const takesDuring = server.metrics().queue.takes - takesBefore;
      flooder.stdin!.end();
      const flood = JSON.parse(await output.next()) as { calls: number; median: number; worst: number };
      times.sort((a, b) => a - b);
      const median = times[times.length >> 1]!;
      console.log(
        `victim: 30 NULL calls while a 16-deep flood from another process ran (${flood.calls} calls, median ${flood.median.toFixed(1)} ms, worst ${flood.worst.toFixed(1)} ms; ` +
          `${takesDuring} takes meanwhile): median ${median.toFixed(1)} ms, slowest ${times.slice(-3).map((time) => time.toFixed(1)).join(', ')} ms; queue ${JSON.stringify(server.metrics().queue)}`,
      );
      // Served while the flood went on, and not queued behind it: the flooding transport is in the
      // service queue at most once, so a victim call waits for about one flood RPC, not sixteen.
      expect(flood.calls).toBeGreaterThan(30);
      expect(median).toBeLessThan(flood.median);
    } finally {
      flooder.stdin!.end();
      await victim.close();
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

  it('a client that leaves while its call runs on a worker: teardown waits for the worker, nothing leaks', async () => {
    const client = await connect();
    await nullCall(client);
    const closedBefore = server.metrics().closed;
    const call = sleepCall(client, 1500).catch(() => 'closed');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await client.close();
    await call;
    await until(() => server.metrics().closed === closedBefore + 1, 'the teardown after the procedure returned');
    const metrics = server.metrics();
    expect(metrics.transports.droppedReplies).toBeGreaterThanOrEqual(1);
    expect(metrics.transports.lostSends).toBe(0);
    expect(server.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
  });

  it('leaves every gauge at 0 and no verbs object behind once the clients are gone', async () => {
    await until(() => server.connections.size === 0, 'every teardown');
    expect(server.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
    const metrics = server.metrics();
    expect(metrics.accepted).toBe(metrics.closed);
    expect(metrics.transports.lostSends).toBe(0);
    // Which drain releases a context depends on when its Send completed (the Send CQ is routed only
    // by gets, waits and the backstop); threads_drains.test.ts pins each point down on its own.
    const drains = metrics.transports.drains;
    expect(drains['between-rpcs'] + drains['self-enqueue'] + drains['empty-free-list']).toBeGreaterThan(0);
    expect(liveObjects()).toEqual(baseline);
  });
});
