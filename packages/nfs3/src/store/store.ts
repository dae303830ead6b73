/**
 * The store interface: what the NFS procedures need from a file system. Handles are the
 * store's own opaque bytes (see handles.ts); every method fails with NfsStatusError (or a host
 * errno error, mapped by statusOf) for operating errors, and never follows a symlink.
 *
 * A method answers either a value (and fails by throwing) or a promise (and fails by rejecting):
 * the memory store answers its calls at once, and the procedures then answer theirs without a
 * promise (procedures/answer.ts) — under the lab's emulation each promise a call goes through is
 * a measurable share of a GETATTR. Callers `await` or use `answer()`, which take both.
 *
 * Two implementations: MemoryStore (the default) and DirectoryStore (a host directory).
 */
import type { fattr3, sattr3 } from '../protocol/nfs3.generated.js';

export type Handle = Buffer;

/** What a store method answers: the value at once, or its promise. */
export type Awaitable<T> = T | Promise<T>;

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
  /** The file's attributes as the read found them (READ's post-op attributes). */
  attributes: fattr3;
}

/** An object with its attributes as the store saw them in the same call. */
export interface StoredObject {
  handle: Handle;
  attributes: fattr3;
}

/**
 * An object's attributes around a change the store made (wcc_data): `before` from locating it,
 * `after` read once it changed (null if it vanished meanwhile). Returned by the changing call so
 * the procedure does not locate the object again for each.
 */
export interface AttributeChange {
  before: fattr3;
  after: fattr3 | null;
}

export interface LookupResult {
  /** null: no such name (NFS3ERR_NOENT, the answer to every create's first LOOKUP, without an error's cost). */
  object: StoredObject | null;
  /** The directory's attributes as the lookup found them (its post-op attributes: a lookup changes nothing). */
  directory: fattr3;
}

export interface CreateResult {
  object: StoredObject;
  directory: AttributeChange;
}

export interface NfsStore {
  readonly rootHandle: Handle;
  /** Largest file size the store accepts (FSINFO maxfilesize); writes past it get NFS3ERR_FBIG. */
  readonly maxFileBytes: number;
  getAttributes(handle: Uint8Array): Awaitable<fattr3>;
  setAttributes(handle: Uint8Array, attributes: sattr3): Awaitable<AttributeChange>;
  /** '.' is the directory itself; '..' its parent, and the root's parent is the root. */
  lookup(directory: Uint8Array, name: string): Awaitable<LookupResult>;
  readLink(handle: Uint8Array): Awaitable<string>;
  read(handle: Uint8Array, offset: number, count: number): Awaitable<ReadResult>;
  write(handle: Uint8Array, offset: number, data: Uint8Array, stability: WriteStability): Awaitable<AttributeChange>;
  commit(handle: Uint8Array): Awaitable<AttributeChange>;
  /** A new object belongs to `owner` (the caller) unless the request's attributes say otherwise. */
  create(directory: Uint8Array, name: string, request: CreateRequest, owner: Owner): Awaitable<CreateResult>;
  /** The directory's attributes around the removal. */
  remove(directory: Uint8Array, name: string): Awaitable<AttributeChange>;
  removeDirectory(directory: Uint8Array, name: string): Awaitable<AttributeChange>;
  rename(fromDirectory: Uint8Array, fromName: string, toDirectory: Uint8Array, toName: string): Awaitable<void>;
  link(handle: Uint8Array, directory: Uint8Array, name: string): Awaitable<void>;
  /** Every entry but '.' and '..', in no particular order. */
  listDirectory(directory: Uint8Array): Awaitable<DirectoryEntry[]>;
  statistics(): Awaitable<StoreStatistics>;
  close(): Promise<void>;
}
