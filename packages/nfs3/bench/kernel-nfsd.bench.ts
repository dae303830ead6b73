/**
 * Inside the rxe lab (`pnpm --filter @roce-rpc/nfs3 bench:lab`): the guest kernel's NFS client
 * runs the same workloads over proto=rdma against the kernel's own nfsd (tmpfs export, RDMA port
 * 20049) and two of our servers, each `nfs3-server` in its own process on the same rxe device:
 *
 *   main      NFS over RDMA on the main thread (SvcRdmaServer), memory store, RDMA port 20050
 *   threads   NFS over RDMA on NFS3_BENCH_THREADS (2) of svcrdma's worker threads
 *             (SvcRdmaThreadedServer), a directory store on the guest's tmpfs, RDMA port 20051;
 *             NFS3_BENCH_BUSY_POLL_US (unset: svcrdma's default, 0) is its completion threads'
 *             busyPollMicros
 *
 * in NFS3_BENCH_ROUNDS (3) interleaved rounds (each round starts with another server, so what
 * the shared host does meanwhile lands on every server alike), and prints each round, then the
 * median of every figure, the ratios of the medians, and the median of each round's ratios.
 * The servers start once and serve every round. Before those rounds each of them, the kernel's
 * included, serves NFS3_BENCH_WARMUP_ROUNDS (1) warm-up rounds of the same workloads, whose
 * figures (the cold ones) are printed apart and left out of the medians: a fresh Node server
 * under TCG spends its first few hundred RPCs compiling (in the lab, 01:18 UTC, host load 7: 13 ms
 * of its main thread per GETATTR over its first 200, 3–7 ms after 600, V8's compiler threads busy
 * meanwhile), and the kernel's own first round has been the slowest too.
 * NFS3_BENCH_WARMUP_ROUNDS=0: no warm-up, round 1 cold (as before this knob):
 *
 *   dd write    `dd bs=1M conv=fsync` of NFS3_BENCH_MIB (32) MiB, MB/s
 *   dd read     the same file after drop_caches, MB/s
 *   fio write   sequential 1 MiB O_DIRECT writes, MB/s;  fio read: the same, reads
 *   creates     empty files created by a shell loop (`: > f$i`), NFS3_BENCH_CREATES (100), per s;
 *               "RPCs per create": what the client sent meanwhile (its /proc/self/mountstats), per
 *               file, by procedure in the round's lines: a server whose replies lack attributes
 *               or cache-consistency data would make the client send more
 *   tree copy   `cp -a` of NFS3_BENCH_TREE_FILES (300) small files in, then out, files per s
 *   GETATTR     fstat() of an open file on a mount with actimeo=0 (one GETATTR each), median µs
 *
 * Each mount's negotiated rsize/wsize is printed with the round (the kernel's nfsd offers its
 * max_block_size, 512 KiB in the 3 GiB guest; ours offer maxTransferBytes, 1 MiB).
 *
 * NFS3_BENCH_CPU_PROF=DIR (a directory the host sees, e.g. under /work/main/.lab) runs our
 * servers with `node --cpu-prof` (every thread, the workers too, writes a .cpuprofile there on
 * exit): sampling slows them, so a profiling run's figures are not the benchmark's.
 *
 * Targets (issue 7): ≥ 0.8× the kernel for sequential read and write and for creates.
 */
import { spawn, execFile } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);
const address = process.env.RXE_LAB_ADDR ?? '';
const fileMiB = Number(process.env.NFS3_BENCH_MIB ?? 32);
const creates = Number(process.env.NFS3_BENCH_CREATES ?? 100);
const treeFiles = Number(process.env.NFS3_BENCH_TREE_FILES ?? 300);
const rounds = Number(process.env.NFS3_BENCH_ROUNDS ?? 3);
const warmupRounds = Number(process.env.NFS3_BENCH_WARMUP_ROUNDS ?? 1);
const threads = Number(process.env.NFS3_BENCH_THREADS ?? 2);
const cpuProfileDirectory = process.env.NFS3_BENCH_CPU_PROF;
const threadsBusyPoll = process.env.NFS3_BENCH_BUSY_POLL_US === undefined ? [] : ['--rdma-busy-poll-us', process.env.NFS3_BENCH_BUSY_POLL_US];
const getattrCalls = 300;
const KERNEL_RDMA_PORT = 20049;
const MAIN_RDMA_PORT = 20050;
const THREADS_RDMA_PORT = 20051;
/** The threaded server's export: a directory on the tmpfs the kernel's nfsd exports from too. */
const THREADS_EXPORT = '/srv/threads-export';

async function shell(command: string): Promise<string> {
  return (await run('sh', ['-c', command], { maxBuffer: 64 * 1024 * 1024 })).stdout;
}

async function timed(command: string): Promise<number> {
  const started = performance.now();
  await shell(command);
  return (performance.now() - started) / 1000;
}

/** The environment notes' recipe: NFSv3 over RDMA from the kernel's nfsd, MOUNT from rpc.mountd. */
async function startKernelNfsd(): Promise<void> {
  await shell(`set -e; modprobe nfsd; modprobe rpcrdma; modprobe nfsv3
    for d in /var/lib/nfs /srv; do mountpoint -q $d || mount -t tmpfs tmpfs $d; done
    mkdir -p /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /srv/export; touch /var/lib/nfs/etab /var/lib/nfs/rmtab
    mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs
    mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
    mkdir -p /run/rpcbind; rpcbind -w
    exportfs -o rw,no_root_squash,no_subtree_check,insecure,fsid=1 ${address.replace(/\d+$/, '0')}/24:/srv/export
    rpc.mountd -N 4
    rpc.nfsd -N 4 -N 4.1 -N 4.2 2
    echo "rdma ${KERNEL_RDMA_PORT}" > /proc/fs/nfsd/portlist`);
}

/** `nfs3-server` in its own process with these arguments; resolves once it listens. */
async function startOurServer(name: string, serverArguments: string[]): Promise<{ stop: () => Promise<void>; mountPort: number }> {
  const profiling = cpuProfileDirectory === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDirectory}/${name}`];
  const cli = new URL('../dist/cli.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [...profiling, cli, '--host', address, '--port', '0', '--mount-port', '0', ...serverArguments], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const ports = JSON.parse(line) as { mountPort: number };
  return {
    mountPort: ports.mountPort,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

interface Target {
  readonly name: string;
  readonly mountOptions: string;
  readonly source: string;
}

type Figures = Record<string, number>;

async function fioMBps(file: string, mode: 'write' | 'read'): Promise<number> {
  const output = await shell(`fio --name=seq --filename=${file} --size=${fileMiB}M --bs=1M --rw=${mode} --direct=1 --ioengine=psync --output-format=json`);
  const job = (JSON.parse(output.slice(output.indexOf('{'))) as { jobs: { read: { bw: number }; write: { bw: number } }[] }).jobs[0]!;
  return (job[mode].bw * 1024) / 1e6;
}

function medianMicros(mountPoint: string): number {
  const fd = openSync(`${mountPoint}/seq`, 'r');
  const samples: number[] = [];
  try {
    for (let call = 0; call < getattrCalls; call++) {
      const started = process.hrtime.bigint();
      fstatSync(fd);
      samples.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  } finally {
    closeSync(fd);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

/** RPCs the client sent on this mount so far, by procedure (the per-op lines of /proc/self/mountstats). */
function rpcsSent(mountPoint: string): Map<string, number> {
  const stats = readFileSync('/proc/self/mountstats', 'utf8');
  const section = stats.slice(stats.indexOf(` mounted on ${mountPoint} `)).split('\ndevice ')[0]!;
  const perOp = section.slice(section.indexOf('per-op statistics'));
  return new Map([...perOp.matchAll(/^\s+([A-Z_]+): (\d+)/gm)].map((match) => [match[1]!, Number(match[2])]));
}

async function measure(target: Target): Promise<Figures> {
  const mountPoint = `/tmp/bench-${target.name}`;
  const attributeless = `${mountPoint}-actimeo0`;
  await shell(`mkdir -p ${mountPoint} ${attributeless} && mount -t nfs -o ${target.mountOptions} ${target.source} ${mountPoint}`);
  // What the client settled on from the server's FSINFO (rtpref/wtpref, capped by rtmax/wtmax).
  const mounted = (await shell(`grep ' ${mountPoint} ' /proc/mounts`)).match(/rsize=\d+,wsize=\d+/)?.[0];
  console.log(`${target.name}: ${mounted ?? 'rsize/wsize not shown'}`);
  const figures: Figures = {};
  try {
    const bytes = fileMiB * 1024 * 1024;
    figures['dd write MB/s'] = bytes / 1e6 / (await timed(`dd if=/tmp/bench-source of=${mountPoint}/seq bs=1M conv=fsync status=none`));
    await shell('echo 3 > /proc/sys/vm/drop_caches');
    figures['dd read MB/s'] = bytes / 1e6 / (await timed(`dd if=${mountPoint}/seq of=/dev/null bs=1M status=none`));
    await shell(`cmp /tmp/bench-source ${mountPoint}/seq`);
    figures['fio write MB/s'] = await fioMBps(`${mountPoint}/fio`, 'write');
    figures['fio read MB/s'] = await fioMBps(`${mountPoint}/fio`, 'read');
    await shell(`mkdir ${mountPoint}/creates`);
    const sentBefore = rpcsSent(mountPoint);
    figures['creates /s'] = creates / (await timed(`cd ${mountPoint}/creates && i=0; while [ $i -lt ${creates} ]; do : > f$i; i=$((i+1)); done`));
    const sent = [...rpcsSent(mountPoint)].map(([procedure, count]) => [procedure, count - (sentBefore.get(procedure) ?? 0)] as const).filter(([, count]) => count > 0);
    figures['RPCs per create'] = sent.reduce((total, [, count]) => total + count, 0) / creates;
    console.log(`${target.name}: RPCs per create ${sent.map(([procedure, count]) => `${procedure} ${(count / creates).toFixed(2)}`).join(', ')}`);
    figures['tree cp in files/s'] = treeFiles / (await timed(`cp -a /tmp/bench-tree ${mountPoint}/tree`));
    await shell('echo 3 > /proc/sys/vm/drop_caches');
    figures['tree cp out files/s'] = treeFiles / (await timed(`rm -rf /tmp/bench-tree-back && cp -a ${mountPoint}/tree /tmp/bench-tree-back`));
    await shell(`diff -r /tmp/bench-tree /tmp/bench-tree-back && rm -r ${mountPoint}/tree ${mountPoint}/creates ${mountPoint}/fio`);
    await shell(`mount -t nfs -o ${target.mountOptions},actimeo=0 ${target.source} ${attributeless}`);
    figures['GETATTR µs (median)'] = medianMicros(attributeless);
  } finally {
    await shell(`umount ${attributeless} 2>/dev/null; umount ${mountPoint}`);
  }
  return figures;
}

async function prepareSources(): Promise<void> {
  const directories = Math.max(1, Math.ceil(treeFiles / 100));
  await shell(`head -c ${fileMiB * 1024 * 1024} /dev/urandom > /tmp/bench-source
    rm -rf /tmp/bench-tree && mkdir /tmp/bench-tree && cd /tmp/bench-tree && n=0
    for d in $(seq 1 ${directories}); do mkdir d$d; for f in $(seq 1 100); do [ $n -lt ${treeFiles} ] && echo "file $d/$f $RANDOM" > d$d/f$f; n=$((n+1)); done; done`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function printTable(title: string, columns: string[], rows: [string, number[]][]): void {
  console.log(title);
  console.log(`${'workload'.padEnd(22)}${columns.map((column) => column.padStart(14)).join('')}`);
  for (const [name, values] of rows) console.log(`${name.padEnd(22)}${values.map((value) => value.toFixed(value >= 100 ? 0 : 2).padStart(14)).join('')}`);
}

if (process.env.RXE_LAB !== '1') throw new Error('run inside the rxe lab: pnpm --filter @roce-rpc/nfs3 bench:lab');
for (const [name, value, min, max] of [['NFS3_BENCH_ROUNDS', rounds, 1, 99], ['NFS3_BENCH_WARMUP_ROUNDS', warmupRounds, 0, 9], ['NFS3_BENCH_THREADS', threads, 1, 64]] as const) {
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer from ${min} to ${max}`);
}
await prepareSources();
await startKernelNfsd();
await shell(`rm -rf ${THREADS_EXPORT} && mkdir -p ${THREADS_EXPORT} && head -c 32 /dev/urandom > /tmp/bench-threads.secret`);
const mainServer = await startOurServer('main', ['--rdma-port', String(MAIN_RDMA_PORT)]);
const threadsServer = await startOurServer('threads', [
  '--rdma-port', String(THREADS_RDMA_PORT), '--rdma-threads', String(threads), '--directory', THREADS_EXPORT, '--secret-file', '/tmp/bench-threads.secret',
  ...threadsBusyPoll,
]);
const rdma = 'vers=3,proto=rdma,mountproto=tcp,nolock';
const targets: Target[] = [
  { name: 'kernel', mountOptions: `${rdma},port=${KERNEL_RDMA_PORT}`, source: `${address}:/srv/export` },
  { name: 'main', mountOptions: `${rdma},port=${MAIN_RDMA_PORT},mountport=${mainServer.mountPort},addr=${address}`, source: `${address}:/export` },
  { name: 'threads', mountOptions: `${rdma},port=${THREADS_RDMA_PORT},mountport=${threadsServer.mountPort},addr=${address}`, source: `${address}:/export` },
];
const columns = ['kernel nfsd', 'ours main', `ours ${threads} thr`];
/** figures[target][workload] = one value per round. */
const figures = new Map<string, Map<string, number[]>>(targets.map((target) => [target.name, new Map()]));
try {
  for (let round = 0; round < warmupRounds; round++) {
    const started = new Date().toISOString().slice(11, 19);
    const warm = new Map<string, Figures>();
    for (const target of targets) warm.set(target.name, await measure(target));
    const load = (await shell('cat /proc/loadavg')).split(' ')[0];
    printTable(
      `warm-up ${round + 1}/${warmupRounds}, cold servers, not in the medians (started ${started} UTC, order ${targets.map((target) => target.name).join(' → ')}; guest load ${load})`,
      columns,
      Object.keys(warm.get('kernel')!).map((workload) => [workload, targets.map((target) => warm.get(target.name)![workload]!)]),
    );
  }
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, index) => targets[(index + round) % targets.length]!);
    const started = new Date().toISOString().slice(11, 19);
    for (const target of order) {
      for (const [workload, value] of Object.entries(await measure(target))) {
        const values = figures.get(target.name)!.get(workload) ?? [];
        values.push(value);
        figures.get(target.name)!.set(workload, values);
      }
    }
    const load = (await shell('cat /proc/loadavg')).split(' ')[0];
    const workloads = [...figures.get('kernel')!.keys()];
    printTable(
      `round ${round + 1}/${rounds} (started ${started} UTC, order ${order.map((target) => target.name).join(' → ')}; guest load ${load})`,
      columns,
      workloads.map((workload) => [workload, targets.map((target) => figures.get(target.name)!.get(workload)![round]!)]),
    );
  }
} finally {
  await Promise.all([mainServer.stop(), threadsServer.stop()]);
  await shell('rpc.nfsd 0; exportfs -ua').catch(() => undefined);
}

console.log(
  `\nNFSv3 over RDMA (rxe0, kernel client), ${fileMiB} MiB files, ${creates} creates, ${treeFiles}-file tree, ` +
    `${rounds} interleaved rounds after ${warmupRounds} warm-up round${warmupRounds === 1 ? '' : 's'} of every server; ` +
    'medians; ratio = ours / kernel nfsd (GETATTR: latency, lower is better); "per round": the median of the ratios within each ' +
    "round (the servers of one round shared the host's load; the host's load moves between rounds)",
);
const ratioColumns = ['main/kernel', 'thr/kernel', 'thr/main'];
console.log(`${'workload'.padEnd(22)}${[...columns, ...ratioColumns, ...ratioColumns.map((column) => `${column} p.r.`)].map((column) => column.padStart(17)).join('')}`);
for (const workload of figures.get('kernel')!.keys()) {
  const [kernel, main, threaded] = targets.map((target) => figures.get(target.name)!.get(workload)!) as [number[], number[], number[]];
  const cells = [kernel, main, threaded].map((values) => median(values).toFixed(1));
  const ratios = [
    [main, kernel],
    [threaded, kernel],
    [threaded, main],
  ] as const;
  const ofMedians = ratios.map(([ours, baseline]) => (median(ours) / median(baseline)).toFixed(2));
  const perRound = ratios.map(([ours, baseline]) => median(ours.map((value, round) => value / baseline[round]!)).toFixed(2));
  console.log(`${workload.padEnd(22)}${[...cells, ...ofMedians, ...perRound].map((cell) => cell.padStart(17)).join('')}`);
}
