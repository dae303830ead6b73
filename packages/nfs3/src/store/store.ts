/**
 * The store interface: what the NFS procedures need from a file system. Handles are the
 * store's own opaque bytes (see handles.ts); every method throws NfsStatusError (or a host
 * errno error, mapped by statusOf) for operating errors, and never follows a symlink.
 *
 * Two implementations: MemoryStore (the default) and DirectoryStore (a host directory).
 */
import type { fattr3, sattr3 } from '../protocol/nfs3.generated.js';

export type Handle = Buffer;

/** How durable a WRITE must be before it is answered (stable_how). */
export type WriteStability = 'unstable' | 'data' | 'file';

export type CreateRequest =
  | { kind: 'file'; mode: 'unchecked' | 'guarded'; attributes: sattr3 }
  | { kind: 'file'; mode: 'exclusive'; verifier: Buffer }
  | { kind: 'directory'; attributes: sattr3 }
  | { kind: 'symlink'; attributes: sattr3; target: string };

export interface Owner {
  uid: number;
  gid: number;
}

export interface DirectoryEntry {
  name: string;
  fileId: bigint;
}

export interface StoreStatistics {
  totalBytes: bigint;
  freeBytes: bigint;
  availableBytes: bigint;
  totalFiles: bigint;
  freeFiles: bigint;
  availableFiles: bigint;
}

export interface ReadResult {
  data: Buffer;
  eof: boolean;
}

export interface NfsStore {
  readonly rootHandle: Handle;
  /** Largest file size the store accepts (FSINFO maxfilesize); writes past it get NFS3ERR_FBIG. */
  readonly maxFileBytes: number;
  getAttributes(handle: Uint8Array): Promise<fattr3>;
  setAttributes(handle: Uint8Array, attributes: sattr3): Promise<void>;
  /** '.' is the directory itself; '..' its parent, and the root's parent is the root. */
  lookup(directory: Uint8Array, name: string): Promise<Handle>;
  readLink(handle: Uint8Array): Promise<string>;
  read(handle: Uint8Array, offset: number, count: number): Promise<ReadResult>;
  write(handle: Uint8Array, offset: number, data: Uint8Array, stability: WriteStability): Promise<void>;
  commit(handle: Uint8Array): Promise<void>;
  /** A new object belongs to `owner` (the caller) unless the request's attributes say otherwise. */
  create(directory: Uint8Array, name: string, request: CreateRequest, owner: Owner): Promise<Handle>;
  remove(directory: Uint8Array, name: string): Promise<void>;
  removeDirectory(directory: Uint8Array, name: string): Promise<void>;
  rename(fromDirectory: Uint8Array, fromName: string, toDirectory: Uint8Array, toName: string): Promise<void>;
  link(handle: Uint8Array, directory: Uint8Array, name: string): Promise<void>;
  /** Every entry but '.' and '..', in no particular order. */
  listDirectory(directory: Uint8Array): Promise<DirectoryEntry[]>;
  statistics(): Promise<StoreStatistics>;
  close(): Promise<void>;
}
