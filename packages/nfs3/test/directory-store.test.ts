import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryStore, MemoryStore } from '../src/index.js';
import { NfsTestBed, nfs, noAttributes } from './helpers.js';

describe.each([false, true])('directory store (blocking system calls: %s): handles across restarts, and nothing escapes the export root', (blockingCalls) => {
  let bed: NfsTestBed;
  let root: Uint8Array;
  let outside: string;

  beforeEach(async () => {
    bed = await NfsTestBed.start('directory', {}, blockingCalls);
    root = await bed.rootHandle();
    outside = await mkdtemp(join(tmpdir(), 'nfs3-outside-'));
  });
  afterEach(async () => {
    await bed.stop();
    await rm(outside, { recursive: true, force: true });
  });

  it('a handle from before a restart still names the same file, found by walking the export', async () => {
    const deep = await bed.mkdir(await bed.mkdir(root, 'a'), 'b');
    const file = await bed.createFile(deep, 'kept');
    await bed.write(file, 0n, Buffer.from('survives restarts'));
    const before = await bed.call('NFSPROC3_GETATTR', { object: { data: file } });
    await bed.restart();
    expect(Buffer.from(await bed.rootHandle()).equals(Buffer.from(root))).toBe(true);
    const after = await bed.call('NFSPROC3_GETATTR', { object: { data: file } });
    expect(after.status).toBe(nfs.NFS3_OK);
    if (before.status === nfs.NFS3_OK && after.status === nfs.NFS3_OK) expect(after.resok.obj_attributes.fileid).toBe(before.resok.obj_attributes.fileid);
    expect((await bed.readAll(file)).toString()).toBe('survives restarts');
    // Moved on the host while the server was down: found again by its inode.
    await bed.shutdown();
    const { rename } = await import('node:fs/promises');
    await rename(join(bed.directory!, 'a', 'b', 'kept'), join(bed.directory!, 'a', 'moved'));
    await bed.boot();
    expect((await bed.readAll(file)).toString()).toBe('survives restarts');
  });

  it('names are bytes: non-ASCII names land on the host byte for byte as the client sent them, and are found again', async () => {
    // The test client sends strings as UTF-8; the server takes names as bytes (latin1), so its paths here are not ASCII.
    const directory = await bed.mkdir(root, 'd\u00e9j\u00e0');
    const file = await bed.createFile(directory, 'caf\u00e9');
    await bed.write(file, 0n, Buffer.from('non-ascii path'));
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(bed.directory!, { encoding: 'buffer' })).toContainEqual(Buffer.from('d\u00e9j\u00e0', 'utf8'));
    expect(await readFile(Buffer.from(`${bed.directory!}/d\u00e9j\u00e0/caf\u00e9`, 'utf8'), 'utf8')).toBe('non-ascii path');
    expect(Buffer.from(await bed.lookup(directory, 'caf\u00e9')).equals(Buffer.from(file))).toBe(true);
    await bed.restart(); // its handle, under a non-ASCII directory, found again by walking the export
    expect((await bed.readAll(file)).toString()).toBe('non-ascii path');
  });

  it('a store with another secret calls old handles BADHANDLE; a removed file is STALE after a restart', async () => {
    const file = await bed.createFile(root, 'f');
    await bed.restart();
    await bed.call('NFSPROC3_REMOVE', { object: { dir: { data: root }, name: 'f' } });
    expect((await bed.call('NFSPROC3_GETATTR', { object: { data: file } })).status).toBe(nfs.NFS3ERR_STALE);
    const other = await DirectoryStore.open({ root: bed.directory!, handleSecret: randomBytes(32) });
    await expect(other.getAttributes(root)).rejects.toMatchObject({ status: nfs.NFS3ERR_BADHANDLE });
  });

  it('symlinks pointing outward are served as symlinks only: never read, written, chmod-ed or walked through', async () => {
    const secretPath = join(outside, 'secret.txt');
    await writeFile(secretPath, 'outside data', { mode: 0o600 });
    await symlink(secretPath, join(bed.directory!, 'to-file'));
    await symlink(outside, join(bed.directory!, 'to-dir'));
    await symlink('../..', join(bed.directory!, 'up'));
    const toFile = await bed.lookup(root, 'to-file');
    const toDir = await bed.lookup(root, 'to-dir');
    const attributes = await bed.call('NFSPROC3_GETATTR', { object: { data: toFile } });
    if (attributes.status === nfs.NFS3_OK) expect(attributes.resok.obj_attributes.type).toBe(nfs.NF3LNK);
    const readlink = await bed.call('NFSPROC3_READLINK', { symlink: { data: toFile } });
    if (readlink.status === nfs.NFS3_OK) expect(readlink.resok.data).toBe(secretPath);
    expect((await bed.call('NFSPROC3_READ', { file: { data: toFile }, offset: 0n, count: 100 })).status).toBe(nfs.NFS3ERR_INVAL);
    expect((await bed.write(toFile, 0n, Buffer.from('overwritten'))).status).toBe(nfs.NFS3ERR_INVAL);
    await bed.call('NFSPROC3_SETATTR', { object: { data: toFile }, new_attributes: { ...noAttributes, mode: { set_it: true, mode: 0o666 } }, guard: { check: false } });
    const truncate = await bed.call('NFSPROC3_SETATTR', { object: { data: toFile }, new_attributes: { ...noAttributes, size: { set_it: true, size: 0n } }, guard: { check: false } });
    expect(truncate.status).toBe(nfs.NFS3ERR_INVAL);
    expect((await bed.call('NFSPROC3_LOOKUP', { what: { dir: { data: toDir }, name: 'secret.txt' } })).status).toBe(nfs.NFS3ERR_NOTDIR);
    expect((await bed.call('NFSPROC3_LOOKUP', { what: { dir: { data: await bed.lookup(root, 'up') }, name: 'etc' } })).status).toBe(nfs.NFS3ERR_NOTDIR);
    const created = await bed.call('NFSPROC3_CREATE', { where: { dir: { data: toDir }, name: 'planted' }, how: { mode: nfs.UNCHECKED, obj_attributes: noAttributes } });
    expect(created.status).toBe(nfs.NFS3ERR_NOTDIR);
    expect(await readFile(secretPath, 'utf8')).toBe('outside data');
    expect((await stat(secretPath)).mode & 0o777).toBe(0o600);
    // '..' of the root is the root, however often it is asked for.
    expect(Buffer.from(await bed.lookup(await bed.lookup(root, '..'), '..')).equals(Buffer.from(root))).toBe(true);
  });

  it('store options are validated with messages naming the field', async () => {
    expect(() => new MemoryStore({ maxBytes: -1 })).toThrow(expect.objectContaining({ code: 'ERR_NFS3_INVALID_OPTION', message: expect.stringContaining('maxBytes') }));
    expect(() => new MemoryStore({ handleSecret: Buffer.alloc(8) })).toThrow(expect.objectContaining({ code: 'ERR_NFS3_STORE_SECRET' }));
    await expect(DirectoryStore.open({ root: 'relative', handleSecret: randomBytes(32) })).rejects.toMatchObject({ code: 'ERR_NFS3_INVALID_OPTION' });
    await expect(DirectoryStore.open({ root: bed.directory!, handleSecret: Buffer.alloc(4) })).rejects.toMatchObject({ code: 'ERR_NFS3_STORE_SECRET' });
  });

  it('reuseReadBuffer: each READ answers its own bytes in one kept buffer; refused without blocking calls', async () => {
    const options = { root: bed.directory!, handleSecret: randomBytes(32) };
    await expect(DirectoryStore.open({ ...options, reuseReadBuffer: true })).rejects.toMatchObject({ code: 'ERR_NFS3_INVALID_OPTION', message: expect.stringContaining('reuseReadBuffer') });
    await expect(DirectoryStore.open({ ...options, blockingCalls: true, reuseReadBuffer: 1 as unknown as boolean })).rejects.toMatchObject({ code: 'ERR_NFS3_INVALID_OPTION' });
    await writeFile(join(bed.directory!, 'long'), Buffer.alloc(5000, 'a'));
    await writeFile(join(bed.directory!, 'short'), 'bbb');
    const store = await DirectoryStore.open({ ...options, blockingCalls: true, reuseReadBuffer: true });
    const handleOf = async (name: string) => (await store.lookup(store.rootHandle, name)).object!.handle;
    const long = await store.read(await handleOf('long'), 0, 4096);
    expect(long.data.toString()).toBe('a'.repeat(4096));
    expect(long.eof).toBe(false);
    const short = await store.read(await handleOf('short'), 1, 4096);
    expect(short.data.toString()).toBe('bb');
    expect(short.eof).toBe(true);
    // The same memory: the first answer is valid only until the next READ (the caller's contract).
    expect(short.data.buffer).toBe(long.data.buffer);
    expect(Buffer.from(long.data.subarray(0, 2)).toString()).toBe('bb');
    // Growing past the kept buffer takes a larger one.
    await writeFile(join(bed.directory!, 'longer'), Buffer.alloc(9000, 'c'));
    const longer = await store.read(await handleOf('longer'), 0, 9000);
    expect(longer.data.equals(Buffer.alloc(9000, 'c'))).toBe(true);
    expect((await store.read(await handleOf('long'), 4000, 4096)).data.equals(Buffer.alloc(1000, 'a'))).toBe(true);
  });

  it('a memory store handle is STALE in a new instance with the same secret (the memory store answers at once: it throws)', () => {
    const secret = randomBytes(32);
    const first = new MemoryStore({ handleSecret: secret });
    const second = new MemoryStore({ handleSecret: secret });
    expect(() => second.getAttributes(first.rootHandle)).toThrow(expect.objectContaining({ status: nfs.NFS3ERR_STALE }));
  });
});
