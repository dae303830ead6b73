/** The bin's argument handling, without booting: usage errors exit 125 with the reason, --help exits 0. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const cliPath = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
const runCli = (args: string[]) => spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });

describe('the rxe-lab command line', () => {
  test('--help lists every option and the guest variables', () => {
    const run = runCli(['--help']);
    expect(run.status).toBe(0);
    for (const option of ['--timeout', '--boot-timeout', '--memory', '--cpus', '--workspace', '--env', '--verbose']) {
      expect(run.stdout).toContain(option);
    }
    expect(run.stdout).toContain('RXE_LAB_ADDR=192.0.2.1');
  });

  test.each([
    [['--frobnicate', '--', 'true'], 'unknown option --frobnicate'],
    [['--memory'], '--memory needs a value'],
    [['--timeout', 'soon', '--', 'true'], '--timeout must be a positive number of seconds'],
    [['--cpus', '99', '--', 'true'], 'cpus must be an integer from 1 to 8'],
    [['--'], 'no command given'],
  ])('%o fails with exit status 125 and says why', (args, reason) => {
    const run = runCli(args);
    expect(run.status).toBe(125);
    expect(run.stderr).toContain(reason);
    expect(run.stdout).toBe('');
  });
});
