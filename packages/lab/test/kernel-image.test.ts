/** Extracting the PVH-bootable ELF from a bzImage: the real Debian kernel, and images that must fall back. */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { extractElf } from '../src/kernel-image.js';
import { findGuestKernel } from '../src/kernel.js';

/** A bzImage-shaped buffer: one setup sector plus the boot sector, then `payload`. */
function fakeBzImage(payload: Buffer): Buffer {
  const setupSectors = 1;
  const image = Buffer.alloc((setupSectors + 1) * 512 + payload.length);
  image.writeUInt8(setupSectors, 0x1f1);
  image.write('HdrS', 0x202, 'latin1');
  image.writeUInt32LE(0, 0x248);
  image.writeUInt32LE(payload.length, 0x24c);
  payload.copy(image, (setupSectors + 1) * 512);
  return image;
}

/** An ELF64 header with no program headers, so no notes. */
function elfWithoutNotes(): Buffer {
  const elf = Buffer.alloc(64);
  elf.write('\x7fELF', 0, 'latin1');
  elf.writeBigUInt64LE(64n, 0x20);
  elf.writeUInt16LE(56, 0x36);
  elf.writeUInt16LE(0, 0x38);
  return elf;
}

describe('extracting the kernel ELF', () => {
  test('the installed Debian kernel yields an ELF with a PVH entry', () => {
    const elf = extractElf(readFileSync(findGuestKernel().imagePath));
    expect(typeof elf).not.toBe('string');
    expect((elf as Buffer).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect((elf as Buffer).length).toBeGreaterThan(10 * 1024 * 1024);
  }, 60_000); // decompressing the whole kernel took over 5 s at load 12

  test('falls back with a reason for anything else', () => {
    expect(extractElf(Buffer.from('not a kernel'))).toMatch(/not a bzImage/);
    expect(extractElf(fakeBzImage(Buffer.from('plain bytes')))).toMatch(/neither xz nor gzip/);
    expect(extractElf(fakeBzImage(gzipSync(Buffer.from('not an elf'))))).toMatch(/not an ELF/);
    expect(extractElf(fakeBzImage(gzipSync(elfWithoutNotes())))).toMatch(/no PVH entry note/);
    const truncated = fakeBzImage(Buffer.alloc(16));
    truncated.writeUInt32LE(1 << 20, 0x24c);
    expect(extractElf(truncated)).toMatch(/outside the image/);
  });
});
