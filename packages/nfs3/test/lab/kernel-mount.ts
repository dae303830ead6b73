/**
 * What the kernel-client lab tests share: running shell commands without blocking the event loop
 * (our server answers the kernel from this same process), mounting with util-linux `mount` only,
 * a server mounted over RDMA for a whole test file, and write → drop caches → read-back round trips.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { NfsServer, type NfsServerOptions } from '../../src/index.js';

export const run = promisify(execFile);
export const address = process.env.RXE_LAB_ADDR ?? '';

export async function shell(command: string): Promise<string> {
  return (await run('sh', ['-c', command], { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

export function requireLab(): void {
  expect(process.env.RXE_LAB, 'run with `pnpm --filter @roce-rpc/nfs3 test:lab` (inside the rxe lab)').toBe('1');
}

export interface MountPorts {
  /** NFS over TCP, or over RDMA with `proto: 'rdma'`. */
  port: number;
  mountPort: number;
  proto: 'tcp' | 'rdma';
}

/**
 * Without a mount.nfs helper, `mount` hands the text options to the kernel, which runs the MOUNT
 * call itself: hence `addr=`, `mountport=` and `mountproto=tcp` (MOUNT is TCP even for RDMA).
 */
export async function mountAt(mountPoint: string, ports: MountPorts): Promise<void> {
  await mkdir(mountPoint, { recursive: true });
  const options = `vers=3,proto=${ports.proto},port=${ports.port},mountport=${ports.mountPort},mountproto=tcp,nolock,addr=${address}`;
  await run('mount', ['-t', 'nfs', '-o', options, `${address}:/export`, mountPoint]);
}

/** Our server, started on the lab address, as the kernel client mounts it over RDMA. */
export interface RdmaMount {
  server: NfsServer;
  /** Where to mount it again (a test that unmounts and mounts anew). */
  ports: MountPorts;
  /** Forces the mount down if a test left it up (a failed test), then closes the server. */
  close(): Promise<void>;
}

/**
 * Starts an `NfsServer` serving NFS over RDMA (`options.rdma`, `{}` by default) and MOUNT over TCP
 * on ephemeral ports, loads the kernel's NFSv3 and RPC-over-RDMA client, and mounts the export at
 * `mountPoint` with `proto=rdma`: the `beforeAll` of every RDMA kernel-client file.
 */
export async function mountOverRdma(mountPoint: string, options: Omit<NfsServerOptions, 'host' | 'port' | 'mountPort'> = {}): Promise<RdmaMount> {
  requireLab();
  await run('modprobe', ['nfsv3']);
  await run('modprobe', ['rpcrdma']);
  const server = new NfsServer({ rdma: {}, ...options, host: address, port: 0, mountPort: 0 });
  const started = await server.start();
  const ports: MountPorts = { port: started.rdmaPort ?? 0, mountPort: started.mountPort, proto: 'rdma' };
  const close = async (): Promise<void> => {
    if (await isMounted(mountPoint)) await run('umount', ['-f', mountPoint]).catch(() => undefined);
    await server.close();
  };
  try {
    await mountAt(mountPoint, ports);
  } catch (error) {
    await close();
    throw error;
  }
  return { server, ports, close };
}

export async function mountLine(mountPoint: string): Promise<string> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').find((entry) => entry.split(' ')[1] === mountPoint) ?? '';
}

export async function dropCaches(): Promise<void> {
  await writeFile('/proc/sys/vm/drop_caches', '3');
}

/**
 * Writes `bytes` random bytes through the mount with dd conv=fsync and reads them back after
 * dropping caches, compared byte for byte with cmp.
 * @returns the write and read rates in MB/s (10^6 bytes), for the log
 */
export async function roundTrip(mountPoint: string, name: string, bytes: number): Promise<{ writeMBps: number; readMBps: number }> {
  const source = `/tmp/source-${name}`;
  await shell(`head -c ${bytes} /dev/urandom > ${source}`);
  let started = performance.now();
  await shell(`dd if=${source} of=${mountPoint}/${name} bs=1M conv=fsync status=none`);
  const writeMs = performance.now() - started;
  await dropCaches();
  started = performance.now();
  await shell(`cmp ${source} ${mountPoint}/${name}`);
  const readMs = performance.now() - started;
  return { writeMBps: bytes / 1000 / writeMs, readMBps: bytes / 1000 / readMs };
}

export async function isMounted(mountPoint: string): Promise<boolean> {
  return (await mountLine(mountPoint)) !== '';
}
