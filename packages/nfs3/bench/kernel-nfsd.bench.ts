/**
 * Inside the rxe lab (`pnpm --filter @roce-rpc/nfs3 bench:lab`): the guest kernel's NFS client
 * runs the same workloads over proto=rdma against our server (its own process, `nfs3-server`,
 * memory store, RDMA port 20050) and against the kernel's own nfsd (tmpfs export, RDMA port 20049)
 * on the same rxe device, in one run, and prints each figure with its ratio ours / kernel:
 *
 *   dd write    `dd bs=1M conv=fsync` of NFS3_BENCH_MIB (64) MiB, MB/s
 *   dd read     the same file after drop_caches, MB/s
 *   fio write   sequential 1 MiB O_DIRECT writes, MB/s;  fio read: the same, reads
 *   creates     empty files created by a shell loop (`: > f$i`), NFS3_BENCH_CREATES (200), per s
 *   tree copy   `cp -a` of NFS3_BENCH_TREE_FILES (2000) small files in, then out, files per s
 *   GETATTR     fstat() of an open file on a mount with actimeo=0 (one GETATTR each), median µs
 *
 * Targets (issue 7): ≥ 0.8× the kernel for sequential read and write and for creates.
 */
import { spawn, execFile } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);
const address = process.env.RXE_LAB_ADDR ?? '';
const fileMiB = Number(process.env.NFS3_BENCH_MIB ?? 64);
const creates = Number(process.env.NFS3_BENCH_CREATES ?? 200);
const treeFiles = Number(process.env.NFS3_BENCH_TREE_FILES ?? 2000);
const getattrCalls = 300;
const KERNEL_RDMA_PORT = 20049;
const OUR_RDMA_PORT = 20050;

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

async function startOurServer(): Promise<{ stop: () => Promise<void>; mountPort: number }> {
  const child = spawn(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, '--host', address, '--port', '0', '--mount-port', '0', '--rdma-port', String(OUR_RDMA_PORT)], {
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

async function measure(target: Target): Promise<Figures> {
  const mountPoint = `/tmp/bench-${target.name}`;
  const attributeless = `${mountPoint}-actimeo0`;
  await shell(`mkdir -p ${mountPoint} ${attributeless} && mount -t nfs -o ${target.mountOptions} ${target.source} ${mountPoint}`);
  const figures: Figures = {};
  try {
    const bytes = fileMiB * 1024 * 1024;
    figures['dd write MB/s'] = bytes / 1e6 / (await timed(`dd if=/tmp/bench-source of=${mountPoint}/seq bs=1M conv=fsync status=none`));
    await shell('echo 3 > /proc/sys/vm/drop_caches');
    figures['dd read MB/s'] = bytes / 1e6 / (await timed(`dd if=${mountPoint}/seq of=/dev/null bs=1M status=none`));
    await shell(`cmp /tmp/bench-source ${mountPoint}/seq`);
    figures['fio write MB/s'] = await fioMBps(`${mountPoint}/fio`, 'write');
    figures['fio read MB/s'] = await fioMBps(`${mountPoint}/fio`, 'read');
    figures['creates /s'] = creates / (await timed(`mkdir ${mountPoint}/creates && cd ${mountPoint}/creates && i=0; while [ $i -lt ${creates} ]; do : > f$i; i=$((i+1)); done`));
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

if (process.env.RXE_LAB !== '1') throw new Error('run inside the rxe lab: pnpm --filter @roce-rpc/nfs3 bench:lab');
await prepareSources();
await startKernelNfsd();
const ours = await startOurServer();
const rdma = 'vers=3,proto=rdma,mountproto=tcp,nolock';
let kernel: Figures;
let our: Figures;
try {
  kernel = await measure({ name: 'kernel', mountOptions: `${rdma},port=${KERNEL_RDMA_PORT}`, source: `${address}:/srv/export` });
  our = await measure({ name: 'ours', mountOptions: `${rdma},port=${OUR_RDMA_PORT},mountport=${ours.mountPort},addr=${address}`, source: `${address}:/export` });
} finally {
  await ours.stop();
  await shell('rpc.nfsd 0; exportfs -ua').catch(() => undefined);
}

console.log(`NFSv3 over RDMA (rxe0, kernel client), ${fileMiB} MiB files, ${creates} creates, ${treeFiles}-file tree; ratio = ours / kernel nfsd`);
console.log(`${'workload'.padEnd(22)}${'kernel nfsd'.padStart(14)}${'ours'.padStart(12)}${'ratio'.padStart(9)}`);
for (const [name, value] of Object.entries(kernel)) {
  const mine = our[name]!;
  console.log(`${name.padEnd(22)}${value.toFixed(1).padStart(14)}${mine.toFixed(1).padStart(12)}${(mine / value).toFixed(2).padStart(9)}`);
}
