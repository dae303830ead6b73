/**
 * The export on svcrdma's worker threads, without RDMA: `rdma.threads` is checked against the
 * store at construction, and the service every worker builds (threads/nfs-thread-service.mjs,
 * from the options NfsServer hands it) serves the same export as the main thread — it accepts
 * the root handle MOUNT gave out, sees files the main thread's store created, answers WRITE and
 * COMMIT with the export's write verifier, and does not serve MOUNT. Here the worker's
 * dispatcher is put behind a TCP listener on this thread; the rxe lab test mounts it for real.
 */
import { randomBytes } from 'node:crypto';
import { OncRpcTcpClient, OncRpcTcpServer, encodeAuthSys, type Dispatcher } from '@roce-rpc/oncrpc';
import { procedureNamed } from '@roce-rpc/xdr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore, Nfs3ErrorCode, NfsServer, SharedPathHints, threadServiceOptionsOf } from '../src/index.js';
import { NfsTestBed, mount, nfs } from './helpers.js';

function refusal(make: () => unknown): Error & { code?: string } {
  try {
    make();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a refusal');
}

describe('rdma.threads is checked against the store at construction', () => {
  it('refuses the memory store (the default one too), naming the field', () => {
    for (const store of [undefined, new MemoryStore()]) {
      const error = refusal(() => new NfsServer({ store, rdma: { threads: 2 } }));
      expect(error.code).toBe(Nfs3ErrorCode.INVALID_OPTION);
      expect(error.message).toMatch(/^rdma\.threads needs a DirectoryStore/);
    }
  });

  it('refuses a thread count outside 0..64 or not an integer, and main-thread-only options beside it', async () => {
    const bed = await NfsTestBed.start('directory');
    try {
      for (const threads of [-1, 65, 1.5, Number.NaN, '2' as unknown as number]) {
        expect(refusal(() => new NfsServer({ store: bed.store, rdma: { threads } })).message).toMatch(/^rdma\.threads must be an integer from 0 to 64/);
      }
      expect(refusal(() => new NfsServer({ store: bed.store, rdma: { threads: 1, workers: 4 } })).message).toMatch(/^rdma\.workers is an option of the main-thread server/);
      expect(refusal(() => new NfsServer({ store: bed.store, rdma: { threads: 1, receiveCompletions: 'polled' } })).message).toMatch(/^rdma\.receiveCompletions/);
      // Accepted: a directory store on threads; threads 0 (the main thread) with either store.
      expect(() => new NfsServer({ store: bed.store, rdma: { threads: 64 } })).not.toThrow();
      expect(() => new NfsServer({ rdma: { threads: 0, workers: 4 } })).not.toThrow();
    } finally {
      await bed.stop();
    }
  });

  it('refuses a write verifier that is not 8 bytes and keeps one that is', () => {
    expect(refusal(() => new NfsServer({ writeVerifier: Buffer.alloc(7) })).message).toMatch(/writeVerifier must be 8 bytes/);
    const verifier = randomBytes(8);
    expect(new NfsServer({ writeVerifier: verifier }).service.writeVerifier.equals(verifier)).toBe(true);
  });
});

describe("a worker thread's service serves the main thread's directory export", () => {
  let bed: NfsTestBed;
  let workerListener: OncRpcTcpServer;
  let workerPort: number;
  let workerClient: OncRpcTcpClient;
  const credential = encodeAuthSys({ stamp: 1, machineName: 'test-client', uid: 0, gid: 0, gids: [] });

  beforeEach(async () => {
    bed = await NfsTestBed.start('directory');
    // What NfsServer hands every worker, cloned as a worker receives it.
    const options = structuredClone(threadServiceOptionsOf(bed.server.service, SharedPathHints.create(16)));
    const { createCallHandler } = (await import('../threads/nfs-thread-service.mjs')) as { createCallHandler: (options: unknown) => Promise<Dispatcher> };
    workerListener = new OncRpcTcpServer(await createCallHandler(options), { host: '127.0.0.1', port: 0 });
    workerPort = (await workerListener.listen()).port;
    workerClient = await OncRpcTcpClient.connect({ host: '127.0.0.1', port: workerPort });
  });
  afterEach(async () => {
    workerClient.close();
    await workerListener.close();
    await bed.stop();
  });

  const workerCall = <Name extends 'NFSPROC3_LOOKUP' | 'NFSPROC3_WRITE' | 'NFSPROC3_COMMIT' | 'NFSPROC3_READ'>(name: Name, argument: unknown): Promise<any> =>
    workerClient.call(nfs.NFS_PROGRAM, 3, procedureNamed(nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR, name) as never, argument as never, { credential });

  it('looks up under the root handle MOUNT gave out, writes with the export verifier, and the main thread reads the bytes', async () => {
    const root = await bed.rootHandle();
    const created = await bed.createFile(root, 'from-main');
    const lookup = await workerCall('NFSPROC3_LOOKUP', { what: { dir: { data: root }, name: 'from-main' } });
    expect(lookup.status).toBe(nfs.NFS3_OK);
    expect(Buffer.from(lookup.resok.object.data).equals(Buffer.from(created))).toBe(true);

    const content = randomBytes(20_000);
    const write = await workerCall('NFSPROC3_WRITE', { file: { data: created }, offset: 0n, count: content.length, stable: nfs.UNSTABLE, data: content });
    expect(write.status).toBe(nfs.NFS3_OK);
    const commit = await workerCall('NFSPROC3_COMMIT', { file: { data: created }, offset: 0n, count: 0 });
    expect(commit.status).toBe(nfs.NFS3_OK);
    const mainWrite = await bed.write(created, 20_000n, Buffer.from('tail'), nfs.UNSTABLE);
    // One verifier for the export: a WRITE on one thread and its COMMIT on another agree.
    for (const result of [write, commit, mainWrite]) expect(Buffer.from(result.resok.verf).equals(bed.server.service.writeVerifier)).toBe(true);
    expect((await bed.readAll(created)).equals(Buffer.concat([content, Buffer.from('tail')]))).toBe(true);
    const read = await workerCall('NFSPROC3_READ', { file: { data: created }, offset: 19_996n, count: 100 });
    expect(Buffer.from(read.resok.data).toString('latin1')).toBe(content.subarray(19_996).toString('latin1') + 'tail');
  });

  it('does not serve MOUNT (the main thread does)', async () => {
    const mountClient = await OncRpcTcpClient.connect({ host: '127.0.0.1', port: workerPort });
    try {
      const call = mountClient.call(mount.MOUNT_PROGRAM, 3, procedureNamed(mount.MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR, 'MOUNTPROC3_MNT') as never, '/export' as never, { credential });
      await expect(call).rejects.toThrow(/PROG_UNAVAIL|program unavailable/i);
    } finally {
      mountClient.close();
    }
  });
});
