/**
 * pnpm soak: RSS of the server over a long run (default 10 minutes) under
 * steady NULL + ECHO load over TCP and UDP, sampled from /metrics
 * (process_resident_memory_bytes summed over the server processes) every
 * interval. Prints each sample and the last/first ratio after warm-up: flat
 * means within 1.1x.
 */
import { metricSum, runLoad, startServer } from './harness.ts';

const DURATION_MS = Number(process.env.SOAK_DURATION_MS ?? 600_000);
const INTERVAL_MS = Number(process.env.SOAK_INTERVAL_MS ?? 30_000);
const MIB = 1024 * 1024;

const server = await startServer(['--processes', '2', '--threads', '1', '--log-level', 'warn']);
const samples: { atS: number; rssMiB: number; calls: number }[] = [];
const started = Date.now();
try {
  while (Date.now() - started < DURATION_MS) {
    const [tcp, udp] = await Promise.all([runLoad('tcp', server.tcpPort, 1, 4, 4, INTERVAL_MS), runLoad('udp', server.udpPort, 1, 2, 2, INTERVAL_MS)]);
    const rssMiB = (await metricSum(server.metricsUrl, 'process_resident_memory_bytes')) / MIB;
    samples.push({ atS: Math.round((Date.now() - started) / 1000), rssMiB, calls: tcp.calls + udp.calls });
    console.log(`t=${samples.at(-1)!.atS}s rss=${rssMiB.toFixed(1)} MiB calls=${tcp.calls + udp.calls} errors=${tcp.errors + udp.errors}`);
  }
} finally {
  await server.stop();
}
// The first sample includes warm-up (JIT, pools filling); compare from the second on.
const baseline = samples[1] ?? samples[0]!;
const last = samples.at(-1)!;
console.log(`soak: ${samples.length} samples over ${last.atS} s; RSS ${baseline.rssMiB.toFixed(1)} -> ${last.rssMiB.toFixed(1)} MiB = ${(last.rssMiB / baseline.rssMiB).toFixed(2)}x (flat: <= 1.10x)`);
