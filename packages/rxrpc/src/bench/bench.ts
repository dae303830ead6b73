/**
 * `pnpm bench`: loopback benchmarks of our RxRPC against OpenAFS's rx
 * library, measured in the same run. Prints medians and ratios.
 *
 *   small calls/s, 1 and 4 concurrent:  server ours vs OpenAFS (same C client), with the
 *                                       channels on the routing thread (workers 0) over the
 *                                       native datagram transport and over node:dgram, and on
 *                                       --workers channel workers; server CPU time per call;
 *                                       client ours vs OpenAFS (same server: ours), our client
 *                                       on --client-transport (default native, batched sends) and
 *                                       the 4-concurrent row again on node:dgram
 *   1 MiB split Send / Receive MiB/s:   the same pairs, 1 call at a time and 4 concurrent calls
 *                                       (4 C client threads on one connection), and a raw UDP
 *                                       blast as the ceiling; --bulk-only runs only these rows
 *   RSS after 10 k and after N calls (N = --rss-calls, default 200 000; --rss-only skips
 *                                       everything else, e.g. for --rss-calls 1000000), both
 *                                       counted from the end of a --warmup-calls warm-up
 *
 * Before its first small-call sample every server, ours and OpenAFS's alike, gets
 * --warmup-calls untimed Null calls (default 60 000, by 4 C client threads): V8 compiles
 * the call path on each channel worker's isolate separately, from that worker's calls
 * only, and a cold 2-worker server reaches its steady rate only after about 50 000 calls.
 * Our client makes as many untimed calls before its own rows.
 *
 * Every row is the median of --repeats samples (default 3), ours and the
 * baseline taken in turns.
 *
 * The OpenAFS side is peers/rxbench.c, built here with rxgen from
 * interfaces/bench.xg and linked with libafsrpc (Debian libopenafs-dev).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { RxClient, type ClientConnection } from '../client.js';
import { BENCH_PACKAGE } from '../generated/bench.js';
import { RxServer } from '../server.js';

const run = promisify(execFile);
const [Null, , Send, Receive] = BENCH_PACKAGE.procedures;
const MIB = 1 << 20;

const { values: flags } = parseArgs({
  options: {
    'null-calls': { type: 'string', default: '5000' },
    /** Untimed Null calls each server gets before its small-call rows (see the top comment). */
    'warmup-calls': { type: 'string', default: '60000' },
    'bulk-count': { type: 'string', default: '8' },
    'rss-calls': { type: 'string', default: '200000' },
    /** Only the RSS rows: a 1 M-call run takes minutes on its own. */
    'rss-only': { type: 'boolean', default: false },
    /** Only the 1 MiB bulk rows (servers, clients, raw UDP). */
    'bulk-only': { type: 'boolean', default: false },
    /** Samples per row (its median is printed): more steady the rows on a loaded host. */
    repeats: { type: 'string', default: '3' },
    workers: { type: 'string', default: String(Math.max(1, Math.min(4, os.availableParallelism()))) },
    /** Our client's datagram transport (the servers run 'native'; a 'dgram' server and client are measured beside them). */
    'client-transport': { type: 'string', default: 'native' },
  },
});
const nullCalls = Number(flags['null-calls']);
const warmupCalls = Number(flags['warmup-calls']);
const bulkCount = Number(flags['bulk-count']);
const rssCalls = Number(flags['rss-calls']);
const REPEATS = Number(flags.repeats);

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function repeat(measure: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let index = 0; index < REPEATS; index++) samples.push(await measure());
  return median(samples);
}

/** Medians of two measurements taken in turns, so both see the same machine load. */
async function alternate(ours: () => Promise<number>, theirs: () => Promise<number>): Promise<[number, number]> {
  const oursSamples: number[] = [];
  const theirsSamples: number[] = [];
  for (let index = 0; index < REPEATS; index++) {
    oursSamples.push(await ours());
    theirsSamples.push(await theirs());
  }
  return [median(oursSamples), median(theirsSamples)];
}

/** CPU seconds (user + system) a process has used so far, from /proc (10 ms ticks). */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// ---------------------------------------------------------------------------
// The OpenAFS peer.
// ---------------------------------------------------------------------------

async function buildPeer(directory: string): Promise<string> {
  const script = fileURLToPath(new URL('../../peers/build.sh', import.meta.url));
  await run('sh', [script, directory], { timeout: 120_000 });
  return path.join(directory, 'rxbench');
}

async function startCServer(binary: string, port: number): Promise<ChildProcess> {
  const child = spawn(binary, ['server', String(port), '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return child;
}

async function cClient(binary: string, args: string[]): Promise<Record<string, number>> {
  const { stdout } = await run(binary, args, { timeout: 300_000 });
  return Object.fromEntries(stdout.trim().split(' ').map((pair) => pair.split('=')).map(([key, value]) => [key!, Number(value)]));
}

// ---------------------------------------------------------------------------
// Our client.
// ---------------------------------------------------------------------------

async function ourNullRate(connection: ClientConnection, calls: number, concurrency: number): Promise<number> {
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      for (let index = lane; index < calls; index += concurrency) await connection.invoke(Null!, {});
    }),
  );
  return calls / ((performance.now() - start) / 1000);
}

const streamChunk = new Uint8Array(64 * 1024).fill(0x5a);

async function ourBulkRate(connection: ClientConnection, direction: 'send' | 'receive', count: number): Promise<number> {
  const start = performance.now();
  for (let index = 0; index < count; index++) {
    if (direction === 'send') {
      const call = await connection.startSplit(Send!, { length: MIB });
      for (let sent = 0; sent < MIB; sent += streamChunk.byteLength) await call.write(streamChunk);
      const { received } = (await call.finish()) as { received: number };
      if (received !== MIB) throw new Error(`server counted ${received} bytes`);
    } else {
      const call = await connection.startSplit(Receive!, { length: MIB });
      let received = 0;
      for (let chunk = await call.read(); chunk !== undefined; chunk = await call.read()) received += chunk.byteLength;
      await call.finish();
      if (received !== MIB) throw new Error(`received ${received} bytes`);
    }
  }
  return (count * MIB) / MIB / ((performance.now() - start) / 1000);
}

/**
 * The ceiling: RX-sized datagrams from one socket to another, nothing else.
 * Rate = bytes that arrived / time to the last arrival (lost datagrams do not count).
 */
async function rawUdpRate(count: number): Promise<number> {
  const receiver = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 * MIB });
  const sender = dgram.createSocket({ type: 'udp4', sendBufferSize: 8 * MIB });
  receiver.bind(0, '127.0.0.1');
  await once(receiver, 'listening');
  const port = receiver.address().port;
  const datagram = new Uint8Array(1412 + 28);
  const total = Math.ceil(MIB / 1412) * count;
  let received = 0;
  let lastArrival = 0;
  receiver.on('message', () => {
    received += 1;
    lastArrival = performance.now();
  });
  const start = performance.now();
  // Bursts of 64 (one generous window) so the socket buffers are not simply overrun.
  for (let sent = 0; sent < total; sent += 64) {
    const burst = Math.min(64, total - sent);
    await Promise.all(Array.from({ length: burst }, () => new Promise<void>((resolve) => sender.send(datagram, port, '127.0.0.1', () => resolve()))));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  sender.close();
  receiver.close();
  return (received * 1412) / MIB / ((lastArrival - start) / 1000);
}

// ---------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------

function row(label: string, ours: number, baseline: number, unit: string, baselineName: string): void {
  console.log(`${label.padEnd(52)} ours ${ours.toFixed(0).padStart(8)} ${unit}   ${baselineName} ${baseline.toFixed(0).padStart(8)} ${unit}   ratio ${(ours / baseline).toFixed(2)}`);
}

async function rssAfter(connection: ClientConnection, server: RxServer, calls: number): Promise<number> {
  for (let done = 0; done < calls; done += 4) await Promise.all([0, 1, 2, 3].map(() => connection.invoke(Null!, {})));
  await server.stats();
  globalThis.gc?.();
  return process.memoryUsage().rss;
}

async function rssRows(client: RxClient, server: RxServer): Promise<void> {
  console.log('\n-- memory (client, server and its worker threads all live in this process)');
  const connection = client.connect('127.0.0.1', server.port, 42);
  const start = performance.now();
  // A cold process grows by ~8% over its first 50 k calls (each isolate's compiled code, heaps
  // sized to the load) and then stays flat: a leak shows only against a warm baseline.
  await rssAfter(connection, server, warmupCalls);
  const rssSmall = await rssAfter(connection, server, 10_000);
  const rssLarge = await rssAfter(connection, server, rssCalls);
  const seconds = (performance.now() - start) / 1000;
  console.log(`RSS after ${warmupCalls} + 10 k calls ${(rssSmall / MIB).toFixed(1)} MiB, after ${rssCalls} more ${(rssLarge / MIB).toFixed(1)} MiB, ratio ${(rssLarge / rssSmall).toFixed(3)} (${seconds.toFixed(0)} s)`);
  // RSS that grows while the live heap does not is V8 sizing its heap (young generation), not a leak.
  const heap = process.memoryUsage();
  console.log(`main thread heap after gc: ${(heap.heapUsed / MIB).toFixed(1)} MiB live of ${(heap.heapTotal / MIB).toFixed(1)} MiB committed`);
}

async function main(): Promise<void> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-bench-'));
  const workers = Number(flags.workers);
  const serviceModule = new URL('./bench-service.js', import.meta.url);
  const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers });
  const inline = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 0, transport: 'native' });
  const inlineDgram = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 0, transport: 'dgram' });
  const client = await RxClient.open({ transport: flags['client-transport'] === 'native' ? 'native' : 'dgram' });
  let cServer: ChildProcess | undefined;
  try {
    if (flags['rss-only']) return await rssRows(client, server);
    const binary = await buildPeer(directory);
    const cPort = 20000 + Math.floor(Math.random() * 20000);
    cServer = await startCServer(binary, cPort);
    const ours = String(server.port);
    const theirs = String(cPort);
    console.log(`rxrpc bench: loopback, ${workers} channel workers, medians of ${REPEATS}, ${warmupCalls} untimed Null calls per server first; ${os.availableParallelism()} cores`);

    const cNullRun = async (port: string, calls: number, threads: number) => (await cClient(binary, ['null', '127.0.0.1', port, String(calls), String(threads)])).rate!;
    // With 4 threads each makes bulkCount / 4 calls: the same bytes as one thread's run.
    const cBulkRun = async (port: string, mode: string, threads = 1) =>
      (await cClient(binary, [mode, '127.0.0.1', port, String(MIB), String(Math.max(1, bulkCount / threads)), String(threads)])).mibps!;
    const warmUp = async (port: string): Promise<void> => {
      for (let done = 0; done < warmupCalls; done += 10_000) await cNullRun(port, Math.min(10_000, warmupCalls - done), 4);
    };
    const bulkOnly = flags['bulk-only'];

    if (!bulkOnly) await warmUp(theirs);
    async function smallCallRows(port: string): Promise<void> {
      await warmUp(port);
      row('Null calls/s, 1 at a time', ...(await alternate(() => cNullRun(port, nullCalls, 1), () => cNullRun(theirs, nullCalls, 1))), 'calls/s', 'openafs');
      row('Null calls/s, 4 concurrent (4 channels)', ...(await alternate(() => cNullRun(port, nullCalls * 2, 4), () => cNullRun(theirs, nullCalls * 2, 4))), 'calls/s', 'openafs');
      // CPU per call is steadier than calls/s on a shared machine: it does not count time spent waiting for a core.
      const cpuPerCall = async (ours: boolean): Promise<number> => {
        const before = ours ? process.cpuUsage() : undefined;
        const cBefore = processCpuSeconds(cServer!.pid!);
        await cNullRun(ours ? port : theirs, nullCalls * 2, 4);
        const ourUse = process.cpuUsage(before);
        const used = ours ? (ourUse.user + ourUse.system) / 1e6 : processCpuSeconds(cServer!.pid!) - cBefore;
        return (used * 1e6) / (nullCalls * 2);
      };
      const [ourCpu, theirCpu] = await alternate(() => cpuPerCall(true), () => cpuPerCall(false));
      const cpuLabel = 'server CPU us per Null call (4 concurrent)'.padEnd(52);
      console.log(`${cpuLabel} ours ${ourCpu.toFixed(0).padStart(8)} us        openafs ${theirCpu.toFixed(0).padStart(8)} us        ratio ${(theirCpu / ourCpu).toFixed(2)} (openafs/ours)`);
    }

    const placements = [
      ['routing thread (workers 0), native datagrams', inline],
      ['routing thread (workers 0), node:dgram', inlineDgram],
      [`${workers} channel workers, native datagrams`, server],
    ] as const;
    for (const [name, target] of placements) {
      const port = String(target.port);
      console.log(`\n-- server, channels on the ${name}: ours vs OpenAFS rx, both called by the OpenAFS rx C client`);
      if (!bulkOnly) await smallCallRows(port);
      row('1 MiB split Send (client -> server)', ...(await alternate(() => cBulkRun(port, 'send'), () => cBulkRun(theirs, 'send'))), 'MiB/s', 'openafs');
      row('1 MiB split Receive (server -> client)', ...(await alternate(() => cBulkRun(port, 'receive'), () => cBulkRun(theirs, 'receive'))), 'MiB/s', 'openafs');
      row('1 MiB split Send, 4 concurrent', ...(await alternate(() => cBulkRun(port, 'send', 4), () => cBulkRun(theirs, 'send', 4))), 'MiB/s', 'openafs');
      row('1 MiB split Receive, 4 concurrent', ...(await alternate(() => cBulkRun(port, 'receive', 4), () => cBulkRun(theirs, 'receive', 4))), 'MiB/s', 'openafs');
    }

    console.log('\n-- client: ours vs OpenAFS rx C client, both calling our server');
    const connection = client.connect('127.0.0.1', server.port, 42);
    // Our client's call path is compiled from its own calls, as a server's is: warm it as much.
    await ourNullRate(connection, bulkOnly ? 500 : Math.max(500, warmupCalls), 4);
    if (!bulkOnly) {
      row('Null calls/s, 1 at a time', ...(await alternate(() => ourNullRate(connection, nullCalls, 1), () => cNullRun(ours, nullCalls, 1))), 'calls/s', 'openafs');
      row('Null calls/s, 4 concurrent', ...(await alternate(() => ourNullRate(connection, nullCalls * 2, 4), () => cNullRun(ours, nullCalls * 2, 4))), 'calls/s', 'openafs');
      if (flags['client-transport'] === 'native') {
        // node:dgram sends one datagram per system call where the native socket batches them.
        const dgramClient = await RxClient.open({ transport: 'dgram' });
        const dgramConnection = dgramClient.connect('127.0.0.1', server.port, 42);
        await ourNullRate(dgramConnection, Math.max(500, warmupCalls), 4);
        row('Null calls/s, 4 concurrent, node:dgram client', ...(await alternate(() => ourNullRate(dgramConnection, nullCalls * 2, 4), () => cNullRun(ours, nullCalls * 2, 4))), 'calls/s', 'openafs');
        await dgramClient.close();
      }
    }
    row('1 MiB split Send', ...(await alternate(() => ourBulkRate(connection, 'send', bulkCount), () => cBulkRun(ours, 'send'))), 'MiB/s', 'openafs');
    row('1 MiB split Receive', ...(await alternate(() => ourBulkRate(connection, 'receive', bulkCount), () => cBulkRun(ours, 'receive'))), 'MiB/s', 'openafs');
    const fourReceives = async (): Promise<number> => {
      const start = performance.now();
      await Promise.all([0, 1, 2, 3].map(() => ourBulkRate(connection, 'receive', Math.max(1, bulkCount / 4))));
      return (4 * Math.max(1, bulkCount / 4)) / ((performance.now() - start) / 1000);
    };
    const oneReceive = await repeat(() => ourBulkRate(connection, 'receive', bulkCount));
    row('1 MiB split Receive, 4 concurrent vs 1', await repeat(fourReceives), oneReceive, 'MiB/s', 'one call');

    console.log('\n-- bulk against the raw UDP ceiling (our client and server)');
    const raw = await repeat(() => rawUdpRate(bulkCount));
    row('1 MiB split Receive vs raw UDP blast', await repeat(() => ourBulkRate(connection, 'receive', bulkCount)), raw, 'MiB/s', 'raw udp');

    if (!bulkOnly) await rssRows(client, server);
    const stats = await server.stats();
    console.log(`\nserver counters: calls ${stats.counters.callsStarted}, busy sent ${stats.counters.busyPacketsSent}, retransmissions ${stats.counters.dataPacketsReSent}`);
  } finally {
    cServer?.kill('SIGTERM');
    await client.close();
    await server.close();
    await inline.close();
    await inlineDgram.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();
