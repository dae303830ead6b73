/**
 * NFS service options -> filled options -> defaults, in one place.
 */
import { randomBytes } from 'node:crypto';
import { Nfs3Error, Nfs3ErrorCode } from './errors.js';
import type { NfsStore } from './store/store.js';

export interface NfsServiceOptions {
  /** The file system served; a new MemoryStore by default. */
  store?: NfsStore;
  /** Largest READ and WRITE payload (FSINFO rtmax/wtmax); larger READ counts are clamped, WRITEs shortened. */
  maxTransferBytes?: number;
  /** Path clients name in MNT and that EXPORT lists. */
  exportPath?: string;
  /**
   * WRITE/COMMIT verifier (8 bytes); new random bytes by default. The services of one export on
   * several threads are given the same one.
   */
  writeVerifier?: Uint8Array;
  /** Register MOUNT beside NFS (default true); an export's worker threads serve NFS only. */
  serveMount?: boolean;
}

export interface FilledNfsServiceOptions {
  store: NfsStore;
  maxTransferBytes: number;
  exportPath: string;
  writeVerifier: Buffer;
  serveMount: boolean;
}

/**
 * 1 MiB: what Linux nfsd offers on a machine with memory to spare; it must fit the transport's
 * record (oncrpc TCP: 4 MiB + 64 KiB) with the headers.
 */
export const defaultMaxTransferBytes = 1024 * 1024;
/** READ/WRITE headers and attributes ride in the same record as the payload. */
export const transferBytesLimit = 4 * 1024 * 1024;
const transferBytesMinimum = 4096;
/** writeverf3: NFS3_WRITEVERFSIZE. */
const writeVerifierBytes = 8;

export function fillServiceOptions(options: NfsServiceOptions, makeDefaultStore: () => NfsStore): FilledNfsServiceOptions {
  const maxTransferBytes = options.maxTransferBytes ?? defaultMaxTransferBytes;
  if (!Number.isInteger(maxTransferBytes) || maxTransferBytes < transferBytesMinimum || maxTransferBytes > transferBytesLimit || maxTransferBytes % 4096 !== 0) {
    throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `maxTransferBytes must be a multiple of 4096 between ${transferBytesMinimum} and ${transferBytesLimit}`);
  }
  const exportPath = options.exportPath ?? '/export';
  if (typeof exportPath !== 'string' || !exportPath.startsWith('/') || exportPath.length > 1024) {
    throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'exportPath must be an absolute path of at most 1024 bytes');
  }
  const writeVerifier = options.writeVerifier ?? randomBytes(writeVerifierBytes);
  if (!(writeVerifier instanceof Uint8Array) || writeVerifier.byteLength !== writeVerifierBytes) {
    throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `writeVerifier must be ${writeVerifierBytes} bytes`);
  }
  const serveMount = options.serveMount ?? true;
  if (typeof serveMount !== 'boolean') throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, 'serveMount must be a boolean');
  return { store: options.store ?? makeDefaultStore(), maxTransferBytes, exportPath, writeVerifier: Buffer.from(writeVerifier), serveMount };
}
