/**
 * One load-generating process for the benchmark and the soak run: opens
 * `connections` clients to the demo service, keeps `depth` NULL calls
 * outstanding on each for `durationMs`, then prints one JSON line with the
 * call count and latency percentiles. Argv: transport port connections depth durationMs.
 */
import demo from '../dist/service/demo-service.js';
import { ServiceClient } from '../dist/index.js';

const [transport, port, connections, depth, durationMs] = process.argv.slice(2);
/** Latencies kept for percentiles: 2 M samples (16 MiB) is more than a 10 s run on loopback makes. */
const SAMPLES_MAX = 2_000_000;
const latencies = new Float64Array(SAMPLES_MAX);
let calls = 0;
let errors = 0;

const clients = await Promise.all(
  Array.from({ length: Number(connections) }, () => ServiceClient.connect(demo, { transport: transport as 'tcp' | 'udp', port: Number(port), timeoutMs: 10_000 })),
);
const deadline = performance.now() + Number(durationMs);

async function loop(client: ServiceClient<typeof demo>): Promise<void> {
  while (performance.now() < deadline) {
    const started = performance.now();
    try {
      await client.call('null', undefined);
      if (calls < SAMPLES_MAX) latencies[calls] = performance.now() - started;
      calls++;
    } catch {
      errors++;
    }
  }
}

const started = performance.now();
await Promise.all(clients.flatMap((client) => Array.from({ length: Number(depth) }, () => loop(client))));
const elapsedMs = performance.now() - started;
await Promise.all(clients.map((client) => client.close()));
const sorted = latencies.subarray(0, Math.min(calls, SAMPLES_MAX)).sort();
const percentile = (fraction: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
process.stdout.write(`${JSON.stringify({ calls, errors, elapsedMs, p50Ms: percentile(0.5), p99Ms: percentile(0.99), rssBytes: process.memoryUsage().rss })}\n`);
