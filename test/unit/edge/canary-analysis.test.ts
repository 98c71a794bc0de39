import { describe, expect, it } from 'vitest';
import { decideCanaryStep, parseSteps } from '../../../src/plan/canary-analysis.js';
import { parseDuration, parsePercent } from '../../../src/plan/duration.js';
import type { StatsReport, VersionStats } from '../../../src/plan/stats.js';

const figures = (version: string, requests: number, errors: number, p95Ms: number): VersionStats =>
  ({ version, requests, errors, errorRate: requests ? errors / requests : 0, p50Ms: p95Ms / 2, p95Ms, p99Ms: p95Ms, retried: 0 });
const report = (...versions: VersionStats[]): StatsReport => ({ sinceMs: 0, untilMs: 60_000, versions, unrouted: 0, unparsed: 0 });
const limits = { maxErrorRate: 0.01, maxP95Ms: 500, minRequests: 20 };

describe('canary step decisions', () => {
  it('continues while the canary holds, quoting its figures beside live', () => {
    const decision = decideCanaryStep(report(figures('v1', 900, 1, 120), figures('v2', 100, 0, 130)), 'v2', 'v1', limits);
    expect(decision.action).toBe('continue');
    expect(decision.reason).toBe('canary v2: 100 requests, 0% 5xx, p95 130ms, within limits (live v1: 0.11% 5xx, p95 120ms)');
  });

  it('aborts on a 5xx rate above the limit', () => {
    const decision = decideCanaryStep(report(figures('v1', 900, 0, 120), figures('v2', 100, 5, 130)), 'v2', 'v1', limits);
    expect(decision).toMatchObject({ action: 'abort', reason: 'canary v2 5xx rate 5% (5 of 100) is above the limit 1% (live v1: 0% 5xx, p95 120ms)' });
    expect(decision.canary?.errors).toBe(5);
  });

  it('aborts on a p95 above the limit', () => {
    const decision = decideCanaryStep(report(figures('v2', 100, 0, 800)), 'v2', 'v1', limits);
    expect(decision).toMatchObject({ action: 'abort', reason: 'canary v2 p95 latency 800ms is above the limit 500ms' });
  });

  it('does not pass a canary that too few requests reached', () => {
    expect(decideCanaryStep(report(figures('v2', 3, 0, 10)), 'v2', 'v1', limits).reason).toBe('only 3 requests reached canary v2; at least 20 are needed to judge it');
    expect(decideCanaryStep(report(), 'v2', 'v1', limits).action).toBe('abort');
  });

  it('reads steps, durations and percentages, refusing nonsense with a hint', () => {
    expect(parseSteps('10,25,50,100')).toEqual([10, 25, 50, 100]);
    expect(parseSteps('5%, 100%')).toEqual([5, 100]);
    expect(() => parseSteps('50,25')).toThrow(/must rise/);
    expect(() => parseSteps('0,10')).toThrow(/from 1 to 100/);
    expect(() => parseSteps('')).toThrow(/comma-separated/);
    expect(parseDuration('1m', '--interval')).toBe(60_000);
    expect(parseDuration('500ms', '--max-p95')).toBe(500);
    expect(parseDuration('10m', '--since')).toBe(600_000);
    expect(() => parseDuration('ten', '--since')).toThrow('--since "ten" is not a duration');
    expect(parsePercent('1%', '--max-error-rate')).toBe(0.01);
    expect(parsePercent('0.5', '--max-error-rate')).toBe(0.005);
    expect(() => parsePercent('150%', '--max-error-rate')).toThrow(/0 to 100/);
  });
});
