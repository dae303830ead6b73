import { defineConfig } from 'vitest/config';

// Lab tests: run INSIDE the rxe guest (`pnpm lab -- pnpm --filter @roce-rpc/verbs test:lab`).
// Emulated CPUs are slow: generous timeouts, one file at a time.
export default defineConfig({
  // Our own cache: other packages' vitest runs (host and lab) share the workspace.
  cacheDir: 'node_modules/.vitest-lab',
  test: {
    include: ['test/lab/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
