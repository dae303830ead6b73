/**
 * Runs inside the rxe lab guest (`pnpm test:lab` = `rxe-lab -- vitest run`): what a package that
 * consumes @roce-rpc/lab gets there. On the host these fail, by design: there is no RDMA here.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';

const run = promisify(execFile);
// How long a just-spawned server takes to listen depends on the host's load (the guest is emulated).
const serverStartAttemptsMax = 40;

/** Runs a client until it gets through: a connection refused before the server listens is not a failure. */
async function untilServerListens(client: () => Promise<{ stdout: string }>): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await client()).stdout;
    } catch (error) {
      if (attempt >= serverStartAttemptsMax) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
const device = process.env.RXE_LAB_DEVICE ?? '';
const address = process.env.RXE_LAB_ADDR ?? '';

describe('inside the rxe lab', () => {
  test('the lab announces itself and its rxe device is ACTIVE', async () => {
    expect(process.env.RXE_LAB, 'run me through `pnpm test:lab` (rxe-lab), not on the host').toBe('1');
    const { stdout } = await run('ibv_devinfo', ['-d', device]);
    expect(stdout).toMatch(new RegExp(`hca_id:\\s+${device}`));
    expect(stdout).toMatch(/state:\s+PORT_ACTIVE/);
  });

  test('rping completes a verified exchange over the lab address', async () => {
    const server = spawn('rping', ['-s', '-a', address, '-C', '2'], { stdio: 'ignore' });
    const serverExit = new Promise((resolve) => server.once('exit', resolve));
    const stdout = await untilServerListens(() => run('rping', ['-c', '-a', address, '-V', '-v', '-C', '2']));
    expect(stdout.match(/^ping data: rdma-ping-\d+: /gm)).toHaveLength(2);
    await serverExit;
  });

  test('the package directory is writable from the guest', async () => {
    const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
    const scratch = await mkdtemp(join(packageDir, '.scratch-'));
    try {
      await writeFile(join(scratch, 'result.json'), JSON.stringify({ device }));
      expect(JSON.parse(await readFile(join(scratch, 'result.json'), 'utf8'))).toEqual({ device });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
