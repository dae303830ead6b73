import { createServer } from 'node:net';
import { mount3, nfs3 } from '@roce-rpc/nfs3';
import { OncRpcTcpClient } from '@roce-rpc/oncrpc';
import { procedureNamed } from '@roce-rpc/xdr';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerError, fillServerOptions, resolveCommandLine } from '../src/index.js';
import { freePort, runCli, scrape, scrapeUntil, startServer, type RunningServer } from './helpers.js';

function refusalField(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ServerError);
    return (error as ServerError).field;
  }
  throw new Error('expected a refusal');
}

describe('the nfs option serves an NFSv3 export beside the service', () => {
  it('is off by default, with the NFS ports of convention', () => {
    expect(fillServerOptions({})).toMatchObject({ nfs: 'off', nfsPort: 2049, nfsMountPort: 20048, nfsRdmaPort: 20049 });
  });

  it('takes memory or an absolute directory from flags and the environment', () => {
    expect(resolveCommandLine(['--nfs', 'memory', '--transports', 'tcp'], {}).options.nfs).toBe('memory');
    expect(resolveCommandLine(['--transports', 'tcp'], { ROCE_RPC_NFS: '/srv/export', ROCE_RPC_NFS_RDMA_PORT: '20051' }).options).toMatchObject({ nfs: '/srv/export', nfsRdmaPort: 20051 });
  });

  it('refuses a relative directory, and an RDMA port the service already listens on', () => {
    expect(refusalField(() => fillServerOptions({ nfs: 'export' }))).toBe('nfs');
    expect(refusalField(() => fillServerOptions({ nfs: 'memory', transports: ['tcp', 'rdma'] }))).toBe('nfsRdmaPort');
    expect(fillServerOptions({ nfs: 'memory', transports: ['tcp', 'rdma'], rdmaPort: 20050 }).nfsRdmaPort).toBe(20049);
  });

  it('serves NFS over RDMA from worker threads only for a directory export, naming nfsRdmaThreads when refused', () => {
    expect(fillServerOptions({}).nfsRdmaThreads).toBe(0);
    expect(resolveCommandLine(['--nfs', '/srv/export', '--nfs-rdma-threads', '2', '--transports', 'tcp'], {}).options.nfsRdmaThreads).toBe(2);
    expect(resolveCommandLine(['--transports', 'tcp'], { ROCE_RPC_NFS: '/srv/export', ROCE_RPC_NFS_RDMA_THREADS: '4' }).options.nfsRdmaThreads).toBe(4);
    let refusal: ServerError | undefined;
    try {
      fillServerOptions({ nfs: 'memory', nfsRdmaThreads: 2, transports: ['tcp'] });
    } catch (error) {
      refusal = error as ServerError;
    }
    expect(refusal).toBeInstanceOf(ServerError);
    expect(refusal?.field).toBe('nfsRdmaThreads');
    expect(refusal?.message).toMatch(/must be 0 with nfs=memory: a memory export lives in one thread's heap/);
    for (const nfsRdmaThreads of [-1, 65, 1.5]) expect(refusalField(() => fillServerOptions({ nfs: '/srv/export', nfsRdmaThreads, transports: ['tcp'] }))).toBe('nfsRdmaThreads');
    expect(fillServerOptions({ nfs: 'memory', nfsRdmaThreads: 0, transports: ['tcp'] }).nfsRdmaThreads).toBe(0);
  });

  it('the CLI refuses nfsRdmaThreads with a memory export at start, exit code 2', async () => {
    const run = runCli(['--nfs', 'memory', '--nfs-rdma-threads', '2', '--transports', 'tcp']);
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toMatch(/nfsRdmaThreads must be 0 with nfs=memory/);
  });
});

describe('the NFS export runs in server process 0, supervised like the others', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  /** MNT of /export over TCP, then a GETATTR of the root it returns; the MNT and NFS programs share the process's call metrics. */
  async function mountAndGetattr(nfsPort: number, mountPort: number): Promise<{ root: Uint8Array; status: number }> {
    const mountClient = await OncRpcTcpClient.connect({ host: '127.0.0.1', port: mountPort });
    const nfsClient = await OncRpcTcpClient.connect({ host: '127.0.0.1', port: nfsPort });
    try {
      const mounted = await mountClient.call(mount3.MOUNT_PROGRAM, 3, procedureNamed(mount3.MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR, 'MOUNTPROC3_MNT'), '/export');
      if (mounted.fhs_status !== 0) throw new Error(`MNT failed: ${mounted.fhs_status}`);
      const root = mounted.mountinfo.fhandle;
      const attributes = await nfsClient.call(nfs3.NFS_PROGRAM, 3, procedureNamed(nfs3.NFS_PROGRAM_NFS_V3_DESCRIPTOR, 'NFSPROC3_GETATTR'), { object: { data: root } });
      return { root, status: attributes.status };
    } finally {
      mountClient.close();
      nfsClient.close();
    }
  }

  it('serves MOUNT and NFS over TCP from process 0, counts the calls on /metrics, and a kill -9 of process 0 brings it back', async () => {
    const [nfsPort, mountPort] = [await freePort(), await freePort()];
    server = await startServer(['--processes', '2', '--threads', '1', '--transports', 'tcp', '--nfs', 'memory', '--nfs-port', String(nfsPort), '--nfs-mount-port', String(mountPort)]);
    expect(server.stderr()).toMatch(new RegExp(`NFSv3\\s+memory: nfs tcp ${nfsPort}, mount tcp ${mountPort}, nfs rdma off \\(process 0\\)`));
    const owner = server.lines.find((line) => line.msg === 'nfs export listening')!;
    expect(owner.process).toBe(0);
    const first = await mountAndGetattr(nfsPort, mountPort);
    expect(first.status).toBe(nfs3.NFS3_OK);
    const getattr = 'rocerpc_calls_total{transport="tcp",program="100003",procedure="NFSPROC3_GETATTR",status="success"}';
    expect(await scrapeUntil(server.metricsUrl, getattr, 1)).toBe(1);
    expect(await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="tcp",program="100005",procedure="MOUNTPROC3_MNT",status="success"}')).toBe(1);
    expect(await scrape(server.metricsUrl, 'rocerpc_call_duration_seconds_count{transport="tcp",program="100003",procedure="NFSPROC3_GETATTR"}')).toBe(1);

    const ownerPid = owner.pid as number;
    process.kill(ownerPid, 'SIGKILL');
    await server.waitFor((line) => line.msg === 'nfs export listening' && line.pid !== ownerPid, 60_000);
    // The replacement serves a new in-memory export: the old root handle names nothing there, a new MNT works.
    const second = await mountAndGetattr(nfsPort, mountPort);
    expect(second.status).toBe(nfs3.NFS3_OK);
    expect(Buffer.from(second.root).equals(Buffer.from(first.root))).toBe(false);
    expect(await scrapeUntil(server.metricsUrl, 'rocerpc_process_restarts_total', 1)).toBe(1);
    expect(await server.stop()).toBe(0);
  }, 120_000);

  it('refuses to start when the MOUNT port is taken: exit 1, ERR_SERVER_ADDRESS_IN_USE naming nfsMountPort', async () => {
    const mountPort = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(mountPort, '127.0.0.1', resolve));
    try {
      const run = runCli(['--processes', '1', '--transports', 'tcp', '--tcp-port', '0', '--metrics-port', '0', '--nfs', 'memory', '--nfs-port', String(await freePort()), '--nfs-mount-port', String(mountPort)]);
      expect(await run.exit).toBe(1);
      expect(run.stderr()).toMatch(new RegExp(`nfsMountPort: 127\\.0\\.0\\.1:${mountPort} is already in use \\[ERR_SERVER_ADDRESS_IN_USE\\]`));
    } finally {
      squatter.close();
    }
  }, 60_000);
});
