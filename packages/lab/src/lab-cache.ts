/**
 * The lab's cache in the workspace's .lab/ directory: built artefacts (the initrd, the extracted
 * kernel ELF) whose names carry everything they were built from. A new artefact is written to a
 * private temporary file and renamed into place (atomic, so concurrent runs never see half of
 * one), and the older artefacts of the same kind are then deleted so the cache holds one of each
 * (a QEMU still using an old one keeps its open file).
 */
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function storeCacheArtefact(path: string, data: Buffer, kindPrefix: string): void {
  const cacheDir = dirname(path);
  mkdirSync(cacheDir, { recursive: true });
  const temporaryPath = `${path}.${process.pid}.tmp`;
  writeFileSync(temporaryPath, data);
  renameSync(temporaryPath, path);
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(kindPrefix) && name !== basename(path) && !name.endsWith('.tmp')) {
      rmSync(join(cacheDir, name), { force: true });
    }
  }
}
