/**
 * Interop: a C client linked with OpenAFS's rx library, its stubs generated
 * by OpenAFS's rxgen from our interfaces/bench.xg, calls our server: Null,
 * Echo, a 1 MiB split Send and a 1 MiB split Receive, and Sleep.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxServer } from '../dist/index.js';

const run = promisify(execFile);
const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const buildScript = fileURLToPath(new URL('../peers/build.sh', import.meta.url));

// rxgen and libafsrpc come from libopenafs-dev, which scripts/setup installs: a missing one fails here.
describe('an OpenAFS rx C client calls our server', () => {
  let server: RxServer;
  let directory: string;
  beforeAll(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-rxbench-'));
    await run('sh', [buildScript, directory], { timeout: 60_000 });
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
  }, 90_000);
  afterAll(async () => {
    await server?.close();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  });

  it('completes Null, Echo, 1 MiB Send and Receive, and Sleep', async () => {
    const { stdout } = await run(path.join(directory, 'rxbench'), ['check', '127.0.0.1', String(server.port)], { timeout: 60_000 });
    expect(stdout.trim()).toBe('OK');
  });

  it('runs 2000 Null calls over four channels without a failure', async () => {
    const { stdout } = await run(path.join(directory, 'rxbench'), ['null', '127.0.0.1', String(server.port), '2000', '4'], { timeout: 60_000 });
    expect(stdout).toMatch(/calls=2000 failures=0 /);
  });
});
