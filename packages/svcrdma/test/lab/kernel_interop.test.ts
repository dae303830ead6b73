/**
 * Inside the rxe lab: our client against code no one here wrote — the guest
 * kernel's own svcrdma (nfsd with "rdma 20049" in its portlist, NFSv4 only so
 * no rpcbind is needed). NULL calls to NFS (program 100003, version 4) must
 * succeed over rxe0; their round trips are compared with our server's on the
 * same device in the same run.
 */
import { execFileSync } from 'node:child_process';
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdmaRpcClient, SvcRdmaServer } from '../../src/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const NFS_PROGRAM = 100003;
const NFS_V4 = 4;
const KERNEL_PORT = 20049;
const OUR_PORT = 20052;
const rounds = Number(process.env.SVCRDMA_LAB_ROUNDS ?? 300);

/** The environment notes' recipe; /var/lib is tmpfs because the guest's root is read-only. */
const startKernelNfsd = `
set -e
modprobe rpcrdma
modprobe nfsd
mountpoint -q /var/lib || mount -t tmpfs tmpfs /var/lib
mkdir -p /var/lib/nfs/v4recovery
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
echo "-2 -3 +4 +4.1 +4.2" > /proc/fs/nfsd/versions
echo "rdma ${KERNEL_PORT}" > /proc/fs/nfsd/portlist
echo 2 > /proc/fs/nfsd/threads
`;

async function nullRoundTrips(client: RdmaRpcClient, program: number, version: number): Promise<number[]> {
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const begin = performance.now();
    await client.call(program, version, 0, xdrVoid, undefined, xdrVoid);
    times.push(performance.now() - begin);
  }
  return times.sort((a, b) => a - b);
}

const median = (sorted: number[]) => sorted[Math.floor(sorted.length / 2)]!;
const p99 = (sorted: number[]) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;

let kernelClient: RdmaRpcClient | undefined;

beforeAll(() => {
  execFileSync('sh', ['-c', startKernelNfsd], { stdio: 'inherit' });
});

afterAll(async () => {
  await kernelClient?.close();
  execFileSync('sh', ['-c', 'echo 0 > /proc/fs/nfsd/threads'], { stdio: 'inherit' });
});

describe('our client against the kernel svcrdma on rxe0', () => {
  it('makes NFSv4 NULL calls that the kernel answers, and honours its credit grant', async () => {
    kernelClient = await RdmaRpcClient.connect({ address, port: KERNEL_PORT });
    await expect(kernelClient.call(NFS_PROGRAM, NFS_V4, 0, xdrVoid, undefined, xdrVoid)).resolves.toBeUndefined();
    expect(kernelClient.credits).toBeGreaterThan(1);
    // The kernel answers a version it does not serve with PROG_MISMATCH, through our reply path.
    await expect(kernelClient.call(NFS_PROGRAM, 3, 0, xdrVoid, undefined, xdrVoid)).rejects.toMatchObject({ code: 'ERR_ONCRPC_PROG_MISMATCH' });
  });

  it('compares NULL round trips: our server vs the kernel, same client, same device', async () => {
    const kernel = await nullRoundTrips(kernelClient!, NFS_PROGRAM, NFS_V4);
    const dispatcher = new Dispatcher().addVersion(NFS_PROGRAM, { name: 'NFS4_NULL_ONLY', version: NFS_V4, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
    const server = SvcRdmaServer.listen(dispatcher, { address, port: OUR_PORT });
    const ours = await RdmaRpcClient.connect({ address, port: OUR_PORT });
    try {
      const mine = await nullRoundTrips(ours, NFS_PROGRAM, NFS_V4);
      const format = (value: number) => `${(value * 1000).toFixed(0)} µs`;
      console.log(`NULL x${rounds}, 1 outstanding — kernel svcrdma: median ${format(median(kernel))}, p99 ${format(p99(kernel))}; ours: median ${format(median(mine))}, p99 ${format(p99(mine))}; ratio ours/kernel median ${(median(mine) / median(kernel)).toFixed(2)}x`);
      expect(mine).toHaveLength(rounds);
    } finally {
      await ours.close();
      await server.close();
    }
  });
});
