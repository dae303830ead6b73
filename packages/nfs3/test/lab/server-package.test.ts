/**
 * The deployable server (@roce-rpc/server's `roce-rpc-server --nfs memory`) serves the export over
 * TCP and RDMA: the guest kernel mounts it both ways and sees the same files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { address, dropCaches, mountAt, mountLine, requireLab, roundTrip, run, shell } from './kernel-mount.js';

const serverCli = fileURLToPath(new URL('../../../server/dist/cli.js', import.meta.url));
const banner = /NFSv3\s+memory: nfs tcp (\d+), mount tcp (\d+), nfs rdma (\d+)/;

describe('roce-rpc-server --nfs memory', () => {
  let server: ChildProcess;
  let ports: { tcp: number; mount: number; rdma: number };

  beforeAll(async () => {
    requireLab();
    await run('modprobe', ['nfsv3']);
    await run('modprobe', ['rpcrdma']);
    server = spawn(process.execPath, [
      serverCli, '--host', address, '--processes', '1', '--threads', '1', '--transports', 'tcp', '--tcp-port', '0', '--metrics-port', '0',
      '--nfs', 'memory', '--nfs-port', '0', '--nfs-mount-port', '0', '--nfs-rdma-port', '20051', '--log-level', 'warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    while (!banner.test(stderr)) {
      if (server.exitCode !== null) throw new Error(`server exited ${server.exitCode}: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [, tcp, mount, rdma] = banner.exec(stderr)!.map(Number);
    ports = { tcp: tcp!, mount: mount!, rdma: rdma! };
    // The supervisor and its server process start under emulation with the host's load: minutes.
  }, 300_000);

  afterAll(async () => {
    await shell('umount -f /tmp/server-rdma /tmp/server-tcp 2>/dev/null || true');
    if (server?.exitCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
  });

  it('is mounted over RDMA and over TCP, both seeing the same bytes, and stops on SIGTERM', async () => {
    await mountAt('/tmp/server-rdma', { port: ports.rdma, mountPort: ports.mount, proto: 'rdma' });
    expect(await mountLine('/tmp/server-rdma')).toContain('proto=rdma');
    await roundTrip('/tmp/server-rdma', 'through-rdma', 1024 * 1024 + 7);
    await mountAt('/tmp/server-tcp', { port: ports.tcp, mountPort: ports.mount, proto: 'tcp' });
    await dropCaches();
    await shell('cmp /tmp/source-through-rdma /tmp/server-tcp/through-rdma');
    await run('umount', ['/tmp/server-rdma']);
    await run('umount', ['/tmp/server-tcp']);
    server.kill('SIGTERM');
    const [code] = await once(server, 'exit');
    expect(code).toBe(0);
  });
});
