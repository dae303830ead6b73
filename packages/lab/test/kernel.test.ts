/** Kernel choice over fake /boot and /lib/modules trees: newest with modules wins, modules resolve in the order asked. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { LabErrorCode } from '../src/errors.js';
import { findGuestKernel, moduleLoadOrder } from '../src/kernel.js';

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

  test('orders modules after their dependencies, once each, "-" and "_" alike, and refuses compressed ones', () => {
    const { boot, modulesRoot } = fakeSystem(['6.1.0-1-amd64'], {
      '6.1.0-1-amd64': [
        'kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko: kernel/net/ipv4/udp_tunnel.ko kernel/drivers/infiniband/core/ib_core.ko',
        'kernel/drivers/infiniband/core/ib_uverbs.ko: kernel/drivers/infiniband/core/ib_core.ko',
        'kernel/drivers/infiniband/core/ib_core.ko:',
        'kernel/net/ipv4/udp_tunnel.ko:',
        'kernel/drivers/virtio/virtio_pci_modern_dev.ko:',
        'kernel/drivers/net/dummy.ko.xz:',
        'kernel/fs/loop/a.ko: kernel/fs/loop/b.ko',
        'kernel/fs/loop/b.ko: kernel/fs/loop/a.ko',
      ].join('\n'),
    });
    const kernel = findGuestKernel(boot, modulesRoot);
    const order = moduleLoadOrder(kernel, ['virtio-pci-modern-dev', 'ib_uverbs', 'rdma_rxe']);
    expect(order.map((module) => module.name)).toEqual(['virtio_pci_modern_dev', 'ib_core', 'ib_uverbs', 'udp_tunnel', 'rdma_rxe']);
    expect(order[4]?.path).toBe(join(kernel.modulesDir, 'kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko'));
    expect(() => moduleLoadOrder(kernel, ['dummy'])).toThrow(/compressed/);
    expect(() => moduleLoadOrder(kernel, ['a'])).toThrow(/cycle: a -> b -> a/);
    expect(() => moduleLoadOrder(kernel, ['rdma_ucm'])).toThrow(expect.objectContaining({ code: LabErrorCode.noKernel }));
  });
});
