/** Kernel choice over fake /boot and /lib/modules trees: newest with modules wins, modules resolve in the order asked. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { LabErrorCode } from '../src/errors.js';
import { findGuestKernel, resolveModulePaths } from '../src/kernel.js';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

function fakeSystem(images: string[], modules: Record<string, string>): { boot: string; modulesRoot: string } {
  root = mkdtempSync(join(tmpdir(), 'rxe-lab-kernel-'));
  const boot = join(root, 'boot');
  const modulesRoot = join(root, 'modules');
  mkdirSync(boot);
  for (const version of images) writeFileSync(join(boot, `vmlinuz-${version}`), '');
  for (const [version, dependencies] of Object.entries(modules)) {
    mkdirSync(join(modulesRoot, version), { recursive: true });
    writeFileSync(join(modulesRoot, version, 'modules.dep'), dependencies);
  }
  return { boot, modulesRoot };
}

describe('choosing the guest kernel', () => {
  test('takes the newest image by numeric version among those with modules', () => {
    const { boot, modulesRoot } = fakeSystem(['6.1.0-9-amd64', '6.1.0-10-amd64', '6.12.0-1-amd64'], {
      '6.1.0-9-amd64': '',
      '6.1.0-10-amd64': '',
    });
    const kernel = findGuestKernel(boot, modulesRoot);
    expect(kernel.version).toBe('6.1.0-10-amd64');
    expect(kernel.imagePath).toBe(join(boot, 'vmlinuz-6.1.0-10-amd64'));
  });

  test('fails with ERR_LAB_NO_KERNEL when no image has modules', () => {
    const { boot, modulesRoot } = fakeSystem(['6.12.0-1-amd64'], {});
    expect(() => findGuestKernel(boot, modulesRoot)).toThrow(expect.objectContaining({ code: LabErrorCode.noKernel }));
  });

  test('resolves modules in the requested order, "-" and "_" alike, and refuses compressed ones', () => {
    const { boot, modulesRoot } = fakeSystem(['6.1.0-1-amd64'], {
      '6.1.0-1-amd64': [
        'kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko',
        'kernel/net/9p/9pnet.ko:',
        'kernel/drivers/virtio/virtio_pci_modern_dev.ko:',
        'kernel/drivers/net/dummy.ko.xz:',
      ].join('\n'),
    });
    const kernel = findGuestKernel(boot, modulesRoot);
    expect(resolveModulePaths(kernel, ['9pnet', 'virtio-pci-modern-dev', '9p'])).toEqual([
      join(kernel.modulesDir, 'kernel/net/9p/9pnet.ko'),
      join(kernel.modulesDir, 'kernel/drivers/virtio/virtio_pci_modern_dev.ko'),
      join(kernel.modulesDir, 'kernel/fs/9p/9p.ko'),
    ]);
    expect(() => resolveModulePaths(kernel, ['dummy'])).toThrow(/compressed/);
    expect(() => resolveModulePaths(kernel, ['rdma_rxe'])).toThrow(expect.objectContaining({ code: LabErrorCode.noKernel }));
  });
});
