/**
 * Choosing the guest kernel: the host's newest Debian kernel image whose modules are installed,
 * because the guest loads every module (9p, rdma_rxe, ...) from the host's /lib/modules through
 * the shared root, and a kernel without its own modules cannot bring up rxe0.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError, LabErrorCode } from './errors.js';

export interface GuestKernel {
  /** The release string, e.g. 6.1.0-56-amd64: names the initrd cache and the modules directory. */
  readonly version: string;
  readonly imagePath: string;
  readonly modulesDir: string;
}

const imagePrefix = 'vmlinuz-';

export function findGuestKernel(bootDir = '/boot', modulesRoot = '/lib/modules'): GuestKernel {
  const candidates = listDirectory(bootDir)
    .filter((name) => name.startsWith(imagePrefix))
    .map((name) => name.slice(imagePrefix.length))
    .filter((version) => existsSync(join(modulesRoot, version, 'modules.dep')))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  const version = candidates[0];
  if (version === undefined) {
    throw new LabError(
      LabErrorCode.noKernel,
      `no ${bootDir}/${imagePrefix}* with matching ${modulesRoot}/<version>/modules.dep: install linux-image-amd64 (scripts/apt-packages.txt)`,
    );
  }
  return { version, imagePath: join(bootDir, imagePrefix + version), modulesDir: join(modulesRoot, version) };
}

/**
 * Absolute paths of the named modules, in the order given (the caller's order is the load order:
 * the initrd has no modprobe to resolve dependencies). Names match as the kernel spells them,
 * with '-' and '_' equivalent.
 */
export function resolveModulePaths(kernel: GuestKernel, names: readonly string[]): string[] {
  const pathByName = new Map<string, string>();
  const dependencies = readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8');
  for (const line of dependencies.split('\n')) {
    const relativePath = line.slice(0, line.indexOf(':'));
    const fileName = relativePath.slice(relativePath.lastIndexOf('/') + 1);
    const moduleName = fileName.replace(/\.ko(\..*)?$/, '').replaceAll('-', '_');
    if (moduleName !== '') pathByName.set(moduleName, join(kernel.modulesDir, relativePath));
  }
  return names.map((name) => {
    const path = pathByName.get(name.replaceAll('-', '_'));
    if (path === undefined) {
      throw new LabError(LabErrorCode.noKernel, `kernel ${kernel.version} has no module ${name} in ${kernel.modulesDir}`);
    }
    if (!path.endsWith('.ko')) {
      throw new LabError(LabErrorCode.noKernel, `module ${name} is compressed (${path}); busybox insmod needs a plain .ko`);
    }
    return path;
  });
}

function listDirectory(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}
