import { parseHttpDate } from './http-date.js';

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

/**
 * The longest wait a Retry-After is taken at: a site that asks for a week (or sends a date far in the future by
 * mistake) is waited out for a day, the caller's own caps (backoffMs, maxHostBackoffMs) apply below that.
 */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * Retry-After (RFC 9110 10.2.3) as milliseconds from `now`: delta-seconds (digits only) or an HTTP-date in any
 * of its three forms (a date in the past is 0). Anything else (`1.5`, `-1`, `soon`, two values) is no
 * Retry-After: undefined, and the caller's own backoff applies. Capped at MAX_RETRY_AFTER_MS.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  const date = parseHttpDate(text, now);
  return date === undefined ? undefined : Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS);
}
