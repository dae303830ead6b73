/**
 * Running a command when we are already inside the lab guest: the command runs directly, as a
 * child process. So a package's `test:lab` script (`rxe-lab -- vitest run`) works both from the
 * host, where it boots a guest, and from a command already in the guest (say
 * `pnpm lab -- pnpm -r test:lab`), where booting a guest inside the emulated guest would be
 * pointless and very slow.
 *
 * Life: `runInLab` calls `runInsideLab`, which owns the child, its two output sinks, its timer and
 * its abort listener until the child has closed, main thread only.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants, release } from 'node:os';
import type { Readable } from 'node:stream';
import { LabError, LabErrorCode } from './errors.js';
import { currentLabNetwork, guestNetwork } from './guest-network.js';
import type { LabResult } from './lab-run.js';
import type { FilledLabOptions } from './options.js';
import { OutputSink } from './output-sink.js';

// What a shell reports for a program that cannot be found or cannot be run.
const exitCodeNotFound = 127;
const exitCodeNotExecutable = 126;

/** True inside a lab guest: its stage two exported RXE_LAB=1, and its rxe device exists. */
export function isInsideLab(): boolean {
  return process.env.RXE_LAB === '1' && existsSync(`/sys/class/infiniband/${guestNetwork.rdmaDevice}`);
}

export async function runInsideLab(options: FilledLabOptions): Promise<LabResult> {
  if (options.network !== currentLabNetwork()) {
    throw new LabError(LabErrorCode.invalidOption, `rxe-lab: network ${options.network} asked for, but this guest was booted with ${currentLabNetwork()}`);
  }
  const startedAt = performance.now();
  const stdoutSink = new OutputSink(options.stdout, options.captureOutput);
  const stderrSink = new OutputSink(options.stderr, options.captureOutput);
  const [program = '', ...args] = options.command;
  const child = spawn(program, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const pumps = Promise.all([pump(child.stdout, stdoutSink), pump(child.stderr, stderrSink)]);
  let failure: LabError | null = null;
  const fail = (code: LabErrorCode, message: string): void => {
    failure ??= new LabError(code, `rxe-lab: ${message} (run directly: already inside the lab)`);
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => fail(LabErrorCode.timeout, `the run did not finish within ${options.timeoutMs} ms (timeout); command killed`), options.timeoutMs);
  const onAbort = (): void => fail(LabErrorCode.aborted, 'the run was aborted; command killed');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const exitCode = await new Promise<number>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ENOENT' ? exitCodeNotFound : exitCodeNotExecutable));
    child.once('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', onAbort);
  await pumps;
  const stdout = stdoutSink.close();
  const stderr = stderrSink.close();
  if (failure !== null) throw failure;
  return {
    exitCode,
    bootMs: 0,
    durationMs: performance.now() - startedAt,
    kernelVersion: release(),
    bootImage: null,
    insideLab: true,
    stdout,
    stderr,
    runDir: null,
  };
}

async function pump(stream: Readable, sink: OutputSink): Promise<void> {
  for await (const chunk of stream) await sink.write(chunk as Buffer);
}
