/**
 * What must still happen when depl is interrupted (Ctrl-C, SIGTERM): giving back the cluster lock, removing a
 * `depl run` job.
 * Adapters register here while they hold something; src/cli/main.ts, the only place that handles signals
 * and exits, runs the registered work before it exits.
 */
type Cleanup = () => Promise<void>;

const cleanups = new Map<Cleanup, string>();

/** Registers `cleanup` (`what` says what it does, for the message); call the returned function once it is no longer needed. */
export function onInterrupt(cleanup: Cleanup, what = 'releasing the cluster lock'): () => void {
  cleanups.set(cleanup, what);
  return () => {
    cleanups.delete(cleanup);
  };
}

/**
 * Forgets every registered cleanup without running it. For tests: a unit file that simulates a killed depl
 * leaves its lock's cleanup registered (the process it stands for is gone), and the next file in the same
 * test worker must start from none, as a new process does.
 */
export function forgetInterruptCleanups(): void {
  cleanups.clear();
}

/** What the waiting cleanups do, in the order they will run: main.ts says what it is doing only when there is something to do. */
export function pendingInterruptCleanups(): string[] {
  return [...new Set([...cleanups.values()].reverse())];
}

/** Runs every registered cleanup, newest first, all bounded by `timeoutMs`; failures are reported, not thrown. */
export async function runInterruptCleanups(timeoutMs: number, report: (message: string) => void): Promise<void> {
  const work = [...cleanups.keys()].reverse();
  cleanups.clear();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      report(`cleanup did not finish within ${timeoutMs / 1000} s; exiting anyway`);
      resolve();
    }, timeoutMs);
  });
  const run = (async () => {
    for (const cleanup of work) await cleanup().catch((error: Error) => report(`cleanup failed: ${error.message}`));
  })();
  await Promise.race([run, timeout]);
  clearTimeout(timer);
}
