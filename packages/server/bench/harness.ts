/**
 * Shared by the benchmark and the soak run: start the server CLI, run load
 * client processes against it, read its /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const LOAD_CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url));

export interface Server {
  child: ChildProcess;
  tcpPort: number;
  udpPort: number;
  metricsUrl: string;
  stop(): Promise<void>;
}

export interface LoadResult {
  calls: number;
  errors: number;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
  rssBytes: number;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startServer(args: string[]): Promise<Server> {
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const child = spawn(process.execPath, [CLI, '--tcp-port', String(tcpPort), '--udp-port', String(udpPort), '--metrics-port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    // The start banner on stderr (JSON logs on stdout may be filtered by --log-level).
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /metrics\s+(http:\S+)/.exec(output);
      if (match !== null) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  child.stderr!.pipe(process.stderr);
  return {
    child,
    tcpPort,
    udpPort,
    metricsUrl,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Runs `processes` load clients side by side and sums them (p50/p99: the worst client's). */
export async function runLoad(transport: 'tcp' | 'udp', port: number, processes: number, connections: number, depth: number, durationMs: number): Promise<LoadResult> {
  const runs = Array.from({ length: processes }, () => {
    const child = spawn(process.execPath, [LOAD_CLIENT, transport, String(port), String(connections), String(depth), String(durationMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return new Promise<LoadResult>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(output) as LoadResult) : reject(new Error(`load client exited ${code}`)))));
  });
  const results = await Promise.all(runs);
  return {
    calls: results.reduce((sum, result) => sum + result.calls, 0),
    errors: results.reduce((sum, result) => sum + result.errors, 0),
    elapsedMs: Math.max(...results.map((result) => result.elapsedMs)),
    p50Ms: Math.max(...results.map((result) => result.p50Ms)),
    p99Ms: Math.max(...results.map((result) => result.p99Ms)),
    rssBytes: 0,
  };
}

/** Sum of one metric over all its series in the server's /metrics. */
export async function metricSum(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
