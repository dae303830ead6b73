/**
 * pnpm soak: RSS of the server over a long run (default 10 minutes) under
 * steady NULL load over TCP and UDP at once (the C load generator, one per
 * transport, throttled by its depth rather than flat out), sampled from
 * /metrics (process_resident_memory_bytes summed over the server processes)
 * every interval. Prints each sample and compares the first and last
 * thirds of the run after warm-up: flat means within 1.1x.
 */
import { buildLoadGenerator, median, metricSum, runLoad, startServer } from './harness.ts';

const DURATION_MS = Number(process.env.SOAK_DURATION_MS ?? 600_000);
const INTERVAL_MS = Number(process.env.SOAK_INTERVAL_MS ?? 30_000);
const MIB = 1024 * 1024;
/** Flat: the last sample within this factor of the first one after warm-up. */
const FLAT_RATIO_MAX = 1.1;

const generator = buildLoadGenerator();
const server = await startServer(['--processes', '2', '--threads', '1']);
const samples: { atS: number; rssMiB: number; calls: number }[] = [];
const started = Date.now();
let errors = 0;
try {
  while (Date.now() - started < DURATION_MS) {
    const [tcp, udp] = await Promise.all([
      runLoad(generator, server, 'tcp', { connections: 4, depth: 4, durationMs: INTERVAL_MS }),
      runLoad(generator, server, 'udp', { connections: 8, depth: 4, durationMs: INTERVAL_MS }),
    ]);
    errors += tcp.errors + udp.errors;
    const rssMiB = (await metricSum(server.metricsUrl, 'process_resident_memory_bytes')) / MIB;
    // Each interval's generators open new connections; RxRPC keeps an idle one until it is reaped (10 min).
    const connections = await metricSum(server.metricsUrl, 'rocerpc_connections');
    samples.push({ atS: Math.round((Date.now() - started) / 1000), rssMiB, calls: tcp.calls + udp.calls });
    console.log(`t=${samples.at(-1)!.atS}s rss=${rssMiB.toFixed(1)} MiB calls=${tcp.calls + udp.calls} (tcp ${tcp.calls}, udp ${udp.calls}) errors=${tcp.errors + udp.errors} connections=${connections}`);
  }
} finally {
  await server.stop();
}
// The first sample includes warm-up (JIT, pools filling); the rest rise and fall with garbage collection
// (a sawtooth of ~100 MiB), so the verdict compares the medians of the first and last thirds, not two samples.
const settled = samples.slice(1);
const third = Math.max(1, Math.floor(settled.length / 3));
const early = median(settled.slice(0, third).map((sample) => sample.rssMiB));
const late = median(settled.slice(-third).map((sample) => sample.rssMiB));
const ratio = late / early;
const calls = samples.reduce((sum, sample) => sum + sample.calls, 0);
const rss = settled.map((sample) => sample.rssMiB);
console.log(
  `soak: ${samples.length} samples over ${samples.at(-1)!.atS} s, ${calls} calls, ${errors} errors; RSS after warm-up ${Math.min(...rss).toFixed(0)}–${Math.max(...rss).toFixed(0)} MiB; median of the first third ${early.toFixed(0)} MiB, of the last third ${late.toFixed(0)} MiB = ${ratio.toFixed(2)}x (flat: <= ${FLAT_RATIO_MAX}x): ${ratio <= FLAT_RATIO_MAX ? 'flat' : 'GROWING'}`,
);
