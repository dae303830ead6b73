/**
 * One lab run: from a command to its exit status, through one QEMU guest.
 *
 * Life: `runInLab` creates a LabRun and awaits `run()`; the LabRun owns the run directory
 * (.lab/runs/<id>), the QEMU child process, the console tail, the two output followers, its
 * timers and its abort listener, all touched on the main thread only. Whatever way the run ends
 * (exit status recorded, guest dead, timeout, abort), QEMU is killed if still alive and reaped,
 * the followers are drained and closed, timers and listeners are removed, and the run directory
 * is deleted unless the run failed or the caller asked to keep it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleTail } from './console-tail.js';
import { LabError, LabErrorCode } from './errors.js';
import { guestNetworkEnvironment } from './guest-network.js';
import { consoleMarker, runFiles, stageTwoScript, statusWords } from './guest-scripts.js';
import { isInsideLab, runInsideLab } from './in-lab-run.js';
import { ensureInitrd } from './initrd.js';
import { ensureBootImage, type BootImage } from './kernel-image.js';
import { findGuestKernel, type GuestKernel } from './kernel.js';
import { fillLabOptions, passedThroughEnvNames, type FilledLabOptions, type LabOptions } from './options.js';
import { OutputFollower } from './output-follower.js';
import { OutputSink } from './output-sink.js';
import { findQemu, qemuArguments, qemuBinary, qemuLaunch } from './qemu.js';

export interface LabResult {
  /** The command's exit status in the guest (128 + n when signal n ended it, 127 when not found). */
  readonly exitCode: number;
  /** From QEMU's start until rxe0 was ACTIVE and the command about to start (0 when insideLab). */
  readonly bootMs: number;
  /** From QEMU's start until it exited. */
  readonly durationMs: number;
  readonly kernelVersion: string;
  /** The image QEMU booted: the extracted ELF through PVH (fast), or the bzImage and why; null when no guest was booted. */
  readonly bootImage: BootImage | null;
  /** True when runInLab was called inside a lab guest and ran the command directly (bootMs is then 0). */
  readonly insideLab: boolean;
  /** The command's output when `captureOutput` was set, else empty. */
  readonly stdout: string;
  readonly stderr: string;
  /** The run directory when `keepRunDir` was set, else null (it is deleted). */
  readonly runDir: string | null;
}

/** The lab's directory inside the workspace (gitignored): the initrd cache and the run directories. */
export const labDirName = '.lab';
// Failed runs keep their directory for inspection; beyond this many the oldest are deleted.
const keptRunDirsMax = 20;
// The guest's own power-off guard fires this long after the host's time limit, as a backstop only.
const guardMarginSeconds = 30;

type Ending = { kind: 'qemuExited'; description: string } | { kind: 'failed'; error: LabError };

/**
 * Boots a guest, runs `options.command` in it and resolves with its exit status; rejects with a
 * LabError when the lab itself fails. Already inside a lab guest, runs the command directly.
 */
export async function runInLab(options: LabOptions): Promise<LabResult> {
  const filled = fillLabOptions(options);
  if (filled.signal?.aborted) throw new LabError(LabErrorCode.aborted, 'aborted before the guest started');
  if (isInsideLab()) return runInsideLab(filled);
  if (findQemu() === null) {
    throw new LabError(LabErrorCode.qemuSpawnFailed, `${qemuBinary} is not on PATH: install qemu-system-x86 (scripts/apt-packages.txt)`);
  }
  const kernel = findGuestKernel();
  const labDir = join(filled.workspaceDir, labDirName);
  // Before the kernel is extracted (seconds of xz on a busy host): a lab directory that cannot be
  // written fails the run at once.
  ensureLabDir(labDir);
  const bootImage = ensureBootImage(kernel, labDir);
  const initrd = ensureInitrd(kernel, labDir);
  const runDir = createRunDir(join(labDir, 'runs'));
  return new LabRun(filled, kernel, bootImage, runDir).run(initrd);
}

class LabRun {
  readonly #options: FilledLabOptions;
  readonly #kernel: GuestKernel;
  readonly #bootImage: BootImage;
  readonly #runDir: string;
  readonly #console: ConsoleTail;
  readonly #stdout: OutputFollower;
  readonly #stderr: OutputFollower;
  #startedAt = 0;
  #readyAt: number | null = null;
  #qemu: ChildProcess | null = null;
  #qemuClosed: Promise<void> = Promise.resolve();
  #settle: (ending: Ending) => void = () => {};

  constructor(options: FilledLabOptions, kernel: GuestKernel, bootImage: BootImage, runDir: string) {
    this.#options = options;
    this.#kernel = kernel;
    this.#bootImage = bootImage;
    this.#runDir = runDir;
    this.#console = new ConsoleTail(options.consoleLog, (line) => this.#onMarker(line));
    this.#stdout = new OutputFollower(join(runDir, runFiles.stdout), new OutputSink(options.stdout, options.captureOutput));
    this.#stderr = new OutputFollower(join(runDir, runFiles.stderr), new OutputSink(options.stderr, options.captureOutput));
  }

  async run(initrd: string): Promise<LabResult> {
    this.#writeRunFiles();
    const ending = new Promise<Ending>((resolve) => {
      this.#settle = (value) => {
        this.#settle = () => {};
        resolve(value);
      };
    });
    const disarm = this.#armLimits();
    this.#startedAt = performance.now();
    this.#startQemu(initrd);
    this.#stdout.start();
    this.#stderr.start();
    const outcome = await ending;
    disarm();
    this.#qemu?.kill('SIGKILL');
    await this.#qemuClosed;
    const durationMs = performance.now() - this.#startedAt;
    const [stdout, stderr] = await Promise.all([this.#stdout.finish(), this.#stderr.finish()]);
    const exitCode = this.#exitCode(outcome);
    const keep = this.#options.keepRunDir;
    if (!keep) rmSync(this.#runDir, { recursive: true, force: true });
    return {
      exitCode,
      bootMs: this.#bootMs(),
      durationMs,
      kernelVersion: this.#kernel.version,
      bootImage: this.#bootImage,
      insideLab: false,
      stdout,
      stderr,
      runDir: keep ? this.#runDir : null,
    };
  }

  #writeRunFiles(): void {
    const options = this.#options;
    const guardSeconds = Math.ceil(options.timeoutMs / 1000) + guardMarginSeconds;
    const stageTwo = stageTwoScript({
      cwd: options.cwd,
      command: options.command,
      environment: guestEnvironment(options),
      guardSeconds,
      network: options.network,
    });
    writeFileSync(join(this.#runDir, runFiles.stageTwo), stageTwo);
    writeFileSync(join(this.#runDir, runFiles.workspacePath), `${options.workspaceDir}\n`);
    writeFileSync(join(this.#runDir, runFiles.stdout), '');
    writeFileSync(join(this.#runDir, runFiles.stderr), '');
  }

  #startQemu(initrd: string): void {
    assert(this.#qemu === null, 'a LabRun starts one QEMU');
    const args = qemuArguments({
      kernelImage: this.#bootImage.path,
      initrd,
      memoryMiB: this.#options.memoryMiB,
      cpus: this.#options.cpus,
      workspaceDir: this.#options.workspaceDir,
      runDir: this.#runDir,
      verboseKernel: this.#options.consoleLog !== null,
    });
    // Its own process group: a Ctrl-C meant for us reaches QEMU only through our abort path, which reports it.
    const launch = qemuLaunch(args);
    const qemu = spawn(launch.file, launch.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.#qemu = qemu;
    this.#qemuClosed = new Promise((resolve) => qemu.once('close', () => resolve()));
    qemu.stdout.on('data', (chunk: Buffer) => this.#console.push(chunk));
    qemu.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.#console.note(`qemu: ${line}`);
      this.#options.consoleLog?.write(chunk);
    });
    qemu.once('error', (error) => {
      this.#qemuClosed = Promise.resolve();
      this.#fail(LabErrorCode.qemuSpawnFailed, `cannot start ${qemuBinary}: ${error.message} (install qemu-system-x86)`);
    });
    qemu.once('exit', (code, signal) => {
      this.#settle({ kind: 'qemuExited', description: signal === null ? `exit code ${code}` : `signal ${signal}` });
    });
  }

  /** Boot and run time limits and the abort signal; returns the function that removes them all. */
  #armLimits(): () => void {
    const { bootTimeoutMs, timeoutMs, signal } = this.#options;
    const bootTimer = setTimeout(() => {
      if (this.#readyAt === null) {
        this.#fail(LabErrorCode.timeout, `the guest was not ready within ${seconds(bootTimeoutMs)} (boot timeout); QEMU killed`);
      }
    }, bootTimeoutMs);
    const runTimer = setTimeout(() => {
      this.#fail(LabErrorCode.timeout, `the run did not finish within ${seconds(timeoutMs)} (timeout); QEMU killed`);
    }, timeoutMs);
    const onAbort = (): void => this.#fail(LabErrorCode.aborted, 'the run was aborted; QEMU killed');
    signal?.addEventListener('abort', onAbort, { once: true });
    return () => {
      clearTimeout(bootTimer);
      clearTimeout(runTimer);
      signal?.removeEventListener('abort', onAbort);
    };
  }

  #onMarker(line: string): void {
    if (line.startsWith(consoleMarker.ready) && this.#readyAt === null) {
      this.#readyAt = performance.now();
      assert(this.#readyAt >= this.#startedAt);
    }
  }

  #fail(code: LabErrorCode, message: string): void {
    this.#qemu?.kill('SIGKILL');
    this.#settle({ kind: 'failed', error: this.#error(code, message) });
  }

  /** The command's exit status, or the LabError explaining why there is none. */
  #exitCode(outcome: Ending): number {
    if (outcome.kind === 'failed') throw outcome.error;
    const status = readStatus(join(this.#runDir, runFiles.status));
    if (status?.word === statusWords.exit) {
      const code = Number(status.rest);
      if (Number.isInteger(code) && code >= 0 && code <= 255) return code;
    }
    if (status?.word === statusWords.setupFailed) {
      throw this.#error(LabErrorCode.guestSetupFailed, `the guest booted but its set-up failed: ${status.rest}`);
    }
    if (this.#readyAt !== null) {
      throw this.#error(
        LabErrorCode.noExitStatus,
        `the guest stopped (QEMU ${outcome.description}) after the command started, without recording its exit status`,
      );
    }
    throw this.#error(LabErrorCode.bootFailed, `the guest stopped (QEMU ${outcome.description}) before rxe0 was ready`);
  }

  #error(code: LabErrorCode, message: string): LabError {
    const where = `kernel ${this.#kernel.version}; run directory kept: ${this.#runDir}`;
    return new LabError(code, `rxe-lab: ${message} (${where})`, this.#console.lines());
  }

  #bootMs(): number {
    return this.#readyAt === null ? Number.NaN : this.#readyAt - this.#startedAt;
  }
}

/** PATH as on the host, HOME and TMPDIR on the guest's tmpfs, selected host variables, the caller's, and the lab's layout. */
function guestEnvironment(options: FilledLabOptions): Record<string, string> {
  const environment: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
  };
  for (const name of passedThroughEnvNames) {
    const value = process.env[name];
    if (value !== undefined) environment[name] = value;
  }
  return { ...environment, ...options.env, ...guestNetworkEnvironment(options.network) };
}

function readStatus(path: string): { word: string; rest: string } | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
  const space = text.indexOf(' ');
  return space < 0 ? { word: text, rest: '' } : { word: text.slice(0, space), rest: text.slice(space + 1) };
}

function ensureLabDir(labDir: string): void {
  try {
    mkdirSync(labDir, { recursive: true });
  } catch (error) {
    throw new LabError(LabErrorCode.labDirFailed, `cannot create the lab directory ${labDir}`, [], error);
  }
}

function createRunDir(runsDir: string): string {
  try {
    return createFreshRunDir(runsDir);
  } catch (error) {
    throw new LabError(LabErrorCode.labDirFailed, `cannot create a run directory in ${runsDir}`, [], error);
  }
}

function createFreshRunDir(runsDir: string): string {
  mkdirSync(runsDir, { recursive: true });
  const existing = readdirSync(runsDir).sort();
  for (const old of existing.slice(0, Math.max(0, existing.length - keptRunDirsMax + 1))) {
    rmSync(join(runsDir, old), { recursive: true, force: true });
  }
  const runDir = join(runsDir, `${Date.now()}-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(runDir);
  return runDir;
}

function seconds(milliseconds: number): string {
  return `${(milliseconds / 1000).toFixed(milliseconds % 1000 === 0 ? 0 : 1)} s`;
}
