import { defineConfig } from 'vitest/config';

// Lab tests: run INSIDE the rxe guest (`pnpm --filter @roce-rpc/nfs3 test:lab` boots it), where the
// kernel NFS client exists. Emulated CPUs are slow: generous timeouts, one file at a time.
export default defineConfig({
  test: {
    include: ['test/lab/*.test.ts'],
    testTimeout: 480_000, // the 300-file tree copy took 55–100 s with the host at load 4–8
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
