/**
 * The Linux kernel's own NFS client (inside the rxe lab guest) mounts our server over TCP:
 * MOUNT on its own port, NFS on another, no rpcbind, no lock manager (`nolock`). Only
 * util-linux `mount` is needed: without a mount.nfs helper it hands the text options to the
 * kernel, which runs the MOUNT call itself (hence `addr=`, `mountport=`, `mountproto=tcp`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryStore, NfsServer, type NfsStore } from '../../src/index.js';
import { address, dropCaches, mountAt, mountLine, requireLab, roundTrip, run, shell } from './kernel-mount.js';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function startServer(store: NfsStore | undefined, port = 0, mountPort = 0): Promise<{ server: NfsServer; port: number; mountPort: number }> {
  const server = new NfsServer({ store, host: address, port, mountPort });
  return { server, ...(await server.start()) };
}

describe('the kernel NFSv3 client mounts our server over TCP', () => {
  beforeAll(async () => {
    requireLab();
    await run('modprobe', ['nfsv3']);
  });

  describe('memory store', () => {
    const mountPoint = '/tmp/nfs-memory';
    let served: Awaited<ReturnType<typeof startServer>>;
    beforeAll(async () => {
      served = await startServer(undefined);
      await mountAt(mountPoint, { port: served.port, mountPort: served.mountPort, proto: 'tcp' });
    });
    afterAll(async () => {
      await served.server.close();
    });

    it('reports vers=3 and the rsize/wsize FSINFO offered', async () => {
      const line = await mountLine(mountPoint);
      expect(line).toContain('vers=3');
      expect(line).toContain('rsize=1048576');
      expect(line).toContain('wsize=1048576');
    });

    it('writes files of 1 B, 100 001 B and 3 MiB with dd conv=fsync and reads them back byte-exact after dropping caches', async () => {
      await roundTrip(mountPoint, 'one-byte', 1);
      await roundTrip(mountPoint, 'odd-size', 100_001);
      await roundTrip(mountPoint, 'three-mib', 3 * 1024 * 1024);
    });

    it('mkdir, ln -s, mv, chmod and rm -r behave as on a local file system', async () => {
      await shell(`mkdir -p ${mountPoint}/tree/a/b && echo hello > ${mountPoint}/tree/a/b/file && for i in $(seq 1 40); do echo $i > ${mountPoint}/tree/a/n$i; done`);
      await shell(`ln -s a/b/file ${mountPoint}/tree/link && mv ${mountPoint}/tree/a/b ${mountPoint}/tree/c && chmod 600 ${mountPoint}/tree/c/file`);
      await dropCaches();
      expect(await readlink(`${mountPoint}/tree/link`)).toBe('a/b/file');
      expect(await readFile(`${mountPoint}/tree/c/file`, 'utf8')).toBe('hello\n');
      expect((await stat(`${mountPoint}/tree/c/file`)).mode & 0o777).toBe(0o600);
      expect((await shell(`ls ${mountPoint}/tree/a | wc -l`)).trim()).toBe('40');
      await shell(`rm -r ${mountPoint}/tree`);
      expect((await shell(`ls -A ${mountPoint}`)).split('\n').filter(Boolean).sort()).toEqual(['odd-size', 'one-byte', 'three-mib']);
    });

    it('unmounts cleanly', async () => {
      await run('umount', [mountPoint]);
      expect(await readFile('/proc/mounts', 'utf8')).not.toContain(mountPoint);
    });
  });

  describe('directory store', () => {
    const mountPoint = '/tmp/nfs-directory';
    const secret = randomBytes(32);
    let exportRoot: string;
    let served: Awaited<ReturnType<typeof startServer>>;
    beforeAll(async () => {
      exportRoot = await mkdtemp('/tmp/export-');
      served = await startServer(await DirectoryStore.open({ root: exportRoot, handleSecret: secret }));
      await mountAt(mountPoint, { port: served.port, mountPort: served.mountPort, proto: 'tcp' });
    });
    afterAll(async () => {
      await run('umount', ['-f', mountPoint]).catch(() => undefined);
      await served.server.close();
    });

    it('lands the bytes in the exported directory, and keeps serving the mount across a server restart', async () => {
      await roundTrip(mountPoint, 'stored', 2 * 1024 * 1024 + 3);
      expect(sha256(await readFile(join(exportRoot, 'stored')))).toBe(sha256(await readFile('/tmp/source-stored')));
      // A new server process-equivalent: new store instance (empty path cache), same secret and ports.
      await served.server.close();
      served = await startServer(await DirectoryStore.open({ root: exportRoot, handleSecret: secret }), served.port, served.mountPort);
      await dropCaches();
      expect(sha256(await readFile(`${mountPoint}/stored`))).toBe(sha256(await readFile('/tmp/source-stored')));
      await run('umount', [mountPoint]);
      expect(await readFile('/proc/mounts', 'utf8')).not.toContain(mountPoint);
    });
  });
});
