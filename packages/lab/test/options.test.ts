/** Options are validated before anything boots, and each error names its field. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { LabErrorCode } from '../src/errors.js';
import { fillLabOptions, labDefaults } from '../src/options.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const workspaceRoot = join(packageDir, '..', '..');

describe('filling lab options', () => {
  test('defaults the workspace to the pnpm workspace root above cwd and fills every limit', () => {
    const filled = fillLabOptions({ command: ['true'], cwd: packageDir });
    expect(filled.workspaceDir).toBe(workspaceRoot);
    expect(filled.memoryMiB).toBe(labDefaults.memoryMiB);
    expect(filled.cpus).toBe(labDefaults.cpus);
    expect(filled.timeoutMs).toBe(labDefaults.timeoutMs);
    expect(filled.stdout).toBe(process.stdout);
    expect(filled.network).toBe('single');
  });

  test('accepts a workspace below /tmp (a clone there) with cwd inside it', () => {
    const clone = mkdtempSync('/tmp/rxe-lab-clone-');
    try {
      mkdirSync(join(clone, 'packages', 'a'), { recursive: true });
      const filled = fillLabOptions({ command: ['true'], cwd: join(clone, 'packages', 'a'), workspaceDir: clone });
      expect(filled.workspaceDir).toBe(clone);
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  });

  test.each([
    [{ command: [] }, /^command must be a non-empty array/],
    [{ command: [''] }, /^command the program name/],
    [{ command: ['true'], memoryMiB: 100 }, /^memoryMiB must be an integer from 256/],
    [{ command: ['true'], cpus: 1.5 }, /^cpus must be an integer/],
    [{ command: ['true'], timeoutMs: 0 }, /^timeoutMs must be/],
    [{ command: ['true'], env: { 'BAD-NAME': 'x' } }, /^env "BAD-NAME" is not a valid variable name/],
    [{ command: ['true'], network: 'two-guests' as never }, /^network must be one of single, veth-pair, got "two-guests"/],
    [{ command: ['true'], cwd: '/tmp', workspaceDir: packageDir }, /^cwd \/tmp is below \/tmp, .* outside the workspace/],
    [{ command: ['true'], cwd: '/tmp', workspaceDir: '/tmp' }, /^workspaceDir \/tmp would hide/],
    [{ command: ['true'], cwd: packageDir, workspaceDir: '/run' }, /^workspaceDir \/run would hide or be hidden by the guest's own \/run/],
    [{ command: ['true'], cwd: join(packageDir, 'no-such-directory') }, /^cwd .*no-such-directory is not a directory/],
    [{ command: ['true'], cwd: packageDir, workspaceDir: join(packageDir, 'package.json') }, /^workspaceDir .*package\.json is not a directory/],
    [{ command: ['true'], cwd: packageDir, workspaceDir: '/' }, /^workspaceDir must be a directory below \//],
  ])('rejects %o', (options, message) => {
    expect(() => fillLabOptions(options)).toThrow(expect.objectContaining({ code: LabErrorCode.invalidOption, message: expect.stringMatching(message) }));
  });
});
