/**
 * Inside the rxe lab: the drain points empty-free-list and between-rpcs on a
 * worker thread (SvcRdmaThreadedServer), each shown by what the worker does
 * after a Send it sent has completed — not by luck of timing. One worker
 * thread, so no other worker's drain can take the completed context first
 * (the narrow server of threads_chunks.test.ts learnt why). The procedures
 * wait at a gate the test opens (drain_service.mjs), and the test opens it
 * only once every send context in use is a completed Send on the release list
 * (the native `releasePending` equals `inUse`) and every call it sent is
 * already on the server (so the worker never runs an empty receive, whose
 * self-enqueue drain would release the context instead).
 */
import { until as untilPolled } from '@roce-rpc/lab';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdmaRpcClient, SvcRdmaThreadedServer } from '../../dist/index.js';
import { DRAIN_PROGRAM, DRAIN_VERSION, DrainProcedure } from './drain_service.mjs';

/** This file polls every 2 ms, a finer step than the other lab files. */
const until = (condition: () => boolean, what: string): Promise<void> => untilPolled(condition, what, 20_000, 2);

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
/** Not 20049 (the kernel's) nor the other lab servers' ports. */
const PORT = 20064;
const CALL_TIMEOUT_MS = 60_000;

const gate = new Int32Array(new SharedArrayBuffer(4));
let server: SvcRdmaThreadedServer;

beforeAll(async () => {
  // One call per take: each gated procedure must see the reply before it posted (a batch posts its replies at its end).
  server = await SvcRdmaThreadedServer.listen({ address, port: PORT, threads: 1, callsPerTake: 1, serviceModule: new URL('./drain_service.mjs', import.meta.url), serviceOptions: { gate: gate.buffer } });
});

afterAll(async () => {
  await server?.close();
});

/** Opens every gate: a test that failed half-way lets its held calls go before its client leaves. */
const ALL_GATES = 0x7fff_ffff;

function openGate(number: number): void {
  Atomics.store(gate, 0, number);
  Atomics.notify(gate, 0);
}

const gateCall = (client: RdmaRpcClient, number: number) => client.call(DRAIN_PROGRAM, DRAIN_VERSION, DrainProcedure.GATE, xdrUint, number, xdrUint) as Promise<number>;

/** A connected client whose calls may be pipelined (the first reply granted its credits), and its server side. */
async function connectPipelined() {
  const acceptedBefore = server.metrics().accepted;
  const client = await RdmaRpcClient.connect({ address, port: PORT, timeoutMs: CALL_TIMEOUT_MS });
  try {
    await client.call(DRAIN_PROGRAM, DRAIN_VERSION, DrainProcedure.NULL, xdrVoid, undefined, xdrVoid);
    expect(server.metrics().accepted).toBe(acceptedBefore + 1);
  } catch (error) {
    await client.close();
    throw error;
  }
  // The newest: a previous test's connection may still be in its teardown.
  const connection = [...server.connections].at(-1)!;
  return { client, connection };
}

type Connection = Awaited<ReturnType<typeof connectPipelined>>['connection'];

/** Every send context in use is a completed Send waiting on the release list (none building or in flight). */
function sendsAllCompleted(connection: Connection): boolean {
  const { releasePending, inUse } = connection.metrics();
  return releasePending === inUse;
}

describe('drain points empty-free-list and between-rpcs on a worker thread', () => {
  it('a send context is got from the release list when the free list is empty, never allocated beside it (fails without the empty-free-list drain: a second context is allocated)', async () => {
    const ROUNDS = 8;
    openGate(0);
    const { client, connection } = await connectPipelined();
    const replies: Promise<number>[] = [];
    try {
      const callsBefore = server.metrics().workers.calls;
      replies.push(...Array.from({ length: ROUNDS }, (_, index) => gateCall(client, index + 1)));
      // The worker holds the first call at its gate while the others arrive.
      await until(() => server.metrics().workers.calls === callsBefore + 1 && connection.metrics().queuedReceives === ROUNDS - 1, 'every call on the server');
      for (let round = 1; round <= ROUNDS; round++) {
        // The previous reply was posted (its answer is here) and its Send completed: the worker,
        // held at this gate, gets its next context with that Send's context on the release list
        // (or already back, if the release right after its post found it completed).
        if (round > 1) expect(await replies[round - 2]).toBe(round - 1);
        await until(() => sendsAllCompleted(connection), `round ${round}: the previous Send's completion`);
        openGate(round);
      }
      expect(await replies[ROUNDS - 1]).toBe(ROUNDS);
      const metrics = connection.metrics();
      console.log(`empty-free-list: ${JSON.stringify(metrics)}`);
      // One context served every reply: each get that found the free list empty drained the
      // completed Send before allocating.
      expect(metrics.allocations).toBe(1);
      expect(metrics.exhausted).toBe(0);
    } finally {
      openGate(ALL_GATES);
      await Promise.allSettled(replies);
      await client.close();
    }
  });

  it('a completed Send is released by the release that ends the next RPC, before the worker takes another (fails without the between-rpcs drain: it waits on the release list)', async () => {
    openGate(0);
    const { client, connection } = await connectPipelined();
    const pending: Promise<number>[] = [];
    try {
      const callsBefore = server.metrics().workers.calls;
      const first = gateCall(client, 1);
      // Its reply is never sent: the client's promise ends with close(), unanswered.
      client.call(DRAIN_PROGRAM, DRAIN_VERSION, DrainProcedure.GATE_ONEWAY, xdrUint, 2, xdrUint).catch(() => undefined);
      const last = gateCall(client, 3);
      pending.push(first, last);
      await until(() => server.metrics().workers.calls === callsBefore + 1 && connection.metrics().queuedReceives === 2, 'the three calls on the server');
      openGate(1);
      expect(await first).toBe(1);
      // The one-way call is held at its gate until the first reply's Send completed; then it
      // returns without a reply (no send context taken) and its release must drain that Send.
      await until(() => sendsAllCompleted(connection), 'the first Send\'s completion');
      openGate(2);
      // The worker took the next call (queued before: no empty receive, no self-enqueue drain)
      // and waits at its gate, before any send-context get.
      await until(() => server.metrics().workers.calls === callsBefore + 3, 'the third call on the worker');
      const held = connection.metrics();
      console.log(`between-rpcs: ${JSON.stringify(held)}`);
      expect(held.inUse).toBe(0);
      expect(held.releasePending).toBe(0);
      expect(held.released['between-rpcs']).toBeGreaterThanOrEqual(1);
      openGate(3);
      expect(await last).toBe(3);
    } finally {
      openGate(ALL_GATES);
      await Promise.allSettled(pending);
      await client.close();
    }
  });

  it('leaves every gauge at 0 once the clients are gone', async () => {
    await until(() => server.connections.size === 0, 'every teardown');
    expect(server.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
    const metrics = server.metrics();
    expect(metrics.transports.lostSends).toBe(0);
    expect(metrics.workers.failures).toBe(0);
  });
});
