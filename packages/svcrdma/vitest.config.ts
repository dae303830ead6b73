import { defineConfig } from 'vitest/config';

// Host tests: no RDMA device needed.
export default defineConfig({
  test: {
    include: ['test/*.test.ts'],
    testTimeout: 20_000,
  },
});
