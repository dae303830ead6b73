#!/usr/bin/env node
/**
 * rxe-lab: the command-line face of runInLab. Parses options up to `--` (or up to the first word
 * that is not an option), runs the command in the guest, and exits with its status; a failure of
 * the lab itself prints the reason and the guest's last console lines and exits with 125.
 * Ctrl-C and SIGTERM abort the run, which kills QEMU.
 */
import { Writable } from 'node:stream';
import { LabError, LabErrorCode } from './errors.js';
import { runInLab } from './lab-run.js';
import { labDefaults, passedThroughEnvNames, type LabOptions } from './options.js';
import { gidIndexVariable, guestNetworkEnvironment, peerGidIndexVariable } from './guest-network.js';
import type { LabResult } from './lab-run.js';

/** Exit status when the lab, not the command, failed (as `docker run` does). */
const labFailureExitCode = 125;
const exitCodeBySignal: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

interface CliRequest {
  options: Omit<LabOptions, 'command'>;
  command: string[];
  verbose: boolean;
  help: boolean;
}

const usage = `Usage: rxe-lab [options] -- <command> [args...]

Boots a QEMU guest with Debian's kernel, brings up the soft-RoCE device rxe0 on lab0
(192.0.2.1/24, no NIC: traffic stays in the guest), runs the command there in the same
directory with the workspace writable, streams its output and exits with its status.
Already inside a lab guest (RXE_LAB=1 and rxe0 present), it runs the command directly.

Options:
  --timeout <seconds>       limit for the whole run, boot included (default ${labDefaults.timeoutMs / 1000})
  --boot-timeout <seconds>  limit until rxe0 is ready (default ${labDefaults.bootTimeoutMs / 1000})
  --memory <MiB>            guest memory (default ${labDefaults.memoryMiB})
  --cpus <n>                guest vCPUs (default ${labDefaults.cpus})
  --workspace <dir>         directory writable in the guest (default: pnpm workspace root above cwd)
  --cwd <dir>               working directory of the command (default: the current one)
  --env NAME[=VALUE]        pass NAME from this environment, or set it (repeatable)
  --network <layout>        single (default): rxe0 on lab0; veth-pair: rxe0 on lab0a (192.0.2.1) and
                            rxe1 on lab0b (192.0.2.2), traffic between them crosses the veth
  --keep                    keep the run directory (.lab/runs/<id>) after a successful run
  -v, --verbose             stream the guest console (kernel log) to stderr and report boot time
  -h, --help                this text

In the guest: PATH as here, HOME=TMPDIR=/tmp, ${passedThroughEnvNames.join(', ')} passed through when set, and
${Object.entries(guestNetworkEnvironment()).map(([name, value]) => `${name}=${value}`).join(' ')}
and ${gidIndexVariable} (the GID index of that address on rxe0, for perftest -x).
With --network veth-pair: ${Object.entries(guestNetworkEnvironment('veth-pair')).filter(([name]) => !(name in guestNetworkEnvironment())).map(([name, value]) => `${name}=${value}`).join(' ')}
and ${peerGidIndexVariable}; RXE_LAB_NETDEV=lab0a.
Exit status: the command's; ${labFailureExitCode} when the lab failed (guest did not boot, rxe0 down, timeout);
130/143 when interrupted.`;

function parseCommandLine(argv: readonly string[]): CliRequest {
  const request: CliRequest = { options: {}, command: [], verbose: false, help: false };
  const env: Record<string, string> = {};
  let index = 0;
  const value = (flag: string): string => {
    const next = argv[++index];
    if (next === undefined) throw usageError(`${flag} needs a value`);
    return next;
  };
  for (; index < argv.length; index++) {
    const word = argv[index] as string;
    if (word === '--') { index++; break; }
    if (!word.startsWith('-')) break;
    switch (word) {
      case '--timeout': request.options.timeoutMs = secondsOption(word, value(word)); break;
      case '--boot-timeout': request.options.bootTimeoutMs = secondsOption(word, value(word)); break;
      case '--memory': request.options.memoryMiB = Number(value(word)); break;
      case '--cpus': request.options.cpus = Number(value(word)); break;
      case '--workspace': request.options.workspaceDir = value(word); break;
      case '--cwd': request.options.cwd = value(word); break;
      case '--env': addEnv(env, value(word)); break;
      case '--network': request.options.network = value(word) as LabOptions['network']; break;
      case '--keep': request.options.keepRunDir = true; break;
      case '-v': case '--verbose': request.verbose = true; break;
      case '-h': case '--help': request.help = true; break;
      default: throw usageError(`unknown option ${word}`);
    }
  }
  request.command = argv.slice(index);
  request.options.env = env;
  return request;
}

function addEnv(env: Record<string, string>, assignment: string): void {
  const equals = assignment.indexOf('=');
  if (equals >= 0) {
    env[assignment.slice(0, equals)] = assignment.slice(equals + 1);
    return;
  }
  const hostValue = process.env[assignment];
  if (hostValue !== undefined) env[assignment] = hostValue;
}

function secondsOption(flag: string, text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0) throw usageError(`${flag} must be a positive number of seconds, got ${text}`);
  return Math.round(seconds * 1000);
}

function usageError(message: string): LabError {
  return new LabError(LabErrorCode.invalidOption, `${message}\n\n${usage}`);
}

/**
 * The guest console on its way to stderr, remembering whether its last line was complete: the
 * guest can power off in the middle of a line (a shell message cut by the power-off), and the
 * run summary must still start a line of its own.
 */
class ConsoleToStderr extends Writable {
  endsMidLine = false;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (chunk.length > 0) this.endsMidLine = chunk[chunk.length - 1] !== 0x0a;
    // Done at once, not on stderr's callback: the next chunk (and the summary after the last one)
    // then reach stderr in order, as when the console wrote to it directly.
    process.stderr.write(chunk);
    done();
  }
}

function runSummary(result: LabResult): string {
  if (result.insideLab) {
    return `rxe-lab: already inside the lab, ran directly in ${seconds(result.durationMs)}, exit status ${result.exitCode}\n`;
  }
  const image = result.bootImage?.pvh === true ? 'PVH boot of the extracted ELF' : `bzImage boot, slower: ${result.bootImage?.fallbackReason}`;
  return (
    `rxe-lab: boot to ready ${seconds(result.bootMs)}, whole run ${seconds(result.durationMs)}, ` +
    `kernel ${result.kernelVersion} (${image}), exit status ${result.exitCode}\n`
  );
}

function seconds(milliseconds: number): string {
  return `${(milliseconds / 1000).toFixed(1)} s`;
}

async function main(argv: readonly string[]): Promise<number> {
  const request = parseCommandLine(argv);
  if (request.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (request.command.length === 0) throw usageError('no command given');
  const controller = new AbortController();
  let interruptedBy: string | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    interruptedBy = signal;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const consoleLog = request.verbose ? new ConsoleToStderr() : null;
  try {
    const result = await runInLab({
      ...request.options,
      command: request.command,
      signal: controller.signal,
      consoleLog,
    });
    if (consoleLog !== null) process.stderr.write(`${consoleLog.endsMidLine ? '\n' : ''}${runSummary(result)}`);
    return result.exitCode;
  } catch (error) {
    if (interruptedBy !== null) {
      process.stderr.write(`rxe-lab: interrupted by ${interruptedBy}; QEMU killed\n`);
      return exitCodeBySignal[interruptedBy] ?? labFailureExitCode;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    const message = error instanceof LabError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`${message.startsWith('rxe-lab:') ? '' : 'rxe-lab: '}${message}\n`);
    process.exitCode = labFailureExitCode;
  },
);
