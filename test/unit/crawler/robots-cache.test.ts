import { describe, expect, it } from 'vitest';
import { localKeepMs } from '../../../crawler/src/worker/robots-cache.js';

describe('robots.txt read from the shared cache (RFC 9309 2.4: not used for more than 24 hours)', () => {
  it('is kept in the process only for what is left of its life in Redis', () => {
    // fetched 23 h ago by another worker with the longest TTL allowed: an hour left, not another day
    expect(localKeepMs(3_600_000, 86_400)).toBe(3_600_000);
    expect(localKeepMs(1500, 3600)).toBe(1500);
  });

  it('never longer than the configured TTL, and not at all when it has just expired', () => {
    expect(localKeepMs(90_000_000, 86_400)).toBe(86_400_000);
    expect(localKeepMs(0, 3600)).toBe(0);
    expect(localKeepMs(-2, 3600)).toBe(0);
  });

  it('gets the configured TTL when the key has no expiry (not written by STORE_ROBOTS)', () => {
    expect(localKeepMs(-1, 3600)).toBe(3_600_000);
  });
});
