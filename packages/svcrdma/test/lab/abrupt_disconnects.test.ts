/**
 * Inside the rxe lab: peers vanish in a row (300 in the suite; 1 000, as the
 * issue asks, with SVCRDMA_ABRUPT_ROUNDS=1000) — mid-RPC, mid-Write-chunk and
 * mid-Read-chunk, their QPs and ids destroyed without a disconnect — and whole processes are
 * SIGKILLed with a call in service on each of their connections, while two
 * clients of the same server keep calling without a single error. Afterwards
 * every gauge is back at its baseline (gauges.ts): connections, send contexts
 * in use, registrations, native verbs objects.
 *
 * The peers live in child processes (`vanishing_peers.ts`), two of them: one
 * per emulated CPU beside the server's event loop; more only contend.
 * SVCRDMA_ABRUPT_MOMENTS (a comma list) picks fewer moments.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SvcRdmaServer } from '../../dist/index.js';
import { faultDispatcher, pattern } from './fault_service.ts';
import { expectBackToBaseline, startSteadyClient, waitFor, warmBaseline, watchConnections } from './gauges.ts';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PORT = 20055;
/**
 * Peers that vanish one after another, spread over the child processes. The issue asks for 1 000
 * (SVCRDMA_ABRUPT_ROUNDS=1000): on this shared 2-core machine the guest managed 1.3-3.4 per
 * second with the host's load (1 000 in 295 s at best), so the suite runs 300 (95 s measured).
 */
const ABRUPT_ROUNDS = Number(process.env.SVCRDMA_ABRUPT_ROUNDS ?? 300);
const MOMENTS = process.env.SVCRDMA_ABRUPT_MOMENTS ?? 'mid-rpc,mid-write-chunk,mid-read-chunk';
const VANISHING_CHILDREN = 2;
/** Processes SIGKILLed with HELD_PER_KILLED connections open and a call in service on each. */
const KILLED_CHILDREN = 2;
const HELD_PER_KILLED = 5;
/** Room for 1 000 peers at the slowest rate measured on the loaded host (1.3 per second). */
const TEST_TIMEOUT_MS = 15 * 60_000;
const SETTLE_WAIT_MS = 60_000;
const childScript = new URL('./vanishing_peers.ts', import.meta.url).pathname;

interface PhaseTimes {
  medianMs: number;
  p99Ms: number;
}
interface PeerReport {
  rounds: number;
  seconds: number;
  connect: PhaseTimes;
  call: PhaseTimes;
  close: PhaseTimes;
}

let server: SvcRdmaServer;
let baseline: Record<string, number>;
const serverErrors: unknown[] = [];

beforeAll(async () => {
  server = SvcRdmaServer.listen(faultDispatcher(), { address, port: PORT, credits: 8, onError: (error) => serverErrors.push(error) });
  baseline = await warmBaseline(server, address, PORT);
});

afterAll(async () => {
  await server?.close();
});

function spawnPeers(rounds: number, mode: 'vanish' | 'hold'): ChildProcess {
  return spawn(process.execPath, [childScript, String(PORT), String(rounds), mode, MOMENTS], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function reportOf(child: ChildProcess): Promise<PeerReport> {
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  if (code !== 0) throw new Error(`peer process ended with ${code ?? signal}: ${output}`);
  return JSON.parse(output.trim().split('\n').at(-1)!) as PeerReport;
}

/** Starts a holding child and SIGKILLs it once every one of its connections has a call in service. */
async function killMidRpc(): Promise<void> {
  const child = spawnPeers(HELD_PER_KILLED, 'hold');
  let output = '';
  for await (const chunk of child.stdout!) {
    output += (chunk as Buffer).toString();
    if (output.includes('holding')) break;
  }
  expect(output).toContain('holding');
  child.kill('SIGKILL');
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  expect(signal).toBe('SIGKILL');
}

function isHandshakeCutShort(error: unknown): boolean {
  return (error as { code?: string }).code === 'ECONNRESET' && String((error as Error).message).startsWith('accept: ');
}

describe('abrupt disconnects', () => {
  it(
    `keeps two clients served without an error through ${ABRUPT_ROUNDS} peers that vanish (${MOMENTS}) and ${KILLED_CHILDREN * HELD_PER_KILLED} connections of killed processes; every gauge returns to its baseline`,
    async () => {
      const watch = watchConnections(server);
      const steady = [await startSteadyClient(address, PORT, pattern(2000)), await startSteadyClient(address, PORT, pattern(2000))];
      const callsBefore = steady.map((client) => client.calls());
      const started = performance.now();
      const perChild = Math.ceil(ABRUPT_ROUNDS / VANISHING_CHILDREN);
      const vanishing = Array.from({ length: VANISHING_CHILDREN }, () => reportOf(spawnPeers(perChild, 'vanish')));
      for (let index = 0; index < KILLED_CHILDREN; index++) await killMidRpc();
      const reports = await Promise.all(vanishing);
      const churnSeconds = (performance.now() - started) / 1000;
      const callsDuringChurn = steady.map((client, index) => client.calls() - callsBefore[index]!);
      const errors = await Promise.all(steady.map((client) => client.stop()));
      const settled = await waitFor(() => server.connections.size === 0, SETTLE_WAIT_MS);
      const settleSeconds = (performance.now() - started) / 1000 - churnSeconds;
      watch.stop();
      const lostSends = [...watch.seen].reduce((sum, connection) => sum + connection.transport.sendContexts.metrics.lostSends, 0);
      const phase = (name: 'connect' | 'call' | 'close') => reports.map((report) => `${report[name].medianMs}/${report[name].p99Ms}`).join(', ');
      console.log(
        `${reports.reduce((sum, report) => sum + report.rounds, 0)} vanishing peers + ${KILLED_CHILDREN * HELD_PER_KILLED} killed in ${churnSeconds.toFixed(1)} s; ` +
          `per child median/p99 ms: connect ${phase('connect')}; call ${phase('call')}; close ${phase('close')}; ` +
          `teardowns settled ${settleSeconds.toFixed(1)} s later (${settled}); ${watch.seen.size} connections seen, lostSends ${lostSends}; ` +
          `steady clients: ${callsDuringChurn.join(' + ')} calls during the churn`,
      );
      expect(reports.reduce((sum, report) => sum + report.rounds, 0)).toBeGreaterThanOrEqual(ABRUPT_ROUNDS);
      expect(errors).toEqual([[], []]);
      // Served all along, not only before and after.
      for (const calls of callsDuringChurn) expect(calls).toBeGreaterThan(10);
      expect(server.pool.metrics.failures).toBe(0);
      // A peer that goes during the handshake fails its accept: reported, nothing else.
      const unexpected = serverErrors.filter((error) => !isHandshakeCutShort(error));
      console.log(`server errors: ${serverErrors.length - unexpected.length} accepts cut short by a vanishing peer, ${unexpected.length} other`);
      expect(unexpected).toEqual([]);
      await expectBackToBaseline(server, watch.seen, baseline);
    },
    TEST_TIMEOUT_MS,
  );
});
