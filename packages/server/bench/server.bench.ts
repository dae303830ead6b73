/**
 * pnpm bench: NULL calls/s and p99 latency over loopback with 1 and 2
 * server processes, over ONC RPC/TCP and RxRPC/UDP, one run each, and the
 * 2-vs-1 ratio per transport (target >= 1.7 on a 2-core machine). The
 * baseline is the 1-process figure measured in the same run. Load comes from
 * two client processes with several connections each, so the clients can
 * keep both server processes busy.
 */
import os from 'node:os';
import { runLoad, startServer } from './harness.ts';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);
const WARMUP_MS = 1_000;
const CLIENT_PROCESSES = 2;
const CONNECTIONS_PER_CLIENT = 4;
const DEPTH = 8;

interface Row {
  transport: 'tcp' | 'udp';
  processes: number;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

async function measure(transport: 'tcp' | 'udp', processes: number): Promise<Row> {
  const server = await startServer(['--processes', String(processes), '--threads', '1', '--rx-threads', '1', '--log-level', 'warn', '--transports', transport]);
  try {
    const port = transport === 'tcp' ? server.tcpPort : server.udpPort;
    await runLoad(transport, port, CLIENT_PROCESSES, CONNECTIONS_PER_CLIENT, DEPTH, WARMUP_MS);
    const result = await runLoad(transport, port, CLIENT_PROCESSES, CONNECTIONS_PER_CLIENT, DEPTH, DURATION_MS);
    return { transport, processes, callsPerSecond: (result.calls / result.elapsedMs) * 1000, p50Ms: result.p50Ms, p99Ms: result.p99Ms, errors: result.errors };
  } finally {
    await server.stop();
  }
}

const rows: Row[] = [];
for (const transport of ['tcp', 'udp'] as const) {
  for (const processes of [1, 2]) rows.push(await measure(transport, processes));
}
console.log(`roce-rpc server bench: NULL over loopback, ${CLIENT_PROCESSES} client processes x ${CONNECTIONS_PER_CLIENT} connections x depth ${DEPTH}, ${DURATION_MS / 1000} s per run, ${os.availableParallelism()} cores, load ${os.loadavg()[0]!.toFixed(1)}`);
console.log('transport  processes  calls/s   p50 ms  p99 ms  errors');
for (const row of rows) {
  console.log(`${row.transport.padEnd(9)}  ${String(row.processes).padStart(9)}  ${row.callsPerSecond.toFixed(0).padStart(7)}  ${row.p50Ms.toFixed(2).padStart(6)}  ${row.p99Ms.toFixed(2).padStart(6)}  ${row.errors}`);
}
for (const transport of ['tcp', 'udp'] as const) {
  const [one, two] = [1, 2].map((processes) => rows.find((row) => row.transport === transport && row.processes === processes)!);
  const ratio = two!.callsPerSecond / one!.callsPerSecond;
  console.log(`${transport}: 2 processes / 1 process = ${ratio.toFixed(2)}x (target >= 1.7x)`);
}
