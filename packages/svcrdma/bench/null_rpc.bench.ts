/**
 * NULL RPCs over rxe0 (run inside the lab: `pnpm --filter @roce-rpc/svcrdma
 * bench`), each figure against a baseline measured in the same run:
 *   1. bare verbs Send/Receive ping-pong, polled and threaded CQs: the floor
 *      any transport on this core pays;
 *   2. our client against our server vs the same client against the guest
 *      kernel's svcrdma (nfsd, NFSv4 NULL), with 1, 4 and 16 calls outstanding:
 *      calls/s and median/p99 round trip, ratios ours/kernel — our server in
 *      its own process on the main thread, on BENCH_THREADS worker threads
 *      (default 2), and in the client's process.
 *
 *   Every server, the kernel's included, first gets BENCH_WARMUP_CALLS untimed
 *   NULL calls (16 outstanding) from the same client: the figures are of
 *   servers past their start, not of V8 compiling our path (a fresh
 *   2-thread server's CPU per call fell 5.7 -> 1.9 ms over its first 2 000
 *   calls in the lab, 2026-12-07 21:45 UTC), as a long-running server is.
 *   BENCH_WARMUP_CALLS=0 gives the cold figures.
 *
 *   3. with BENCH_BUSY_POLL_MICROS set, the worker-thread server once more with
 *      completion threads that keep polling that long after a completion
 *      before sleeping (busyPollMicros), against the same kernel figures.
 *
 * Env: BENCH_ROUNDS (default 500), BENCH_WARMUP_CALLS (default 3000), BENCH_THREADS (default 2), BENCH_BUSY_POLL_MICROS,
 * BENCH_CLIENT_BURST_MS (the client's burst window, default 20: its event loop spins that long
 * after a reply, taking CPU from a server beside it in the 2-vCPU guest), RXE_LAB_ADDR.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, listen, openDevice, type Completion } from '@roce-rpc/verbs';
import { xdrVoid } from '@roce-rpc/xdr';
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { RdmaRpcClient, SvcRdmaServer } from '../dist/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const rounds = Number(process.env.BENCH_ROUNDS ?? 500);
const warmupCalls = Number(process.env.BENCH_WARMUP_CALLS ?? 3000);
const threads = Number(process.env.BENCH_THREADS ?? 2);
const busyPollMicros = process.env.BENCH_BUSY_POLL_MICROS === undefined ? null : Number(process.env.BENCH_BUSY_POLL_MICROS);
const clientBurstWindowMs = Number(process.env.BENCH_CLIENT_BURST_MS ?? 20);

function summary(times: number[]): { median: number; p99: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]! };
}

/**
 * Send/Receive ping-pong between two QPs of this process, 64-byte messages.
 * threaded: completion threads deliver to JavaScript (what svcrdma uses today);
 * polled: this thread spins on the CQs (the floor: no thread wake-ups).
 */
async function verbsPingPong(mode: 'threaded' | 'polled'): Promise<number[]> {
  const device = openDevice('rxe0');
  const pd = device.allocateProtectionDomain();
  const waiting = new Map<number, (completion: Completion) => void>();
  const onCompletions = (completions: Completion[]) => {
    for (const completion of completions) waiting.get(completion.wrId)?.(completion);
  };
  const cqOptions = mode === 'threaded' ? { depth: 64, onCompletions } : { depth: 64 };
  const serverCq = device.createCompletionQueue(cqOptions);
  const clientCq = device.createCompletionQueue(cqOptions);
  const buffer = Buffer.alloc(4096);
  const region = pd.registerMemory(buffer);
  const listener = listen({ address, port: 0 });
  const accepted = new Promise<import('@roce-rpc/verbs').CmId>((resolve) =>
    listener.on('connection', async ({ cmId }) => {
      cmId.createQueuePair({ protectionDomain: pd, sendCompletionQueue: serverCq, recvCompletionQueue: serverCq });
      await cmId.accept();
      resolve(cmId);
    }),
  );
  const client = await connect({
    address,
    port: listener.port,
    createQueuePair: (cmId) => cmId.createQueuePair({ protectionDomain: pd, sendCompletionQueue: clientCq, recvCompletionQueue: clientCq }),
  });
  const server = await accepted;
  const spin = (cq: typeof serverCq): Promise<Completion> => {
    for (;;) {
      const [completion] = cq.poll(1, 1000);
      if (completion !== undefined) return Promise.resolve(completion);
    }
  };
  const next = (wrId: number) =>
    mode === 'threaded' ? new Promise<Completion>((resolve) => waiting.set(wrId, resolve)) : spin(wrId === 1 ? serverCq : clientCq);
  // Server echoes every message back.
  const serverQp = server.queuePair!;
  const clientQp = client.queuePair!;
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    serverQp.postRecvOne(1, region, 0, 64);
    clientQp.postRecvOne(2, region, 1024, 64);
    const serverReceived = mode === 'threaded' ? next(1) : null;
    const clientReceived = mode === 'threaded' ? next(2) : null;
    const begin = performance.now();
    clientQp.postSendOne(3, region, 2048, 64, 0); // unsignaled
    await (serverReceived ?? next(1));
    serverQp.postSendOne(4, region, 3072, 64, 0);
    await (clientReceived ?? next(2));
    times.push(performance.now() - begin);
  }
  client.close();
  server.close();
  listener.close();
  for (const closable of [region, serverCq, clientCq, pd, device]) closable.close();
  return times;
}

const NFS_PROGRAM = 100003;
const NFS_V4 = 4;
const KERNEL_PORT = 20049;
const OUR_PORT = 20050;
const OUR_IN_PROCESS_PORT = 20054;
const OUR_THREADS_PORT = 20058;
const OUR_BUSY_POLL_PORT = 20065;

/** The environment notes' recipe for the kernel's svcrdma, NFSv4 only (no rpcbind). */
function startKernelSvcrdma(): void {
  execFileSync('sh', ['-c', `set -e; modprobe rpcrdma; modprobe nfsd
    mountpoint -q /var/lib || mount -t tmpfs tmpfs /var/lib; mkdir -p /var/lib/nfs/v4recovery
    mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
    echo "-2 -3 +4 +4.1 +4.2" > /proc/fs/nfsd/versions; echo "rdma ${KERNEL_PORT}" > /proc/fs/nfsd/portlist
    echo 2 > /proc/fs/nfsd/threads`]);
}

interface Load {
  callsPerSecond: number;
  median: number;
  p99: number;
}

/** `calls` NULL calls with `outstanding` in flight at all times. */
async function nullLoad(port: number, outstanding: number, calls = rounds): Promise<Load> {
  const client = await RdmaRpcClient.connect({ address, port, burstWindowMs: clientBurstWindowMs });
  const times: number[] = [];
  let issued = 0;
  const started = performance.now();
  const lane = async () => {
    while (issued < calls) {
      issued++;
      const begin = performance.now();
      await client.call(NFS_PROGRAM, NFS_V4, 0, xdrVoid, undefined, xdrVoid);
      times.push(performance.now() - begin);
    }
  };
  await Promise.all(Array.from({ length: outstanding }, lane));
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  return { callsPerSecond: calls / seconds, ...summary(times) };
}

const format = (value: number) => `${(value * 1000).toFixed(0)} µs`;
const polled = summary(await verbsPingPong('polled'));
const threaded = summary(await verbsPingPong('threaded'));
console.log(`verbs Send/Recv ping-pong (${rounds} rounds): polled CQs median ${format(polled.median)} p99 ${format(polled.p99)}; threaded CQs median ${format(threaded.median)} p99 ${format(threaded.p99)}`);

startKernelSvcrdma();
// Our server in its own process, like the kernel's: the client's event loop is not shared.
async function startServer(...args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [new URL('./null_server.ts', import.meta.url).pathname, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [ready] = (await once(child.stdout!, 'data')) as [Buffer];
  if (!ready.toString().startsWith('ready')) throw new Error(`server did not start: ${ready.toString()}`);
  return child;
}
const server = await startServer(String(OUR_PORT));
// The same in its own process, served by worker threads blocking in the verbs core.
const threadedServer = await startServer(String(OUR_THREADS_PORT), String(threads));
const busyPollServer = busyPollMicros === null ? null : await startServer(String(OUR_BUSY_POLL_PORT), String(threads), String(busyPollMicros));
// And in this process, sharing the client's event loop (one poller spinning instead of two).
const dispatcher = new Dispatcher().addVersion(NFS_PROGRAM, { name: 'NFS4_NULL', version: NFS_V4, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
const inProcess = SvcRdmaServer.listen(dispatcher, { address, port: OUR_IN_PROCESS_PORT });
const describeLoad = (load: Load) => `${load.callsPerSecond.toFixed(0)} calls/s median ${format(load.median)} p99 ${format(load.p99)}`;
const ratios = (load: Load, kernel: Load) =>
  `${(load.callsPerSecond / kernel.callsPerSecond).toFixed(2)}x calls/s, ${(load.median / kernel.median).toFixed(2)}x median rtt`;
const ports = [KERNEL_PORT, OUR_PORT, OUR_THREADS_PORT, OUR_IN_PROCESS_PORT, ...(busyPollServer === null ? [] : [OUR_BUSY_POLL_PORT])];
if (warmupCalls > 0) for (const port of ports) await nullLoad(port, 16, warmupCalls);
console.log(`NULL loads: ${rounds} calls each after ${warmupCalls} untimed warm-up calls per server, client burst window ${clientBurstWindowMs} ms, ${threads} worker threads`);
for (const outstanding of [1, 4, 16]) {
  const kernel = await nullLoad(KERNEL_PORT, outstanding);
  const ours = await nullLoad(OUR_PORT, outstanding);
  const oursThreads = await nullLoad(OUR_THREADS_PORT, outstanding);
  const oursShared = await nullLoad(OUR_IN_PROCESS_PORT, outstanding);
  const oursBusyPoll = busyPollServer === null ? null : await nullLoad(OUR_BUSY_POLL_PORT, outstanding);
  console.log(`NULL, ${String(outstanding).padStart(2)} outstanding: kernel ${describeLoad(kernel)}`);
  console.log(`    ours, own process:    ${describeLoad(ours)}  (${ratios(ours, kernel)})`);
  console.log(`    ours, ${threads} threads:      ${describeLoad(oursThreads)}  (${ratios(oursThreads, kernel)})`);
  console.log(`    ours, client process: ${describeLoad(oursShared)}  (${ratios(oursShared, kernel)})`);
  if (oursBusyPoll !== null) console.log(`    ours, ${threads} threads, busy poll ${busyPollMicros} µs: ${describeLoad(oursBusyPoll)}  (${ratios(oursBusyPoll, kernel)})`);
}
await inProcess.close();
for (const child of [server, threadedServer, ...(busyPollServer === null ? [] : [busyPollServer])]) {
  child.stdin!.end();
  await once(child, 'exit');
}
execFileSync('sh', ['-c', 'echo 0 > /proc/fs/nfsd/threads']);
