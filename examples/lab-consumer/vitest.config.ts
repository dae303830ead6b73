import { defineConfig } from 'vitest/config';

// Inside the lab everything is emulated (TCG): JavaScript runs 20-45x slower than on the host,
// so vitest's 5 s default would fail tests that are merely slow there.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
