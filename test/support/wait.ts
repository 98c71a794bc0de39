import { pollUntil } from '../../src/util/poll.js';

/**
 * Waits for a condition of a test (a value, or true) by polling `check`, or fails naming what never happened.
 * An exception from `check` ends the wait at once: a check that may fail on the way catches it itself.
 */
export function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000, intervalMs = 250): Promise<T> {
  return pollUntil(check, { timeoutMs, intervalMs, onTimeout: () => { throw new Error(`timed out waiting for ${what}`); } });
}
