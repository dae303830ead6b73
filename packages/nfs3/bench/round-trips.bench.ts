/**
 * GETATTR, LOOKUP and 64 KiB READ round trips over loopback TCP against NULL (the RPC floor on the
 * same connection, measured in the same run), one call outstanding, memory store.
 * Prints the median of 5 runs per procedure and its ratio to NULL.
 */
import { OncRpcTcpClient } from '@roce-rpc/oncrpc';
import { procedureNamed } from '@roce-rpc/xdr';
import { NfsServer, nfs3 } from '../dist/index.js';

const callsPerRun = 2000;
const runs = 5;

const server = new NfsServer({ host: '127.0.0.1', port: 0, mountPort: 0 });
const { port } = await server.start();
const client = await OncRpcTcpClient.connect({ host: '127.0.0.1', port });
const v3 = nfs3.NFS_PROGRAM_NFS_V3_DESCRIPTOR;
const root = server.service.options.store.rootHandle;
const created = await client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_CREATE'), {
  where: { dir: { data: root }, name: 'bench' },
  how: { mode: nfs3.GUARDED, obj_attributes: { mode: { set_it: false }, uid: { set_it: false }, gid: { set_it: false }, size: { set_it: false }, atime: { set_it: 0 }, mtime: { set_it: 0 } } },
});
if (created.status !== 0 || !created.resok.obj.handle_follows) throw new Error('CREATE failed');
const file = created.resok.obj.handle.data;
await client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_WRITE'), { file: { data: file }, offset: 0n, count: 65536, stable: 2, data: Buffer.alloc(65536, 1) });

const cases: Record<string, () => Promise<unknown>> = {
  NULL: () => client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_NULL'), undefined),
  GETATTR: () => client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_GETATTR'), { object: { data: file } }),
  LOOKUP: () => client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_LOOKUP'), { what: { dir: { data: root }, name: 'bench' } }),
  'READ 64 KiB': () => client.call(nfs3.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_READ'), { file: { data: file }, offset: 0n, count: 65536 }),
};

const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results: Record<string, number> = {};
for (const [name, call] of Object.entries(cases)) {
  const perRun: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const start = process.hrtime.bigint();
    for (let index = 0; index < callsPerRun; index += 1) await call();
    perRun.push(Number(process.hrtime.bigint() - start) / 1000 / callsPerRun);
  }
  results[name] = median(perRun);
}
for (const [name, microseconds] of Object.entries(results)) {
  console.log(`${name.padEnd(12)} median ${microseconds.toFixed(1)} µs/call  ratio to NULL ${(microseconds / results.NULL!).toFixed(2)}`);
}
client.close();
await server.close();
