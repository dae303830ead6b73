/**
 * A real TCP client against a real NfsServer: every test goes over the wire through the
 * generated descriptors, as the kernel client would.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OncRpcTcpClient, encodeAuthSys } from '@roce-rpc/oncrpc';
import { procedureNamed, type OncRpcVersionDescriptor } from '@roce-rpc/xdr';
import { DirectoryStore, MemoryStore, NfsServer, type NfsStore, type NfsServerOptions } from '../src/index.js';
import * as mount from '../src/protocol/mount3.generated.js';
import * as nfs from '../src/protocol/nfs3.generated.js';

export type StoreKindName = 'memory' | 'directory';

type Procedures<V extends OncRpcVersionDescriptor> = V['procedures'][number];
type NfsProcedure = Procedures<typeof nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR>;
type MountProcedure = Procedures<typeof mount.MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR>;
type ArgumentOf<P> = P extends { argument: { decode(reader: never): infer A } } ? A : never;
type ResultOf<P> = P extends { result: { decode(reader: never): infer R } } ? R : never;

const rootCredential = encodeAuthSys({ stamp: 1, machineName: 'test-client', uid: 0, gid: 0, gids: [] });

export class NfsTestBed {
  server!: NfsServer;
  client!: OncRpcTcpClient;
  mountClient!: OncRpcTcpClient;
  store!: NfsStore;
  readonly secret = randomBytes(32);

  private constructor(
    readonly kind: StoreKindName,
    readonly directory: string | null,
    private readonly serverOptions: NfsServerOptions,
    private readonly blockingCalls: boolean,
  ) {}

  /** `blockingCalls`: the directory store makes its system calls on the serving thread (as on worker threads). */
  static async start(kind: StoreKindName, serverOptions: NfsServerOptions = {}, blockingCalls = false): Promise<NfsTestBed> {
    const directory = kind === 'directory' ? await mkdtemp(join(tmpdir(), 'nfs3-export-')) : null;
    const bed = new NfsTestBed(kind, directory, serverOptions, blockingCalls);
    await bed.boot();
    return bed;
  }

  /** (Re)starts the server on a fresh store over the same directory and secret. */
  async boot(): Promise<void> {
    this.store = this.directory === null
      ? new MemoryStore({ handleSecret: this.secret })
      : await DirectoryStore.open({ root: this.directory, handleSecret: this.secret, blockingCalls: this.blockingCalls });
    this.server = new NfsServer({ ...this.serverOptions, store: this.store, host: '127.0.0.1', port: 0, mountPort: 0 });
    const { port, mountPort } = await this.server.start();
    this.client = await OncRpcTcpClient.connect({ host: '127.0.0.1', port });
    this.mountClient = await OncRpcTcpClient.connect({ host: '127.0.0.1', port: mountPort });
  }

  async restart(): Promise<void> {
    await this.shutdown();
    await this.boot();
  }

  async shutdown(): Promise<void> {
    this.client.close();
    this.mountClient.close();
    await this.server.close();
  }

  async stop(): Promise<void> {
    await this.shutdown();
    if (this.directory !== null) await rm(this.directory, { recursive: true, force: true });
  }

  call<Name extends NfsProcedure['name']>(name: Name, argument: ArgumentOf<Extract<NfsProcedure, { name: Name }>>): Promise<ResultOf<Extract<NfsProcedure, { name: Name }>>> {
    const procedure = procedureNamed(nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR, name);
    return this.client.call(nfs.NFS_PROGRAM, 3, procedure as never, argument as never, { credential: rootCredential }) as never;
  }

  callMount<Name extends MountProcedure['name']>(name: Name, argument: ArgumentOf<Extract<MountProcedure, { name: Name }>>): Promise<ResultOf<Extract<MountProcedure, { name: Name }>>> {
    const procedure = procedureNamed(mount.MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR, name);
    return this.mountClient.call(mount.MOUNT_PROGRAM, 3, procedure as never, argument as never, { credential: rootCredential }) as never;
  }

  async rootHandle(): Promise<Uint8Array> {
    const result = await this.callMount('MOUNTPROC3_MNT', '/export');
    if (result.fhs_status !== mount.MNT3_OK) throw new Error(`MNT failed: ${result.fhs_status}`);
    return result.mountinfo.fhandle;
  }

  /** LOOKUP that must succeed. */
  async lookup(directory: Uint8Array, name: string): Promise<Uint8Array> {
    const result = await this.call('NFSPROC3_LOOKUP', { what: { dir: { data: directory }, name } });
    if (result.status !== nfs.NFS3_OK) throw new Error(`LOOKUP ${name}: ${result.status}`);
    return result.resok.object.data;
  }

  /** CREATE (unchecked) that must succeed. */
  async createFile(directory: Uint8Array, name: string, mode = 0o644): Promise<Uint8Array> {
    const result = await this.call('NFSPROC3_CREATE', {
      where: { dir: { data: directory }, name },
      how: { mode: nfs.UNCHECKED, obj_attributes: { ...noAttributes, mode: { set_it: true, mode } } },
    });
    if (result.status !== nfs.NFS3_OK || !result.resok.obj.handle_follows) throw new Error(`CREATE ${name}: ${result.status}`);
    return result.resok.obj.handle.data;
  }

  async mkdir(directory: Uint8Array, name: string): Promise<Uint8Array> {
    const result = await this.call('NFSPROC3_MKDIR', { where: { dir: { data: directory }, name }, attributes: noAttributes });
    if (result.status !== nfs.NFS3_OK || !result.resok.obj.handle_follows) throw new Error(`MKDIR ${name}: ${result.status}`);
    return result.resok.obj.handle.data;
  }

  async write(file: Uint8Array, offset: bigint, data: Buffer, stable: nfs.stable_how = nfs.FILE_SYNC): Promise<nfs.WRITE3res> {
    return this.call('NFSPROC3_WRITE', { file: { data: file }, offset, count: data.length, stable, data });
  }

  async readAll(file: Uint8Array, chunk = 64 * 1024): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let offset = 0n; ; ) {
      const result = await this.call('NFSPROC3_READ', { file: { data: file }, offset, count: chunk });
      if (result.status !== nfs.NFS3_OK) throw new Error(`READ: ${result.status}`);
      parts.push(Buffer.from(result.resok.data));
      offset += BigInt(result.resok.count);
      if (result.resok.eof) return Buffer.concat(parts);
    }
  }

  /** Every name READDIR lists, following cookies across as many calls as the count forces. */
  async listNames(directory: Uint8Array, count = 4096): Promise<string[]> {
    const names: string[] = [];
    let cookie = 0n;
    let cookieverf: Uint8Array = Buffer.alloc(8);
    for (let calls = 0; calls < 10_000; calls += 1) {
      const result = await this.call('NFSPROC3_READDIR', { dir: { data: directory }, cookie, cookieverf, count });
      if (result.status !== nfs.NFS3_OK) throw new Error(`READDIR: ${result.status}`);
      for (let entry = result.resok.reply.entries; entry !== null; entry = entry.nextentry) {
        names.push(entry.name);
        cookie = entry.cookie;
      }
      cookieverf = result.resok.cookieverf;
      if (result.resok.reply.eof) return names;
    }
    throw new Error('READDIR never reached eof');
  }
}

export const noAttributes: nfs.sattr3 = {
  mode: { set_it: false },
  uid: { set_it: false },
  gid: { set_it: false },
  size: { set_it: false },
  atime: { set_it: nfs.DONT_CHANGE },
  mtime: { set_it: nfs.DONT_CHANGE },
};

export { mount, nfs };
