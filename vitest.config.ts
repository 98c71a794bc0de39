import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests use real Docker, SSH, Redis and nginx and share one engine: files run one at a
    // time so a 2-core machine does not thrash (unit files are fast either way).
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
