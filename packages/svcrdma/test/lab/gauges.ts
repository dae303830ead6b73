/**
 * The leak gauges the fault tests compare with their baseline: the server's
 * connections, and every native verbs object of this process (registrations
 * are MemoryRegions), plus — for each connection a test saw come and go — its
 * send contexts in use and its open registrations, which must both be 0.
 *
 * The baseline is taken with no connection open but after one has been
 * served: the server opens its device and protection domain at the first
 * connection and keeps them.
 */
import { liveObjects } from '@roce-rpc/verbs';
import { xdrUint, xdrVariableOpaque, xdrVoid } from '@roce-rpc/xdr';
import { expect } from 'vitest';
import { RdmaRpcClient, type SvcRdmaServer } from '../../dist/index.js';
import { FAULT_PROGRAM, FAULT_VERSION, Procedure } from './fault_service.ts';

export type ServerConnection = SvcRdmaServer['connections'] extends Set<infer Connection> ? Connection : never;

const SETTLE_POLL_MS = 10;

export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const deadline = performance.now() + timeoutMs; !condition() && performance.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
  return condition();
}

/** Serves one client once and waits until it is gone; returns the live verbs objects then. */
export async function warmBaseline(server: SvcRdmaServer, address: string, port: number): Promise<Record<string, number>> {
  const client = await RdmaRpcClient.connect({ address, port });
  await client.call(FAULT_PROGRAM, FAULT_VERSION, Procedure.NULL, xdrVoid, undefined, xdrVoid);
  await client.close();
  expect(await waitFor(() => server.connections.size === 0, 10_000)).toBe(true);
  return liveObjects();
}

/** Notes every connection the server holds, every `intervalMs`, until stop(). */
export function watchConnections(server: SvcRdmaServer, intervalMs = 2): { seen: Set<ServerConnection>; stop(): void } {
  const seen = new Set<ServerConnection>();
  const note = () => {
    for (const connection of server.connections) seen.add(connection);
  };
  const timer = setInterval(note, intervalMs);
  note();
  return { seen, stop: () => clearInterval(timer) };
}

/** Every connection gone, each seen one left nothing in use, and the process holds exactly the baseline's verbs objects. */
export async function expectBackToBaseline(server: SvcRdmaServer, seen: Iterable<ServerConnection>, baseline: Record<string, number>, settleMs = 30_000): Promise<void> {
  expect(await waitFor(() => server.connections.size === 0, settleMs)).toBe(true);
  for (const connection of seen) {
    expect(connection.transport.sendContexts.metrics.inUse).toBe(0);
    expect(connection.openRegistrations).toBe(0);
  }
  expect(liveObjects()).toEqual(baseline);
}

/** Between a steady client's rounds: it keeps calling without taking the emulated CPUs from the faults under test. */
const STEADY_PAUSE_MS = 5;

/**
 * A client calling — NULL, then a 2 000-byte READ whose bytes it checks, then
 * a short pause — from its own async loop; counts calls and keeps every error.
 */
export async function startSteadyClient(address: string, port: number, expected: Buffer): Promise<{ calls(): number; stop(): Promise<unknown[]> }> {
  const client = await RdmaRpcClient.connect({ address, port });
  let calls = 0;
  let running = true;
  const errors: unknown[] = [];
  const loop = (async () => {
    while (running) {
      try {
        await client.call(FAULT_PROGRAM, FAULT_VERSION, Procedure.NULL, xdrVoid, undefined, xdrVoid);
        const data = await client.call(FAULT_PROGRAM, FAULT_VERSION, Procedure.READ, xdrUint, expected.length, xdrVariableOpaque(expected.length));
        if (!Buffer.from(data).equals(expected)) errors.push(new Error('READ returned other bytes'));
        calls += 2;
      } catch (error) {
        errors.push(error);
      }
      await new Promise((resolve) => setTimeout(resolve, STEADY_PAUSE_MS));
    }
  })();
  return {
    calls: () => calls,
    async stop() {
      running = false;
      await loop;
      await client.close();
      return errors;
    },
  };
}
