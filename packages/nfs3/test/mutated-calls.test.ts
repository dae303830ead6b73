/**
 * Valid NFSv3 calls with bits flipped, words overwritten by boundary values, or cut short, fed to
 * the dispatcher: every one gets an NFS status or GARBAGE_ARGS, none makes a handler throw
 * (SYSTEM_ERR), and on the directory store nothing appears outside the export.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dispatcher, authNone, encodeAuthSys, writeCallHeader, type RpcTransportContext } from '@roce-rpc/oncrpc';
import { XdrWriter } from '@roce-rpc/xdr';
import { describe, expect, it } from 'vitest';
import { DirectoryStore, MemoryStore, createNfsService, type NfsStore } from '../src/index.js';
import { nfs, noAttributes, type StoreKindName } from './helpers.js';

const casesPerStore = 10_000;
const boundaryWords = [0, 1, 0xff, 0x100, 0x7fffffff, 0x80000000, 0xffffffff, 64, 65, 255, 256];
const context: RpcTransportContext = { transport: 'test' };
const credential = encodeAuthSys({ stamp: 1, machineName: 'fuzz', uid: 0, gid: 0, gids: [] });

/** A small deterministic PRNG (mulberry32) so a failure replays. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

async function validCalls(store: NfsStore): Promise<{ procedure: string; argument: unknown }[]> {
  const root = store.rootHandle;
  const owner = { uid: 0, gid: 0 };
  const file = (await store.create(root, 'file', { kind: 'file', mode: 'unchecked', attributes: noAttributes }, owner)).object.handle;
  await store.write(file, 0, Buffer.from('contents'), 'file');
  const directory = (await store.create(root, 'dir', { kind: 'directory', attributes: noAttributes }, owner)).object.handle;
  const link = (await store.create(root, 'link', { kind: 'symlink', attributes: noAttributes, target: '../../etc' }, owner)).object.handle;
  const where = { dir: { data: directory }, name: 'new' };
  const setAll: nfs.sattr3 = {
    mode: { set_it: true, mode: 0o644 }, uid: { set_it: true, uid: 0 }, gid: { set_it: true, gid: 0 }, size: { set_it: true, size: 4n },
    atime: { set_it: nfs.SET_TO_CLIENT_TIME, atime: { seconds: 1, nseconds: 2 } }, mtime: { set_it: nfs.SET_TO_SERVER_TIME },
  };
  return [
    { procedure: 'NFSPROC3_GETATTR', argument: { object: { data: file } } },
    { procedure: 'NFSPROC3_SETATTR', argument: { object: { data: file }, new_attributes: setAll, guard: { check: false } } },
    { procedure: 'NFSPROC3_LOOKUP', argument: { what: { dir: { data: root }, name: 'file' } } },
    { procedure: 'NFSPROC3_ACCESS', argument: { object: { data: directory }, access: 0x3f } },
    { procedure: 'NFSPROC3_READLINK', argument: { symlink: { data: link } } },
    { procedure: 'NFSPROC3_READ', argument: { file: { data: file }, offset: 0n, count: 4096 } },
    { procedure: 'NFSPROC3_WRITE', argument: { file: { data: file }, offset: 2n, count: 5, stable: nfs.UNSTABLE, data: Buffer.from('hello') } },
    { procedure: 'NFSPROC3_CREATE', argument: { where, how: { mode: nfs.GUARDED, obj_attributes: setAll } } },
    { procedure: 'NFSPROC3_CREATE', argument: { where, how: { mode: nfs.EXCLUSIVE, verf: Buffer.from('verifier') } } },
    { procedure: 'NFSPROC3_MKDIR', argument: { where, attributes: noAttributes } },
    { procedure: 'NFSPROC3_SYMLINK', argument: { where, symlink: { symlink_attributes: noAttributes, symlink_data: '/etc/passwd' } } },
    { procedure: 'NFSPROC3_REMOVE', argument: { object: where } },
    { procedure: 'NFSPROC3_RMDIR', argument: { object: where } },
    { procedure: 'NFSPROC3_RENAME', argument: { from: { dir: { data: root }, name: 'file' }, to: where } },
    { procedure: 'NFSPROC3_LINK', argument: { file: { data: file }, link: where } },
    { procedure: 'NFSPROC3_READDIR', argument: { dir: { data: root }, cookie: 0n, cookieverf: Buffer.alloc(8), count: 4096 } },
    { procedure: 'NFSPROC3_READDIRPLUS', argument: { dir: { data: root }, cookie: 0n, cookieverf: Buffer.alloc(8), dircount: 1024, maxcount: 8192 } },
    { procedure: 'NFSPROC3_FSSTAT', argument: { fsroot: { data: root } } },
    { procedure: 'NFSPROC3_FSINFO', argument: { fsroot: { data: root } } },
    { procedure: 'NFSPROC3_PATHCONF', argument: { object: { data: root } } },
    { procedure: 'NFSPROC3_COMMIT', argument: { file: { data: file }, offset: 0n, count: 0 } },
  ];
}

function encodeCall(procedureName: string, argument: unknown): { bytes: Buffer; argumentOffset: number } {
  const procedure = nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR.procedures.find((entry) => entry.name === procedureName)!;
  const writer = new XdrWriter({ stringEncoding: 'latin1' });
  writeCallHeader(writer, { xid: 7, program: nfs.NFS_PROGRAM, version: 3, procedure: procedure.procedure, credential, verifier: authNone });
  const argumentOffset = writer.byteLength;
  (procedure.argument as { encode(writer: XdrWriter, value: unknown): void }).encode(writer, argument);
  return { bytes: writer.finish().toBuffer(), argumentOffset };
}

function mutate(bytes: Buffer, argumentOffset: number, next: () => number): Buffer {
  const copy = Buffer.from(bytes);
  const span = copy.length - argumentOffset;
  const choice = next();
  if (choice < 0.4) {
    for (let flips = 1 + Math.floor(next() * 3); flips > 0; flips -= 1) {
      const index = argumentOffset + Math.floor(next() * span);
      copy[index] = copy[index]! ^ (1 << Math.floor(next() * 8));
    }
  } else if (choice < 0.85) {
    const word = argumentOffset + 4 * Math.floor((next() * span) / 4);
    if (word + 4 <= copy.length) copy.writeUInt32BE(boundaryWords[Math.floor(next() * boundaryWords.length)]!, word);
  } else {
    return copy.subarray(0, argumentOffset + Math.floor(next() * span));
  }
  return copy;
}

describe.each<StoreKindName>(['memory', 'directory'])('mutated NFSv3 calls on the %s store', (kind) => {
  it(`${casesPerStore} calls: no handler throws, nothing is written outside the export`, async () => {
    const parent = await mkdtemp(join(tmpdir(), 'nfs3-fuzz-'));
    const exportRoot = join(parent, 'export');
    await mkdir(exportRoot);
    try {
      const store = kind === 'memory' ? new MemoryStore() : await DirectoryStore.open({ root: exportRoot, handleSecret: randomBytes(32) });
      const handlerErrors: unknown[] = [];
      const dispatcher = new Dispatcher({ stringEncoding: 'latin1', onHandlerError: (error) => handlerErrors.push(error) });
      createNfsService(dispatcher, { store });
      const calls = await validCalls(store);
      const next = random(0x5eed + (kind === 'memory' ? 0 : 1));
      const kinds = new Map<string, number>();
      for (let index = 0; index < casesPerStore; index += 1) {
        const call = calls[Math.floor(next() * calls.length)]!;
        const { bytes, argumentOffset } = encodeCall(call.procedure, call.argument);
        const reply = await dispatcher.handleCall(mutate(bytes, argumentOffset, next), context);
        if (reply !== null) kinds.set(reply.kind, (kinds.get(reply.kind) ?? 0) + 1);
      }
      expect(handlerErrors).toEqual([]);
      expect(kinds.get('SYSTEM_ERR') ?? 0).toBe(0);
      expect(kinds.get('SUCCESS') ?? 0).toBeGreaterThan(casesPerStore / 4);
      expect(kinds.get('GARBAGE_ARGS') ?? 0).toBeGreaterThan(0);
      expect(await readdir(parent)).toEqual(['export']);
      await store.close();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

describe('the memory store answers a small-file workload without a promise', () => {
  it('GETATTR, ACCESS, SETATTR, LOOKUP, CREATE, WRITE, COMMIT, REMOVE: the dispatcher returns each reply at once, and the calls took effect', async () => {
    const store = new MemoryStore();
    const dispatcher = new Dispatcher({ stringEncoding: 'latin1' });
    const service = createNfsService(dispatcher, { store });
    const root = store.rootHandle;
    const file = (await store.create(root, 'file', { kind: 'file', mode: 'unchecked', attributes: noAttributes }, { uid: 0, gid: 0 })).object.handle;
    const immediate: [string, unknown][] = [
      ['NFSPROC3_GETATTR', { object: { data: file } }],
      ['NFSPROC3_ACCESS', { object: { data: file }, access: 0x3f }],
      ['NFSPROC3_SETATTR', { object: { data: file }, new_attributes: { ...noAttributes, mode: { set_it: true, mode: 0o600 } }, guard: { check: false } }],
      ['NFSPROC3_LOOKUP', { what: { dir: { data: root }, name: 'file' } }],
      ['NFSPROC3_LOOKUP', { what: { dir: { data: root }, name: 'absent' } }],
      ['NFSPROC3_CREATE', { where: { dir: { data: root }, name: 'created' }, how: { mode: nfs.UNCHECKED, obj_attributes: noAttributes } }],
      ['NFSPROC3_WRITE', { file: { data: file }, offset: 0n, count: 5, stable: nfs.FILE_SYNC, data: Buffer.from('bytes') }],
      ['NFSPROC3_COMMIT', { file: { data: file }, offset: 0n, count: 0 }],
      ['NFSPROC3_REMOVE', { object: { dir: { data: root }, name: 'created' } }],
      // A failure with no attributes to fetch afterwards answers at once too.
      ['NFSPROC3_GETATTR', { object: { data: Buffer.alloc(32) } }],
    ];
    for (const [procedure, argument] of immediate) {
      const reply = dispatcher.handleCall(encodeCall(procedure, argument).bytes, context);
      expect(reply instanceof Promise, procedure).toBe(false);
      expect(reply?.kind, procedure).toBe('SUCCESS');
    }
    const attributes = await store.getAttributes(file);
    expect([attributes.mode, attributes.size]).toEqual([0o600, 5n]);
    expect((await store.lookup(root, 'created')).object).toBeNull();
    expect(service.metrics.calls).toMatchObject({ NFSPROC3_GETATTR: 2, NFSPROC3_LOOKUP: 2, NFSPROC3_CREATE: 1, NFSPROC3_REMOVE: 1 });
    expect(service.metrics.statuses).toMatchObject({ NFS3ERR_NOENT: 1, NFS3ERR_BADHANDLE: 1 });
  });
});
