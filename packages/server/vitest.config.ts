import { defineConfig } from 'vitest/config';

// Real processes on a loaded 2-core machine: generous timeouts, one file at a time.
export default defineConfig({
  test: {
    include: ['test/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 90_000,
    fileParallelism: false,
  },
});
