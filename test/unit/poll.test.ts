import { describe, expect, it } from 'vitest';
import { pollUntil } from '../../src/util/poll.js';

/** A fake clock: sleeping advances it, so the tests run instantly and see every pause. */
function fakeClock() {
  let t = 1_000;
  const pauses: number[] = [];
  return {
    pauses,
    now: () => t,
    sleep: async (ms: number) => { pauses.push(ms); t += ms; },
    advance: (ms: number) => { t += ms; },
  };
}

describe('pollUntil', () => {
  it('returns the first value the check gives, pausing the interval between checks', async () => {
    const clock = fakeClock();
    const value = await pollUntil(async (attempt) => (attempt === 3 ? `ready after ${attempt}` : undefined), {
      timeoutMs: 10_000, intervalMs: 500, onTimeout: () => 'timed out', now: clock.now, sleep: clock.sleep,
    });
    expect(value).toBe('ready after 3');
    expect(clock.pauses).toEqual([500, 500]);
  });

  it('backs off up to the maximum and makes its last check at the deadline', async () => {
    const clock = fakeClock();
    const seen: number[] = [];
    const result = await pollUntil(async () => { seen.push(clock.now()); return undefined; }, {
      timeoutMs: 5_000, intervalMs: 250, maxIntervalMs: 2_000, onTimeout: (attempts) => `gave up after ${attempts}`, now: clock.now, sleep: clock.sleep,
    });
    expect(clock.pauses).toEqual([250, 500, 1_000, 2_000, 1_250]);
    expect(seen.at(-1)).toBe(6_000);
    expect(result).toBe('gave up after 6');
  });

  it('with no time to wait, checks exactly once', async () => {
    let checks = 0;
    await expect(pollUntil(async () => { checks += 1; return undefined; }, {
      timeoutMs: 0, intervalMs: 100, onTimeout: () => { throw new Error('held'); },
    })).rejects.toThrow('held');
    expect(checks).toBe(1);
  });

  it('stops at once when the check throws, or when aborted', async () => {
    await expect(pollUntil(async () => { throw new Error('host key changed'); }, { timeoutMs: 60_000, intervalMs: 10, onTimeout: () => 'x' })).rejects.toThrow('host key changed');
    const controller = new AbortController();
    const waiting = pollUntil(async () => undefined, { timeoutMs: 60_000, intervalMs: 60_000, onTimeout: () => 'x', signal: controller.signal });
    controller.abort(new Error('interrupted'));
    await expect(waiting).rejects.toThrow('interrupted');
  });
});
