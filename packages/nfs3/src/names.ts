/**
 * File name rules shared by every store (RFC 1813 §2.5 filename3, §3.3): names are bytes
 * (latin1 strings here, one char per byte), one path component each.
 */
import { NfsStatusError } from './errors.js';
import { NFS3ERR_ACCES, NFS3ERR_EXIST, NFS3ERR_NAMETOOLONG } from './protocol/nfs3.generated.js';

/** NAME_MAX of Linux and of PATHCONF's name_max: longer names get NFS3ERR_NAMETOOLONG. */
export const nameBytesMax = 255;
/** Symlink targets and READLINK data: PATH_MAX of Linux. */
export const pathBytesMax = 4096;

/** A name any procedure may look up: one component, no separators, at most 255 bytes. */
export function checkName(name: string): void {
  if (name.length > nameBytesMax) throw new NfsStatusError(NFS3ERR_NAMETOOLONG, `name of ${name.length} bytes exceeds ${nameBytesMax}`);
  // A '/' would make the name a path that walks other directories; NUL ends it early on the host.
  if (name.length === 0 || name.includes('/') || name.includes('\0')) throw new NfsStatusError(NFS3ERR_ACCES, 'name is empty or holds / or NUL');
}

/** A name that a new object can take: also not '.' or '..', which always exist. */
export function checkNewName(name: string): void {
  checkName(name);
  if (name === '.' || name === '..') throw new NfsStatusError(NFS3ERR_EXIST, `'${name}' always exists`);
}

export function checkSymlinkTarget(target: string): void {
  if (target.length > pathBytesMax) throw new NfsStatusError(NFS3ERR_NAMETOOLONG, `symlink target of ${target.length} bytes exceeds ${pathBytesMax}`);
  if (target.length === 0 || target.includes('\0')) throw new NfsStatusError(NFS3ERR_ACCES, 'symlink target is empty or holds NUL');
}
