/**
 * MemoryStore: a file system held in this process's memory, the default store.
 *
 * Life: created by the caller (or the server's options), owned by the NFS service that serves
 * it, main thread only; close() drops every object. Nothing survives the process: handles carry
 * a random device number per instance, so handles of an earlier instance answer NFS3ERR_STALE
 * (with the same secret) or NFS3ERR_BADHANDLE (with a new random one).
 *
 * Data is written in place, so every WRITE is as durable as this store gets: COMMIT only has to
 * answer with the write verifier. A file's data lives in 1 MiB extents (file-extents.ts): a READ
 * inside one is answered with a view, not a copy, and the extent is copied before its next write.
 *
 * A node's fattr3 is built once and kept until the node changes (every change goes through
 * `changed()`): a kernel client's CREATE reads the directory's and the new file's attributes
 * three times, a GETATTR once, and building them (BigInts, three nfstime3) was a fixed cost of
 * every call. The kept fattr3 is shared with callers, who only read it.
 *
 * The calls of a small-file workload (GETATTR, SETATTR, LOOKUP, CREATE, WRITE, COMMIT, REMOVE)
 * answer at once, not with a promise (store.ts): nothing here waits.
 */
import assert from 'node:assert';
import { randomBytes } from 'node:crypto';
import { Nfs3Error, Nfs3ErrorCode, NfsStatusError } from '../errors.js';
import { HandleCodec, StoreKind, handleSecretBytesMin } from '../handles.js';
import { normalizedTime, requestedMode, serverTime } from '../attributes.js';
import { checkName, checkNewName, checkSymlinkTarget } from '../names.js';
import type { fattr3, ftype3, nfstime3, sattr3 } from '../protocol/nfs3.generated.js';
import { FileExtents } from './file-extents.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type {
  AttributeChange, CreateRequest, CreateResult, DirectoryEntry, Handle, LookupResult, NfsStore, Owner, ReadResult, StoredObject, StoreStatistics, WriteStability,
} from './store.js';

export interface MemoryStoreOptions {
  /** Total file data held; writes beyond get NFS3ERR_NOSPC. */
  maxBytes?: number;
  /** Objects (files, directories, symlinks) held; creates beyond get NFS3ERR_NOSPC. */
  maxObjects?: number;
  /** HMAC secret for handles (≥ 16 bytes); random by default. */
  handleSecret?: Buffer;
}

const defaults = {
  // Bounded well under the machine's memory: a client cannot grow the process without limit.
  maxBytes: 1024 * 1024 * 1024,
  maxObjects: 1_000_000,
} as const;

/** Largest single file: an offset must stay an exact JS number and a Buffer length. */
const maxFileBytes = 2 ** 32;

function positiveInteger(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `${field} must be a positive integer`);
  return value;
}

interface MemoryNode {
  fileId: bigint;
  type: ftype3;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Regular files: contents (bytes past `size` read as zero); null for other types. */
  data: FileExtents | null;
  size: number;
  /** Directories: entries by name (latin1). */
  children: Map<string, MemoryNode> | null;
  /** Directories: the parent ('..'); the root is its own parent. */
  parent: MemoryNode | null;
  target: string;
  /** Times as the attributes answer them (frozen, shared): no BigInt arithmetic per change or per fattr3. */
  atime: nfstime3;
  mtime: nfstime3;
  ctime: nfstime3;
  /** Exclusive CREATE: the client's verifier, so a retransmitted CREATE succeeds. */
  createVerifier: Buffer | null;
  /** The attributes as last built; null once anything above changed (see changed()). */
  attributes: fattr3 | null;
  /** Its handle once made: a LOOKUP or CREATE answers it without building the codec's key. */
  handle: Handle | null;
}

/** Nothing here has device numbers: one frozen value serves every fattr3. */
const noDevice = Object.freeze({ specdata1: 0, specdata2: 0 });

export class MemoryStore implements NfsStore {
  readonly rootHandle: Handle;
  readonly maxFileBytes = maxFileBytes;
  private readonly codec: HandleCodec;
  private readonly device = randomBytes(8).readBigUInt64BE(0);
  private readonly nodes = new Map<bigint, MemoryNode>();
  private readonly maxBytes: number;
  private readonly maxObjects: number;
  private nextFileId = 2n;
  private bytesUsed = 0;
  private readonly root: MemoryNode;

  constructor(options: MemoryStoreOptions = {}) {
    this.maxBytes = positiveInteger(options.maxBytes ?? defaults.maxBytes, 'maxBytes');
    this.maxObjects = positiveInteger(options.maxObjects ?? defaults.maxObjects, 'maxObjects');
    const secret = options.handleSecret ?? randomBytes(32);
    if (!Buffer.isBuffer(secret) || secret.length < handleSecretBytesMin) {
      throw new Nfs3Error(Nfs3ErrorCode.STORE_SECRET, `handleSecret must be a Buffer of at least ${handleSecretBytesMin} bytes`);
    }
    this.codec = new HandleCodec(StoreKind.MEMORY, secret);
    this.root = this.newNode(nfs.NF3DIR, 0o755, 0, 0);
    this.root.parent = this.root;
    this.root.nlink = 2;
    this.rootHandle = this.handleOf(this.root);
  }

  getAttributes(handle: Uint8Array): fattr3 {
    return this.attributesOf(this.resolve(handle));
  }

  setAttributes(handle: Uint8Array, attributes: sattr3): AttributeChange {
    const node = this.resolve(handle);
    const before = this.attributesOf(node);
    this.applyAttributes(node, attributes);
    return { before, after: this.attributesOf(node) };
  }

  lookup(directory: Uint8Array, name: string): LookupResult {
    checkName(name);
    const parent = this.resolveDirectory(directory);
    const found = name === '.' ? parent : name === '..' ? (parent.parent ?? parent) : parent.children?.get(name);
    return { object: found === undefined ? null : this.objectOf(found), directory: this.attributesOf(parent) };
  }

  async readLink(handle: Uint8Array): Promise<string> {
    const node = this.resolve(handle);
    if (node.type !== nfs.NF3LNK) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'not a symbolic link');
    return node.target;
  }

  async read(handle: Uint8Array, offset: number, count: number): Promise<ReadResult> {
    const node = this.resolveFile(handle);
    const start = Math.min(offset, node.size);
    const end = Math.min(start + count, node.size);
    node.atime = serverTime();
    changed(node);
    // Lent, not copied (file-extents.ts): a WRITE before the reply is sent writes a copy.
    return { data: fileData(node).read(start, end), eof: end >= node.size, attributes: this.attributesOf(node) };
  }

  write(handle: Uint8Array, offset: number, data: Uint8Array, _stability: WriteStability): AttributeChange {
    const node = this.resolveFile(handle);
    const before = this.attributesOf(node);
    const end = offset + data.byteLength;
    if (end > maxFileBytes) throw new NfsStatusError(nfs.NFS3ERR_FBIG, `write ends at ${end}, past ${maxFileBytes}`);
    const file = fileData(node);
    this.reserveBytes(file.growthOf(offset, data.byteLength));
    file.write(offset, data);
    node.size = Math.max(node.size, end);
    node.mtime = node.ctime = serverTime();
    changed(node);
    return { before, after: this.attributesOf(node) };
  }

  commit(handle: Uint8Array): AttributeChange {
    const attributes = this.attributesOf(this.resolveFile(handle));
    return { before: attributes, after: attributes };
  }

  create(directory: Uint8Array, name: string, request: CreateRequest, owner: Owner): CreateResult {
    checkNewName(name);
    const parent = this.resolveDirectory(directory);
    const before = this.attributesOf(parent);
    const existing = parent.children?.get(name);
    if (existing !== undefined) return { object: this.objectOf(this.reuseExisting(existing, request)), directory: { before, after: this.attributesOf(parent) } };
    if (request.kind === 'symlink') checkSymlinkTarget(request.target);
    const type = request.kind === 'directory' ? nfs.NF3DIR : request.kind === 'symlink' ? nfs.NF3LNK : nfs.NF3REG;
    const attributes = 'attributes' in request ? request.attributes : null;
    const node = this.newNode(type, attributes === null ? 0o644 : requestedMode(attributes, type), owner.uid, owner.gid);
    if (request.kind === 'directory') {
      node.parent = parent;
      node.nlink = 2;
      parent.nlink += 1;
    }
    if (request.kind === 'symlink') node.target = request.target;
    if (request.kind === 'file' && request.mode === 'exclusive') node.createVerifier = request.verifier;
    this.attach(parent, name, node);
    if (attributes !== null) this.applyAttributes(node, { ...attributes, mode: { set_it: false } });
    return { object: this.objectOf(node), directory: { before, after: this.attributesOf(parent) } };
  }

  remove(directory: Uint8Array, name: string): AttributeChange {
    checkName(name);
    const parent = this.resolveDirectory(directory);
    const before = this.attributesOf(parent);
    const node = this.child(parent, name);
    if (node.type === nfs.NF3DIR) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'REMOVE of a directory: use RMDIR');
    this.detach(parent, name, node);
    return { before, after: this.attributesOf(parent) };
  }

  removeDirectory(directory: Uint8Array, name: string): AttributeChange {
    if (name === '.') throw new NfsStatusError(nfs.NFS3ERR_INVAL, "RMDIR of '.'");
    if (name === '..') throw new NfsStatusError(nfs.NFS3ERR_EXIST, "RMDIR of '..'");
    checkName(name);
    const parent = this.resolveDirectory(directory);
    const before = this.attributesOf(parent);
    const node = this.child(parent, name);
    if (node.type !== nfs.NF3DIR) throw new NfsStatusError(nfs.NFS3ERR_NOTDIR, 'RMDIR of a non-directory');
    if ((node.children?.size ?? 0) > 0) throw new NfsStatusError(nfs.NFS3ERR_NOTEMPTY, 'directory not empty');
    this.detach(parent, name, node);
    return { before, after: this.attributesOf(parent) };
  }

  async rename(fromDirectory: Uint8Array, fromName: string, toDirectory: Uint8Array, toName: string): Promise<void> {
    checkNewName(fromName);
    checkNewName(toName);
    const fromParent = this.resolveDirectory(fromDirectory);
    const toParent = this.resolveDirectory(toDirectory);
    const node = this.child(fromParent, fromName);
    if (fromParent === toParent && fromName === toName) return;
    for (let ancestor: MemoryNode = toParent; ; ancestor = ancestor.parent ?? ancestor) {
      if (ancestor === node) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'cannot move a directory into itself');
      if (ancestor === this.root) break;
    }
    const target = toParent.children?.get(toName);
    if (target !== undefined) this.replaceTarget(toParent, toName, target, node);
    fromParent.children?.delete(fromName);
    toParent.children?.set(toName, node);
    if (node.type === nfs.NF3DIR) {
      fromParent.nlink -= 1;
      toParent.nlink += 1;
      node.parent = toParent;
    }
    const now = serverTime();
    fromParent.mtime = fromParent.ctime = toParent.mtime = toParent.ctime = node.ctime = now;
    changed(fromParent);
    changed(toParent);
    changed(node);
  }

  async link(handle: Uint8Array, directory: Uint8Array, name: string): Promise<void> {
    checkNewName(name);
    const node = this.resolve(handle);
    const parent = this.resolveDirectory(directory);
    if (node.type === nfs.NF3DIR) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'hard links to directories are not allowed');
    if (parent.children?.has(name)) throw new NfsStatusError(nfs.NFS3ERR_EXIST, 'name exists');
    this.attach(parent, name, node);
    node.nlink += 1;
    node.ctime = serverTime();
    changed(node);
  }

  async listDirectory(directory: Uint8Array): Promise<DirectoryEntry[]> {
    const parent = this.resolveDirectory(directory);
    const entries: DirectoryEntry[] = [];
    for (const [name, node] of parent.children ?? []) entries.push({ name, fileId: node.fileId });
    return entries;
  }

  async statistics(): Promise<StoreStatistics> {
    const freeBytes = BigInt(this.maxBytes - this.bytesUsed);
    const freeFiles = BigInt(this.maxObjects - this.nodes.size);
    return { totalBytes: BigInt(this.maxBytes), freeBytes, availableBytes: freeBytes, totalFiles: BigInt(this.maxObjects), freeFiles, availableFiles: freeFiles };
  }

  async close(): Promise<void> {
    this.nodes.clear();
  }

  private handleOf(node: MemoryNode): Handle {
    node.handle ??= this.codec.encode({ device: this.device, fileId: node.fileId, generation: 0 });
    return node.handle;
  }

  private objectOf(node: MemoryNode): StoredObject {
    return { handle: this.handleOf(node), attributes: this.attributesOf(node) };
  }

  private resolve(handle: Uint8Array): MemoryNode {
    const identity = this.codec.decode(handle);
    const node = identity.device === this.device ? this.nodes.get(identity.fileId) : undefined;
    if (node === undefined) throw new NfsStatusError(nfs.NFS3ERR_STALE, 'no such object (removed, or from another store instance)');
    return node;
  }

  private resolveDirectory(handle: Uint8Array): MemoryNode {
    const node = this.resolve(handle);
    if (node.type !== nfs.NF3DIR) throw new NfsStatusError(nfs.NFS3ERR_NOTDIR, 'not a directory');
    return node;
  }

  private resolveFile(handle: Uint8Array): MemoryNode {
    const node = this.resolve(handle);
    if (node.type === nfs.NF3DIR) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'is a directory');
    if (node.type !== nfs.NF3REG) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'not a regular file');
    return node;
  }

  private child(parent: MemoryNode, name: string): MemoryNode {
    const node = parent.children?.get(name);
    if (node === undefined) throw new NfsStatusError(nfs.NFS3ERR_NOENT, 'no such name');
    return node;
  }

  /** CREATE of an existing name: UNCHECKED reuses a file, EXCLUSIVE a retransmission, else EXIST. */
  private reuseExisting(existing: MemoryNode, request: CreateRequest): MemoryNode {
    if (request.kind === 'file' && request.mode === 'unchecked' && existing.type === nfs.NF3REG) {
      this.applyAttributes(existing, { ...request.attributes, mode: { set_it: false } });
      return existing;
    }
    if (request.kind === 'file' && request.mode === 'exclusive' && existing.createVerifier?.equals(request.verifier)) return existing;
    throw new NfsStatusError(nfs.NFS3ERR_EXIST, 'name exists');
  }

  private newNode(type: ftype3, mode: number, uid: number, gid: number): MemoryNode {
    if (this.nodes.size >= this.maxObjects) throw new NfsStatusError(nfs.NFS3ERR_NOSPC, `store holds its maximum of ${this.maxObjects} objects`);
    const now = serverTime();
    const node: MemoryNode = {
      fileId: this.nextFileId++, type, mode, uid, gid, nlink: 1, data: type === nfs.NF3REG ? new FileExtents() : null, size: 0,
      children: type === nfs.NF3DIR ? new Map() : null, parent: null, target: '', atime: now, mtime: now, ctime: now, createVerifier: null,
      attributes: null, handle: null,
    };
    this.nodes.set(node.fileId, node);
    return node;
  }

  private attach(parent: MemoryNode, name: string, node: MemoryNode): void {
    assert(parent.children !== null && !parent.children.has(name));
    parent.children.set(name, node);
    parent.mtime = parent.ctime = serverTime();
    changed(parent);
  }

  private detach(parent: MemoryNode, name: string, node: MemoryNode): void {
    parent.children?.delete(name);
    parent.mtime = parent.ctime = serverTime();
    if (node.type === nfs.NF3DIR) {
      parent.nlink -= 1;
      node.nlink = 0;
    } else {
      node.nlink -= 1;
    }
    changed(parent);
    changed(node);
    if (node.nlink === 0) this.free(node);
  }

  private replaceTarget(toParent: MemoryNode, toName: string, target: MemoryNode, source: MemoryNode): void {
    const sourceIsDirectory = source.type === nfs.NF3DIR;
    if (target.type === nfs.NF3DIR && !sourceIsDirectory) throw new NfsStatusError(nfs.NFS3ERR_ISDIR, 'RENAME onto a directory');
    if (target.type !== nfs.NF3DIR && sourceIsDirectory) throw new NfsStatusError(nfs.NFS3ERR_NOTDIR, 'RENAME of a directory onto a non-directory');
    if ((target.children?.size ?? 0) > 0) throw new NfsStatusError(nfs.NFS3ERR_NOTEMPTY, 'RENAME onto a non-empty directory');
    if (target === source) return;
    this.detach(toParent, toName, target);
  }

  private free(node: MemoryNode): void {
    this.bytesUsed -= node.data?.allocatedBytes ?? 0;
    this.nodes.delete(node.fileId);
  }

  /** Counts `growth` more bytes of file data, or refuses them (NOSPC) before anything changed. */
  private reserveBytes(growth: number): void {
    if (this.bytesUsed + growth > this.maxBytes) throw new NfsStatusError(nfs.NFS3ERR_NOSPC, `store holds its maximum of ${this.maxBytes} bytes`);
    this.bytesUsed += growth;
  }

  /** A file's new size: a shrink drops what lies past it (a later extension reads zeros), an extension allocates nothing (a hole). */
  private resize(node: MemoryNode, size: number): void {
    if (size < node.size) {
      const file = fileData(node);
      const allocated = file.allocatedBytes;
      file.truncate(size);
      this.bytesUsed += file.allocatedBytes - allocated;
    }
    node.size = size;
  }

  private applyAttributes(node: MemoryNode, attributes: sattr3): void {
    if (attributes.size.set_it === true) {
      if (node.type !== nfs.NF3REG) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'size of a non-file');
      if (attributes.size.size > BigInt(maxFileBytes)) throw new NfsStatusError(nfs.NFS3ERR_FBIG, 'size past the largest file');
      this.resize(node, Number(attributes.size.size));
      node.mtime = serverTime();
    }
    if (attributes.mode.set_it === true) node.mode = attributes.mode.mode & 0o7777;
    if (attributes.uid.set_it === true) node.uid = attributes.uid.uid;
    if (attributes.gid.set_it === true) node.gid = attributes.gid.gid;
    if (attributes.atime.set_it === nfs.SET_TO_SERVER_TIME) node.atime = serverTime();
    if (attributes.atime.set_it === nfs.SET_TO_CLIENT_TIME) node.atime = normalizedTime(attributes.atime.atime);
    if (attributes.mtime.set_it === nfs.SET_TO_SERVER_TIME) node.mtime = serverTime();
    if (attributes.mtime.set_it === nfs.SET_TO_CLIENT_TIME) node.mtime = normalizedTime(attributes.mtime.mtime);
    node.ctime = serverTime();
    changed(node);
  }

  private attributesOf(node: MemoryNode): fattr3 {
    if (node.attributes !== null) return node.attributes;
    const size = node.type === nfs.NF3LNK ? node.target.length : node.type === nfs.NF3DIR ? 4096 : node.size;
    node.attributes = Object.freeze({
      type: node.type, mode: node.mode, nlink: node.nlink, uid: node.uid, gid: node.gid,
      size: BigInt(size), used: BigInt(node.data === null ? size : node.data.allocatedBytes),
      rdev: noDevice, fsid: this.device, fileid: node.fileId,
      atime: node.atime, mtime: node.mtime, ctime: node.ctime,
    });
    return node.attributes;
  }
}

/** A regular file's data (resolveFile and the NF3REG checks come first). */
function fileData(node: MemoryNode): FileExtents {
  assert(node.data !== null, 'file data of a non-file');
  return node.data;
}

/** Every change to a node's attributes ends here: the next read builds them again. */
function changed(node: MemoryNode): void {
  node.attributes = null;
}
