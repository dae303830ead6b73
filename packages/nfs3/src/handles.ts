/**
 * File handles: opaque to clients, 32 bytes, authenticated so a client cannot forge one.
 *
 *   0        1          2        4             8               16              24        32
 *   +--------+----------+--------+-------------+---------------+---------------+---------+
 *   | layout | store    | zero   | generation  | device        | file id       | MAC     |
 *   | = 2    | kind     |        | u32         | u64           | u64           | 8 bytes |
 *   +--------+----------+--------+-------------+---------------+---------------+---------+
 *
 * MAC = first 8 bytes of SHA-256(secret ‖ bytes 0..23). A handle of the wrong length, layout
 * or kind, or with a MAC that does not match, fails the internal consistency checks:
 * NFS3ERR_BADHANDLE. A well-formed handle naming an object that no longer exists (another
 * device or store instance, a freed file id, a reused inode of another generation) is
 * NFS3ERR_STALE: the stores decide that.
 *
 * Why not HMAC: the message is always exactly 24 bytes, so SHA-256's length extension (the
 * reason HMAC wraps the hash twice) cannot produce another valid handle — an extended message is
 * longer than any handle, and fixed-length inputs are prefix-free, for which a secret-prefix
 * hash is a PRF. One `crypto.hash` call (two SHA-256 blocks) replaces an Hmac object, its
 * update and digest (four blocks): 1.0 against 2.1 µs on the host, and every new object (each
 * CREATE) makes one. Layout 1 was HMAC-SHA256: its handles are BADHANDLE here.
 *
 * The MAC is computed once per handle, not once per call: a MAC costs µs on the host
 * (~35 µs once with the secret as a Buffer, which node turned into a key object each time) and a
 * kernel client sends the same few handles again and again, several per call (LOOKUP: the
 * directory's and the result's), which under TCG made MACs the largest share of a call. Handles
 * this codec made or verified are remembered, bounded (see below), so a remembered handle is a
 * Map lookup. In front of that Map, the last few handles decoded are compared byte by byte: one
 * call decodes the same two or three handles up to four times (a CREATE: the directory's before,
 * during and after, the new file's), and a 32-byte compare costs less than the Map's string key.
 *
 * Life: a HandleCodec is created by its store with the store's secret and lives as long as it;
 * used only on its store's thread (the main thread, or one of svcrdma's workers).
 */
import assert from 'node:assert';
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { NfsStatusError } from './errors.js';
import { NFS3ERR_BADHANDLE } from './protocol/nfs3.generated.js';

export const handleBytes = 32;
const handleLayout = 2;
const macOffset = 24;
const macBytes = 8;
/** Shorter secrets make the MAC guessable. */
export const handleSecretBytesMin = 16;
/**
 * Handles remembered (each way): a working set of this many objects costs no MAC. ~100 bytes an
 * entry, so at most a few MiB; when full the table starts over (its handles pay one MAC again),
 * which bounds memory against a client sending endless distinct (valid) handles.
 */
export const rememberedHandlesMax = 65_536;
/** Handles compared byte by byte before the Map: the few one call names (directory, object, target directory). */
const recentHandlesMax = 4;

export const StoreKind = { MEMORY: 1, DIRECTORY: 2 } as const;
export type StoreKind = (typeof StoreKind)[keyof typeof StoreKind];

export interface HandleIdentity {
  device: bigint;
  fileId: bigint;
  generation: number;
}

export class HandleCodec {
  /** The secret, then room for the 24 handle bytes a MAC covers (written before each hash). */
  private readonly macInput: Buffer;
  private readonly secretBytes: number;
  /** Handle bytes (latin1) → identity, for handles made or verified here; identities are frozen. */
  private readonly identities = new Map<string, Readonly<HandleIdentity>>();
  /** Identity (generation:device:fileId) → its handle; the handles are never written to. */
  private readonly handles = new Map<string, Buffer>();
  /** Copies of the last handles decoded and their identities, replaced round robin. */
  private readonly recentHandles: Buffer[] = [];
  private readonly recentIdentities: Readonly<HandleIdentity>[] = [];
  private nextRecent = 0;

  constructor(
    private readonly kind: StoreKind,
    secret: Buffer,
    private readonly rememberedMax = rememberedHandlesMax,
  ) {
    assert(secret.length >= handleSecretBytesMin, 'handle secret too short');
    this.secretBytes = secret.length;
    this.macInput = Buffer.alloc(secret.length + macOffset);
    secret.copy(this.macInput);
  }

  /** The handle of `identity`; the same Buffer for the same identity while remembered (callers must not write to it). */
  encode(identity: HandleIdentity): Buffer {
    const identityKey = `${identity.generation}:${identity.device}:${identity.fileId}`;
    const known = this.handles.get(identityKey);
    if (known !== undefined) return known;
    const handle = this.computeHandle(identity);
    // What decode() reads back from these bytes.
    const decoded = Object.freeze({ generation: handle.readUInt32BE(4), device: handle.readBigUInt64BE(8), fileId: handle.readBigUInt64BE(16) });
    this.remember(identityKey, handle, decoded);
    return handle;
  }

  /** Throws NFS3ERR_BADHANDLE for anything this codec did not make. The identity is frozen (shared). */
  decode(handle: Uint8Array): Readonly<HandleIdentity> {
    if (handle.length !== handleBytes || handle[0] !== handleLayout || handle[1] !== this.kind) {
      throw new NfsStatusError(NFS3ERR_BADHANDLE, 'file handle has the wrong length, layout or store kind');
    }
    for (let index = 0; index < this.recentHandles.length; index++) {
      if (sameHandle(handle, this.recentHandles[index]!)) return this.recentIdentities[index]!;
    }
    const identity = this.decodeRemembered(Buffer.from(handle.buffer, handle.byteOffset, handle.byteLength));
    this.recentHandles[this.nextRecent] = Buffer.from(handle);
    this.recentIdentities[this.nextRecent] = identity;
    this.nextRecent = (this.nextRecent + 1) % recentHandlesMax;
    return identity;
  }

  private decodeRemembered(bytes: Buffer): Readonly<HandleIdentity> {
    const known = this.identities.get(bytes.toString('latin1'));
    if (known !== undefined) return known;
    if (!timingSafeEqual(this.mac(bytes), bytes.subarray(macOffset))) {
      throw new NfsStatusError(NFS3ERR_BADHANDLE, 'file handle MAC does not match');
    }
    const identity = Object.freeze({ generation: bytes.readUInt32BE(4), device: bytes.readBigUInt64BE(8), fileId: bytes.readBigUInt64BE(16) });
    this.remember(`${identity.generation}:${identity.device}:${identity.fileId}`, Buffer.from(bytes), identity);
    return identity;
  }

  private remember(identityKey: string, handle: Buffer, identity: Readonly<HandleIdentity>): void {
    if (this.handles.size >= this.rememberedMax) {
      this.handles.clear();
      this.identities.clear();
    }
    this.handles.set(identityKey, handle);
    this.identities.set(handle.toString('latin1'), identity);
  }

  private computeHandle(identity: HandleIdentity): Buffer {
    const handle = Buffer.alloc(handleBytes);
    handle.writeUInt8(handleLayout, 0);
    handle.writeUInt8(this.kind, 1);
    handle.writeUInt32BE(identity.generation >>> 0, 4);
    handle.writeBigUInt64BE(BigInt.asUintN(64, identity.device), 8);
    handle.writeBigUInt64BE(BigInt.asUintN(64, identity.fileId), 16);
    this.mac(handle).copy(handle, macOffset);
    return handle;
  }

  private mac(handle: Buffer): Buffer {
    handle.copy(this.macInput, this.secretBytes, 0, macOffset);
    return hash('sha256', this.macInput, 'buffer').subarray(0, macBytes);
  }
}

/**
 * The secret kept in `path`, created (32 random bytes, as HMAC-SHA256 wants; mode 0600) on first
 * use: a directory store opened with the same secret after a restart accepts its old handles.
 */
export async function loadHandleSecret(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const secret = randomBytes(32);
    await writeFile(path, secret, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

/** Byte-wise equality of two handles of handleBytes, from the end: handles differ first in their MAC. */
function sameHandle(handle: Uint8Array, recent: Buffer): boolean {
  for (let index = handleBytes - 1; index >= 0; index--) if (handle[index] !== recent[index]) return false;
  return true;
}
