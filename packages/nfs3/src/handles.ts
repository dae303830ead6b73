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
 * The MAC is computed once per handle, not once per call: a kernel client sends the same few
 * handles again and again, several per call (LOOKUP: the directory's and the result's), and
 * under TCG a MAC costs about as much as the rest of a GETATTR. Handles this codec made or
 * verified are remembered, bounded (see below), each in two tables without string keys: by file
 * id, for encode (a bigint key, then generation and device compared), and by 30 bits of its MAC,
 * for decode (a small-integer key, then all 32 bytes compared: a collision or a forged handle
 * with a matching prefix only costs a MAC). In front of those, the last few handles decoded are
 * compared byte by byte: one call decodes the same two or three handles up to four times (a
 * CREATE: the directory's before, during and after, the new file's).
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
/** Handles compared byte by byte before the tables: the few one call names (directory, object, target directory). */
const recentHandlesMax = 4;

export const StoreKind = { MEMORY: 1, DIRECTORY: 2 } as const;
export type StoreKind = (typeof StoreKind)[keyof typeof StoreKind];

export interface HandleIdentity {
  device: bigint;
  fileId: bigint;
  generation: number;
}

/** A handle this codec made or verified, and what decode() answers for it. */
interface RememberedHandle {
  readonly handle: Buffer;
  readonly identity: Readonly<HandleIdentity>;
}

export class HandleCodec {
  /** The secret, then room for the 24 handle bytes a MAC covers (written before each hash). */
  private readonly macInput: Buffer;
  private readonly secretBytes: number;
  /** For encode: by file id; the handles are never written to. */
  private readonly byFileId = new Map<bigint, RememberedHandle>();
  /** For decode: by macKey() of the handle. */
  private readonly byMacKey = new Map<number, RememberedHandle>();
  /** The last handles decoded (remembered ones: never written to) and their identities, replaced round robin. */
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
    const known = this.byFileId.get(identity.fileId);
    if (known !== undefined && known.identity.generation === identity.generation && known.identity.device === identity.device) return known.handle;
    // What decode() reads back from the handle's bytes.
    const decoded = Object.freeze({
      generation: identity.generation >>> 0,
      device: BigInt.asUintN(64, identity.device),
      fileId: BigInt.asUintN(64, identity.fileId),
    });
    const handle = this.computeHandle(decoded);
    this.remember({ handle, identity: decoded });
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
    const known = this.byMacKey.get(macKey(handle));
    const remembered = known !== undefined && sameHandle(handle, known.handle) ? known : this.verify(handle);
    this.recentHandles[this.nextRecent] = remembered.handle;
    this.recentIdentities[this.nextRecent] = remembered.identity;
    this.nextRecent = (this.nextRecent + 1) % recentHandlesMax;
    return remembered.identity;
  }

  /** A handle not remembered: its MAC checked, then remembered (a copy: `handle` may be a view of a reused buffer). */
  private verify(handle: Uint8Array): RememberedHandle {
    const bytes = Buffer.from(handle);
    if (!timingSafeEqual(this.mac(bytes), bytes.subarray(macOffset))) {
      throw new NfsStatusError(NFS3ERR_BADHANDLE, 'file handle MAC does not match');
    }
    const identity = Object.freeze({ generation: bytes.readUInt32BE(4), device: bytes.readBigUInt64BE(8), fileId: bytes.readBigUInt64BE(16) });
    const remembered = { handle: bytes, identity };
    this.remember(remembered);
    return remembered;
  }

  private remember(remembered: RememberedHandle): void {
    if (this.byFileId.size >= this.rememberedMax || this.byMacKey.size >= this.rememberedMax) {
      this.byFileId.clear();
      this.byMacKey.clear();
    }
    this.byFileId.set(remembered.identity.fileId, remembered);
    this.byMacKey.set(macKey(remembered.handle), remembered);
  }

  private computeHandle(identity: Readonly<HandleIdentity>): Buffer {
    const handle = Buffer.alloc(handleBytes);
    handle[0] = handleLayout;
    handle[1] = this.kind;
    handle.writeUInt32BE(identity.generation, 4);
    handle.writeBigUInt64BE(identity.device, 8);
    handle.writeBigUInt64BE(identity.fileId, 16);
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

/** 30 bits of the handle's MAC: a small integer, so the decode table's key costs no allocation. */
function macKey(handle: Uint8Array): number {
  return ((handle[macOffset]! << 22) | (handle[macOffset + 1]! << 14) | (handle[macOffset + 2]! << 6) | (handle[macOffset + 3]! >>> 2)) >>> 0;
}

/** Byte-wise equality of two handles of handleBytes, from the end: handles differ first in their MAC. */
function sameHandle(handle: Uint8Array, recent: Buffer): boolean {
  for (let index = handleBytes - 1; index >= 0; index--) if (handle[index] !== recent[index]) return false;
  return true;
}
