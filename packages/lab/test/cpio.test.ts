/** The newc writer, checked by an implementation we did not write: GNU cpio lists and extracts its archives. */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { buildCpioArchive } from '../src/cpio.js';

const archive = buildCpioArchive([
  { kind: 'directory', path: 'bin', mode: 0o755 },
  { kind: 'characterDevice', path: '/dev/console', mode: 0o600, major: 5, minor: 1 },
  { kind: 'file', path: 'bin/tool', mode: 0o755, data: Buffer.from('#!/bin/sh\necho odd-length!\n') },
  { kind: 'file', path: 'empty', mode: 0o644, data: Buffer.alloc(0) },
  { kind: 'file', path: 'lib/a.ko', mode: 0o644, data: Buffer.alloc(4099, 0xab) },
]);

function cpio(args: string[]): string {
  const run = spawnSync('cpio', ['--quiet', ...args], { input: archive, encoding: 'latin1' });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

describe('a newc archive', () => {
  test('lists every entry with its type, mode and device numbers', () => {
    const listing = cpio(['-itv']).trim().split('\n');
    expect(listing.map((line) => line.split(/\s+/).at(-1))).toEqual(['bin', 'dev/console', 'bin/tool', 'empty', 'lib/a.ko']);
    expect(listing[0]).toMatch(/^drwxr-xr-x/);
    expect(listing[1]).toMatch(/^crw-------\s+\d+\s+root\s+root\s+5,\s+1 /);
    expect(listing[2]).toMatch(/^-rwxr-xr-x/);
  });

  test('extracts file contents byte for byte, across the 4-byte padding', () => {
    expect(cpio(['-i', '--to-stdout', 'bin/tool'])).toBe('#!/bin/sh\necho odd-length!\n');
    expect(Buffer.from(cpio(['-i', '--to-stdout', 'lib/a.ko']), 'latin1').equals(Buffer.alloc(4099, 0xab))).toBe(true);
    expect(cpio(['-i', '--to-stdout', 'empty'])).toBe('');
  });

  test('rejects an empty path', () => {
    expect(() => buildCpioArchive([{ kind: 'directory', path: '/', mode: 0o755 }])).toThrow(/invalid path/);
  });
});
