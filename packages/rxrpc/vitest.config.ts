import { defineConfig } from 'vitest/config';

// Four engineers share two cores: give loopback network tests room before calling them hung.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
