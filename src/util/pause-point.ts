/**
 * Failpoints for the crash tests (test/integration/cluster-lock.test.ts): with DEPL_PAUSE_AT=<name>, depl
 * stops at that step of a change, says so on stderr and waits there until it is killed. Unset, they cost a
 * comparison. Names: after-lock, after-intent, after-config-written, after-reload, before-record.
 */
export async function pausePoint(name: string): Promise<void> {
  if (process.env.DEPL_PAUSE_AT !== name) return;
  process.stderr.write(`depl: paused at ${name} (DEPL_PAUSE_AT)\n`);
  // A live timer keeps the process up (an unresolved promise alone would let Node exit).
  await new Promise<never>(() => setInterval(() => undefined, 60_000));
}
