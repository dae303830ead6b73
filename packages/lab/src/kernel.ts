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

export interface KernelModule {
  /** As the kernel spells it, with '_' (modules.dep file names may use '-'). */
  readonly name: string;
  readonly path: string;
}

/**
 * The named modules and everything they depend on (from modules.dep), each after its
 * dependencies and once: the order busybox insmod must load them in, since it resolves nothing.
 * Names match with '-' and '_' equivalent.
 */
export function moduleLoadOrder(kernel: GuestKernel, names: readonly string[]): KernelModule[] {
  const table = readModuleTable(kernel);
  const ordered: KernelModule[] = [];
  const placed = new Set<string>();
  const visit = (requested: string, dependents: readonly string[]): void => {
    const name = moduleName(requested);
    if (placed.has(name)) return;
    if (dependents.includes(name)) throw new LabError(LabErrorCode.noKernel, `modules.dep has a cycle: ${[...dependents, name].join(' -> ')}`);
    const entry = table.get(name);
    if (entry === undefined) {
      throw new LabError(LabErrorCode.noKernel, `kernel ${kernel.version} has no module ${requested} in ${kernel.modulesDir}`);
    }
    for (const dependency of entry.dependencies) visit(dependency, [...dependents, name]);
    if (!entry.path.endsWith('.ko')) {
      throw new LabError(LabErrorCode.noKernel, `module ${name} is compressed (${entry.path}); busybox insmod needs a plain .ko`);
    }
    ordered.push({ name, path: entry.path });
    placed.add(name);
  };
  for (const name of names) visit(name, []);
  return ordered;
}

function readModuleTable(kernel: GuestKernel): Map<string, { path: string; dependencies: string[] }> {
  const table = new Map<string, { path: string; dependencies: string[] }>();
  const dependencies = readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8');
  for (const line of dependencies.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const relativePath = line.slice(0, colon);
    const needs = line.slice(colon + 1).trim().split(/\s+/).filter((path) => path !== '');
    table.set(moduleName(relativePath), { path: join(kernel.modulesDir, relativePath), dependencies: needs.map(moduleName) });
  }
  return table;
}

/** rdma_rxe from rdma_rxe, rdma-rxe or kernel/.../rdma_rxe.ko[.xz]. */
function moduleName(nameOrPath: string): string {
  const fileName = nameOrPath.slice(nameOrPath.lastIndexOf('/') + 1);
  return fileName.replace(/\.ko(\..*)?$/, '').replaceAll('-', '_');
}

function listDirectory(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}
