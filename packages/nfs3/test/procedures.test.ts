import { randomBytes } from 'node:crypto';
import { encodeAuthSys } from '@roce-rpc/oncrpc';
import { procedureNamed } from '@roce-rpc/xdr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NfsTestBed, nfs, noAttributes, type StoreKindName } from './helpers.js';

describe.each<[StoreKindName, boolean]>([['memory', false], ['directory', false], ['directory', true]])('NFSv3 procedures on the %s store, over TCP (blocking system calls: %s)', (kind, blockingCalls) => {
  let bed: NfsTestBed;
  let root: Uint8Array;

  beforeEach(async () => {
    bed = await NfsTestBed.start(kind, {}, blockingCalls);
    root = await bed.rootHandle();
  });
  afterEach(async () => {
    await bed.stop();
  });

  it('answers NULL and GETATTR of the root as a directory', async () => {
    await bed.call('NFSPROC3_NULL', undefined);
    const result = await bed.call('NFSPROC3_GETATTR', { object: { data: root } });
    expect(result.status).toBe(nfs.NFS3_OK);
    if (result.status !== nfs.NFS3_OK) return;
    expect(result.resok.obj_attributes.type).toBe(nfs.NF3DIR);
  });

  it('writes unstable, commits with the same verifier, and reads the bytes back across chunk boundaries', async () => {
    const file = await bed.createFile(root, 'data.bin');
    const content = randomBytes(300_000);
    let verifier: Uint8Array | null = null;
    for (let offset = 0; offset < content.length; offset += 65536) {
      const result = await bed.write(file, BigInt(offset), content.subarray(offset, offset + 65536), nfs.UNSTABLE);
      expect(result.status).toBe(nfs.NFS3_OK);
      if (result.status !== nfs.NFS3_OK) return;
      expect(result.resok.committed).toBe(nfs.UNSTABLE);
      verifier ??= result.resok.verf;
      expect(Buffer.from(result.resok.verf).equals(Buffer.from(verifier))).toBe(true);
    }
    const commit = await bed.call('NFSPROC3_COMMIT', { file: { data: file }, offset: 0n, count: 0 });
    expect(commit.status).toBe(nfs.NFS3_OK);
    if (commit.status === nfs.NFS3_OK) expect(Buffer.from(commit.resok.verf).equals(Buffer.from(verifier!))).toBe(true);
    expect((await bed.readAll(file, 50_000)).equals(content)).toBe(true);
    const metrics = bed.server.service.metrics;
    expect(metrics.bytesWritten).toBe(300_000);
    expect(metrics.bytesRead).toBe(300_000);
    expect(metrics.calls.NFSPROC3_WRITE).toBe(5);
    expect(metrics.calls.NFSPROC3_COMMIT).toBe(1);
    const attributes = await bed.call('NFSPROC3_GETATTR', { object: { data: file } });
    if (attributes.status === nfs.NFS3_OK) expect(attributes.resok.obj_attributes.size).toBe(300_000n);
  });

  it('changes the write verifier when the server restarts', async () => {
    const file = await bed.createFile(root, 'f');
    const before = await bed.write(file, 0n, Buffer.from('x'), nfs.UNSTABLE);
    await bed.restart();
    const fileAgain = kind === 'directory' ? file : await bed.createFile(await bed.rootHandle(), 'f');
    const after = await bed.write(fileAgain, 0n, Buffer.from('y'), nfs.UNSTABLE);
    expect(before.status === nfs.NFS3_OK && after.status === nfs.NFS3_OK).toBe(true);
    if (before.status !== nfs.NFS3_OK || after.status !== nfs.NFS3_OK) return;
    expect(Buffer.from(before.resok.verf).equals(Buffer.from(after.resok.verf))).toBe(false);
  });

  it('SETATTR truncates, extends with zeros, sets the mode, and refuses a guard with the wrong ctime', async () => {
    const file = await bed.createFile(root, 'trunc');
    await bed.write(file, 0n, Buffer.from('hello world'));
    const truncate = await bed.call('NFSPROC3_SETATTR', {
      object: { data: file }, new_attributes: { ...noAttributes, size: { set_it: true, size: 5n }, mode: { set_it: true, mode: 0o600 } }, guard: { check: false },
    });
    expect(truncate.status).toBe(nfs.NFS3_OK);
    await bed.call('NFSPROC3_SETATTR', { object: { data: file }, new_attributes: { ...noAttributes, size: { set_it: true, size: 8n } }, guard: { check: false } });
    expect((await bed.readAll(file)).equals(Buffer.from('hello\0\0\0'))).toBe(true);
    const attributes = await bed.call('NFSPROC3_GETATTR', { object: { data: file } });
    if (attributes.status === nfs.NFS3_OK) expect(attributes.resok.obj_attributes.mode).toBe(0o600);
    const guarded = await bed.call('NFSPROC3_SETATTR', {
      object: { data: file }, new_attributes: { ...noAttributes, mode: { set_it: true, mode: 0o644 } }, guard: { check: true, obj_ctime: { seconds: 1, nseconds: 0 } },
    });
    expect(guarded.status).toBe(nfs.NFS3ERR_NOT_SYNC);
  });

  it('SETATTR keeps the client times it is given, stamps server time, and passes a guard with the current ctime', async () => {
    const file = await bed.createFile(root, 'times');
    const atime = { seconds: 1_000_000_000, nseconds: 500_000_000 };
    const mtime = { seconds: 1_000_000_001, nseconds: 250_000_000 };
    const set = await bed.call('NFSPROC3_SETATTR', {
      object: { data: file }, new_attributes: { ...noAttributes, atime: { set_it: nfs.SET_TO_CLIENT_TIME, atime }, mtime: { set_it: nfs.SET_TO_CLIENT_TIME, mtime } }, guard: { check: false },
    });
    expect(set.status).toBe(nfs.NFS3_OK);
    const attributes = await bed.call('NFSPROC3_GETATTR', { object: { data: file } });
    expect(attributes.status).toBe(nfs.NFS3_OK);
    if (attributes.status !== nfs.NFS3_OK) return;
    expect([attributes.resok.obj_attributes.atime, attributes.resok.obj_attributes.mtime]).toEqual([atime, mtime]);
    const before = Date.now() / 1000;
    const guarded = await bed.call('NFSPROC3_SETATTR', {
      object: { data: file }, new_attributes: { ...noAttributes, mtime: { set_it: nfs.SET_TO_SERVER_TIME } }, guard: { check: true, obj_ctime: attributes.resok.obj_attributes.ctime },
    });
    expect(guarded.status).toBe(nfs.NFS3_OK);
    if (guarded.status !== nfs.NFS3_OK || !guarded.resok.obj_wcc.after.attributes_follow) return;
    const stamped = guarded.resok.obj_wcc.after.attributes.mtime;
    expect(stamped.seconds + stamped.nseconds / 1e9).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    expect(stamped.nseconds).toBeLessThan(1_000_000_000);
  });

  it('CREATE modes: unchecked reuses, guarded refuses an existing name, exclusive is idempotent per verifier', async () => {
    const first = await bed.createFile(root, 'c');
    const again = await bed.createFile(root, 'c');
    expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
    const guarded = await bed.call('NFSPROC3_CREATE', { where: { dir: { data: root }, name: 'c' }, how: { mode: nfs.GUARDED, obj_attributes: noAttributes } });
    expect(guarded.status).toBe(nfs.NFS3ERR_EXIST);
    const verf = Buffer.from('12345678');
    const exclusive = await bed.call('NFSPROC3_CREATE', { where: { dir: { data: root }, name: 'x' }, how: { mode: nfs.EXCLUSIVE, verf } });
    const retransmitted = await bed.call('NFSPROC3_CREATE', { where: { dir: { data: root }, name: 'x' }, how: { mode: nfs.EXCLUSIVE, verf } });
    const otherClient = await bed.call('NFSPROC3_CREATE', { where: { dir: { data: root }, name: 'x' }, how: { mode: nfs.EXCLUSIVE, verf: Buffer.from('87654321') } });
    expect(exclusive.status).toBe(nfs.NFS3_OK);
    expect(retransmitted.status).toBe(nfs.NFS3_OK);
    expect(otherClient.status).toBe(nfs.NFS3ERR_EXIST);
  });

  it('LOOKUP, ACCESS, MKDIR, SYMLINK, READLINK, LINK, RENAME, REMOVE and RMDIR change the tree as a file system does', async () => {
    const directory = await bed.mkdir(root, 'dir');
    expect(Buffer.from(await bed.lookup(directory, '..')).equals(Buffer.from(root))).toBe(true);
    expect(Buffer.from(await bed.lookup(root, '..')).equals(Buffer.from(root))).toBe(true);
    const file = await bed.createFile(directory, 'file');
    const access = await bed.call('NFSPROC3_ACCESS', { object: { data: file }, access: 0x3f });
    if (access.status === nfs.NFS3_OK) expect(access.resok.access & (nfs.ACCESS3_READ | nfs.ACCESS3_MODIFY)).toBe(nfs.ACCESS3_READ | nfs.ACCESS3_MODIFY);
    const symlink = await bed.call('NFSPROC3_SYMLINK', { where: { dir: { data: root }, name: 'link' }, symlink: { symlink_attributes: noAttributes, symlink_data: 'dir/file' } });
    expect(symlink.status).toBe(nfs.NFS3_OK);
    const readlink = await bed.call('NFSPROC3_READLINK', { symlink: { data: await bed.lookup(root, 'link') } });
    if (readlink.status === nfs.NFS3_OK) expect(readlink.resok.data).toBe('dir/file');
    expect(readlink.status).toBe(nfs.NFS3_OK);
    const link = await bed.call('NFSPROC3_LINK', { file: { data: file }, link: { dir: { data: root }, name: 'hard' } });
    expect(link.status).toBe(nfs.NFS3_OK);
    if (link.status === nfs.NFS3_OK && link.resok.file_attributes.attributes_follow) expect(link.resok.file_attributes.attributes.nlink).toBe(2);
    const rename = await bed.call('NFSPROC3_RENAME', { from: { dir: { data: directory }, name: 'file' }, to: { dir: { data: root }, name: 'moved' } });
    expect(rename.status).toBe(nfs.NFS3_OK);
    expect(Buffer.from(await bed.lookup(root, 'moved')).equals(Buffer.from(file))).toBe(true);
    expect((await bed.listNames(root)).sort()).toEqual(['.', '..', 'dir', 'hard', 'link', 'moved']);
    const notEmptyFirst = await bed.call('NFSPROC3_RENAME', { from: { dir: { data: root }, name: 'dir' }, to: { dir: { data: directory }, name: 'inside' } });
    expect(notEmptyFirst.status).toBe(nfs.NFS3ERR_INVAL);
    await bed.createFile(directory, 'keep');
    expect((await bed.call('NFSPROC3_RMDIR', { object: { dir: { data: root }, name: 'dir' } })).status).toBe(nfs.NFS3ERR_NOTEMPTY);
    expect((await bed.call('NFSPROC3_REMOVE', { object: { dir: { data: root }, name: 'dir' } })).status).toBe(nfs.NFS3ERR_ISDIR);
    expect((await bed.call('NFSPROC3_REMOVE', { object: { dir: { data: directory }, name: 'keep' } })).status).toBe(nfs.NFS3_OK);
    expect((await bed.call('NFSPROC3_RMDIR', { object: { dir: { data: root }, name: 'dir' } })).status).toBe(nfs.NFS3_OK);
    expect((await bed.call('NFSPROC3_GETATTR', { object: { data: directory } })).status).toBe(nfs.NFS3ERR_STALE);
    const missing = await bed.call('NFSPROC3_LOOKUP', { what: { dir: { data: root }, name: 'dir' } });
    expect(missing.status).toBe(nfs.NFS3ERR_NOENT);
    expect(bed.server.service.metrics.statuses).toMatchObject({ NFS3ERR_NOTEMPTY: 1, NFS3ERR_ISDIR: 1, NFS3ERR_STALE: 1, NFS3ERR_NOENT: 1, NFS3ERR_INVAL: 1 });
  });

  it('READDIR pages 300 names by cookie, and a removal between pages neither skips nor repeats the rest', async () => {
    const directory = await bed.mkdir(root, 'many');
    const names = Array.from({ length: 300 }, (_, index) => `file-${index.toString().padStart(4, '0')}`);
    for (const name of names) await bed.createFile(directory, name);
    expect((await bed.listNames(directory, 1024)).filter((name) => name !== '.' && name !== '..').sort()).toEqual(names);

    const first = await bed.call('NFSPROC3_READDIR', { dir: { data: directory }, cookie: 0n, cookieverf: Buffer.alloc(8), count: 1024 });
    if (first.status !== nfs.NFS3_OK) throw new Error('READDIR failed');
    const seen: string[] = [];
    let cookie = 0n;
    for (let entry = first.resok.reply.entries; entry !== null; entry = entry.nextentry) {
      seen.push(entry.name);
      cookie = entry.cookie;
    }
    expect(first.resok.reply.eof).toBe(false);
    for (const name of seen) if (name.startsWith('file-')) await bed.call('NFSPROC3_REMOVE', { object: { dir: { data: directory }, name } });
    const rest: string[] = [];
    for (let next = cookie, done = false; !done; ) {
      const page = await bed.call('NFSPROC3_READDIR', { dir: { data: directory }, cookie: next, cookieverf: first.resok.cookieverf, count: 2048 });
      if (page.status !== nfs.NFS3_OK) throw new Error('READDIR failed');
      for (let entry = page.resok.reply.entries; entry !== null; entry = entry.nextentry) {
        rest.push(entry.name);
        next = entry.cookie;
      }
      done = page.resok.reply.eof;
    }
    expect([...seen, ...rest].filter((name) => name.startsWith('file-')).sort()).toEqual(names);
  });

  it('READDIRPLUS returns handles and attributes that GETATTR agrees with', async () => {
    const file = await bed.createFile(root, 'plus');
    await bed.write(file, 0n, Buffer.from('12345'));
    const result = await bed.call('NFSPROC3_READDIRPLUS', { dir: { data: root }, cookie: 0n, cookieverf: Buffer.alloc(8), dircount: 4096, maxcount: 32768 });
    if (result.status !== nfs.NFS3_OK) throw new Error(`READDIRPLUS: ${result.status}`);
    let found: nfs.entryplus3 | null = null;
    for (let entry = result.resok.reply.entries; entry !== null; entry = entry.nextentry) if (entry.name === 'plus') found = entry;
    expect(found?.name_handle.handle_follows).toBe(true);
    if (found?.name_handle.handle_follows) expect(Buffer.from(found.name_handle.handle.data).equals(Buffer.from(file))).toBe(true);
    if (found?.name_attributes.attributes_follow) expect(found.name_attributes.attributes.size).toBe(5n);
    expect(result.resok.reply.eof).toBe(true);
  });

  it('FSSTAT, FSINFO (rtmax/wtmax = the transfer limit) and PATHCONF describe the export', async () => {
    const fsstat = await bed.call('NFSPROC3_FSSTAT', { fsroot: { data: root } });
    if (fsstat.status !== nfs.NFS3_OK) throw new Error('FSSTAT failed');
    expect(fsstat.resok.tbytes).toBeGreaterThan(0n);
    expect(fsstat.resok.fbytes).toBeLessThanOrEqual(fsstat.resok.tbytes);
    const fsinfo = await bed.call('NFSPROC3_FSINFO', { fsroot: { data: root } });
    if (fsinfo.status !== nfs.NFS3_OK) throw new Error('FSINFO failed');
    expect(fsinfo.resok.rtmax).toBe(1024 * 1024);
    expect(fsinfo.resok.wtmax).toBe(1024 * 1024);
    expect(fsinfo.resok.properties & nfs.FSF3_SYMLINK).toBe(nfs.FSF3_SYMLINK);
    const pathconf = await bed.call('NFSPROC3_PATHCONF', { object: { data: root } });
    if (pathconf.status !== nfs.NFS3_OK) throw new Error('PATHCONF failed');
    expect(pathconf.resok.name_max).toBe(255);
    expect(pathconf.resok.no_trunc).toBe(true);
  });
  it('objects belong to the AUTH_SYS caller who creates them, and ACCESS answers by owner, group and other bits', async () => {
    const user = encodeAuthSys({ stamp: 2, machineName: 'test-client', uid: 1000, gid: 1000, gids: [] });
    const v3 = nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR;
    const created = await bed.client.call(nfs.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_CREATE'), {
      where: { dir: { data: root }, name: 'users' },
      how: { mode: nfs.GUARDED, obj_attributes: { ...noAttributes, mode: { set_it: true, mode: 0o640 } } },
    }, { credential: user });
    if (created.status !== nfs.NFS3_OK || !created.resok.obj.handle_follows) throw new Error(`CREATE: ${created.status}`);
    const owned = created.resok.obj.handle.data;
    const attributes = await bed.call('NFSPROC3_GETATTR', { object: { data: owned } });
    if (attributes.status !== nfs.NFS3_OK) throw new Error('GETATTR failed');
    // A directory store can give files away only when the server runs as root.
    const expectedOwner = kind === 'memory' || process.getuid?.() === 0 ? 1000 : process.getuid?.();
    expect(attributes.resok.obj_attributes.uid).toBe(expectedOwner);
    const access = async (handle: Uint8Array, credential = user) => {
      const result = await bed.client.call(nfs.NFS_PROGRAM, 3, procedureNamed(v3, 'NFSPROC3_ACCESS'), { object: { data: handle }, access: 0x3f }, { credential });
      return result.status === nfs.NFS3_OK ? result.resok.access : -1;
    };
    if (expectedOwner === 1000) expect(await access(owned)).toBe(nfs.ACCESS3_READ | nfs.ACCESS3_MODIFY | nfs.ACCESS3_EXTEND);
    const stranger = encodeAuthSys({ stamp: 3, machineName: 'test-client', uid: 2000, gid: 2000, gids: [] });
    expect(await access(owned, stranger)).toBe(0);
    const rootsFile = await bed.createFile(root, 'roots', 0o644);
    expect(await access(rootsFile)).toBe(nfs.ACCESS3_READ);
  });
});
