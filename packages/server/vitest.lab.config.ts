import { defineConfig } from 'vitest/config';

// Lab tests run INSIDE the rxe guest (`pnpm --filter @roce-rpc/server test:lab` boots it).
// Emulated CPUs are slow: generous timeouts, one file at a time.
export default defineConfig({
  test: {
    include: ['test/lab/*.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
