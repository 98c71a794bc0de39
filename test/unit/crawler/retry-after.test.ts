import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../../crawler/src/core/http-date.js';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../../crawler/src/core/retry.js';

const NOW = Date.UTC(2026, 11, 7, 10, 0, 0);
const SUNDAY_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('HTTP-date (RFC 9110 5.6.7)', () => {
  it('reads the three forms as one instant in UTC', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(SUNDAY_1994);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(SUNDAY_1994);
    // asctime has no zone: it is UTC, whatever the machine's time zone (Date.parse reads it as local time)
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW)).toBe(SUNDAY_1994);
    expect(parseHttpDate('Sun Nov 16 08:49:37 1994', NOW)).toBe(Date.UTC(1994, 10, 16, 8, 49, 37));
  });

  it('places an RFC 850 two-digit year no more than 50 years ahead', () => {
    expect(parseHttpDate('Monday, 07-Dec-26 10:00:30 GMT', NOW)).toBe(NOW + 30_000);
    expect(parseHttpDate('Thursday, 01-Jan-70 00:00:00 GMT', NOW)).toBe(Date.UTC(2070, 0, 1));
    expect(parseHttpDate('Friday, 01-Jan-99 00:00:00 GMT', NOW)).toBe(Date.UTC(1999, 0, 1));
  });

  it('refuses what is no HTTP-date', () => {
    for (const text of ['2026-12-07T10:00:00Z', 'Sun, 06 Nov 1994 08:49:37 PST', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 25:49:37 GMT', 'tomorrow', '']) {
      expect(parseHttpDate(text, NOW), text).toBeUndefined();
    }
  });
});

describe('Retry-After (RFC 9110 10.2.3)', () => {
  it('takes delta-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });

  it('takes an HTTP-date in each of its three forms, relative to now', () => {
    expect(parseRetryAfter('Mon, 07 Dec 2026 10:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Monday, 07-Dec-26 10:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Mon Dec  7 10:01:00 2026', NOW)).toBe(60_000);
    // a date already past asks for no wait
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });

  it('ignores invalid values rather than guessing', () => {
    for (const value of ['1.5', '-1', '1e3', '0x10', '+5', '5 s', 'soon', '', '120, 60', '2026-12-07T10:01:00Z']) {
      expect(parseRetryAfter(value, NOW), value).toBeUndefined();
    }
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });

  it('caps an absurd delay at a day', () => {
    expect(parseRetryAfter('99999999999999999999', NOW)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', NOW)).toBe(MAX_RETRY_AFTER_MS);
    expect(MAX_RETRY_AFTER_MS).toBe(86_400_000);
  });
});
