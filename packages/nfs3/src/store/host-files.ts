/**
 * HostFiles: the system calls DirectoryStore makes, in two ways of making them.
 *
 * - `pooledHostFiles`: node's asynchronous calls, each run on libuv's thread pool. The thread
 *   serving RPCs keeps turning while a call runs: right for the main thread, whose event loop
 *   also serves every connection (and for a directory on a slow disk).
 * - `blockingHostFiles`: the same calls made on the calling thread, as an nfsd thread blocks in
 *   the VFS. On svcrdma's worker threads a pooled call costs two sleeping-thread wake-ups (a pool
 *   thread, then the worker's event loop) — milliseconds each in the lab's emulated guest — for
 *   a system call of microseconds on tmpfs; a CREATE makes about eight of them.
 *
 * Both answer promises (a blocking call's is already settled), so the store's code is one; an
 * error is a rejection either way. Files are plain descriptors, closed by the store.
 *
 * Life: two stateless module-level objects, chosen by DirectoryStore.open; any thread.
 */
import * as fs from 'node:fs';
import type { BigIntStats, BigIntStatsFs } from 'node:fs';

/**
 * A path on the host: a string when every byte of it is ASCII (node encodes it in native code,
 * cheaper than building a Buffer in JavaScript), else the exact bytes (NFS names are bytes).
 */
export type HostPath = string | Buffer;

export interface HostFiles {
  lstat(path: HostPath): Promise<BigIntStats>;
  /** null when nothing has that name (ENOENT): no error built for the answer every create's LOOKUP gets. */
  lstatIfExists(path: HostPath): Promise<BigIntStats | null>;
  readlink(path: HostPath): Promise<Buffer>;
  readdir(path: HostPath): Promise<Buffer[]>;
  statfs(path: string): Promise<BigIntStatsFs>;
  /** A descriptor; `mode` applies when O_CREAT creates the file. */
  open(path: HostPath, flags: number, mode?: number): Promise<number>;
  fstat(fd: number): Promise<BigIntStats>;
  /** Bytes read into `buffer` from `offset` (0 at end of file). */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Bytes written from `data` (may be fewer than `length`). */
  write(fd: number, data: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  fchown(fd: number, uid: number, gid: number): Promise<void>;
  close(fd: number): Promise<void>;
  mkdir(path: HostPath, mode: number): Promise<void>;
  symlink(target: Buffer, path: HostPath): Promise<void>;
  unlink(path: HostPath): Promise<void>;
  rmdir(path: HostPath): Promise<void>;
  rename(from: HostPath, to: HostPath): Promise<void>;
  link(existing: HostPath, created: HostPath): Promise<void>;
  chmod(path: HostPath, mode: number): Promise<void>;
  lchown(path: HostPath, uid: number, gid: number): Promise<void>;
  /** Seconds since the epoch (fractions kept). */
  utimes(path: HostPath, atime: number, mtime: number): Promise<void>;
  lutimes(path: HostPath, atime: number, mtime: number): Promise<void>;
}

/** A node callback call as a promise of its one result. */
function settled<T>(start: (callback: (error: NodeJS.ErrnoException | null, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, result) => (error === null ? resolve(result) : reject(error))));
}

export const pooledHostFiles: HostFiles = {
  lstat: (path) => fs.promises.lstat(path, { bigint: true }),
  lstatIfExists: (path) => fs.promises.lstat(path, { bigint: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  }),
  readlink: (path) => fs.promises.readlink(path, { encoding: 'buffer' }),
  readdir: (path) => fs.promises.readdir(path, { encoding: 'buffer' }),
  statfs: (path) => fs.promises.statfs(path, { bigint: true }),
  open: (path, flags, mode) => settled((callback) => fs.open(path, flags, mode, callback)),
  fstat: (fd) => settled((callback) => fs.fstat(fd, { bigint: true }, callback)),
  read: (fd, buffer, offset, length, position) => settled((callback) => fs.read(fd, buffer, offset, length, position, callback)),
  write: (fd, data, offset, length, position) => settled((callback) => fs.write(fd, data, offset, length, position, callback)),
  fdatasync: (fd) => settled((callback) => fs.fdatasync(fd, (error) => callback(error, undefined))),
  fsync: (fd) => settled((callback) => fs.fsync(fd, (error) => callback(error, undefined))),
  ftruncate: (fd, length) => settled((callback) => fs.ftruncate(fd, length, (error) => callback(error, undefined))),
  fchown: (fd, uid, gid) => settled((callback) => fs.fchown(fd, uid, gid, (error) => callback(error, undefined))),
  close: (fd) => settled((callback) => fs.close(fd, (error) => callback(error, undefined))),
  mkdir: async (path, mode) => void (await fs.promises.mkdir(path, { mode })),
  symlink: (target, path) => fs.promises.symlink(target, path),
  unlink: (path) => fs.promises.unlink(path),
  rmdir: (path) => fs.promises.rmdir(path),
  rename: (from, to) => fs.promises.rename(from, to),
  link: (existing, created) => fs.promises.link(existing, created),
  chmod: (path, mode) => fs.promises.chmod(path, mode),
  lchown: (path, uid, gid) => fs.promises.lchown(path, uid, gid),
  utimes: (path, atime, mtime) => fs.promises.utimes(path, atime, mtime),
  lutimes: (path, atime, mtime) => fs.promises.lutimes(path, atime, mtime),
};

/** `async`: a throwing system call becomes a rejected promise, as a pooled one's failure. */
export const blockingHostFiles: HostFiles = {
  lstat: async (path) => fs.lstatSync(path, { bigint: true }),
  lstatIfExists: async (path) => fs.lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null,
  readlink: async (path) => fs.readlinkSync(path, { encoding: 'buffer' }),
  readdir: async (path) => fs.readdirSync(path, { encoding: 'buffer' }),
  statfs: async (path) => fs.statfsSync(path, { bigint: true }),
  open: async (path, flags, mode) => fs.openSync(path, flags, mode),
  fstat: async (fd) => fs.fstatSync(fd, { bigint: true }),
  read: async (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  write: async (fd, data, offset, length, position) => fs.writeSync(fd, data, offset, length, position),
  fdatasync: async (fd) => fs.fdatasyncSync(fd),
  fsync: async (fd) => fs.fsyncSync(fd),
  ftruncate: async (fd, length) => fs.ftruncateSync(fd, length),
  fchown: async (fd, uid, gid) => fs.fchownSync(fd, uid, gid),
  close: async (fd) => fs.closeSync(fd),
  mkdir: async (path, mode) => void fs.mkdirSync(path, { mode }),
  symlink: async (target, path) => fs.symlinkSync(target, path),
  unlink: async (path) => fs.unlinkSync(path),
  rmdir: async (path) => fs.rmdirSync(path),
  rename: async (from, to) => fs.renameSync(from, to),
  link: async (existing, created) => fs.linkSync(existing, created),
  chmod: async (path, mode) => fs.chmodSync(path, mode),
  lchown: async (path, uid, gid) => fs.lchownSync(path, uid, gid),
  utimes: async (path, atime, mtime) => fs.utimesSync(path, atime, mtime),
  lutimes: async (path, atime, mtime) => fs.lutimesSync(path, atime, mtime),
};
