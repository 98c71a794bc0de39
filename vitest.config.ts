import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// depl imports the crawler workspace package (`@depl/crawler/client`); tests run its TypeScript sources, as
// typechecking does (tsconfig "depl-source"), so they need no build of the package first.
const crawlerSources = { find: /^@depl\/crawler\/(.+)$/, replacement: fileURLToPath(new URL('./crawler/src/$1.ts', import.meta.url)) };

/**
 * Integration files that start no cluster and need no Docker Engine: the openstack client against the
 * emulator, PostgreSQL, Redis, Swift, Pebble, the CLI's refusals, the crawler. They run beside the cluster files
 * instead of after them (CI's 45 minutes). A file that starts nodes, uses Docker or puts load on an edge stays in
 * the serial lane.
 */
const LOCAL_INTEGRATION_FILES = [
  'openstack-client', 'openstack-errors', 'openstack-tls', 'tls-acme', 'cli-config', 'init-hostile-compose',
  'branch-database-sql', 'branch-database-mysql', 'branch-redis', 'swift-store', 'redis-accessory-password', 'edge-lock',
  'cli-modules',
  // ansible-lint, node-up without Ansible and vault import: Ansible's tools, no node
  'ansible-tools',
  // the crawler on real Redis: their timing checks are lower bounds (delays kept), which a busy machine only lengthens
  'crawler-worker', 'crawler-api', 'crawler-archive', 'crawler-standards', 'crawler-fetch', 'crawler-deletion',
].map((name) => `test/integration/${name}.test.ts`);

export default defineConfig({
  test: {
    // Integration tests use real Docker, SSH, Redis and nginx and share one engine: their files run one at a
    // time so a 2-core machine does not thrash. Vitest 3 sizes each pool from the root config, so integration
    // files get the forks pool capped at one worker and unit files the threads pool. That pool's default is
    // one thread less than the cores (one on this 2-core machine); unit files spend much of their time waiting
    // on the processes the fake cluster's shell lines start, so two at a time on two cores is faster.
    // `isolate: false` here is what lets a threads worker run more than one file: the pool reads it from the root
    // config only (a project's `isolate` decides just whether a worker resets its modules between files). Without
    // it every unit file got a new worker that loaded depl and its libraries again (`--project unit test/unit/plan`,
    // 27 files, load ~24: 73.7 s -> 19.7 s; the whole unit project at load ~20: 1045 s -> 556 s, and no more time
    // with no file running between two files: 290 s -> 15 s). The pool then runs its projects one after the
    // other (unit, integration-local), each project's files two at a time; integration-local keeps a fresh module
    // graph per file with its own `isolate: true` below.
    poolOptions: { forks: { minForks: 1, maxForks: 1 }, threads: { minThreads: 1, maxThreads: Math.max(2, availableParallelism()), isolate: false } },
    projects: [
      {
        resolve: { alias: [crawlerSources] },
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          pool: 'threads',
          // One worker runs many files and loads depl's modules and its libraries once, not once per file (with the
          // pool's `isolate: false` above, which is what takes effect; this one keeps a worker from resetting its
          // modules between files). Safe here because no
          // unit file mocks a module, stubs a global or leaves the environment changed (the two that set
          // process.env put it back), and the fake cluster's shared pieces (its spawner child, a cache of
          // self-signed certificates by names and days) hold nothing a file can change. One thing did carry over:
          // an interrupt cleanup a file left registered (a fake depl killed while holding the lock leaves its own,
          // as the dead process would), which the terminal test then saw; the setup file below empties it.
          isolate: false,
          // ...and what depl keeps process-wide (interrupt cleanups, secrets to redact) is emptied before each file
          setupFiles: ['test/support/unit-file-setup.ts'],
          // Unit files share the threads pool (two at a time) with the cluster-free integration files, beside
          // the one cluster file at a time: CI's 45 minutes on two cores do not allow them a turn of their own.
          sequence: { groupOrder: 1 },
          // fake-cluster cases take 1-8 s on a busy 2-core machine, now two files at a time
          testTimeout: 20_000,
          // ...and so do their beforeEach hooks that set a fake cluster up (10 s, vitest's default, was hit at load 28)
          hookTimeout: 30_000,
        },
      },
      {
        resolve: { alias: [crawlerSources] },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: LOCAL_INTEGRATION_FILES,
          pool: 'forks',
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          hookTimeout: 600_000,
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
      {
        resolve: { alias: [crawlerSources] },
        test: {
          name: 'integration-local',
          include: LOCAL_INTEGRATION_FILES,
          // each file with its modules loaded afresh, as when every file had a worker of its own (the pool's
          // `isolate: false` above lets a worker run several files)
          isolate: true,
          // beside the cluster files (same group), in the threads pool: the forks pool is theirs alone
          pool: 'threads',
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
