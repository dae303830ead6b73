/**
 * The kernel image QEMU boots: the uncompressed ELF inside Debian's bzImage, booted through its
 * PVH entry point. Under TCG, decompressing the xz payload in the guest and running the firmware
 * take 6-8 s of a ~13 s boot; QEMU loads a PVH ELF directly and skips both. The ELF is extracted
 * once per kernel image (about 1 s, 65 MB) into the lab's cache. When a kernel cannot be extracted
 * (unknown compression, no PVH note) the bzImage itself is booted: slower, never broken.
 *
 * Layouts read here (documented in the kernel's Documentation/arch/x86/boot.rst and the ELF spec):
 * the setup header's setup_sects and payload_offset/payload_length, and ELF64 PT_NOTE segments.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LabError, LabErrorCode } from './errors.js';
import type { GuestKernel } from './kernel.js';
import { storeCacheArtefact } from './lab-cache.js';

export interface BootImage {
  readonly path: string;
  /** True when `path` is the extracted ELF booted through PVH; false for the bzImage. */
  readonly pvh: boolean;
  /** Why the bzImage is booted instead, when it is. */
  readonly fallbackReason: string | null;
}

const elfPrefix = 'vmlinux-';
const setupSectorsOffset = 0x1f1;
const headerMagicOffset = 0x202; // "HdrS"
const payloadOffsetOffset = 0x248;
const payloadLengthOffset = 0x24c;
const sectorBytes = 512;
const xzMagic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const gzipMagic = Buffer.from([0x1f, 0x8b]);
const elfMagic = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const noteTypePvhEntry = 18; // XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit entry point QEMU's PVH loader jumps to
const programHeaderTypeNote = 4;
// Decompressed kernels are ~65 MB; the bound stops a corrupt payload from filling memory.
const elfBytesMax = 512 * 1024 * 1024;

export function ensureBootImage(kernel: GuestKernel, cacheDir: string): BootImage {
  // Size and mtime in the name: a reinstalled image under the same version is extracted again.
  const image = statSync(kernel.imagePath);
  const elfPath = join(cacheDir, `${elfPrefix}${kernel.version}-${image.size}-${Math.trunc(image.mtimeMs)}.elf`);
  if (existsSync(elfPath)) return { path: elfPath, pvh: true, fallbackReason: null };
  const extracted = extractElf(readFileSync(kernel.imagePath));
  if (typeof extracted === 'string') return { path: kernel.imagePath, pvh: false, fallbackReason: extracted };
  try {
    storeCacheArtefact(elfPath, extracted, elfPrefix);
  } catch (error) {
    throw new LabError(LabErrorCode.labDirFailed, `cannot write the kernel image to ${elfPath}`, [], error);
  }
  return { path: elfPath, pvh: true, fallbackReason: null };
}

/** The PVH-bootable ELF inside a bzImage, or the reason there is none. */
export function extractElf(bzImage: Buffer): Buffer | string {
  if (bzImage.length < payloadLengthOffset + 4 || bzImage.toString('latin1', headerMagicOffset, headerMagicOffset + 4) !== 'HdrS') {
    return 'not a bzImage (no HdrS setup header)';
  }
  const setupSectors = bzImage.readUInt8(setupSectorsOffset) || 4; // 0 means 4, for ancient loaders
  const protectedModeStart = (setupSectors + 1) * sectorBytes;
  const payloadStart = protectedModeStart + bzImage.readUInt32LE(payloadOffsetOffset);
  const payloadEnd = payloadStart + bzImage.readUInt32LE(payloadLengthOffset);
  if (payloadEnd > bzImage.length || payloadEnd <= payloadStart) return 'payload_offset/payload_length outside the image';
  const payload = bzImage.subarray(payloadStart, payloadEnd);
  const elf = decompress(payload);
  if (typeof elf === 'string') return elf;
  if (!elf.subarray(0, 4).equals(elfMagic)) return 'the decompressed payload is not an ELF file';
  return hasPvhNote(elf) ? elf : 'the kernel ELF has no PVH entry note (CONFIG_PVH)';
}

function decompress(payload: Buffer): Buffer | string {
  if (payload.subarray(0, gzipMagic.length).equals(gzipMagic)) return gunzipSync(payload, { maxOutputLength: elfBytesMax });
  if (!payload.subarray(0, xzMagic.length).equals(xzMagic)) return 'the kernel payload is neither xz nor gzip';
  // Node has no xz decoder; xz-utils is on every Debian system (scripts/apt-packages.txt lists it).
  const xz = spawnSync('xz', ['--decompress', '--stdout', '--single-stream'], { input: payload, maxBuffer: elfBytesMax });
  if (xz.error !== undefined) return `cannot run xz: ${xz.error.message}`;
  if (xz.status !== 0) return `xz failed: ${xz.stderr.toString().trim()}`;
  return xz.stdout;
}

function hasPvhNote(elf: Buffer): boolean {
  const programHeaderOffset = Number(elf.readBigUInt64LE(0x20));
  const programHeaderSize = elf.readUInt16LE(0x36);
  const programHeaderCount = elf.readUInt16LE(0x38);
  for (let index = 0; index < programHeaderCount; index++) {
    const header = programHeaderOffset + index * programHeaderSize;
    if (elf.readUInt32LE(header) !== programHeaderTypeNote) continue;
    const start = Number(elf.readBigUInt64LE(header + 0x08));
    const end = start + Number(elf.readBigUInt64LE(header + 0x20));
    if (notesContainPvhEntry(elf, start, Math.min(end, elf.length))) return true;
  }
  return false;
}

function notesContainPvhEntry(elf: Buffer, start: number, end: number): boolean {
  const align4 = (value: number): number => (value + 3) & ~3;
  for (let offset = start; offset + 12 <= end; ) {
    const nameSize = elf.readUInt32LE(offset);
    const descriptionSize = elf.readUInt32LE(offset + 4);
    const type = elf.readUInt32LE(offset + 8);
    const name = elf.toString('latin1', offset + 12, offset + 12 + Math.max(0, nameSize - 1));
    if (name === 'Xen' && type === noteTypePvhEntry) return true;
    offset += 12 + align4(nameSize) + align4(descriptionSize);
  }
  return false;
}
