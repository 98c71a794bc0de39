import { describe, expect, it } from 'vitest';
import { computeStats, formatStats, parseAccessLine, percentile } from '../../../src/plan/stats.js';

const line = (at: number, version: string, status: number, seconds: number, upstream = '0.001') =>
  JSON.stringify({ msec: at / 1000, host: `${version}.shop.test`, version, status, request_time: seconds, upstream_time: upstream, upstream_status: String(status), upstream_addr: '10.0.0.5:8000', method: 'GET', uri: '/', bytes: 10, request_id: 'x' });

describe('access-log stats', () => {
  it('parses depl_json lines and ignores others', () => {
    expect(parseAccessLine(line(1_700_000_000_123, 'v1', 200, 0.012))).toMatchObject({ atMs: 1_700_000_000_123, version: 'v1', status: 200, requestMs: 12 });
    expect(parseAccessLine('127.0.0.1 - - [22/Nov/2026] "GET /" 200')).toBeNull();
    expect(parseAccessLine('{"msec":"x"}')).toBeNull();
    expect(parseAccessLine('{broken')).toBeNull();
  });

  it('counts requests, 5xx and latency percentiles per version inside the window', () => {
    const lines = [
      ...Array.from({ length: 100 }, (_, i) => line(10_000 + i, 'v1', 200, (i + 1) / 1000)),
      ...Array.from({ length: 10 }, (_, i) => line(10_000 + i, 'v2', i < 2 ? 502 : 200, 0.5, i === 0 ? '0.001, 0.002' : '0.5')),
      line(10_000, '', 404, 0),
      line(5_000, 'v1', 500, 9),
      'not json',
    ];
    const report = computeStats(lines, { sinceMs: 9_000, untilMs: 20_000 });
    expect(report.unparsed).toBe(1);
    expect(report.unrouted).toBe(1);
    expect(report.versions).toEqual([
      { version: 'v1', requests: 100, errors: 0, errorRate: 0, p50Ms: 50, p95Ms: 95, p99Ms: 99, retried: 0 },
      { version: 'v2', requests: 10, errors: 2, errorRate: 0.2, p50Ms: 500, p95Ms: 500, p99Ms: 500, retried: 1 },
    ]);
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 95)).toBe(0);
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
  });

  it('prints a table with live and canary marked', () => {
    const report = computeStats([line(1_000, 'v1', 200, 0.01), line(1_000, 'v2', 500, 0.02)], { sinceMs: 0, untilMs: 2_000 });
    expect(formatStats(report, { v1: 'live', v2: 'canary 10%' }).split('\n')).toEqual([
      'version          requests  5xx  5xx rate  p50   p95   p99',
      'v1 (live)        1         0    0.00%     10ms  10ms  10ms',
      'v2 (canary 10%)  1         1    100.00%   20ms  20ms  20ms',
    ]);
    expect(formatStats(computeStats([], { sinceMs: 0, untilMs: 1 }))).toBe('No requests in this window.');
  });
});
