// Builds the Rust addon into a staging directory and moves it over the package's copy with
// rename(2). Copying over the old file in place rewrites pages that a running process (a lab
// suite, a worker pool) still has mapped, and that process dies with SIGSEGV; after a rename it
// keeps the old inode until it exits.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonName = 'roce-verbs.linux-x64-gnu.node';
const stagingDir = join(packageDir, '..', '..', 'target', 'napi-staging');
mkdirSync(stagingDir, { recursive: true });

const build = spawnSync(
  'napi',
  [
    'build', '--platform', '--release', '--no-js',
    '--manifest-path', join(packageDir, '..', '..', 'crates', 'verbs', 'Cargo.toml'),
    '--output-dir', stagingDir,
  ],
  { cwd: packageDir, stdio: 'inherit' },
);
if (build.error) throw build.error;
if (build.status !== 0) process.exit(build.status ?? 1);

renameSync(join(stagingDir, addonName), join(packageDir, addonName));
