/** Handlers are typed from xdrgen descriptors: a fixture using them must type-check, its errors must be caught. */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { compileFile } from '@roce-rpc/xdr';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

test('handlers registered from the NFSv3 descriptors take and return the generated types', async () => {
  const generated = join(packageDir, 'test', '.generated');
  mkdirSync(generated, { recursive: true });
  writeFileSync(join(generated, 'nfs3.ts'), compileFile(join(packageDir, '..', 'xdr', 'defs', 'nfs3.x')).code);
  const project = join(generated, 'tsconfig.typecheck.json');
  writeFileSync(
    project,
    JSON.stringify({
      extends: '../../../../tsconfig.base.json',
      compilerOptions: { noEmit: true, rootDir: '../..' },
      files: ['../fixtures/nfs-handlers.typecheck.ts'],
    }),
  );
  const tsc = join(packageDir, '..', '..', 'node_modules', '.bin', 'tsc');
  const output = await new Promise<string>((resolve) => {
    execFile(tsc, ['-p', project], { cwd: packageDir }, (error, stdout, stderr) => resolve(error ? `${stdout}${stderr}` || String(error) : ''));
  });
  expect(output).toBe('');
}, 60_000);
