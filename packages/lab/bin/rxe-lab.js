#!/usr/bin/env node
// The rxe-lab bin. A committed launcher rather than dist/cli.js itself: pnpm links a workspace
// package's bins at install time, before dist/ is built on a fresh clone, and skips missing files.
try {
  await import('../dist/cli.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli.js')) throw error;
  process.stderr.write('rxe-lab: @roce-rpc/lab is not built (no dist/cli.js): run `pnpm build` first\n');
  process.exitCode = 125;
}
