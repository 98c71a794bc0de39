import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// depl imports the crawler workspace package (`@depl/crawler/client`); tests run its TypeScript sources, as
// typechecking does (tsconfig "depl-source"), so they need no build of the package first.
const crawlerSources = { find: /^@depl\/crawler\/(.+)$/, replacement: fileURLToPath(new URL('./crawler/src/$1.ts', import.meta.url)) };

export default defineConfig({
  test: {
    // Integration tests use real Docker, SSH, Redis and nginx and share one engine: files run one at a
    // time so a 2-core machine does not thrash (unit files are fast either way).
    fileParallelism: false,
    projects: [
      {
        resolve: { alias: [crawlerSources] },
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        resolve: { alias: [crawlerSources] },
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
