import { defineConfig } from 'vitest/config';

// Host tests: no RDMA device needed.
export default defineConfig({
  // Our own cache: other packages' vitest runs (host and lab) share the workspace.
  cacheDir: 'node_modules/.vitest-host',
  test: {
    include: ['test/*.test.ts'],
    testTimeout: 20_000,
  },
});
