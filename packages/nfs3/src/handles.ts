/**
 * File handles: opaque to clients, 32 bytes, authenticated so a client cannot forge one.
 *
 *   0        1          2        4             8               16              24        32
 *   +--------+----------+--------+-------------+---------------+---------------+---------+
 *   | layout | store    | zero   | generation  | device        | file id       | MAC     |
 *   | = 1    | kind     |        | u32         | u64           | u64           | 8 bytes |
 *   +--------+----------+--------+-------------+---------------+---------------+---------+
 *
 * MAC = first 8 bytes of HMAC-SHA256(secret, bytes 0..23). A handle of the wrong length, layout
 * or kind, or with a MAC that does not match, fails the internal consistency checks:
 * NFS3ERR_BADHANDLE. A well-formed handle naming an object that no longer exists (another
 * device or store instance, a freed file id, a reused inode of another generation) is
 * NFS3ERR_STALE: the stores decide that.
 *
 * Life: a HandleCodec is created by its store with the store's secret and lives as long as it;
 * main thread only.
 */
import assert from 'node:assert';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { NfsStatusError } from './errors.js';
import { NFS3ERR_BADHANDLE } from './protocol/nfs3.generated.js';

export const handleBytes = 32;
const handleLayout = 1;
const macOffset = 24;
const macBytes = 8;
/** Shorter secrets make the MAC guessable. */
export const handleSecretBytesMin = 16;

export const StoreKind = { MEMORY: 1, DIRECTORY: 2 } as const;
export type StoreKind = (typeof StoreKind)[keyof typeof StoreKind];

export interface HandleIdentity {
  device: bigint;
  fileId: bigint;
  generation: number;
}

export class HandleCodec {
  constructor(
    private readonly kind: StoreKind,
    private readonly secret: Buffer,
  ) {
    assert(secret.length >= handleSecretBytesMin, 'handle secret too short');
  }

  encode(identity: HandleIdentity): Buffer {
    const handle = Buffer.alloc(handleBytes);
    handle.writeUInt8(handleLayout, 0);
    handle.writeUInt8(this.kind, 1);
    handle.writeUInt32BE(identity.generation >>> 0, 4);
    handle.writeBigUInt64BE(BigInt.asUintN(64, identity.device), 8);
    handle.writeBigUInt64BE(BigInt.asUintN(64, identity.fileId), 16);
    this.mac(handle).copy(handle, macOffset);
    return handle;
  }

  /** Throws NFS3ERR_BADHANDLE for anything this codec did not make. */
  decode(handle: Uint8Array): HandleIdentity {
    const bytes = Buffer.from(handle.buffer, handle.byteOffset, handle.byteLength);
    if (bytes.length !== handleBytes || bytes[0] !== handleLayout || bytes[1] !== this.kind) {
      throw new NfsStatusError(NFS3ERR_BADHANDLE, 'file handle has the wrong length, layout or store kind');
    }
    if (!timingSafeEqual(this.mac(bytes), bytes.subarray(macOffset))) {
      throw new NfsStatusError(NFS3ERR_BADHANDLE, 'file handle MAC does not match');
    }
    return { generation: bytes.readUInt32BE(4), device: bytes.readBigUInt64BE(8), fileId: bytes.readBigUInt64BE(16) };
  }

  private mac(handle: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(handle.subarray(0, macOffset)).digest().subarray(0, macBytes);
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
