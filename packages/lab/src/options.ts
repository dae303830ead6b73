/**
 * The lab's options: what a caller may give (`LabOptions`, all optional but `command`), the
 * filled form the run works with (`FilledLabOptions`, every field decided), and the defaults, in
 * this one place. `fillLabOptions` validates each field and names it in the error.
 */
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { LabError, LabErrorCode } from './errors.js';
import { labNetworks, type LabNetwork } from './guest-network.js';
import { findWorkspaceRoot } from './workspace.js';

export interface LabOptions {
  /** The command and its arguments, run in the guest without a shell (use `sh -c` for one). */
  command: readonly string[];
  /** Working directory of the command, on the host and in the guest alike. Default: process.cwd(). */
  cwd?: string;
  /** Directory shared writable with the guest at the same path. Default: the pnpm workspace root above `cwd`, else `cwd`. */
  workspaceDir?: string;
  /** Extra environment for the command, on top of PATH, HOME, the passed-through names and the RXE_LAB_* variables. */
  env?: Readonly<Record<string, string>>;
  /** Time limit for the whole run, boot included; QEMU is killed when it passes. */
  timeoutMs?: number;
  /** Time limit from QEMU's start until the guest reports rxe0 ready. */
  bootTimeoutMs?: number;
  /** Guest memory. */
  memoryMiB?: number;
  /** Guest vCPUs (TCG threads). */
  cpus?: number;
  /** 'single' (default): rxe0 on a dummy link, packets loop back in the kernel. 'veth-pair': rxe0 and rxe1 on a veth pair, packets cross it (for captures). */
  network?: LabNetwork;
  /** Where the command's stdout is streamed; null to drop it. */
  stdout?: Writable | null;
  /** Where the command's stderr is streamed; null to drop it. */
  stderr?: Writable | null;
  /** Also collect stdout and stderr into the result (for tests). */
  captureOutput?: boolean;
  /** Where the guest's serial console (kernel log, set-up progress) is streamed; null to keep only its tail for errors. */
  consoleLog?: Writable | null;
  /** Keep the run directory (.lab/runs/<id>) after a successful run; failed runs always keep it. */
  keepRunDir?: boolean;
  /** Aborting kills QEMU and rejects with ERR_LAB_ABORTED. */
  signal?: AbortSignal;
}

export interface FilledLabOptions {
  command: readonly string[];
  cwd: string;
  workspaceDir: string;
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  bootTimeoutMs: number;
  memoryMiB: number;
  cpus: number;
  network: LabNetwork;
  stdout: Writable | null;
  stderr: Writable | null;
  captureOutput: boolean;
  consoleLog: Writable | null;
  keepRunDir: boolean;
  signal: AbortSignal | null;
}

export const labDefaults = {
  // Long enough for a package's whole rxe suite under TCG, short enough that a hung guest ends CI.
  timeoutMs: 15 * 60_000,
  // Boot to ready is ~10 s on an idle 2-core machine; the margin covers a machine busy with builds.
  bootTimeoutMs: 120_000,
  // Node, vitest workers and registered buffers fit in 3 GiB with room to spare; the host has 24.
  memoryMiB: 3072,
  // Matches the host's cores: TCG runs one host thread per vCPU.
  cpus: 2,
  // Fastest to set up and what most tests need; the veth pair costs a modprobe and a second device.
  network: 'single',
  captureOutput: false,
  keepRunDir: false,
} as const;

/** Host variables copied into the guest when set, so tools behave as they would on the host (CI mode, colours). */
export const passedThroughEnvNames: readonly string[] = ['CI', 'NO_COLOR', 'FORCE_COLOR'];

const memoryMiBMin = 256; // below this Debian's kernel plus Node does not start
const memoryMiBMax = 16_384; // leaves the host (24 GiB, shared) room for the other engineers' work
const cpusMax = 8; // beyond the host's cores TCG threads only contend
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function fillLabOptions(options: LabOptions): FilledLabOptions {
  const command = validateCommand(options.command);
  const cwd = resolve(options.cwd ?? process.cwd());
  const workspaceDir = resolve(options.workspaceDir ?? findWorkspaceRoot(cwd) ?? cwd);
  if (!isAbsolute(workspaceDir) || workspaceDir === '/') {
    throw invalid('workspaceDir', `must be a directory below /, got ${JSON.stringify(workspaceDir)}`);
  }
  requireDirectory('cwd', cwd);
  requireDirectory('workspaceDir', workspaceDir);
  rejectHiddenPath(workspaceDir, cwd);
  return {
    command,
    cwd,
    workspaceDir,
    env: validateEnv(options.env ?? {}),
    timeoutMs: positiveInteger('timeoutMs', options.timeoutMs ?? labDefaults.timeoutMs, 1, 24 * 3_600_000),
    bootTimeoutMs: positiveInteger('bootTimeoutMs', options.bootTimeoutMs ?? labDefaults.bootTimeoutMs, 1, 3_600_000),
    memoryMiB: positiveInteger('memoryMiB', options.memoryMiB ?? labDefaults.memoryMiB, memoryMiBMin, memoryMiBMax),
    cpus: positiveInteger('cpus', options.cpus ?? labDefaults.cpus, 1, cpusMax),
    network: oneOf('network', options.network ?? labDefaults.network, labNetworks),
    stdout: options.stdout === undefined ? process.stdout : options.stdout,
    stderr: options.stderr === undefined ? process.stderr : options.stderr,
    captureOutput: options.captureOutput ?? labDefaults.captureOutput,
    consoleLog: options.consoleLog ?? null,
    keepRunDir: options.keepRunDir ?? labDefaults.keepRunDir,
    signal: options.signal ?? null,
  };
}

/**
 * The guest mounts its own filesystems on these. The workspace is mounted after the tmpfs on /tmp
 * (a clone in /tmp works), but a cwd outside the workspace below them would not be the host's.
 */
const guestOwnedDirs: readonly string[] = ['/tmp', '/run', '/proc', '/sys', '/dev'];
const workspaceForbiddenDirs: readonly string[] = ['/run', '/proc', '/sys', '/dev'];

function rejectHiddenPath(workspaceDir: string, cwd: string): void {
  if (guestOwnedDirs.includes(workspaceDir) || workspaceForbiddenDirs.some((dir) => isBelow(workspaceDir, dir))) {
    throw invalid('workspaceDir', `${workspaceDir} would hide or be hidden by the guest's own ${workspaceDir.split('/', 2).join('/')}; use a directory elsewhere`);
  }
  const owner = guestOwnedDirs.find((dir) => isBelow(cwd, dir));
  if (owner !== undefined && !isBelow(cwd, workspaceDir)) {
    throw invalid('cwd', `${cwd} is below ${owner}, which the guest replaces with its own filesystem, and outside the workspace ${workspaceDir}`);
  }
}

function requireDirectory(field: string, path: string): void {
  if (!statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw invalid(field, `${path} is not a directory`);
}

function isBelow(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

function validateCommand(command: readonly string[] | undefined): readonly string[] {
  if (!Array.isArray(command) || command.length === 0) {
    throw invalid('command', 'must be a non-empty array of strings (the program and its arguments)');
  }
  for (const [index, word] of command.entries()) {
    if (typeof word !== 'string' || word.includes('\0')) {
      throw invalid('command', `word ${index} must be a string without NUL bytes`);
    }
  }
  if (command[0] === '') throw invalid('command', 'the program name must not be empty');
  return [...command];
}

function validateEnv(env: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  for (const [name, value] of Object.entries(env)) {
    if (!envNamePattern.test(name)) throw invalid('env', `${JSON.stringify(name)} is not a valid variable name`);
    if (typeof value !== 'string' || value.includes('\0')) {
      throw invalid('env', `value of ${name} must be a string without NUL bytes`);
    }
  }
  return { ...env };
}

function positiveInteger(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function oneOf<T extends string>(field: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw invalid(field, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value;
}

function invalid(field: string, reason: string): LabError {
  return new LabError(LabErrorCode.invalidOption, `${field} ${reason}`);
}
