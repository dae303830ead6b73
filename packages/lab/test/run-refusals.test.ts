/** runInLab refuses early, before any guest boots, with a stable code naming what is wrong. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { LabErrorCode, runInLab } from '../src/index.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
let workspace = '';
afterEach(() => {
  if (workspace !== '') rmSync(workspace, { recursive: true, force: true });
  workspace = '';
});

describe('a run that cannot start', () => {
  test('fails with ERR_LAB_DIR when the workspace has no writable .lab directory', async () => {
    workspace = mkdtempSync(join(packageDir, '.lab-test-workspace-'));
    writeFileSync(join(workspace, '.lab'), 'a file where the lab directory should be');
    await expect(runInLab({ command: ['true'], cwd: workspace, workspaceDir: workspace })).rejects.toMatchObject({
      code: LabErrorCode.labDirFailed,
      message: expect.stringContaining(join(workspace, '.lab')),
    });
  });

  test('fails with ERR_LAB_ABORTED when its signal is already aborted', async () => {
    await expect(runInLab({ command: ['true'], cwd: packageDir, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: LabErrorCode.aborted,
    });
  });

  test('fails with ERR_LAB_INVALID_OPTION naming the field', async () => {
    await expect(runInLab({ command: ['true'], cwd: packageDir, cpus: 0 })).rejects.toMatchObject({
      code: LabErrorCode.invalidOption,
      message: expect.stringMatching(/^cpus /),
    });
  });
});
