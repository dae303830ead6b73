/**
 * A writer for the "newc" cpio format, the one the kernel unpacks as an initramfs. Written here
 * rather than driving cpio(1) over a staging directory so the initrd is built in memory, with a
 * device node (/dev/console) that an unprivileged staging directory could not hold.
 */

import assert from 'node:assert/strict';

export type CpioEntry =
  | { readonly kind: 'directory'; readonly path: string; readonly mode: number }
  | { readonly kind: 'file'; readonly path: string; readonly mode: number; readonly data: Buffer }
  | { readonly kind: 'characterDevice'; readonly path: string; readonly mode: number; readonly major: number; readonly minor: number };

const magic = '070701';
const trailerName = 'TRAILER!!!';
const alignment = 4;
const fileTypeBits = { directory: 0o040000, file: 0o100000, characterDevice: 0o020000 } as const;

export function buildCpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (part: Buffer): void => {
    parts.push(part);
    offset += part.length;
    const padding = (alignment - (offset % alignment)) % alignment;
    if (padding > 0) {
      parts.push(Buffer.alloc(padding));
      offset += padding;
    }
  };
  entries.forEach((entry, index) => {
    const data = entry.kind === 'file' ? entry.data : Buffer.alloc(0);
    push(header(entry, index + 1, data.length));
    if (data.length > 0) push(data);
  });
  push(header({ kind: 'file', path: trailerName, mode: 0, data: Buffer.alloc(0) }, 0, 0));
  return Buffer.concat(parts);
}

function header(entry: CpioEntry, inode: number, size: number): Buffer {
  const name = entry.path.replace(/^\/+/, '');
  if (name === '' || name.includes('\0')) throw new Error(`cpio: invalid path ${JSON.stringify(entry.path)}`);
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const isDevice = entry.kind === 'characterDevice';
  const fields = [
    inode,
    fileTypeBits[entry.kind] | (entry.mode & 0o7777),
    0, // uid: root
    0, // gid: root
    entry.kind === 'directory' ? 2 : 1,
    0, // mtime: fixed, so the same inputs give the same archive
    size,
    0, // devmajor
    0, // devminor
    isDevice ? entry.major : 0,
    isDevice ? entry.minor : 0,
    nameBytes.length,
    0, // check: unused by newc
  ];
  const hex = fields.map((field) => field.toString(16).padStart(8, '0')).join('');
  assert(hex.length === fields.length * 8, 'every newc header field fits 8 hex digits');
  return Buffer.concat([Buffer.from(magic + hex, 'ascii'), nameBytes]);
}
