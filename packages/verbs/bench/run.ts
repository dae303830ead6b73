// `pnpm bench` (inside the rxe lab): Node ping-pong round trip and RDMA
// Write throughput against perftest on the same rxe device, in one run.
//
//   round trip:  64 B Send/Receive ping-pong between two Node processes,
//                each polling its CQ from JavaScript with a bounded native
//                spin — once with a WorkBatch (post + poll in one call per
//                message and side) and once with one call per work request —
//                vs `ib_send_lat -R -F -s 64` (whose t_typical is half
//                a round trip, so its round trip is 2 x t_typical);
//   throughput:  1 MiB RDMA Writes, 16 in flight, vs `ib_write_bw -R -F -s 1048576`.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { COMPLETION_WORDS, connect, openDevice, SEND_FLAG } from '../dist/index.js';

const ADDRESS = process.env['RXE_LAB_ADDR'] ?? '192.0.2.1';
const DEVICE = process.env['RXE_LAB_DEVICE'] ?? 'rxe0';
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2000);
const WARMUP_ROUNDS = 200;
const WRITES = Number(process.env['BENCH_WRITES'] ?? 200);
const WRITE_BYTES = 1 << 20;
const WRITES_IN_FLIGHT = 16;
const MESSAGE_BYTES = 64;
/** Ping sends are inline and unsignaled except one in SIGNAL_EVERY, as perftest does. */
const SIGNAL_EVERY = Number(process.env['BENCH_SIGNAL_EVERY'] ?? 1);
const INLINE = process.env['BENCH_INLINE'] === '1' ? SEND_FLAG.INLINE : 0;

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

/** Runs a perftest pair (server, then client) and returns the client's output. */
function perftest(tool: string, args: string[], port: number): string {
  const server = spawn(tool, [...args, '-p', String(port)], { stdio: 'ignore' });
  spawnSync('sleep', ['2']);
  const client = spawnSync(tool, [...args, '-p', String(port), ADDRESS], { encoding: 'utf8', timeout: 120_000 });
  server.kill('SIGKILL');
  if (client.status !== 0) throw new Error(`${tool} failed: ${client.stderr}${client.stdout}`);
  return client.stdout;
}

/** The result row of a perftest report: the first line whose first column is `bytes` and
 *  whose `needed` columns are numbers (perftest prints "-nan" for a stdev it cannot compute). */
function resultRow(output: string, bytes: number, needed: number[], tool: string): number[] {
  for (const line of output.split('\n')) {
    const values = line.trim().split(/\s+/).map(Number);
    if (values[0] === bytes && needed.every((index) => Number.isFinite(values[index]))) return values;
  }
  throw new Error(`no result row in ${tool} output:\n${output}`);
}

function sendLatencyBaseline(): { typical: number; p99: number } {
  const output = perftest('ib_send_lat', ['-R', '-F', '-d', DEVICE, '-s', String(MESSAGE_BYTES), '-n', String(ROUNDS)], 18_515);
  // Columns: #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9% (µs, one way)
  const columns = resultRow(output, MESSAGE_BYTES, [4, 7], 'ib_send_lat');
  return { typical: 2 * columns[4]!, p99: 2 * columns[7]! };
}

function writeBandwidthBaseline(): number {
  const output = perftest('ib_write_bw', ['-R', '-F', '-d', DEVICE, '-s', String(WRITE_BYTES), '-n', String(WRITES)], 18_516);
  // Columns: #bytes #iterations BW_peak[MB/sec] BW_average[MB/sec] MsgRate[Mpps]
  return resultRow(output, WRITE_BYTES, [3], 'ib_write_bw')[3]!;
}

type Path = 'batch' | 'calls';

async function startPeer(path: Path): Promise<{ port: number; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./peer.ts', import.meta.url)), '0', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`bench peer exited with ${code}`)));
  });
  return { port, exited };
}

async function nodeBenchmarks(path: Path): Promise<{ median: number; p99: number; bandwidth: number }> {
  const peer = await startPeer(path);
  const device = openDevice(DEVICE);
  const protectionDomain = device.allocateProtectionDomain();
  const completionQueue = device.createCompletionQueue({ depth: 256 });
  const receiveRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_BYTES));
  const sendRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_BYTES));
  const writeRegion = protectionDomain.registerMemory(Buffer.alloc(WRITE_BYTES));
  const cmId = await connect({
    address: ADDRESS,
    port: peer.port,
    createQueuePair: (id) => id.createQueuePair({ protectionDomain, sendCompletionQueue: completionQueue, recvCompletionQueue: completionQueue, maxSendWr: 64, maxRecvWr: 16, maxInlineData: MESSAGE_BYTES }),
  });
  const queuePair = cmId.queuePair!;
  const remoteAddress = cmId.peerPrivateData.readBigUInt64BE(0);
  const rkey = cmId.peerPrivateData.readUInt32BE(8);
  const words = new Uint32Array(16 * COMPLETION_WORDS);

  /** Spins until a Receive completes; Send completions are reaped on the way. */
  const awaitReceive = (): void => {
    for (;;) {
      const count = completionQueue.pollInto(words, 16, 1_000_000);
      for (let index = 0; index < count; index++) {
        const at = index * COMPLETION_WORDS;
        if (words[at + 2] !== 0) throw new Error(`completion failed with status ${words[at + 2]}`);
        if (words[at + 3] === 128) return;
      }
    }
  };

  const batch = queuePair.createWorkBatch({ regions: [receiveRegion, sendRegion], completionQueue, capacity: 4, completionsMax: 16 });
  /** One call posts the Receive and the Send and spins until the reply. */
  const batchedRound = (round: number, flags: number): void => {
    batch.receive(round, 0, 0, MESSAGE_BYTES);
    batch.send(round, 1, 0, MESSAGE_BYTES, flags);
    for (;;) {
      const count = batch.submit(1_000_000);
      for (let index = 0; index < count; index++) {
        const at = index * COMPLETION_WORDS;
        if (batch.completions[at + 2] !== 0) throw new Error(`completion failed with status ${batch.completions[at + 2]}`);
        if (batch.completions[at + 3] === 128) return;
      }
    }
  };
  const roundTrips: number[] = [];
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
    const started = process.hrtime.bigint();
    const flags = INLINE | (round % SIGNAL_EVERY === 0 ? SEND_FLAG.SIGNALED : 0);
    if (path === 'batch') {
      batchedRound(round, flags);
    } else {
      queuePair.postRecvOne(round, receiveRegion, 0, MESSAGE_BYTES);
      queuePair.postSendOne(round, sendRegion, 0, MESSAGE_BYTES, flags);
      awaitReceive();
    }
    if (round >= WARMUP_ROUNDS) roundTrips.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  batch.close();

  // Throughput: keep WRITES_IN_FLIGHT 1 MiB RDMA Writes posted until WRITES completed.
  let posted = 0;
  let completed = 0;
  const started = process.hrtime.bigint();
  while (completed < WRITES) {
    while (posted < WRITES && posted - completed < WRITES_IN_FLIGHT) {
      queuePair.postRdmaWrite({ wrId: 10_000 + posted, sges: [writeRegion.sge()], remoteAddress, rkey });
      posted++;
    }
    const count = completionQueue.pollInto(words, 16, 1_000_000);
    for (let index = 0; index < count; index++) {
      if (words[index * COMPLETION_WORDS + 2] !== 0) throw new Error('RDMA Write failed');
      if (words[index * COMPLETION_WORDS + 3] === 1) completed++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;

  sendRegion.buffer[0] = 0x51; // 'Q': the peer stops
  queuePair.postSendOne(99_999, sendRegion, 0, MESSAGE_BYTES, SEND_FLAG.SIGNALED);
  await peer.exited;
  cmId.close();
  for (const closable of [receiveRegion, sendRegion, writeRegion, completionQueue, protectionDomain, device]) closable.close();
  roundTrips.sort((a, b) => a - b);
  return { median: percentile(roundTrips, 0.5), p99: percentile(roundTrips, 0.99), bandwidth: (WRITES * WRITE_BYTES) / seconds / 1e6 };
}

const skipPerftest = process.env['BENCH_SKIP_PERFTEST'] === '1';
const latency = skipPerftest ? { typical: NaN, p99: NaN } : sendLatencyBaseline();
const batched = await nodeBenchmarks('batch');
const calls = await nodeBenchmarks('calls');
const bandwidth = skipPerftest ? NaN : writeBandwidthBaseline();
const format = (value: number) => value.toFixed(1).padStart(9);
console.log(`\nroce-verbs benchmark on ${DEVICE} (${ROUNDS} round trips, ${WRITES} x 1 MiB writes)`);
console.log('                                 node  perftest   ratio   target');
console.log(`64 B round trip median (µs) ${format(batched.median)} ${format(latency.typical)} ${format(batched.median / latency.typical)}   <= 1.5  (WorkBatch)`);
console.log(`64 B round trip p99 (µs)    ${format(batched.p99)} ${format(latency.p99)} ${format(batched.p99 / latency.p99)}`);
console.log(`  one call per request, median ${format(calls.median)} ${format(latency.typical)} ${format(calls.median / latency.typical)}`);
console.log(`  one call per request, p99    ${format(calls.p99)} ${format(latency.p99)} ${format(calls.p99 / latency.p99)}`);
console.log(`1 MiB RDMA Write (MB/s)     ${format(batched.bandwidth)} ${format(bandwidth)} ${format(batched.bandwidth / bandwidth)}   >= 0.8`);
