/**
 * Memory (inside the lab: `pnpm --filter @roce-rpc/svcrdma bench`): the
 * server's RSS and registered memory after BENCH_MEMORY_CALLS NULL RPCs
 * (default 1 000 000) against their values after the first 10 000, the
 * baseline of the same run; the issue's target is within 5%. One connection,
 * BENCH_MEMORY_OUTSTANDING calls outstanding (default 64, the client's slots); the server in its
 * own process, on the main thread (SvcRdmaServer, the default) or with
 * BENCH_MEMORY_THREADS worker threads (SvcRdmaThreadedServer). 1 M calls took
 * 36 minutes in the lab on a quiet host (465 calls/s); a run that has not
 * reached the count after BENCH_MEMORY_MINUTES (default 45) stops there and
 * says how many calls it reached.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { xdrVoid } from '@roce-rpc/xdr';
import { RdmaRpcClient } from '../dist/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PORT = 20058;
const BASELINE_CALLS = 10_000;
const targetCalls = Number(process.env.BENCH_MEMORY_CALLS ?? 1_000_000);
const limitMs = Number(process.env.BENCH_MEMORY_MINUTES ?? 45) * 60_000;
const outstanding = Number(process.env.BENCH_MEMORY_OUTSTANDING ?? 64);
const threads = Number(process.env.BENCH_MEMORY_THREADS ?? 0);
/** A sample every minute along the way, so growth shows as a trend and not only as two points. */
const SAMPLE_EVERY_MS = 60_000;

const serverArguments = [new URL('./memory_server.ts', import.meta.url).pathname, String(PORT), ...(threads > 0 ? [String(threads)] : [])];
const server = spawn(process.execPath, ['--expose-gc', ...serverArguments], { stdio: ['pipe', 'pipe', 'inherit'] });
const replies = createInterface({ input: server.stdout! })[Symbol.asyncIterator]();
const ready = await replies.next();
if (ready.value !== 'ready') throw new Error(`server did not start: ${String(ready.value)}`);

interface Sample {
  rssKiB: number;
  heapUsedKiB: number;
  externalKiB: number;
  pinnedKiB: number;
  calls: number;
  sendContexts: number;
  registrations: number;
  memoryRegions: number;
}

async function sample(): Promise<Sample> {
  server.stdin!.write('sample\n');
  const line = await replies.next();
  return JSON.parse(String(line.value)) as Sample;
}

const client = await RdmaRpcClient.connect({ address, port: PORT, slots: Math.max(32, outstanding) });
console.log(`memory bench: ${targetCalls} NULL calls, ${outstanding} outstanding, server ${threads > 0 ? `on ${threads} worker threads` : 'on the main thread'}`);
let issued = 0;
const started = performance.now();
async function callUpTo(count: number, deadline: number): Promise<void> {
  const lane = async () => {
    while (issued < count && performance.now() < deadline) {
      issued++;
      await client.call(100003, 4, 0, xdrVoid, undefined, xdrVoid);
    }
  };
  await Promise.all(Array.from({ length: outstanding }, lane));
}

const deadline = started + limitMs;
await callUpTo(BASELINE_CALLS, Number.POSITIVE_INFINITY);
const baselineSeconds = (performance.now() - started) / 1000;
const baseline = await sample();
console.log(`after ${baseline.calls} calls (${baselineSeconds.toFixed(0)} s, ${(BASELINE_CALLS / baselineSeconds).toFixed(0)} calls/s): ${JSON.stringify(baseline)}`);
let last = baseline;
while (issued < targetCalls && performance.now() < deadline) {
  await callUpTo(targetCalls, Math.min(deadline, performance.now() + SAMPLE_EVERY_MS));
  last = await sample();
  console.log(`after ${last.calls} calls (${((performance.now() - started) / 1000).toFixed(0)} s): ${JSON.stringify(last)}`);
}
await client.close();
server.stdin!.end();
await once(server, 'exit');
const ratio = (field: 'rssKiB' | 'pinnedKiB') => last[field] / baseline[field];
const within = (value: number) => (Number.isNaN(value) ? 'no baseline' : Math.abs(value - 1) <= 0.05 ? 'within 5%' : 'NOT within 5%');
const seconds = (performance.now() - started) / 1000;
console.log(
  `memory after ${last.calls} NULL calls (${seconds.toFixed(0)} s, ${(last.calls / seconds).toFixed(0)} calls/s) vs after ${baseline.calls}${last.calls < targetCalls ? ` (stopped at the ${limitMs / 60_000}-minute limit before ${targetCalls})` : ''}: ` +
    `RSS ${last.rssKiB} / ${baseline.rssKiB} KiB = ${ratio('rssKiB').toFixed(3)}x (${within(ratio('rssKiB'))}); ` +
    `registered (VmPin) ${last.pinnedKiB} / ${baseline.pinnedKiB} KiB = ${ratio('pinnedKiB').toFixed(3)}x (${within(ratio('pinnedKiB'))}); ` +
    `send contexts ${last.sendContexts} / ${baseline.sendContexts}, memory regions ${last.memoryRegions} / ${baseline.memoryRegions}`,
);
