import { defineConfig } from 'vitest/config';

// Real processes on a loaded machine: generous timeouts.
export default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 90_000, hookTimeout: 90_000 } });
