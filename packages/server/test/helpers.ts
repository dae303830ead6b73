/**
 * Starts the real CLI in a child process (the supervisor and its server
 * processes) and reads its JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
export const FIXTURE_SERVICE = fileURLToPath(new URL('./fixtures/fixture-service.mjs', import.meta.url));

export interface LogLine {
  msg: string;
  [field: string]: unknown;
}

export interface RunningServer {
  child: ChildProcess;
  lines: LogLine[];
  stderr: () => string;
  listening: LogLine;
  tcpPort: number;
  udpPort: number;
  metricsUrl: string;
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exit: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** A port free for both TCP and UDP on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; lines: LogLine[]; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let pending = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const part of parts) if (part.startsWith('{')) lines.push(JSON.parse(part) as LogLine);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, stderr: () => stderr, exit };
}

/**
 * Ports picked by freePort() can be taken by another process before the server binds them (other
 * suites run servers too); a start refused with ERR_SERVER_ADDRESS_IN_USE is retried on fresh ports.
 */
const START_ATTEMPTS_MAX = 3;

export async function startServer(args: string[], env: NodeJS.ProcessEnv = {}, startTimeoutMs = 60_000): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnFreePorts(args, env, startTimeoutMs);
    } catch (error) {
      const portTaken = error instanceof Error && error.message.includes('ERR_SERVER_ADDRESS_IN_USE');
      if (!portTaken || attempt === START_ATTEMPTS_MAX) throw error;
    }
  }
}

async function startServerOnFreePorts(args: string[], env: NodeJS.ProcessEnv, startTimeoutMs: number): Promise<RunningServer> {
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const run = runCli(['--tcp-port', String(tcpPort), '--udp-port', String(udpPort), '--metrics-port', '0', ...args], env);
  const waitFor = async (predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = run.lines.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms; stderr: ${run.stderr()}; log: ${run.lines.map((line) => line.msg).join(', ')}`);
      if (run.child.exitCode !== null) throw new Error(`server exited ${run.child.exitCode}: ${run.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const listening = await waitFor((line) => line.msg === 'listening', startTimeoutMs);
  return {
    ...run,
    listening,
    tcpPort,
    udpPort,
    metricsUrl: listening.metrics as string,
    waitFor,
    stop: async () => {
      if (run.child.exitCode === null) run.child.kill('SIGTERM');
      return run.exit;
    },
  };
}

/** The value of one series in Prometheus text format, or 0 when absent. */
export async function scrape(metricsUrl: string, series: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((each) => each.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Scrapes `series` until it equals `expected` (or `timeoutMs` passes); returns the last value. */
export async function scrapeUntil(metricsUrl: string, series: string, expected: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let value = await scrape(metricsUrl, series);
  while (value !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await scrape(metricsUrl, series);
  }
  return value;
}
