import { defineConfig } from 'vitest/config';

// Host tests: a real TCP client against the server, both stores; no kernel NFS client needed.
export default defineConfig({
  test: {
    include: ['test/*.test.ts'],
    testTimeout: 20_000,
  },
});
