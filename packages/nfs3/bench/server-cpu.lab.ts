/**
 * Where our server's CPU goes when the kernel client copies small files (inside the rxe lab:
 * `pnpm --filter @roce-rpc/nfs3 bench:cpu`). NfsServer (memory store) over RDMA in this process;
 * the guest kernel mounts it and `cp -a`s an NFS3_CPU_FILES-file tree (150) in, then out. Prints
 * the wall time, the server process's CPU per thread during the copy in (from /proc), and the
 * calls by procedure. With NFS3_CPU_PROFILE=FILE a V8 CPU profile of the copy phases is written
 * there (sampling every 0.5 ms roughly quadruples the wall time under TCG: compare proportions only).
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { promisify } from 'node:util';
import { NfsServer } from '../dist/index.js';

const run = promisify(execFile);
// Asynchronous: the server answering the kernel runs on this event loop.
const shell = async (command: string): Promise<string> => (await run('sh', ['-c', command], { maxBuffer: 1 << 24 })).stdout;
const address = process.env.RXE_LAB_ADDR;
if (process.env.RXE_LAB !== '1' || address === undefined) throw new Error('run inside the rxe lab: pnpm --filter @roce-rpc/nfs3 bench:cpu');
const files = Number(process.env.NFS3_CPU_FILES ?? 150);
const profileFile = process.env.NFS3_CPU_PROFILE;

/** CPU seconds (user, system) of each thread of this process. */
function threadTimes(): Map<string, [number, number]> {
  return new Map(
    readdirSync('/proc/self/task').map((thread) => {
      const stat = readFileSync(`/proc/self/task/${thread}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [`${thread}:${name}`, [Number(fields[11]) / 100, Number(fields[12]) / 100]];
    }),
  );
}

await shell('modprobe nfsv3 && modprobe rpcrdma');
const server = new NfsServer({ host: address, port: 0, mountPort: 0, rdma: {} });
const ports = await server.start();
await shell(`mkdir -p /tmp/cpu-mount && mount -t nfs -o vers=3,proto=rdma,port=${ports.rdmaPort},mountport=${ports.mountPort},mountproto=tcp,nolock,addr=${address} ${address}:/export /tmp/cpu-mount`);
await shell(`rm -rf /tmp/cpu-source /tmp/cpu-back && mkdir -p /tmp/cpu-source && cd /tmp/cpu-source && for d in 1 2 3; do mkdir d$d; for f in $(seq 1 ${Math.ceil(files / 3)}); do printf 'file %s\\n' $f > d$d/f$f; done; done`);
const session = new Session();
if (profileFile !== undefined) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
}
const threadsBefore = threadTimes();
let started = performance.now();
await shell('cp -a /tmp/cpu-source /tmp/cpu-mount/copy');
const copyInMs = performance.now() - started;
const perThread = [...threadTimes()].flatMap(([thread, [user, system]]) => {
  const [userBefore, systemBefore] = threadsBefore.get(thread) ?? [0, 0];
  return user - userBefore + system - systemBefore > 0.05 ? [`${thread} ${(user - userBefore).toFixed(1)}/${(system - systemBefore).toFixed(1)}`] : [];
});
await shell('echo 3 > /proc/sys/vm/drop_caches');
started = performance.now();
await shell('cp -a /tmp/cpu-mount/copy /tmp/cpu-back && diff -r /tmp/cpu-source /tmp/cpu-back');
const copyOutMs = performance.now() - started;
if (profileFile !== undefined) writeFileSync(profileFile, JSON.stringify((await session.post('Profiler.stop')).profile));
const calls = Object.entries(server.service.metrics.calls).map(([name, count]) => `${name.replace('NFSPROC3_', '')} ${count}`).join(', ');
console.log(`${files} files: cp -a in ${(copyInMs / 1000).toFixed(1)} s, out ${(copyOutMs / 1000).toFixed(1)} s`);
console.log(`server CPU during cp in, per thread (user/system s): ${perThread.join(', ')}`);
console.log(`calls: ${calls}`);
await shell('umount /tmp/cpu-mount');
await server.close();
