#!/usr/bin/env node
/**
 * `npm test` after the build: typecheck, lint and `vitest run`, the two checks beside the tests instead of before
 * them. The tests' serial lane of cluster files is the run's long path (about 36 of CI's 38 minutes) and needs
 * nothing from the checks, which cost about 70 s of CPU one after the other: run first, they held every test back
 * by a minute. Beside the tests they run at the lowest CPU priority, so they take only the time the tests leave
 * idle, and still fail the run. Each check's output is printed when it ends; the exit code is vitest's, or 1 when
 * only a check failed. Arguments go to vitest, as `npm test -- <args>` did before.
 */
import { setPriority } from 'node:os';
import { execa } from 'execa';

const LOWEST_PRIORITY = 19;
/** What is still running, to pass Ctrl-C or a CI's SIGTERM on to. */
const running = new Set();
const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

/** typecheck, then lint (one at a time: each holds a program of the whole tree in memory), both at nice 19. */
async function checks() {
  const failed = [];
  for (const script of ['typecheck', 'lint']) {
    const run = execa('npm', ['run', '--silent', script], { all: true, reject: false });
    // set before npm starts tsc or eslint (it loads for a few hundred ms first), which inherit it
    setPriority(run.pid, LOWEST_PRIORITY);
    running.add(run);
    const result = await run;
    running.delete(run);
    if (result.exitCode === 0) {
      process.stderr.write(`npm test: ${script} passed (${seconds()} after the start, beside the tests)\n`);
    } else {
      failed.push(script);
      process.stderr.write(`\nnpm test: ${script} FAILED (exit ${result.exitCode ?? result.signal}); the tests go on, and the run fails:\n${result.all}\n\n`);
    }
  }
  return failed;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of running) child.kill(signal);
  });
}

const tests = execa('vitest', ['run', ...process.argv.slice(2)], { stdio: 'inherit', preferLocal: true, reject: false });
running.add(tests);
const [failedChecks, testRun] = await Promise.all([checks(), tests]);
const failed = [...failedChecks, ...(testRun.exitCode === 0 ? [] : ['vitest'])];
process.stderr.write(failed.length === 0
  ? `npm test: typecheck, lint and vitest passed (${seconds()})\n`
  : `npm test: FAILED: ${failed.join(', ')} (${seconds()})\n`);
process.exitCode = testRun.exitCode !== 0 ? (testRun.exitCode ?? 1) : failed.length > 0 ? 1 : 0;
