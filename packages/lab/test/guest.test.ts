/**
 * Boots real guests (QEMU + Debian's kernel): each boot costs ~15 s, so each test checks as much
 * of one lifecycle as it can. Nothing here is skipped when the guest cannot boot: that must fail.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { LabError, LabErrorCode, runInLab, until } from '../src/index.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliPath = join(packageDir, 'bin', 'rxe-lab.js');
const bootTestTimeoutMs = 180_000;

/** QEMU processes sharing `workspace` with a guest (their command line names it). */
function qemuProcessesFor(workspace: string): number {
  const run = spawnSync('pgrep', ['-f', `qemu-system-x86_64 .*path=${workspace},`], { encoding: 'utf8' });
  return run.stdout.split('\n').filter((line) => line.trim() !== '').length;
}

describe('a guest run', () => {
  test('has rxe0 ACTIVE on 192.0.2.1, sees the workspace writable, runs a nested rxe-lab directly, streams output intact and reports boot time', async () => {
    const marker = join(packageDir, '.lab-test-written-in-guest');
    rmSync(marker, { force: true });
    const script = [
      'set -e',
      'ibv_devinfo -d "$RXE_LAB_DEVICE"',
      'ip -4 -o address show dev "$RXE_LAB_NETDEV"',
      'echo "cwd=$(pwd) home=$HOME gid-index=$RXE_LAB_GID_INDEX"',
      `echo written-by-the-guest > ${marker}`,
      // Real RDMA traffic over rxe0 between peers we did not write: rping's Send, RDMA Read and RDMA Write, verified.
      // A client starts once its server's rdma_cm id listens (how long that takes depends on the
      // host's load); `timeout` turns a hang into a failure with output instead of a test timeout.
      'wait_listen() { tries=0; until rdma resource show cm_id | grep LISTEN | grep -q ":$1 "; do tries=$((tries + 1)); [ $tries -lt 120 ] || return 1; sleep 0.5; done; }',
      'rping -s -a "$RXE_LAB_ADDR" -C 3 > /tmp/rping-server.log 2>&1 &',
      'wait_listen 7174',
      'timeout 60 rping -c -a "$RXE_LAB_ADDR" -V -v -C 3',
      'wait',
      // rxe-lab inside the lab runs the command directly instead of booting a guest in the guest.
      'status=0; node "$LAB_BIN" -- sh -c \'echo "nested in $RXE_LAB_DEVICE"; exit 5\' || status=$?',
      'echo "nested exit $status"',
      'seq 1 40000',
      'echo to-stderr >&2',
    ].join('\n');
    const result = await runInLab({
      command: ['sh', '-c', script],
      cwd: packageDir,
      env: { LAB_BIN: cliPath },
      captureOutput: true,
      stdout: null,
      stderr: null,
    });
    try {
      expect(result.exitCode, `stdout:\n${result.stdout.slice(0, 4000)}\nstderr:\n${result.stderr}`).toBe(0);
      expect(result.stdout).toMatch(/hca_id:\s+rxe0/);
      expect(result.stdout).toMatch(/state:\s+PORT_ACTIVE \(4\)/);
      expect(result.stdout).toMatch(/link_layer:\s+Ethernet/);
      expect(result.stdout).toContain('inet 192.0.2.1/24');
      expect(result.stdout).toContain(`cwd=${packageDir} home=/tmp gid-index=1\n`);
      expect(result.stdout.match(/^ping data: rdma-ping-\d+: /gm)).toHaveLength(3);
      expect(result.stdout).toContain('nested in rxe0\nnested exit 5\n');
      expect(result.insideLab).toBe(false);
      const sequence = Array.from({ length: 40000 }, (_, index) => `${index + 1}\n`).join('');
      expect(result.stdout.endsWith(sequence)).toBe(true);
      expect(result.stderr.endsWith('\nto-stderr\n')).toBe(true);
      expect(readFileSync(marker, 'utf8')).toBe('written-by-the-guest\n');
      expect(result.bootMs).toBeGreaterThan(1000);
      expect(result.bootMs).toBeLessThan(result.durationMs);
      expect(result.runDir).toBeNull();
      console.log(`rxe-lab boot to ready: ${(result.bootMs / 1000).toFixed(1)} s, whole run ${(result.durationMs / 1000).toFixed(1)} s`);
    } finally {
      rmSync(marker, { force: true });
    }
  }, bootTestTimeoutMs);

  test('the rxe-lab bin returns the command exit status, keeps stdout clean and with --verbose adds the kernel log and boot time to stderr', () => {
    const run = spawnSync(
      process.execPath,
      [cliPath, '--verbose', '--env', 'LAB_TEST_GREETING=hello there', '--', 'sh', '-c', 'printf "%s\\n" "$LAB_TEST_GREETING"; echo oops >&2; exit 7'],
      { cwd: packageDir, encoding: 'utf8', timeout: bootTestTimeoutMs },
    );
    expect(run.stdout).toBe('hello there\n');
    expect(run.status).toBe(7);
    expect(run.stderr).toMatch(/^\[ *[\d.]+\] Linux version \d/m);
    expect(run.stderr).toMatch(/^rxe-lab: ready uptime [\d.]+ s$/m);
    expect(run.stderr).toMatch(/^oops$/m);
    expect(run.stderr).toMatch(/^rxe-lab: boot to ready \d+\.\d s, whole run \d+\.\d s, kernel \S+ \(PVH boot of the extracted ELF\), exit status 7\n$/m);
  }, bootTestTimeoutMs);

  test('SIGTERM to the rxe-lab bin kills QEMU and exits 143', async () => {
    const workspace = mkdtempSync(join(packageDir, '.lab-test-workspace-'));
    try {
      const cli = spawn(process.execPath, [cliPath, '--workspace', workspace, '--', 'sleep', '600'], { cwd: workspace });
      let stderr = '';
      cli.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      await until(() => qemuProcessesFor(workspace) > 0, 'QEMU to start', 20_000, 100);
      cli.kill('SIGTERM');
      const [code] = (await once(cli, 'exit')) as [number | null];
      expect(code).toBe(143);
      // Without --verbose nothing but our own message reaches stderr: no kernel log, no QEMU chatter.
      expect(stderr).toBe('rxe-lab: interrupted by SIGTERM; QEMU killed\n');
      expect(qemuProcessesFor(workspace)).toBe(0);
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  }, bootTestTimeoutMs);

  test('a host process killed with SIGKILL takes its QEMU with it', async () => {
    const workspace = mkdtempSync(join(packageDir, '.lab-test-workspace-'));
    try {
      const cli = spawn(process.execPath, [cliPath, '--workspace', workspace, '--', 'sleep', '600'], { cwd: workspace, stdio: 'ignore' });
      await until(() => qemuProcessesFor(workspace) > 0, 'QEMU to start', 20_000, 100);
      cli.kill('SIGKILL');
      await once(cli, 'exit');
      // The kernel delivers the death signal at once; tearing down a guest's gigabytes of memory
      // on a loaded 2-core machine has taken over 10 s (CI at load 12).
      await until(() => qemuProcessesFor(workspace) === 0, 'QEMU to exit', 60_000, 100);
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  }, bootTestTimeoutMs);

  test('a guest that dies while the command runs fails the run loudly instead of inventing a status', async () => {
    const failure = await runInLab({
      command: ['sh', '-c', 'echo powering off under the command; echo o > /proc/sysrq-trigger; sleep 60'],
      cwd: packageDir,
      captureOutput: true,
      stdout: null,
      stderr: null,
    }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(LabError);
    const labError = failure as LabError;
    expect(labError.code).toBe(LabErrorCode.noExitStatus);
    expect(labError.message).toMatch(/after the command started, without recording its exit status/);
    expect(labError.consoleTail.some((line) => line.startsWith('rxe-lab: ready'))).toBe(true);
    const runDir = /run directory kept: (\S+)\)/.exec(labError.message)?.[1];
    expect(runDir !== undefined && readFileSync(join(runDir, 'stdout'), 'utf8')).toBe('powering off under the command\n');
    if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
  }, bootTestTimeoutMs);

  test('a guest that is not ready within the boot timeout is killed and the run fails loudly, keeping its run directory', async () => {
    const started = performance.now();
    const failure = await runInLab({ command: ['true'], cwd: packageDir, bootTimeoutMs: 1500, stdout: null, stderr: null }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(LabError);
    const labError = failure as LabError;
    expect(labError.code).toBe(LabErrorCode.timeout);
    expect(labError.message).toMatch(/not ready within 1\.5 s/);
    expect(performance.now() - started).toBeLessThan(15_000);
    const runDir = /run directory kept: (\S+)\)/.exec(labError.message)?.[1];
    expect(runDir !== undefined && existsSync(runDir)).toBe(true);
    if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
  }, bootTestTimeoutMs);
});
