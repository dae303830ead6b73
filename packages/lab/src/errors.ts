/**
 * Errors raised by the lab. Each carries a stable `code` so callers (the CLI, other packages'
 * test harnesses) can branch on the kind of failure without parsing messages, and, when the guest
 * was involved, the last console lines so the reason for a failed boot is visible where it fails.
 */

export const LabErrorCode = {
  /** An option given to runInLab or the CLI is malformed; the message names the field. */
  invalidOption: 'ERR_LAB_INVALID_OPTION',
  /** No /boot/vmlinuz-* has matching /lib/modules, or a module the guest needs is missing. */
  noKernel: 'ERR_LAB_NO_KERNEL',
  /** An input of the initrd (busybox, a module) is missing or unreadable. */
  initrdInputMissing: 'ERR_LAB_INITRD_INPUT',
  /** The lab's directory in the workspace (.lab/: cached initrd and kernel image, run directories) cannot be written. */
  labDirFailed: 'ERR_LAB_DIR',
  /** qemu-system-x86_64 could not be started. */
  qemuSpawnFailed: 'ERR_LAB_QEMU_SPAWN',
  /** The guest stopped before it reported being ready (kernel panic, init failure, QEMU error). */
  bootFailed: 'ERR_LAB_BOOT_FAILED',
  /** The guest booted but its own set-up failed: modules, the dummy link, rxe0 not ACTIVE. */
  guestSetupFailed: 'ERR_LAB_GUEST_SETUP',
  /** The guest stopped after the command started but before it recorded the exit status. */
  noExitStatus: 'ERR_LAB_NO_EXIT_STATUS',
  /** The boot or the whole run exceeded its time limit; QEMU was killed. */
  timeout: 'ERR_LAB_TIMEOUT',
  /** The caller aborted the run (AbortSignal, Ctrl-C, SIGTERM); QEMU was killed. */
  aborted: 'ERR_LAB_ABORTED',
} as const;

export type LabErrorCode = (typeof LabErrorCode)[keyof typeof LabErrorCode];

export class LabError extends Error {
  readonly code: LabErrorCode;
  /** The guest console's last lines at the time of failure (empty when QEMU never ran). */
  readonly consoleTail: readonly string[];

  constructor(code: LabErrorCode, message: string, consoleTail: readonly string[] = [], cause?: unknown) {
    super(formatMessage(message, consoleTail), cause === undefined ? undefined : { cause });
    this.name = 'LabError';
    this.code = code;
    this.consoleTail = consoleTail;
  }
}

function formatMessage(message: string, consoleTail: readonly string[]): string {
  if (consoleTail.length === 0) return message;
  const indented = consoleTail.map((line) => `  | ${line}`).join('\n');
  return `${message}\nlast guest console lines:\n${indented}`;
}
