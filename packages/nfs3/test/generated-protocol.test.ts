/** The committed protocol modules are what xdrgen produces today from the RFC 1813 definitions. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFile } from '@roce-rpc/xdr';
import { expect, test } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

test.each(['nfs3', 'mount3'])('src/protocol/%s.generated.ts matches the compiler output (pnpm generate)', (name) => {
  const fresh = compileFile(join(packageDir, '..', 'xdr', 'defs', `${name}.x`)).code;
  expect(readFileSync(join(packageDir, 'src', 'protocol', `${name}.generated.ts`), 'utf8')).toBe(fresh);
});
