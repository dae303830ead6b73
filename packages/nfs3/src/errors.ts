/**
 * Errors of the NFS service. A store reports an operating error as an NfsStatusError carrying
 * the NFS3ERR the RFC names; procedures turn it into the result's failure arm. Nfs3Error is for
 * the caller's mistakes (bad options) and carries a stable code.
 */
import type { nfsstat3 } from './protocol/nfs3.generated.js';

export class NfsStatusError extends Error {
  readonly status: Exclude<nfsstat3, 0>;

  /**
   * Without a stack: a status is an answer, not a bug, and clients cause them all the time (every
   * create starts with a LOOKUP that fails NOENT); capturing the stack was ~5% of a create's CPU.
   */
  constructor(status: Exclude<nfsstat3, 0>, message: string) {
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.status = status;
    this.name = 'NfsStatusError';
  }
}

export const Nfs3ErrorCode = {
  INVALID_OPTION: 'ERR_NFS3_INVALID_OPTION',
  STORE_SECRET: 'ERR_NFS3_STORE_SECRET',
} as const;
export type Nfs3ErrorCode = (typeof Nfs3ErrorCode)[keyof typeof Nfs3ErrorCode];

export class Nfs3Error extends Error {
  constructor(
    readonly code: Nfs3ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'Nfs3Error';
  }
}

/** Maps a host errno (from node:fs) to the NFS3ERR the RFC names for it. */
export function statusFromErrno(error: unknown): Exclude<nfsstat3, 0> {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EPERM': return 1;
    case 'ENOENT': return 2;
    case 'ENXIO': return 6;
    case 'EACCES': return 13;
    case 'EEXIST': return 17;
    case 'EXDEV': return 18;
    case 'ENODEV': return 19;
    case 'ENOTDIR': return 20;
    case 'EISDIR': return 21;
    case 'EINVAL': return 22;
    case 'EFBIG': return 27;
    case 'ENOSPC': return 28;
    case 'EROFS': return 30;
    case 'EMLINK': return 31;
    case 'ENAMETOOLONG': return 63;
    case 'ENOTEMPTY': return 66;
    case 'EDQUOT': return 69;
    case 'ELOOP': return 13; // a symlink where a real object was required: never followed
    default: return 5; // NFS3ERR_IO
  }
}

export function statusOf(error: unknown): Exclude<nfsstat3, 0> {
  if (error instanceof NfsStatusError) return error.status;
  return statusFromErrno(error);
}
