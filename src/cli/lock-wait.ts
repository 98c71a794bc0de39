import { parseDuration } from '../plan/duration.js';

/** `--lock-wait 5m` -> milliseconds to wait for a held cluster lock; without it, a held lock fails at once. */
export function lockWaitMs(opts: { lockWait?: string }): number {
  return opts.lockWait === undefined ? 0 : parseDuration(opts.lockWait, '--lock-wait');
}
