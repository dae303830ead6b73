/**
 * Per-RPC cost on the host: NFS procedures over loopback TCP against NULL (the RPC floor on the
 * same connection), one call outstanding, memory store (NFS3_BENCH_STORE=directory for a host
 * directory). Rounds interleave the procedures, so the host's changing load hits them alike;
 * prints the median µs per call over the rounds and its ratio to NULL's median.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OncRpcTcpClient } from '@roce-rpc/oncrpc';
import { procedureNamed } from '@roce-rpc/xdr';
import { DirectoryStore, NfsServer, nfs3 } from '../dist/index.js';

const callsPerRound = Number(process.env.NFS3_BENCH_CALLS ?? 1000);
const rounds = Number(process.env.NFS3_BENCH_ROUNDS ?? 7);
const storeKind = process.env.NFS3_BENCH_STORE ?? 'memory';

const directory = storeKind === 'directory' ? await mkdtemp(join(tmpdir(), 'nfs3-bench-')) : undefined;
const store = directory === undefined ? undefined : await DirectoryStore.open({ root: directory, handleSecret: Buffer.alloc(32, 1) });
const server = new NfsServer({ host: '127.0.0.1', port: 0, mountPort: 0, store });
const { port } = await server.start();
const client = await OncRpcTcpClient.connect({ host: '127.0.0.1', port });
const v3 = nfs3.NFS_PROGRAM_NFS_V3_DESCRIPTOR;
const call = (name: string, argument: unknown): Promise<any> => client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, name), argument as never);
const root = server.service.options.store.rootHandle;
const noAttributes = { mode: { set_it: false }, uid: { set_it: false }, gid: { set_it: false }, size: { set_it: false }, atime: { set_it: 0 }, mtime: { set_it: 0 } };

const created = await call('NFSPROC3_CREATE', { where: { dir: { data: root }, name: 'bench' }, how: { mode: nfs3.GUARDED, obj_attributes: noAttributes } });
if (created.status !== 0 || !created.resok.obj.handle_follows) throw new Error('CREATE failed');
const file = created.resok.obj.handle.data;
await call('NFSPROC3_WRITE', { file: { data: file }, offset: 0n, count: 65536, stable: 2, data: Buffer.alloc(65536, 1) });
let createdNames = 0;

const cases: Record<string, () => Promise<unknown>> = {
  NULL: () => call('NFSPROC3_NULL', undefined),
  GETATTR: () => call('NFSPROC3_GETATTR', { object: { data: file } }),
  ACCESS: () => call('NFSPROC3_ACCESS', { object: { data: file }, access: 0x1f }),
  LOOKUP: () => call('NFSPROC3_LOOKUP', { what: { dir: { data: root }, name: 'bench' } }),
  'LOOKUP NOENT': () => call('NFSPROC3_LOOKUP', { what: { dir: { data: root }, name: 'absent' } }),
  SETATTR: () => call('NFSPROC3_SETATTR', { object: { data: file }, new_attributes: { ...noAttributes, mtime: { set_it: 2, mtime: { seconds: 1, nseconds: 2 } } }, guard: { check: false } }),
  // One CREATE and one REMOVE: the µs are for the pair.
  'CREATE+REMOVE': async () => {
    const name = `f${createdNames++}`;
    await call('NFSPROC3_CREATE', { where: { dir: { data: root }, name }, how: { mode: nfs3.UNCHECKED, obj_attributes: { ...noAttributes, mode: { set_it: true, mode: 0o644 } } } });
    await call('NFSPROC3_REMOVE', { object: { dir: { data: root }, name } });
  },
  'WRITE 4 KiB': () => call('NFSPROC3_WRITE', { file: { data: file }, offset: 0n, count: 4096, stable: 0, data: Buffer.alloc(4096, 2) }),
  'READ 64 KiB': () => call('NFSPROC3_READ', { file: { data: file }, offset: 0n, count: 65536 }),
};

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const perRound = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
for (let round = 0; round < rounds; round += 1) {
  for (const [name, run] of Object.entries(cases)) {
    const start = process.hrtime.bigint();
    for (let index = 0; index < callsPerRound; index += 1) await run();
    perRound.get(name)!.push(Number(process.hrtime.bigint() - start) / 1000 / callsPerRound);
  }
}
const nullMedian = median(perRound.get('NULL')!);
console.log(`nfs3 round trips, ${storeKind} store, median of ${rounds} rounds x ${callsPerRound} calls`);
for (const [name, values] of perRound) {
  console.log(`${name.padEnd(14)} median ${median(values).toFixed(1).padStart(7)} µs/call  ratio to NULL ${(median(values) / nullMedian).toFixed(2)}`);
}
client.close();
await server.close();
if (directory !== undefined) await rm(directory, { recursive: true, force: true });
