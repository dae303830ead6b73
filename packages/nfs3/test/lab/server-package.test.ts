/**
 * The deployable server (@roce-rpc/server's `roce-rpc-server --nfs memory`) serves the export from
 * its server process 0 over TCP and RDMA: the guest kernel mounts it both ways and sees the same
 * files; the export's calls and svcrdma gauges are on /metrics; kill -9 of the process serving it
 * → the supervisor's replacement serves a new mount. With `--nfs DIR --nfs-rdma-threads 2` NFS
 * over RDMA is served by svcrdma's worker threads: a mount reads back what it wrote, the
 * threaded listener's connection and counters are on /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { address, dropCaches, mountAt, mountLine, requireLab, roundTrip, run, shell } from './kernel-mount.js';

const serverCli = fileURLToPath(new URL('../../../server/dist/cli.js', import.meta.url));
/** Fixed: a replacement process binds the same ports again (port 0 would pick new ones). */
const ports = { tcp: 2049, mount: 20048, rdma: 20051 };
const rdmaMount = { port: ports.rdma, mountPort: ports.mount, proto: 'rdma' } as const;

interface LogLine {
  msg: string;
  pid: number;
  [field: string]: unknown;
}

/** The server's stdout (pino JSON) and stderr (the banner). */
class ServerOutput {
  readonly lines: LogLine[] = [];
  stderr = '';

  constructor(readonly child: ChildProcess) {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString()).split('\n');
      pending = parts.pop()!;
      for (const part of parts) if (part.startsWith('{')) this.lines.push(JSON.parse(part) as LogLine);
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  async waitFor(predicate: (line: LogLine) => boolean, what: string, timeoutMs = 240_000): Promise<LogLine> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null) throw new Error(`server exited ${this.child.exitCode}: ${this.stderr}`);
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}: ${this.lines.map((line) => line.msg).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function scrape(metricsUrl: string, series: string): Promise<number> {
  const line = (await (await fetch(metricsUrl)).text()).split('\n').find((each) => each.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** The server's CLI with the export's options; resolves once it listens (minutes under emulation with the host's load). */
async function startServer(exportOptions: string[]): Promise<{ server: ChildProcess; output: ServerOutput; metricsUrl: string }> {
  const server = spawn(process.execPath, [
    serverCli, '--host', address, '--processes', '1', '--threads', '1', '--transports', 'tcp', '--tcp-port', '0', '--metrics-port', '0',
    '--nfs-port', String(ports.tcp), '--nfs-mount-port', String(ports.mount), '--nfs-rdma-port', String(ports.rdma), ...exportOptions,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new ServerOutput(server);
  await output.waitFor((line) => line.msg === 'listening', 'the server to listen');
  return { server, output, metricsUrl: /metrics\s+(http:\S+)/.exec(output.stderr)![1]! };
}

async function stopServer(server: ChildProcess | undefined): Promise<void> {
  await shell('umount -f /tmp/server-rdma /tmp/server-tcp 2>/dev/null || true');
  if (server?.exitCode === null) {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
}

describe('roce-rpc-server --nfs memory: the export in server process 0', () => {
  let server: ChildProcess;
  let output: ServerOutput;
  let metricsUrl: string;

  beforeAll(async () => {
    requireLab();
    await run('modprobe', ['nfsv3']);
    await run('modprobe', ['rpcrdma']);
    ({ server, output, metricsUrl } = await startServer(['--nfs', 'memory']));
    expect(output.stderr).toMatch(new RegExp(`NFSv3\\s+memory: nfs tcp ${ports.tcp}, mount tcp ${ports.mount}, nfs rdma ${ports.rdma} \\(process 0\\)`));
  }, 300_000);

  afterAll(() => stopServer(server));

  it('is mounted over RDMA and over TCP, both seeing the same bytes; its calls and RDMA connection are on /metrics', async () => {
    await mountAt('/tmp/server-rdma', rdmaMount);
    expect(await mountLine('/tmp/server-rdma')).toContain('proto=rdma');
    await roundTrip('/tmp/server-rdma', 'through-rdma', 1024 * 1024 + 7);
    await mountAt('/tmp/server-tcp', { port: ports.tcp, mountPort: ports.mount, proto: 'tcp' });
    await dropCaches();
    await shell('cmp /tmp/source-through-rdma /tmp/server-tcp/through-rdma');
    expect(await scrape(metricsUrl, 'rocerpc_calls_total{transport="rdma",program="100003",procedure="NFSPROC3_WRITE",status="success"}')).toBeGreaterThan(0);
    expect(await scrape(metricsUrl, 'rocerpc_calls_total{transport="tcp",program="100005",procedure="MOUNTPROC3_MNT",status="success"}')).toBeGreaterThanOrEqual(2);
    expect(await scrape(metricsUrl, 'rocerpc_svcrdma_connections')).toBe(1);
    await run('umount', ['/tmp/server-rdma']);
    await run('umount', ['/tmp/server-tcp']);
  });

  it('kill -9 of the process serving NFS: the supervisor replaces it, and a new mount is served', async () => {
    const owner = await output.waitFor((line) => line.msg === 'nfs export listening', 'the export');
    process.kill(owner.pid, 'SIGKILL');
    const replacement = await output.waitFor((line) => line.msg === 'nfs export listening' && line.pid !== owner.pid, 'the replacement to serve the export');
    expect(replacement.process).toBe(0);
    await mountAt('/tmp/server-rdma', rdmaMount);
    await roundTrip('/tmp/server-rdma', 'after-kill', 100_003);
    expect(await scrape(metricsUrl, 'rocerpc_process_restarts_total')).toBe(1);
    expect(await scrape(metricsUrl, 'rocerpc_svcrdma_connections')).toBe(1);
    await run('umount', ['/tmp/server-rdma']);
  });

  it('stops on SIGTERM with exit 0', async () => {
    server.kill('SIGTERM');
    const [code] = await once(server, 'exit');
    expect(code).toBe(0);
  });
});

describe('roce-rpc-server --nfs DIR --nfs-rdma-threads 2: NFS over RDMA on svcrdma worker threads', () => {
  let server: ChildProcess;
  let exportRoot: string;
  let metricsUrl: string;

  beforeAll(async () => {
    requireLab();
    exportRoot = await mkdtemp('/tmp/server-threads-export-');
    ({ server, metricsUrl } = await startServer(['--nfs', exportRoot, '--nfs-secret-file', `${exportRoot}.secret`, '--nfs-rdma-threads', '2']));
  }, 300_000);

  afterAll(async () => {
    await stopServer(server);
    await rm(exportRoot, { recursive: true, force: true });
    await rm(`${exportRoot}.secret`, { force: true });
  });

  it('a mount over RDMA reads back what it wrote (in the exported directory too); the threaded connection is on /metrics, 0 after umount', async () => {
    await mountAt('/tmp/server-rdma', rdmaMount);
    await roundTrip('/tmp/server-rdma', 'on-threads', 1024 * 1024 + 7);
    expect((await readFile(`${exportRoot}/on-threads`)).equals(await readFile('/tmp/source-on-threads'))).toBe(true);
    expect(await scrape(metricsUrl, 'rocerpc_svcrdma_connections')).toBe(1);
    expect(await scrape(metricsUrl, 'rocerpc_svcrdma_connections_accepted_total')).toBe(1);
    await run('umount', ['/tmp/server-rdma']);
    const deadline = performance.now() + 30_000;
    while ((await scrape(metricsUrl, 'rocerpc_svcrdma_connections')) !== 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await scrape(metricsUrl, 'rocerpc_svcrdma_connections')).toBe(0);
    expect(await scrape(metricsUrl, 'rocerpc_svcrdma_send_contexts_in_use')).toBe(0);
  });
});
