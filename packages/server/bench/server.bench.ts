/**
 * pnpm bench: NULL calls/s and latency over loopback with 1 and 2 server
 * processes, over ONC RPC/TCP and RxRPC/UDP, and the 2-vs-1 ratio per
 * transport (target >= 1.7 on a 2-core machine).
 *
 * The baseline (1 process) is measured in the same run, interleaved with
 * the 2-process server: both servers run side by side and each round loads
 * one, then the other (the order alternating), so that a change in the
 * machine's other load hits both alike. Medians over the rounds.
 *
 * Load comes from one C process (bench/load-generator.c, compiled now), so
 * that the client takes as little as possible of the two cores the server
 * processes need; its CPU share is printed, with the server's CPU per call
 * and how the CPU split over the server processes.
 */
import os from 'node:os';
import { buildLoadGenerator, median, runLoad, startServer, type LoadResult, type LoadShape, type Server, type Transport } from './harness.ts';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP_MS = 2_000;
/** TCP: cluster deals connections round-robin, so 16 split 8/8. UDP: 32 source ports spread by SO_REUSEPORT's hash. */
const SHAPES: Record<Transport, Omit<LoadShape, 'durationMs'>> = {
  tcp: { connections: 16, depth: 16 },
  udp: { connections: 32, depth: 4 },
};

interface Configuration {
  name: string;
  transport: Transport;
  serverArgs: string[];
}

/**
 * UDP twice: with one RxRPC channel thread per process (the default: handlers off the
 * main thread, two threads per process) and with none (channels and handlers on the
 * main thread: one thread per process, so two processes have two cores to gain).
 */
const CONFIGURATIONS: Configuration[] = [
  { name: 'tcp', transport: 'tcp', serverArgs: ['--transports', 'tcp'] },
  { name: 'udp', transport: 'udp', serverArgs: ['--transports', 'udp', '--rx-threads', '1'] },
  { name: 'udp/rx0', transport: 'udp', serverArgs: ['--transports', 'udp', '--rx-threads', '0'] },
];
const PROCESS_COUNTS = [1, 2] as const;
const CORES = os.availableParallelism();

interface Run {
  callsPerSecond: number;
  result: LoadResult;
}

async function measure(generator: string, { transport, serverArgs }: Configuration): Promise<Map<number, Run[]>> {
  const servers = new Map<number, Server>();
  for (const processes of PROCESS_COUNTS) servers.set(processes, await startServer(['--processes', String(processes), '--threads', '1', '--log-level', 'warn', ...serverArgs]));
  const runs = new Map<number, Run[]>(PROCESS_COUNTS.map((processes) => [processes, []]));
  try {
    for (const server of servers.values()) await runLoad(generator, server, transport, { ...SHAPES[transport], durationMs: WARMUP_MS });
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? PROCESS_COUNTS : [...PROCESS_COUNTS].reverse();
      for (const processes of order) {
        const result = await runLoad(generator, servers.get(processes)!, transport, { ...SHAPES[transport], durationMs: DURATION_MS });
        runs.get(processes)!.push({ callsPerSecond: (result.calls / result.elapsedMs) * 1000, result });
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((server) => server.stop()));
  }
  return runs;
}

/** Cores each server process used, busiest first, leaving out the supervisor and the idle spare. */
function processCores(run: Run): number[] {
  const [, ...children] = [...run.result.serverCpuMs.values()];
  return children
    .map((ms) => ms / run.result.elapsedMs)
    .filter((cores) => cores >= 0.02)
    .sort((a, b) => b - a);
}

function describe(name: string, processes: number, runs: Run[]): string {
  const rates = runs.map((run) => run.callsPerSecond);
  const serverMs = runs.map((run) => [...run.result.serverCpuMs.values()].reduce((sum, ms) => sum + ms, 0));
  const perCallUs = median(runs.map((run, index) => (serverMs[index]! * 1000) / Math.max(1, run.result.calls)));
  const clientShare = median(runs.map((run) => run.result.clientCpuMs / run.result.elapsedMs / CORES));
  const split = processCores(runs[Math.floor(runs.length / 2)]!).map((cores) => cores.toFixed(2)).join('+');
  const errors = runs.reduce((sum, run) => sum + run.result.errors, 0);
  const retransmits = runs.reduce((sum, run) => sum + run.result.retransmits, 0);
  return [
    name.padEnd(9),
    String(processes).padStart(9),
    median(rates).toFixed(0).padStart(8),
    `${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}`.padStart(14),
    median(runs.map((run) => run.result.p50Ms)).toFixed(2).padStart(7),
    median(runs.map((run) => run.result.p99Ms)).toFixed(2).padStart(7),
    perCallUs.toFixed(1).padStart(10),
    `${(clientShare * 100).toFixed(1)}%`.padStart(10),
    split.padStart(12),
    `${errors}/${retransmits}`.padStart(8),
  ].join('  ');
}

const generator = buildLoadGenerator();
const loadBefore = os.loadavg()[0]!;
const results = new Map<string, Map<number, Run[]>>();
/** BENCH_ONLY=tcp,udp/rx0 runs a subset. */
const only = process.env.BENCH_ONLY?.split(',');
for (const configuration of CONFIGURATIONS.filter(({ name }) => only?.includes(name) ?? true)) results.set(configuration.name, await measure(generator, configuration));

console.log(
  `roce-rpc server bench: NULL over loopback, one C load generator (tcp ${SHAPES.tcp.connections} connections x ${SHAPES.tcp.depth} pipelined, udp ${SHAPES.udp.connections} RxRPC connections x ${SHAPES.udp.depth} channels), ${ROUNDS} interleaved rounds of ${DURATION_MS / 1000} s, ${CORES} cores, load average ${loadBefore.toFixed(1)} -> ${os.loadavg()[0]!.toFixed(1)}`,
);
console.log('server     processes  calls/s  (min–max/s)     p50 ms  p99 ms  server µs/call  client CPU  cores/proc  err/rtx');
for (const [name, byProcesses] of results) {
  for (const [processes, runs] of byProcesses) console.log(describe(name, processes, runs));
}
for (const [name, byProcesses] of results) {
  const [one, two] = PROCESS_COUNTS.map((processes) => byProcesses.get(processes)!);
  const ratio = median(two!.map((run) => run.callsPerSecond)) / median(one!.map((run) => run.callsPerSecond));
  const perRound = median(two!.map((run, round) => run.callsPerSecond / one![round]!.callsPerSecond));
  console.log(`${name}: 2 processes / 1 process = ${ratio.toFixed(2)}x (median of the per-round ratios ${perRound.toFixed(2)}x; target >= 1.7x)`);
}
