/**
 * DirectoryStore: exports a host directory.
 *
 * Handles name (device, inode, generation) with the store's secret (handles.ts), so they stay
 * valid across restarts as long as the secret does. Node cannot open by handle, so a handle is
 * turned back into a path through a cache of inode -> path; on a miss (a restart, a rename of an
 * ancestor) the export is walked breadth first, at most `scanEntriesMax` entries, and a handle
 * still not found, or found with another generation, is NFS3ERR_STALE.
 *
 * Nothing escapes the export root: every path is the root plus components checked by
 * names.ts; '..' at the root is the root; objects are examined with lstat and files opened
 * with O_NOFOLLOW, so a symlink is never followed on the server (its target, even one
 * pointing outward, is only ever returned by READLINK for the client to interpret); objects on
 * another device (mount points inside the export) are not served.
 *
 * Life: created by the caller with the root and the secret, owned by the NFS service, used by
 * one thread; holds no descriptors between calls; close() drops the cache. An export served from
 * svcrdma's worker threads has one store per thread over the same root and secret
 * (`openOptions` handed to each worker): the host file system is the shared state, only the
 * inode -> path caches are per thread.
 */
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { Nfs3Error, Nfs3ErrorCode, NfsStatusError } from '../errors.js';
import { HandleCodec, StoreKind, handleSecretBytesMin } from '../handles.js';
import { nanosecondsFromTime, requestedMode, timeFromNanoseconds } from '../attributes.js';
import { checkName, checkNewName, checkSymlinkTarget } from '../names.js';
import type { fattr3, ftype3, sattr3 } from '../protocol/nfs3.generated.js';
import * as nfs from '../protocol/nfs3.generated.js';
import { blockingHostFiles, pooledHostFiles, type HostFiles, type HostPath } from './host-files.js';
import type { SharedPathHints } from './shared-path-hints.js';
import type {
  AttributeChange, CreateRequest, CreateResult, DirectoryEntry, Handle, LookupResult, NfsStore, Owner, ReadResult, StoredObject, StoreStatistics, WriteStability,
} from './store.js';

export interface DirectoryStoreOptions {
  /** The exported directory (absolute). */
  root: string;
  /** HMAC secret for handles (≥ 16 bytes): keep it to keep handles valid across restarts. */
  handleSecret: Buffer;
  /**
   * Make each system call on the calling thread (blocking it, as an nfsd thread blocks in the
   * VFS) instead of on libuv's thread pool: for a store on one of svcrdma's worker threads,
   * where a pooled call costs two thread wake-ups (host-files.ts). Default false: the main
   * thread's event loop must keep serving while a call runs.
   */
  blockingCalls?: boolean;
  /**
   * Inode -> path hints shared with the export's other stores (one per worker thread): every
   * path this store learns is published there, and a handle missing from its own cache is
   * looked up there (then checked) before the export is walked.
   */
  pathHints?: SharedPathHints;
  /**
   * READ answers a view of one buffer this store keeps (grown to the largest READ asked of it,
   * which the service clamps to its transfer limit), overwritten by the store's next READ,
   * instead of a fresh buffer per READ. Only for a caller done with a READ's data before it calls
   * the store again, hence only with `blockingCalls`: svcrdma's worker threads, which copy a
   * reply's data into their registered write buffer before taking their next call. A fresh
   * 1 MiB buffer per READ costs page faults on new memory and the GC of external memory (≈ 0.3
   * ms a READ on the host, 20–45× that in the emulated lab). Default false.
   */
  reuseReadBuffer?: boolean;
}

/** Entries walked to find a handle's path after a cache miss: bounds the work one bad handle costs. */
const scanEntriesMax = 200_000;
/** Paths cached by inode: beyond this the cache starts over (misses cost a walk, not memory). */
const pathCacheEntriesMax = 500_000;
/** Largest offset a JS number holds exactly. */
const maxFileBytes = Number.MAX_SAFE_INTEGER;
/** Relative paths made of ASCII only (one byte per char in latin1 and UTF-8 alike). */
const asciiOnly = /^[\x00-\x7f]*$/;
/** Only root can give a new object to its caller (the process's identity does not change). */
const runsAsRoot = process.getuid?.() === 0;

interface Located {
  /** Relative path, latin1 ('' is the root). */
  path: string;
  stats: BigIntStats;
}

export class DirectoryStore implements NfsStore {
  readonly rootHandle: Handle;
  readonly maxFileBytes = maxFileBytes;
  private readonly codec: HandleCodec;
  private readonly root: Buffer;
  /** The root as node would encode it (UTF-8), for paths whose names are ASCII. */
  private readonly rootText: string;
  private readonly device: bigint;
  private readonly rootInode: bigint;
  private readonly paths = new Map<bigint, string>();
  /** READ's kept buffer (`reuseReadBuffer`), null until the first READ or without the option. */
  private keptReadBuffer: Buffer | null = null;
  /** Handles found only by walking the export (a cache miss without a usable hint): each costs an lstat per entry walked. */
  pathWalks = 0;
  /** What another thread opens the same export with: the resolved root and the secret. */
  readonly openOptions: Readonly<DirectoryStoreOptions>;

  private constructor(
    root: string,
    secret: Buffer,
    rootStats: BigIntStats,
    private readonly files: HostFiles,
    private readonly pathHints: SharedPathHints | undefined,
    private readonly reuseReadBuffer: boolean,
  ) {
    this.root = Buffer.from(root);
    this.rootText = root;
    this.openOptions = Object.freeze({ root, handleSecret: Buffer.from(secret) });
    this.codec = new HandleCodec(StoreKind.DIRECTORY, secret);
    this.device = rootStats.dev;
    this.rootInode = rootStats.ino;
    this.paths.set(rootStats.ino, '');
    this.rootHandle = this.handleOf(rootStats);
  }

  static async open(options: DirectoryStoreOptions): Promise<DirectoryStore> {
    if (typeof options.root !== 'string' || !options.root.startsWith('/')) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'root must be an absolute path');
    if (!Buffer.isBuffer(options.handleSecret) || options.handleSecret.length < handleSecretBytesMin) {
      throw new Nfs3Error(Nfs3ErrorCode.STORE_SECRET, `handleSecret must be a Buffer of at least ${handleSecretBytesMin} bytes`);
    }
    const root = await fs.realpath(options.root);
    const stats = await fs.stat(root, { bigint: true });
    if (!stats.isDirectory()) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `root ${root} is not a directory`);
    const blockingCalls = options.blockingCalls ?? false;
    if (typeof blockingCalls !== 'boolean') throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'blockingCalls must be a boolean');
    const reuseReadBuffer = options.reuseReadBuffer ?? false;
    if (typeof reuseReadBuffer !== 'boolean') throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'reuseReadBuffer must be a boolean');
    // Pooled calls overlap: a second READ would overwrite the first's data before it is sent.
    if (reuseReadBuffer && !blockingCalls) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'reuseReadBuffer needs blockingCalls (one call at a time)');
    return new DirectoryStore(root, options.handleSecret, stats, blockingCalls ? blockingHostFiles : pooledHostFiles, options.pathHints, reuseReadBuffer);
  }

  async getAttributes(handle: Uint8Array): Promise<fattr3> {
    return this.attributesOf((await this.locate(handle)).stats);
  }

  async setAttributes(handle: Uint8Array, attributes: sattr3): Promise<AttributeChange> {
    const located = await this.locate(handle);
    const before = this.attributesOf(located.stats);
    if (!(await this.applyAttributes(located, attributes))) return { before, after: before };
    return { before, after: await this.attributesAt(located.path) };
  }

  async lookup(directory: Uint8Array, name: string): Promise<LookupResult> {
    checkName(name);
    const parent = await this.locateDirectory(directory);
    const directoryAttributes = this.attributesOf(parent.stats);
    if (name === '.') return { object: this.objectOf(parent.stats), directory: directoryAttributes };
    if (name === '..') {
      const grandparent = parent.path === '' ? parent.stats : await this.lstat(parentPath(parent.path));
      return { object: this.objectOf(grandparent), directory: directoryAttributes };
    }
    const path = joinPath(parent.path, name);
    const stats = await this.files.lstatIfExists(this.hostPath(path));
    if (stats === null) return { object: null, directory: directoryAttributes };
    if (stats.dev !== this.device) throw new NfsStatusError(nfs.NFS3ERR_XDEV, 'object on another file system');
    this.cachePath(stats.ino, path);
    return { object: this.objectOf(stats), directory: directoryAttributes };
  }

  async readLink(handle: Uint8Array): Promise<string> {
    const located = await this.locate(handle);
    if (!located.stats.isSymbolicLink()) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'not a symbolic link');
    return (await this.files.readlink(this.hostPath(located.path))).toString('latin1');
  }

  async read(handle: Uint8Array, offset: number, count: number): Promise<ReadResult> {
    const located = await this.locateFile(handle);
    const { fd, stats } = await this.openFile(located, fsConstants.O_RDONLY);
    try {
      const size = Number(stats.size);
      // Sized by what the file holds, not by the count asked for: a 1 MiB READ of a 10-byte file costs 10 bytes.
      const data = this.readTarget(Math.max(0, Math.min(count, size - offset)));
      const bytesRead = data.length === 0 ? 0 : await this.files.read(fd, data, 0, data.length, offset);
      return { data: data.subarray(0, bytesRead), eof: offset + bytesRead >= size, attributes: this.attributesOf(stats) };
    } finally {
      await this.files.close(fd);
    }
  }

  async write(handle: Uint8Array, offset: number, data: Uint8Array, stability: WriteStability): Promise<AttributeChange> {
    const located = await this.locateFile(handle);
    if (offset + data.byteLength > maxFileBytes) throw new NfsStatusError(nfs.NFS3ERR_FBIG, 'write ends past the largest file');
    const { fd, stats } = await this.openFile(located, fsConstants.O_WRONLY);
    try {
      let written = 0;
      while (written < data.byteLength) written += await this.files.write(fd, data, written, data.byteLength - written, offset + written);
      if (stability === 'data') await this.files.fdatasync(fd);
      if (stability === 'file') await this.files.fsync(fd);
      return { before: this.attributesOf(stats), after: this.attributesOf(await this.files.fstat(fd)) };
    } finally {
      await this.files.close(fd);
    }
  }

  async commit(handle: Uint8Array): Promise<AttributeChange> {
    const located = await this.locateFile(handle);
    const { fd, stats } = await this.openFile(located, fsConstants.O_RDONLY);
    try {
      await this.files.fsync(fd);
      const attributes = this.attributesOf(stats);
      return { before: attributes, after: attributes };
    } finally {
      await this.files.close(fd);
    }
  }

  async create(directory: Uint8Array, name: string, request: CreateRequest, owner: Owner): Promise<CreateResult> {
    checkNewName(name);
    const parent = await this.locateDirectory(directory);
    const before = this.attributesOf(parent.stats);
    const path = joinPath(parent.path, name);
    const object = request.kind === 'file' && request.mode === 'exclusive'
      ? await this.createExclusive(path, request.verifier, owner)
      : request.kind === 'file' ? await this.createFile(path, request, owner) : await this.createOther(path, request, owner);
    return { object, directory: { before, after: await this.attributesAt(parent.path) } };
  }

  async remove(directory: Uint8Array, name: string): Promise<AttributeChange> {
    checkName(name);
    const parent = await this.locateDirectory(directory);
    const located = await this.child(parent, name);
    if (located.stats.isDirectory()) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'REMOVE of a directory: use RMDIR');
    await this.files.unlink(this.hostPath(located.path));
    return { before: this.attributesOf(parent.stats), after: await this.attributesAt(parent.path) };
  }

  async removeDirectory(directory: Uint8Array, name: string): Promise<AttributeChange> {
    if (name === '.') throw new NfsStatusError(nfs.NFS3ERR_INVAL, "RMDIR of '.'");
    if (name === '..') throw new NfsStatusError(nfs.NFS3ERR_EXIST, "RMDIR of '..'");
    checkName(name);
    const parent = await this.locateDirectory(directory);
    const located = await this.child(parent, name);
    if (!located.stats.isDirectory()) throw new NfsStatusError(nfs.NFS3ERR_NOTDIR, 'RMDIR of a non-directory');
    await this.files.rmdir(this.hostPath(located.path));
    this.paths.delete(located.stats.ino);
    return { before: this.attributesOf(parent.stats), after: await this.attributesAt(parent.path) };
  }

  async rename(fromDirectory: Uint8Array, fromName: string, toDirectory: Uint8Array, toName: string): Promise<void> {
    checkNewName(fromName);
    checkNewName(toName);
    const source = await this.child(await this.locateDirectory(fromDirectory), fromName);
    const toParent = await this.locateDirectory(toDirectory);
    const path = joinPath(toParent.path, toName);
    await this.files.rename(this.hostPath(source.path), this.hostPath(path));
    this.cachePath(source.stats.ino, path); // descendants' cached paths heal on their next miss
  }

  async link(handle: Uint8Array, directory: Uint8Array, name: string): Promise<void> {
    checkNewName(name);
    const located = await this.locate(handle);
    if (located.stats.isDirectory()) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'hard links to directories are not allowed');
    const parent = await this.locateDirectory(directory);
    await this.files.link(this.hostPath(located.path), this.hostPath(joinPath(parent.path, name)));
  }

  async listDirectory(directory: Uint8Array): Promise<DirectoryEntry[]> {
    const parent = await this.locateDirectory(directory);
    const names = await this.files.readdir(this.hostPath(parent.path));
    const entries: DirectoryEntry[] = [];
    for (const raw of names) {
      const name = raw.toString('latin1');
      const stats = await this.files.lstat(this.hostPath(joinPath(parent.path, name))).catch(() => null);
      if (stats === null || stats.dev !== this.device) continue; // gone meanwhile, or another file system
      this.cachePath(stats.ino, joinPath(parent.path, name));
      entries.push({ name, fileId: stats.ino });
    }
    return entries;
  }

  async statistics(): Promise<StoreStatistics> {
    const stats = await this.files.statfs(this.root.toString());
    return {
      totalBytes: stats.blocks * stats.bsize, freeBytes: stats.bfree * stats.bsize, availableBytes: stats.bavail * stats.bsize,
      totalFiles: stats.files, freeFiles: stats.ffree, availableFiles: stats.ffree,
    };
  }

  async close(): Promise<void> {
    this.paths.clear();
  }

  /** Where READ puts `length` bytes: the kept buffer (`reuseReadBuffer`) or a fresh one. */
  private readTarget(length: number): Buffer {
    if (!this.reuseReadBuffer) return Buffer.allocUnsafe(length);
    if (this.keptReadBuffer === null || this.keptReadBuffer.length < length) this.keptReadBuffer = Buffer.allocUnsafeSlow(length);
    return this.keptReadBuffer.subarray(0, length);
  }

  private hostPath(path: string): HostPath {
    if (path === '') return this.root;
    return asciiOnly.test(path) ? `${this.rootText}/${path}` : Buffer.concat([this.root, Buffer.from('/' + path, 'latin1')]);
  }

  private handleOf(stats: BigIntStats): Handle {
    return this.codec.encode({ device: stats.dev, fileId: stats.ino, generation: generationOf(stats) });
  }

  private objectOf(stats: BigIntStats): StoredObject {
    return { handle: this.handleOf(stats), attributes: this.attributesOf(stats) };
  }

  private remember(located: Located): StoredObject {
    this.cachePath(located.stats.ino, located.path);
    return this.objectOf(located.stats);
  }

  private cachePath(inode: bigint, path: string): void {
    if (this.paths.get(inode) === path) return;
    if (this.paths.size >= pathCacheEntriesMax) {
      this.paths.clear();
      this.paths.set(this.rootInode, '');
    }
    this.paths.set(inode, path);
    this.pathHints?.publish(inode, path);
  }

  private async lstat(path: string): Promise<BigIntStats> {
    return this.files.lstat(this.hostPath(path));
  }

  /** What is at a cached path now: null if nothing is (or a component is no longer a directory). */
  private async statsAt(path: string): Promise<BigIntStats | null> {
    try {
      return await this.files.lstatIfExists(this.hostPath(path));
    } catch {
      return null;
    }
  }

  /** An object's attributes after a change (post-op, wcc after): null once it is gone. */
  private async attributesAt(path: string): Promise<fattr3 | null> {
    const stats = await this.files.lstatIfExists(this.hostPath(path));
    return stats === null ? null : this.attributesOf(stats);
  }

  /** The object a handle names, by the cached path or, on a miss, a bounded walk. */
  private async locate(handle: Uint8Array): Promise<Located> {
    const identity = this.codec.decode(handle);
    if (identity.device !== this.device) throw new NfsStatusError(nfs.NFS3ERR_STALE, 'handle of another file system');
    const cached = this.paths.get(identity.fileId);
    if (cached !== undefined) {
      const stats = await this.statsAt(cached);
      if (stats !== null && stats.ino === identity.fileId && stats.dev === this.device) return this.checkGeneration({ path: cached, stats }, identity.generation);
      this.paths.delete(identity.fileId);
    }
    const hinted = this.pathHints?.lookup(identity.fileId);
    if (hinted !== undefined && hinted !== cached) {
      const stats = await this.statsAt(hinted);
      if (stats !== null && stats.ino === identity.fileId && stats.dev === this.device) {
        this.paths.set(identity.fileId, hinted);
        return this.checkGeneration({ path: hinted, stats }, identity.generation);
      }
    }
    this.pathWalks += 1;
    const found = await this.scanFor(identity.fileId);
    if (found === null) throw new NfsStatusError(nfs.NFS3ERR_STALE, 'no object with this handle in the export');
    return this.checkGeneration(found, identity.generation);
  }

  private checkGeneration(located: Located, generation: number): Located {
    if (generationOf(located.stats) !== generation) throw new NfsStatusError(nfs.NFS3ERR_STALE, 'inode reused by another object');
    return located;
  }

  private async scanFor(inode: bigint): Promise<Located | null> {
    const queue: string[] = [''];
    let visited = 0;
    for (let index = 0; index < queue.length && visited < scanEntriesMax; index += 1) {
      const directory = queue[index]!;
      const names = await this.files.readdir(this.hostPath(directory)).catch(() => [] as Buffer[]);
      for (const raw of names) {
        visited += 1;
        const path = joinPath(directory, raw.toString('latin1'));
        const stats = await this.lstat(path).catch(() => null);
        if (stats === null || stats.dev !== this.device) continue;
        this.cachePath(stats.ino, path);
        if (stats.ino === inode) return { path, stats };
        if (stats.isDirectory()) queue.push(path);
      }
    }
    return null;
  }

  private async locateDirectory(handle: Uint8Array): Promise<Located> {
    const located = await this.locate(handle);
    if (!located.stats.isDirectory()) throw new NfsStatusError(nfs.NFS3ERR_NOTDIR, 'not a directory');
    return located;
  }

  private async locateFile(handle: Uint8Array): Promise<Located> {
    const located = await this.locate(handle);
    if (located.stats.isDirectory()) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'is a directory');
    if (!located.stats.isFile()) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'not a regular file');
    return located;
  }

  private async child(parent: Located, name: string): Promise<Located> {
    const path = joinPath(parent.path, name);
    const stats = await this.lstat(path);
    if (stats.dev !== this.device) throw new NfsStatusError(nfs.NFS3ERR_XDEV, 'object on another file system');
    this.cachePath(stats.ino, path);
    return { path, stats };
  }

  /** Opens without following a symlink, and checks it is still the object the handle named; the caller closes `fd`. */
  private async openFile(located: Located, flags: number): Promise<{ fd: number; stats: BigIntStats }> {
    const fd = await this.files.open(this.hostPath(located.path), flags | fsConstants.O_NOFOLLOW);
    const stats = await this.files.fstat(fd).catch(async (error: unknown) => {
      await this.files.close(fd);
      throw error;
    });
    if (stats.ino !== located.stats.ino) {
      await this.files.close(fd);
      throw new NfsStatusError(nfs.NFS3ERR_STALE, 'object replaced while opening');
    }
    return { fd, stats };
  }

  /** Only a server running as root can give objects away; otherwise they stay the server's, as the README says. */
  private async giveTo(host: HostPath, owner: Owner): Promise<void> {
    if (runsAsRoot) await this.files.lchown(host, owner.uid, owner.gid);
  }

  /**
   * UNCHECKED (an existing file is reused) or GUARDED: the new file's attributes come from its
   * descriptor, and it is given to the caller only when it is not theirs already.
   */
  private async createFile(path: string, request: Extract<CreateRequest, { kind: 'file'; mode: 'unchecked' | 'guarded' }>, owner: Owner): Promise<StoredObject> {
    const flags = fsConstants.O_CREAT | fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW | (request.mode === 'guarded' ? fsConstants.O_EXCL : 0);
    const fd = await this.files.open(this.hostPath(path), flags, requestedMode(request.attributes, nfs.NF3REG));
    const created: Located = { path, stats: await this.fileStats(fd, owner) };
    if (await this.applyAttributes(created, { ...request.attributes, mode: { set_it: false } })) created.stats = await this.lstat(path);
    return this.remember(created);
  }

  /** The attributes of a file just opened by CREATE, once it belongs to `owner`; closes `fd`. */
  private async fileStats(fd: number, owner: Owner): Promise<BigIntStats> {
    try {
      const stats = await this.files.fstat(fd);
      if (!runsAsRoot || (Number(stats.uid) === owner.uid && Number(stats.gid) === owner.gid)) return stats;
      await this.files.fchown(fd, owner.uid, owner.gid);
      return await this.files.fstat(fd);
    } finally {
      await this.files.close(fd);
    }
  }

  private async createOther(path: string, request: Extract<CreateRequest, { kind: 'directory' | 'symlink' }>, owner: Owner): Promise<StoredObject> {
    const host = this.hostPath(path);
    if (request.kind === 'directory') {
      await this.files.mkdir(host, requestedMode(request.attributes, nfs.NF3DIR));
    } else {
      checkSymlinkTarget(request.target);
      await this.files.symlink(Buffer.from(request.target, 'latin1'), host);
    }
    await this.giveTo(host, owner);
    const created: Located = { path, stats: await this.lstat(path) };
    // mkdir's mode passed through the umask: applied again here, with the other attributes.
    if (request.kind === 'directory' && (await this.applyAttributes(created, request.attributes))) created.stats = await this.lstat(path);
    return this.remember(created);
  }

  /** The verifier is kept in atime/mtime (as other servers do) so a retransmission can match it. */
  private async createExclusive(path: string, verifier: Buffer, owner: Owner): Promise<StoredObject> {
    const host = this.hostPath(path);
    const atime = verifier.readUInt32BE(0);
    const mtime = verifier.readUInt32BE(4);
    try {
      await this.files.close(await this.files.open(host, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW, 0o600));
      await this.files.utimes(host, atime, mtime);
      await this.giveTo(host, owner);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stats = await this.lstat(path);
      if (!stats.isFile() || stats.atimeNs / 1_000_000_000n !== BigInt(atime) || stats.mtimeNs / 1_000_000_000n !== BigInt(mtime)) {
        throw new NfsStatusError(nfs.NFS3ERR_EXIST, 'name exists');
      }
    }
    return this.remember({ path, stats: await this.lstat(path) });
  }

  /** Whether anything was set (the located stats are then out of date). */
  private async applyAttributes(located: Located, attributes: sattr3): Promise<boolean> {
    const host = this.hostPath(located.path);
    const isLink = located.stats.isSymbolicLink();
    let changed = false;
    if (attributes.size.set_it === true) {
      if (!located.stats.isFile()) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'size of a non-file');
      if (attributes.size.size > BigInt(maxFileBytes)) throw new NfsStatusError(nfs.NFS3ERR_FBIG, 'size past the largest file');
      const { fd } = await this.openFile(located, fsConstants.O_WRONLY);
      try {
        await this.files.ftruncate(fd, Number(attributes.size.size));
      } finally {
        await this.files.close(fd);
      }
      changed = true;
    }
    // Symlinks: lchmod does not exist on Linux and their mode is meaningless; ownership via lchown.
    if (attributes.mode.set_it === true && !isLink) {
      await this.files.chmod(host, attributes.mode.mode & 0o7777);
      changed = true;
    }
    if (attributes.uid.set_it === true || attributes.gid.set_it === true) {
      const uid = attributes.uid.set_it === true ? attributes.uid.uid : -1;
      const gid = attributes.gid.set_it === true ? attributes.gid.gid : -1;
      await this.files.lchown(host, uid, gid);
      changed = true;
    }
    return (await this.applyTimes(located, attributes)) || changed;
  }

  private async applyTimes(located: Located, attributes: sattr3): Promise<boolean> {
    if (attributes.atime.set_it === nfs.DONT_CHANGE && attributes.mtime.set_it === nfs.DONT_CHANGE) return false;
    const now = Date.now() / 1000;
    const toSeconds = (nanoseconds: bigint): number => Number(nanoseconds) / 1e9;
    const atime = attributes.atime.set_it === nfs.SET_TO_CLIENT_TIME ? toSeconds(nanosecondsFromTime(attributes.atime.atime))
      : attributes.atime.set_it === nfs.SET_TO_SERVER_TIME ? now : toSeconds(located.stats.atimeNs);
    const mtime = attributes.mtime.set_it === nfs.SET_TO_CLIENT_TIME ? toSeconds(nanosecondsFromTime(attributes.mtime.mtime))
      : attributes.mtime.set_it === nfs.SET_TO_SERVER_TIME ? now : toSeconds(located.stats.mtimeNs);
    await this.files.lutimes(this.hostPath(located.path), atime, mtime);
    return true;
  }

  private attributesOf(stats: BigIntStats): fattr3 {
    const rdev = Number(stats.rdev);
    return {
      type: typeOf(stats), mode: Number(stats.mode) & 0o7777, nlink: Number(stats.nlink), uid: Number(stats.uid), gid: Number(stats.gid),
      size: stats.size, used: stats.blocks * 512n, rdev: { specdata1: (rdev >>> 8) & 0xfff, specdata2: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) },
      fsid: stats.dev, fileid: stats.ino,
      atime: timeFromNanoseconds(stats.atimeNs), mtime: timeFromNanoseconds(stats.mtimeNs), ctime: timeFromNanoseconds(stats.ctimeNs),
    };
  }
}

function joinPath(directory: string, name: string): string {
  return directory === '' ? name : `${directory}/${name}`;
}

function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/**
 * Node exposes no i_generation; the birth time (statx btime) tells a reused inode from the object
 * it was. File systems without btime report 0: handles stay valid, reuse is then undetected.
 */
function generationOf(stats: BigIntStats): number {
  return Number(BigInt.asUintN(32, stats.birthtimeNs));
}

function typeOf(stats: BigIntStats): ftype3 {
  if (stats.isFile()) return nfs.NF3REG;
  if (stats.isDirectory()) return nfs.NF3DIR;
  if (stats.isSymbolicLink()) return nfs.NF3LNK;
  if (stats.isBlockDevice()) return nfs.NF3BLK;
  if (stats.isCharacterDevice()) return nfs.NF3CHR;
  if (stats.isSocket()) return nfs.NF3SOCK;
  return nfs.NF3FIFO;
}
