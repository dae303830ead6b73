/**
 * Shared by the benchmark and the soak run: start the server CLI, build and
 * run the C load generator (bench/load-generator.c) against it, measure the
 * CPU the server processes and the generator used, read /metrics.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_PROGRAM, DEMO_RX_SERVICE_ID, DEMO_VERSION } from '../dist/service/demo-service.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const LOAD_GENERATOR_SOURCE = fileURLToPath(new URL('./load-generator.c', import.meta.url));
/** /proc/<pid>/stat times are in clock ticks: USER_HZ, 100 on Linux. */
const MS_PER_CLOCK_TICK = 10;

export type Transport = 'tcp' | 'udp';

export interface Server {
  child: ChildProcess;
  tcpPort: number;
  udpPort: number;
  metricsUrl: string;
  stop(): Promise<void>;
}

export interface LoadShape {
  /** TCP connections, or UDP sockets each with its own RxRPC connection. */
  connections: number;
  /** Calls outstanding per connection (UDP: per socket, on ceil(depth / 4) RxRPC connections of 4 channels). */
  depth: number;
  durationMs: number;
  /** TCP: a connection writes new calls once this many of its calls are answered (1: a call per reply). */
  batch?: number;
  /** Microseconds the generator waits after a wake-up that found replies, so that the next one finds more (0: none). */
  waitUs?: number;
}

export interface LoadResult {
  calls: number;
  errors: number;
  retransmits: number;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU the load generator itself used (user + system, which includes the loopback delivery its sends run). */
  clientCpuMs: number;
  /** The generator's read/write, recvmmsg/sendmmsg calls and its epoll wake-ups that found work. */
  ioCalls: number;
  wakeups: number;
  /** CPU of each server process over the run (supervisor first, then its children). */
  serverCpuMs: Map<number, number>;
  /** Times the server processes' threads went to sleep (voluntary) or were preempted, over the run, all processes. */
  serverSleeps: number;
  serverPreemptions: number;
  /** CPU the whole machine used over the run, all cores (from /proc/stat: everything but idle and iowait). */
  machineCpuMs: number;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Compiles the load generator with the system cc (build-essential) into a fresh temporary directory. */
export function buildLoadGenerator(): string {
  const binary = path.join(mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-bench-')), 'load-generator');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', binary, LOAD_GENERATOR_SOURCE], { stdio: 'inherit' });
  return binary;
}

export async function startServer(args: string[]): Promise<Server> {
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const child = spawn(process.execPath, [CLI, '--tcp-port', String(tcpPort), '--udp-port', String(udpPort), '--metrics-port', '0', '--log-level', 'info', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The warm spare boots after the serving processes (seconds of CPU on a loaded machine): measuring before it is
  // ready would count its boot as server CPU and let it take CPU from the processes under test. Info logs nothing per
  // call, and stdout is read to the end so that the server never blocks on a full pipe.
  const spareReady = new Promise<void>((resolve, reject) => {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      if (pending.includes('"msg":"warm spare ready"')) resolve();
      pending = pending.slice(pending.lastIndexOf('\n') + 1);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    // The start banner is on stderr.
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /metrics\s+(http:\S+)/.exec(output);
      if (match !== null) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  child.stderr!.pipe(process.stderr);
  await spareReady;
  await quiet(child.pid!);
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

/** Idle: the server's processes together use less than this share of a core over a QUIET_WINDOW_MS window. */
const QUIET_CORES_MAX = 0.05;
const QUIET_WINDOW_MS = 500;
/** A spare that keeps busy this long after "ready" is measured anyway (the bench then prints its CPU in the server's). */
const QUIET_WAIT_MAX_MS = 30_000;

/** Waits until the server's processes are idle: the spare finishes its boot (JIT, threads) after it reports ready. */
async function quiet(supervisor: number): Promise<void> {
  const total = (): number => serverPidsOf(supervisor).reduce((sum, pid) => sum + cpuMs(pid), 0);
  for (const deadline = Date.now() + QUIET_WAIT_MAX_MS; Date.now() < deadline; ) {
    const before = total();
    await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS));
    if (total() - before <= QUIET_CORES_MAX * QUIET_WINDOW_MS) return;
  }
}

/** The supervisor and the processes it forked (server processes and the warm spare). */
function serverPids(server: Server): number[] {
  return serverPidsOf(server.child.pid!);
}

function serverPidsOf(supervisor: number): number[] {
  const children = readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim();
  return [supervisor, ...(children === '' ? [] : children.split(' ').map(Number))];
}

/** User + system CPU of a process, all its threads, in ms (0 once it has gone). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * MS_PER_CLOCK_TICK;
  } catch {
    return 0;
  }
}

/** Voluntary and involuntary context switches of a process, all its threads ([0, 0] once it has gone). */
function contextSwitches(pid: number): [number, number] {
  let voluntary = 0;
  let involuntary = 0;
  try {
    for (const thread of readdirSync(`/proc/${pid}/task`)) {
      const status = readFileSync(`/proc/${pid}/task/${thread}/status`, 'utf8');
      voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
  } catch {
    // The process (or a thread) went away while being read.
  }
  return [voluntary, involuntary];
}

function sumSwitches(pids: number[]): [number, number] {
  return pids.map(contextSwitches).reduce(([v, i], [dv, di]) => [v + dv, i + di], [0, 0]);
}

/** Busy CPU of the whole machine in ms, all cores: /proc/stat's first line minus idle and iowait. */
function machineCpuMs(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const busy = ticks.slice(0, 8).reduce((sum, value, index) => (index === 3 || index === 4 ? sum : sum + value), 0);
  return busy * MS_PER_CLOCK_TICK;
}

/** Runs one load generator against the server's `transport` port and measures both sides' CPU. */
export async function runLoad(generator: string, server: Server, transport: Transport, shape: LoadShape): Promise<LoadResult> {
  const target = transport === 'tcp' ? [String(server.tcpPort), String(shape.connections), String(shape.depth), String(shape.durationMs), String(DEMO_PROGRAM), String(DEMO_VERSION)] : [String(server.udpPort), String(shape.connections), String(shape.depth), String(shape.durationMs), String(DEMO_RX_SERVICE_ID)];
  const flags = ['-b', String(shape.batch ?? 1), '-w', String(shape.waitUs ?? 0)];
  const pids = serverPids(server);
  const before = pids.map(cpuMs);
  const machineBefore = machineCpuMs();
  const switchesBefore = sumSwitches(pids);
  const child = spawn(generator, [...flags, transport, '127.0.0.1', ...target], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // 'close', not 'exit': the exit can come before the last of stdout is read.
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const after = pids.map(cpuMs);
  const machineAfter = machineCpuMs();
  const switchesAfter = sumSwitches(pids);
  if (code !== 0) throw new Error(`load generator exited ${code}`);
  const result = JSON.parse(output) as Omit<LoadResult, 'serverCpuMs' | 'clientCpuMs' | 'machineCpuMs'> & { cpuMs: number };
  return {
    calls: result.calls,
    errors: result.errors,
    retransmits: result.retransmits,
    elapsedMs: result.elapsedMs,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    clientCpuMs: result.cpuMs,
    ioCalls: result.ioCalls,
    wakeups: result.wakeups,
    serverCpuMs: new Map(pids.map((pid, index) => [pid, after[index]! - before[index]!])),
    machineCpuMs: machineAfter - machineBefore,
    serverSleeps: switchesAfter[0] - switchesBefore[0],
    serverPreemptions: switchesAfter[1] - switchesBefore[1],
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

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
