/**
 * The kernel NFSv3 client mounts the export served from svcrdma's worker threads
 * (`rdma: { threads: 2 }`, a directory store per thread over one guest directory): files written
 * and read back byte-exact (WRITE data pulled by RDMA Read and READ data pushed by RDMA Write on
 * the workers), a small tree copied in, back out, compared and removed, and every gauge of the
 * threaded server back to 0 after the unmount. Short on purpose: the main-thread file
 * (kernel-client-rdma.test.ts) carries the long workloads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '@roce-rpc/lab';
import { DirectoryStore, type NfsServer } from '../../src/index.js';
import { dropCaches, isMounted, mountLine, mountOverRdma, roundTrip, run, shell, type RdmaMount } from './kernel-mount.js';

const mountPoint = '/tmp/nfs-rdma-threads';
const MiB = 1024 * 1024;
const treeDirectories = 2;
const treeFilesPerDirectory = 20;

/** How long the connection may take to go after the unmount, and how often to look. */
const waitTimeoutMs = 30_000;
const pollMs = 50;

describe('the kernel NFSv3 client mounts the export served from worker threads over RDMA', () => {
  let mounted: RdmaMount;
  let server: NfsServer;
  let exportRoot: string;

  beforeAll(async () => {
    exportRoot = await mkdtemp('/tmp/nfs-threads-export-');
    const store = await DirectoryStore.open({ root: exportRoot, handleSecret: Buffer.alloc(32, 7) });
    mounted = await mountOverRdma(mountPoint, { store, rdma: { threads: 2 } });
    server = mounted.server;
  });

  afterAll(async () => {
    await mounted?.close();
    if (exportRoot !== undefined) await rm(exportRoot, { recursive: true, force: true });
  });

  it('mounts with proto=rdma, served by the threaded server', async () => {
    expect(await mountLine(mountPoint)).toContain('proto=rdma');
    expect(server.rdmaServer).toBeNull();
    expect(server.threadedRdmaServer?.gauges().connections).toBe(1);
  });

  it('writes files of 1 B to 3 MiB with dd conv=fsync and reads them back byte-exact, data moved by the workers', async () => {
    for (const size of [1, 4097, 100_001, 3 * MiB + 5]) {
      const rates = await roundTrip(mountPoint, `file-${size}`, size);
      if (size >= MiB) console.log(`${size} B: write ${rates.writeMBps.toFixed(1)} MB/s, read ${rates.readMBps.toFixed(1)} MB/s`);
    }
    // The bytes are in the exported directory itself, not only in the client's view.
    await shell(`cmp /tmp/source-file-${3 * MiB + 5} ${exportRoot}/file-${3 * MiB + 5}`);
    const metrics = server.threadedRdmaServer!.metrics();
    console.log(`workers: ${JSON.stringify(metrics.workers)}; transports read ${metrics.transports.readBytes} B, wrote ${metrics.transports.writtenBytes} B`);
    // WRITE data came in Read chunks and READ data left in Write chunks, both on worker threads.
    expect(metrics.transports.readBytes).toBeGreaterThan(3 * MiB);
    expect(metrics.transports.writtenBytes).toBeGreaterThan(3 * MiB);
    expect(metrics.workers.chunkErrors + metrics.workers.failures + metrics.workers.workerRestarts).toBe(0);
    // Nothing of NFS ran on the main thread's service (it has MOUNT and TCP only).
    expect(server.service.metrics.calls).toEqual({});
  });

  it(`copies a ${treeDirectories * treeFilesPerDirectory}-file tree in and back out equal to the source (diff -r), ls -lR, rm -r`, async () => {
    await shell(
      `rm -rf /tmp/threads-tree /tmp/threads-tree-back && mkdir -p /tmp/threads-tree && cd /tmp/threads-tree && ` +
        `long=$(printf '%.0s0123456789abcdef' $(seq 1 120)) && for d in $(seq 1 ${treeDirectories}); do mkdir d$d; for f in $(seq 1 ${treeFilesPerDirectory}); do ` +
        // Shell builtins only (a process per file costs more than its copy under TCG); every 5th file over the 1 KiB inline-READ threshold.
        `if [ $((f % 5)) -eq 0 ]; then printf '%s %s\\n' "$long" $d/$f > d$d/f$f; else printf 'file %s/%s\\n' $d $f > d$d/f$f; fi; done; done && ln -s d1/f1 link && chmod 600 d2/f2`,
    );
    await shell(`cp -a /tmp/threads-tree ${mountPoint}/tree`);
    await dropCaches();
    expect((await shell(`ls -lR ${mountPoint}/tree | grep -c '^-'`)).trim()).toBe(String(treeDirectories * treeFilesPerDirectory));
    await shell(`cp -a ${mountPoint}/tree /tmp/threads-tree-back && diff -r --no-dereference /tmp/threads-tree /tmp/threads-tree-back`);
    const listing = (root: string): Promise<string> => shell(`cd ${root} && find . -printf '%y %m %s %p %l\\n' | sort`);
    expect(await listing('/tmp/threads-tree-back')).toBe(await listing('/tmp/threads-tree'));
    await shell(`rm -r ${mountPoint}/tree`);
    expect(await shell(`ls -A ${exportRoot} | grep -c tree || true`)).toBe('0\n');
  });

  it('unmounts cleanly: connections, send contexts, registrations and chunk buffers back to zero', async () => {
    await run('umount', [mountPoint]);
    expect(await isMounted(mountPoint)).toBe(false);
    await until(() => server.threadedRdmaServer?.gauges().connections === 0, 'the connection to close', waitTimeoutMs, pollMs);
    expect(server.threadedRdmaServer?.gauges()).toEqual({ connections: 0, sendContextsInUse: 0, openRegistrations: 0, chunkBuffersInUse: 0 });
  });
});
