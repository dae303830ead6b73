/**
 * The initrd: static busybox, stage one as /init, and the modules stage one loads (those that
 * mount the 9p root, then the lab's link and RDMA stack with their dependencies). Built in memory
 * and cached in the workspace's .lab/ directory under a name made of the kernel version and a
 * digest of everything that goes in, so a new kernel or a changed stage one builds a new one and
 * nothing stale is ever booted (lab-cache.ts stores it atomically).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildCpioArchive, type CpioEntry } from './cpio.js';
import { LabError, LabErrorCode } from './errors.js';
import { labModules, rootModules, stageOneScript } from './guest-scripts.js';
import { moduleLoadOrder, type GuestKernel } from './kernel.js';
import { storeCacheArtefact } from './lab-cache.js';

const initrdPrefix = 'initrd-';
const busyboxPath = '/bin/busybox';
const consoleDevice = { major: 5, minor: 1 }; // /dev/console: init's stdio before devtmpfs is mounted

/** Returns the path of the cached initrd for `kernel`, building it first when missing. */
export function ensureInitrd(kernel: GuestKernel, cacheDir: string): string {
  const modules = moduleLoadOrder(kernel, [...rootModules, ...labModules]);
  const stageOne = stageOneScript(modules.map((module) => module.name));
  const busybox = readInput(busyboxPath, 'install busybox-static (scripts/apt-packages.txt)');
  const digest = createHash('sha256').update(stageOne).update(busybox);
  for (const module of modules) digest.update(module.path);
  const initrdPath = join(cacheDir, `${initrdPrefix}${kernel.version}-${digest.digest('hex').slice(0, 12)}.cpio.gz`);
  if (existsSync(initrdPath)) return initrdPath;

  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'newroot', 'lib', 'lib/modules'].map(
      (path): CpioEntry => ({ kind: 'directory', path, mode: 0o755 }),
    ),
    { kind: 'characterDevice', path: 'dev/console', mode: 0o600, ...consoleDevice },
    { kind: 'file', path: 'bin/busybox', mode: 0o755, data: busybox },
    { kind: 'file', path: 'init', mode: 0o755, data: Buffer.from(stageOne, 'utf8') },
    ...modules.map(
      (module): CpioEntry => ({ kind: 'file', path: `lib/modules/${module.name}.ko`, mode: 0o644, data: readInput(module.path, '') }),
    ),
  ];
  try {
    storeCacheArtefact(initrdPath, gzipSync(buildCpioArchive(entries), { level: 1 }), initrdPrefix);
  } catch (error) {
    throw new LabError(LabErrorCode.labDirFailed, `cannot write the initrd to ${initrdPath}`, [], error);
  }
  return initrdPath;
}

function readInput(path: string, hint: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new LabError(LabErrorCode.initrdInputMissing, `cannot read ${path}${hint === '' ? '' : `: ${hint}`}`, [], error);
  }
}
