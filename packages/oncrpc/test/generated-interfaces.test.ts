/**
 * Services built from xdrgen descriptor tables: the committed rpcbind module is
 * what the compiler produces today, and an NFSv3 READ served from the generated
 * RFC 1813 descriptors carries 1 MiB over TCP without the dispatcher copying it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { XdrWriter, compileFile } from '@roce-rpc/xdr';
import { Dispatcher, OncRpcTcpClient, OncRpcTcpServer, authNone, writeCallHeader, type RpcReply, type TcpCallContext } from '../src/index.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const definitions = join(packageDir, '..', 'xdr', 'defs');

test('the committed rpcbind protocol module matches the compiler output', () => {
  const fresh = compileFile(join(definitions, 'rpcbind.x')).code;
  const committed = readFileSync(join(packageDir, 'src', 'rpcbind', 'rpcbind-protocol.generated.ts'), 'utf8');
  expect(committed).toBe(fresh);
});

describe('NFSv3 READ from the generated descriptors, over TCP', () => {
  let nfs: Record<string, any>;
  let server: OncRpcTcpServer;
  let client: OncRpcTcpClient;
  let dispatcher: Dispatcher<TcpCallContext>;
  const file = Buffer.alloc(1 << 20);
  for (let index = 0; index < file.length; index += 4) file.writeUInt32BE(index, index);

  beforeAll(async () => {
    const generated = join(packageDir, 'test', '.generated');
    mkdirSync(generated, { recursive: true });
    writeFileSync(join(generated, 'nfs3.ts'), compileFile(join(definitions, 'nfs3.x')).code);
    nfs = await import(join(generated, 'nfs3.ts'));
    dispatcher = new Dispatcher<TcpCallContext>();
    dispatcher.addVersion(nfs.NFS_PROGRAM, nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR, {
      NFSPROC3_READ: (argument: any) => {
        const offset = Number(argument.offset);
        const data = file.subarray(offset, offset + argument.count);
        return {
          status: nfs.NFS3_OK,
          resok: { file_attributes: { attributes_follow: false }, count: data.length, eof: offset + data.length >= file.length, data },
        };
      },
    });
    server = new OncRpcTcpServer(dispatcher);
    const { port } = await server.listen();
    client = await OncRpcTcpClient.connect({ port });
  });

  afterAll(async () => {
    await client.close();
    await server.close();
  });

  test('the READ data leaves the dispatcher as a reference to the file buffer', () => {
    const read = nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR.procedures[6];
    const writer = new XdrWriter();
    writeCallHeader(writer, { xid: 1, program: nfs.NFS_PROGRAM, version: 3, procedure: 6, credential: authNone, verifier: authNone });
    read.argument.encode(writer, { file: { data: Buffer.from('fh') }, offset: 0n, count: 65536 });
    const reply = dispatcher.handleCall(writer.finish().toBuffer(), { transport: 'tcp' }) as RpcReply;
    expect(reply.procedure?.ddp.result).toBe(true);
    expect(reply.message.bulk[0]!.data.buffer).toBe(file.buffer);
  });

  test('a client READ of 1 MiB gets the file bytes back', async () => {
    const read = nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR.procedures[6];
    const result: any = await client.call(nfs.NFS_PROGRAM, 3, read, { file: { data: Buffer.from('fh') }, offset: 0n, count: file.length });
    expect(result.status).toBe(0);
    expect(result.resok.eof).toBe(true);
    expect(Buffer.compare(result.resok.data, file)).toBe(0);
  });

  test('unimplemented NFS procedures answer PROC_UNAVAIL, NULL answers', async () => {
    const [nullProcedure, getattr] = nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR.procedures;
    await expect(client.call(nfs.NFS_PROGRAM, 3, nullProcedure, undefined)).resolves.toBeUndefined();
    await expect(client.call(nfs.NFS_PROGRAM, 3, getattr, { object: { data: Buffer.alloc(8) } })).rejects.toMatchObject({
      code: 'ERR_ONCRPC_PROC_UNAVAIL',
    });
  });
});
