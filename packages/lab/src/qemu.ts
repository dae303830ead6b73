/**
 * The QEMU command line. No NIC (-nodefaults), no display, the serial console on QEMU's stdout,
 * and three 9p shares: the host root read-only, the workspace and the run directory writable.
 * TCG with one thread per vCPU: /dev/kvm exists on these machines but cannot run a guest.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { shareTags } from './guest-scripts.js';

export const qemuBinary = 'qemu-system-x86_64';
// util-linux's setpriv sets PR_SET_PDEATHSIG and execs QEMU: if our process dies (even by SIGKILL)
// the kernel kills QEMU, so no guest outlives its host process. Without it, the guest's own
// time limit is the backstop.
const setprivPath = '/usr/bin/setpriv';

/** The program and arguments that start QEMU, tied to the calling thread's life when possible. */
export function qemuLaunch(args: readonly string[]): { file: string; args: string[] } {
  if (!existsSync(setprivPath)) return { file: qemuBinary, args: [...args] };
  return { file: setprivPath, args: ['--pdeathsig', 'KILL', '--', qemuBinary, ...args] };
}

/** The QEMU binary's path on PATH, or null: checked before launching so a missing QEMU is named as such. */
export function findQemu(path = process.env.PATH ?? ''): string | null {
  for (const directory of path.split(':')) {
    if (directory === '') continue;
    const candidate = join(directory, qemuBinary);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

export interface QemuInput {
  readonly kernelImage: string;
  readonly initrd: string;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly workspaceDir: string;
  readonly runDir: string;
  /** Let the kernel log at its default level instead of `quiet` (only the console sees it). */
  readonly verboseKernel: boolean;
}

export function qemuArguments(input: QemuInput): string[] {
  const kernelCommandLine = [
    'console=ttyS0',
    ...(input.verboseKernel ? [] : ['quiet', 'loglevel=3']),
    // A dead init panics, and the panic ends QEMU at once (-no-reboot) instead of hanging until the timeout.
    'panic=-1',
    // A throwaway test guest: Spectre mitigations (retpolines, barriers) and zeroing every kernel
    // allocation only cost emulated cycles here; measured 5-20% off boot to ready on a loaded host.
    'mitigations=off',
    'init_on_alloc=0',
  ].join(' ');
  return [
    '-accel', 'tcg,thread=multi',
    '-cpu', 'max',
    '-smp', String(input.cpus),
    '-m', String(input.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-serial', 'stdio',
    '-no-reboot',
    '-kernel', input.kernelImage,
    '-initrd', input.initrd,
    '-append', kernelCommandLine,
    '-virtfs', share('/', shareTags.hostRoot, true),
    '-virtfs', share(input.workspaceDir, shareTags.workspace, false),
    '-virtfs', share(input.runDir, shareTags.run, false),
  ];
}

function share(path: string, tag: string, readOnly: boolean): string {
  if (path.includes(',')) throw new Error(`a 9p share path cannot contain a comma: ${path}`);
  // multidevs=remap: the host root spans several filesystems; remapping keeps inode numbers unique in the guest.
  return `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap${readOnly ? ',readonly=on' : ''}`;
}
