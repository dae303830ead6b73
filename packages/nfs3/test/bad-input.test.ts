import { defineProcedure } from '@roce-rpc/oncrpc';
import { xdrVariableOpaque } from '@roce-rpc/xdr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NfsTestBed, mount, nfs, noAttributes, type StoreKindName } from './helpers.js';

describe.each<[StoreKindName, boolean]>([['memory', false], ['directory', false], ['directory', true]])('bad input on the %s store gets the NFS3ERR the RFC names (blocking system calls: %s)', (kind, blockingCalls) => {
  let bed: NfsTestBed;
  let root: Uint8Array;

  beforeEach(async () => {
    bed = await NfsTestBed.start(kind, {}, blockingCalls);
    root = await bed.rootHandle();
  });
  afterEach(async () => {
    await bed.stop();
  });

  it('handles of the wrong length, a forged MAC or another store kind are BADHANDLE; over 64 bytes is GARBAGE_ARGS', async () => {
    const forged = Buffer.from(root);
    forged[20] = (forged[20] ?? 0) ^ 1;
    const otherKind = Buffer.from(root);
    otherKind[1] = kind === 'memory' ? 2 : 1;
    for (const data of [Buffer.alloc(0), Buffer.alloc(4), forged, otherKind, Buffer.alloc(64)]) {
      expect((await bed.call('NFSPROC3_GETATTR', { object: { data } })).status).toBe(nfs.NFS3ERR_BADHANDLE);
    }
    // Our client will not encode it: send the same wire bytes through an opaque of a larger bound.
    const oversized = defineProcedure('GETATTR_OVERSIZED_HANDLE', 1, xdrVariableOpaque(1024), nfs.GETATTR3res_codec);
    await expect(bed.client.call(nfs.NFS_PROGRAM, 3, oversized, Buffer.alloc(65))).rejects.toMatchObject({ code: 'ERR_ONCRPC_GARBAGE_ARGS' });
  });

  it('a removed object is STALE for every procedure that takes its handle', async () => {
    const file = await bed.createFile(root, 'gone');
    await bed.call('NFSPROC3_REMOVE', { object: { dir: { data: root }, name: 'gone' } });
    expect((await bed.call('NFSPROC3_GETATTR', { object: { data: file } })).status).toBe(nfs.NFS3ERR_STALE);
    expect((await bed.call('NFSPROC3_READ', { file: { data: file }, offset: 0n, count: 10 })).status).toBe(nfs.NFS3ERR_STALE);
    expect((await bed.write(file, 0n, Buffer.from('x'))).status).toBe(nfs.NFS3ERR_STALE);
  });

  it('names with /, NUL, none or over 255 bytes are refused; . and .. cannot be created or removed', async () => {
    const lookup = (name: string) => bed.call('NFSPROC3_LOOKUP', { what: { dir: { data: root }, name } }).then((result) => result.status);
    const create = (name: string) =>
      bed.call('NFSPROC3_CREATE', { where: { dir: { data: root }, name }, how: { mode: nfs.UNCHECKED, obj_attributes: noAttributes } }).then((result) => result.status);
    expect(await lookup('a/b')).toBe(nfs.NFS3ERR_ACCES);
    expect(await lookup('a\0b')).toBe(nfs.NFS3ERR_ACCES);
    expect(await lookup('')).toBe(nfs.NFS3ERR_ACCES);
    expect(await lookup('n'.repeat(256))).toBe(nfs.NFS3ERR_NAMETOOLONG);
    expect(await create('../escape')).toBe(nfs.NFS3ERR_ACCES);
    expect(await create('n'.repeat(256))).toBe(nfs.NFS3ERR_NAMETOOLONG);
    expect(await create('n'.repeat(255))).toBe(nfs.NFS3_OK);
    expect(await create('..')).toBe(nfs.NFS3ERR_EXIST);
    expect((await bed.call('NFSPROC3_RMDIR', { object: { dir: { data: root }, name: '.' } })).status).toBe(nfs.NFS3ERR_INVAL);
    expect((await bed.call('NFSPROC3_RMDIR', { object: { dir: { data: root }, name: '..' } })).status).toBe(nfs.NFS3ERR_EXIST);
    const symlink = await bed.call('NFSPROC3_SYMLINK', { where: { dir: { data: root }, name: 'long' }, symlink: { symlink_attributes: noAttributes, symlink_data: 'x'.repeat(4097) } });
    expect(symlink.status).toBe(nfs.NFS3ERR_NAMETOOLONG);
  });

  it('offsets that overflow and counts that disagree: INVAL or FBIG; READ counts above rtmax are clamped', async () => {
    const file = await bed.createFile(root, 'big');
    const data = Buffer.alloc(1536 * 1024, 7);
    for (let offset = 0; offset < data.length; offset += 512 * 1024) await bed.write(file, BigInt(offset), data.subarray(offset, offset + 512 * 1024));
    const read = await bed.call('NFSPROC3_READ', { file: { data: file }, offset: 0n, count: 0xffffffff });
    expect(read.status).toBe(nfs.NFS3_OK);
    if (read.status === nfs.NFS3_OK) {
      expect(read.resok.count).toBe(1024 * 1024);
      expect(read.resok.eof).toBe(false);
    }
    expect((await bed.call('NFSPROC3_READ', { file: { data: file }, offset: 2n ** 63n, count: 10 })).status).toBe(nfs.NFS3ERR_INVAL);
    const pastEnd = await bed.call('NFSPROC3_READ', { file: { data: file }, offset: 2n ** 62n, count: 10 });
    if (pastEnd.status === nfs.NFS3_OK) expect([pastEnd.resok.count, pastEnd.resok.eof]).toEqual([0, true]);
    expect(pastEnd.status).toBe(nfs.NFS3_OK);
    expect((await bed.write(file, 2n ** 64n - 1n, Buffer.from('x'))).status).toBe(nfs.NFS3ERR_FBIG);
    const mismatch = await bed.call('NFSPROC3_WRITE', { file: { data: file }, offset: 0n, count: 10, stable: nfs.FILE_SYNC, data: Buffer.from('abc') });
    expect(mismatch.status).toBe(nfs.NFS3ERR_INVAL);
    expect((await bed.call('NFSPROC3_COMMIT', { file: { data: file }, offset: 2n ** 64n - 1n, count: 2 })).status).toBe(nfs.NFS3ERR_INVAL);
    expect((await bed.call('NFSPROC3_READ', { file: { data: root }, offset: 0n, count: 10 })).status).toBe(nfs.NFS3ERR_ISDIR);
  });

  it('READDIR: a count too small for one entry is TOOSMALL, a foreign cookie verifier BAD_COOKIE, a file NOTDIR', async () => {
    const file = await bed.createFile(root, 'f');
    expect((await bed.call('NFSPROC3_READDIR', { dir: { data: root }, cookie: 0n, cookieverf: Buffer.alloc(8), count: 16 })).status).toBe(nfs.NFS3ERR_TOOSMALL);
    expect((await bed.call('NFSPROC3_READDIR', { dir: { data: root }, cookie: 5n, cookieverf: Buffer.from('otherver'), count: 4096 })).status).toBe(nfs.NFS3ERR_BAD_COOKIE);
    expect((await bed.call('NFSPROC3_READDIR', { dir: { data: file }, cookie: 0n, cookieverf: Buffer.alloc(8), count: 4096 })).status).toBe(nfs.NFS3ERR_NOTDIR);
    expect((await bed.call('NFSPROC3_LOOKUP', { what: { dir: { data: file }, name: 'x' } })).status).toBe(nfs.NFS3ERR_NOTDIR);
  });

  it('MOUNT: MNT of another path is NOENT; EXPORT lists the export; DUMP follows MNT, UMNT and UMNTALL', async () => {
    expect((await bed.callMount('MOUNTPROC3_MNT', '/elsewhere')).fhs_status).toBe(mount.MNT3ERR_NOENT);
    const exported = await bed.callMount('MOUNTPROC3_EXPORT', undefined);
    expect(exported?.ex_dir).toBe('/export');
    expect(exported?.ex_next).toBeNull();
    const mounted = await bed.callMount('MOUNTPROC3_MNT', '/export/');
    expect(mounted.fhs_status).toBe(mount.MNT3_OK);
    if (mounted.fhs_status === mount.MNT3_OK) expect(Buffer.from(mounted.mountinfo.fhandle).equals(Buffer.from(root))).toBe(true);
    const dumped = await bed.callMount('MOUNTPROC3_DUMP', undefined);
    expect(dumped?.ml_hostname).toBe('test-client');
    await bed.callMount('MOUNTPROC3_UMNT', '/export/');
    await bed.callMount('MOUNTPROC3_UMNT', '/export');
    expect(await bed.callMount('MOUNTPROC3_DUMP', undefined)).toBeNull();
    await bed.callMount('MOUNTPROC3_MNT', '/export');
    await bed.callMount('MOUNTPROC3_UMNTALL', undefined);
    expect(await bed.callMount('MOUNTPROC3_DUMP', undefined)).toBeNull();
  });
});
