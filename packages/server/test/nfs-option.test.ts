import { describe, expect, it } from 'vitest';
import { ServerError, fillServerOptions, resolveCommandLine } from '../src/index.js';

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
});
