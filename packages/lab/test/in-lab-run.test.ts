/**
 * The direct runner used when rxe-lab is invoked inside a guest. Its own logic (streams, exit
 * status, time limit) does not depend on being in the guest, so it is exercised here on the host;
 * the guest test checks that a nested rxe-lab picks it.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { LabErrorCode } from '../src/errors.js';
import { isInsideLab, runInsideLab } from '../src/in-lab-run.js';
import { fillLabOptions, type LabOptions } from '../src/options.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const filled = (options: Partial<LabOptions> & Pick<LabOptions, 'command'>) =>
  fillLabOptions({ cwd: packageDir, captureOutput: true, stdout: null, stderr: null, ...options });

describe('running directly inside the lab', () => {
  test('is not chosen on the host', () => {
    expect(isInsideLab()).toBe(false);
  });

  test('returns the exit status and both streams intact, with the caller environment added', async () => {
    const result = await runInsideLab(
      filled({ command: ['sh', '-c', 'seq 1 20000; echo "$GREETING" >&2; exit 9'], env: { GREETING: 'hi there' } }),
    );
    expect(result.exitCode).toBe(9);
    expect(result.stdout).toBe(Array.from({ length: 20000 }, (_, index) => `${index + 1}\n`).join(''));
    expect(result.stderr).toBe('hi there\n');
    expect(result).toMatchObject({ insideLab: true, bootMs: 0, bootImage: null, runDir: null });
  });

  test('reports 127 for a missing program and 128+n for a signal, as a shell would', async () => {
    expect((await runInsideLab(filled({ command: ['no-such-program-rxe-lab'] }))).exitCode).toBe(127);
    expect((await runInsideLab(filled({ command: ['sh', '-c', 'kill -TERM $$'] }))).exitCode).toBe(143);
  });

  test('kills the command at the time limit and fails with ERR_LAB_TIMEOUT', async () => {
    const started = performance.now();
    await expect(runInsideLab(filled({ command: ['sleep', '30'], timeoutMs: 300 }))).rejects.toMatchObject({
      code: LabErrorCode.timeout,
    });
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
