/**
 * Retry policy for page fetches: transient failures (network errors, timeouts, 5xx, 429) are retried with
 * exponential backoff and jitter, honouring Retry-After; permanent ones (404 and other 4xx, robots.txt,
 * blocked addresses) never are.
 */
export type FetchVerdict = 'ok' | 'retry' | 'permanent';

export function verdictForStatus(status: number): FetchVerdict {
  if (status >= 200 && status < 400) return 'ok';
  if (status === 429 || status === 408 || status >= 500) return 'retry';
  return 'permanent';
}

/** Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1). `random` in [0,1) is passed in. */
export function backoffMs(attempt: number, baseMs: number, random: number, retryAfterMs?: number): number {
  const exponential = baseMs * 2 ** Math.max(0, attempt - 1);
  const jittered = exponential * (0.5 + random / 2);
  const wait = Math.max(jittered, retryAfterMs ?? 0);
  return Math.min(Math.round(wait), 10 * 60_000);
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (relative to `now`). */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
