/**
 * Inside the rxe lab: our client calls our server over rdma_cm on rxe0,
 * RPC-over-RDMA v1 on port 20049 — NULL calls, a call with a bad argument, and
 * a DDP-eligible result pushed through a Write chunk... (next session); then
 * the teardown leaves no send context, registration or native handle behind.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { liveObjects } from '@roce-rpc/verbs';
import { xdrString, xdrUint, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdmaRpcClient, SvcRdmaServer } from '../../src/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PROGRAM = 0x2000_0101;
/** Not 20049: the kernel svcrdma interop test owns that port in the same guest. */
const OUR_PORT = 20051;
const VERSION = 1;

const dispatcher = new Dispatcher().addVersion(
  PROGRAM,
  {
    name: 'LABTEST',
    version: VERSION,
    procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid), defineProcedure('LENGTH', 1, xdrString(255), xdrUint)],
  },
  { LENGTH: (text: string) => text.length },
);

let server: SvcRdmaServer;
let client: RdmaRpcClient;

beforeAll(async () => {
  const busyPollMicros = Number(process.env.SVCRDMA_BUSY_POLL_MICROS ?? 0);
  server = SvcRdmaServer.listen(dispatcher, { address, port: OUR_PORT, busyPollMicros });
  client = await RdmaRpcClient.connect({ address, port: OUR_PORT, busyPollMicros });
});

afterAll(async () => {
  await client?.close();
  await server?.close();
});

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

describe('RPC-over-RDMA on rxe0, our client against our server', () => {
  it('answers a NULL call and grants credits', async () => {
    await expect(client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid)).resolves.toBeUndefined();
    expect(client.credits).toBeGreaterThan(1);
    expect(client.credits).toBeLessThanOrEqual(server.options.credits);
  });

  it('carries arguments and results, and answers an unknown procedure with PROC_UNAVAIL', async () => {
    await expect(client.call(PROGRAM, VERSION, 1, xdrString(255), 'over rxe', xdrUint)).resolves.toBe(8);
    await expect(client.call(PROGRAM, VERSION, 9, xdrVoid, undefined, xdrVoid)).rejects.toMatchObject({ code: 'ERR_ONCRPC_PROC_UNAVAIL' });
  });

  it('serves NULL calls back to back and with 16 outstanding, draining send contexts between RPCs', async () => {
    const rounds = Number(process.env.SVCRDMA_LAB_ROUNDS ?? 500);
    const times: number[] = [];
    const started = performance.now();
    for (let index = 0; index < rounds; index++) {
      const begin = performance.now();
      await client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid);
      times.push(performance.now() - begin);
    }
    const serialSeconds = (performance.now() - started) / 1000;
    times.sort((a, b) => a - b);
    const parallelStarted = performance.now();
    for (let batch = 0; batch < rounds / 16; batch++) {
      await Promise.all(Array.from({ length: 16 }, () => client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid)));
    }
    const parallelSeconds = (performance.now() - parallelStarted) / 1000;
    const [connection] = server.connections;
    const pool = connection!.transport.sendContexts.metrics;
    console.log(
      `NULL x${rounds}, 1 outstanding: ${(rounds / serialSeconds).toFixed(0)} calls/s, median ${percentile(times, 0.5).toFixed(3)} ms, p99 ${percentile(times, 0.99).toFixed(3)} ms; ` +
        `16 outstanding: ${(rounds / parallelSeconds).toFixed(0)} calls/s`,
    );
    console.log(`send contexts: ${JSON.stringify(pool)}; transport: ${JSON.stringify(connection!.transport.metrics)}`);
    expect(pool.allocations).toBeLessThanOrEqual(server.options.sendContextsMax);
    expect(pool.released['between-rpcs'] + pool.released['self-enqueue'] + pool.released['empty-free-list']).toBeGreaterThan(rounds);
  });

  it('tears the connection down with nothing left: contexts, registrations, native handles', async () => {
    const [connection] = server.connections;
    await client.close();
    for (let waited = 0; server.connections.size > 0 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.connections.size).toBe(0);
    expect(connection!.transport.sendContexts.metrics.inUse).toBe(0);
    expect(connection!.openRegistrations).toBe(0);
    // The closed connection's final counts stay in the server-wide counters.
    const counters = server.counters();
    expect(counters.closed).toBe(1);
    expect(counters.calls).toBe(connection!.transport.metrics.calls);
    expect(counters.calls).toBeGreaterThanOrEqual(3);
    expect(counters.drains.teardown + counters.drains['between-rpcs']).toBeGreaterThan(0);
    await server.close();
    const live = Object.entries(liveObjects()).filter(([, count]) => count > 0);
    expect(live).toEqual([]);
  });
});
