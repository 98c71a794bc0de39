/**
 * Per-version figures from the edge's JSON access log (the `depl_json` format in plan/nginx.ts): what
 * `depl stats` prints and what the canary analysis decides on. Time is passed in; nothing here reads a clock.
 */
export interface AccessRecord {
  /** When the request ended, epoch milliseconds. */
  atMs: number;
  host: string;
  /** The version that served it; empty for the default server (unknown host). */
  version: string;
  status: number;
  /** Whole request time at the edge, milliseconds. */
  requestMs: number;
  /** Time(s) spent waiting for upstreams as nginx wrote them: `0.004`, `0.002, 0.003` after a retry, `-`. */
  upstreamTime: string;
  method: string;
  uri: string;
}

export interface VersionStats {
  version: string;
  requests: number;
  /** Responses with a 5xx status. */
  errors: number;
  /** errors / requests, 0..1. */
  errorRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Requests nginx retried on another task (more than one upstream time). */
  retried: number;
}

export interface StatsReport {
  sinceMs: number;
  untilMs: number;
  versions: VersionStats[];
  /** Requests for hosts no version serves (the default server's 404s). */
  unrouted: number;
  /** Lines that were not depl's JSON format. */
  unparsed: number;
}

export function parseAccessLine(line: string): AccessRecord | null {
  if (!line.startsWith('{')) return null;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  const msec = raw.msec;
  const status = raw.status;
  const requestTime = raw.request_time;
  if (typeof msec !== 'number' || typeof status !== 'number' || typeof requestTime !== 'number') return null;
  return {
    atMs: Math.round(msec * 1000),
    host: String(raw.host ?? ''),
    version: String(raw.version ?? ''),
    status,
    requestMs: Math.round(requestTime * 1000),
    upstreamTime: String(raw.upstream_time ?? ''),
    method: String(raw.method ?? ''),
    uri: String(raw.uri ?? ''),
  };
}

/** Figures per version for requests that ended in [sinceMs, untilMs], versions in first-seen order. */
export function computeStats(lines: readonly string[], window: { sinceMs: number; untilMs: number }): StatsReport {
  const byVersion = new Map<string, AccessRecord[]>();
  let unparsed = 0;
  let unrouted = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    const record = parseAccessLine(line);
    if (record === null) {
      unparsed++;
      continue;
    }
    if (record.atMs < window.sinceMs || record.atMs > window.untilMs) continue;
    if (record.version === '') {
      unrouted++;
      continue;
    }
    const list = byVersion.get(record.version) ?? [];
    list.push(record);
    byVersion.set(record.version, list);
  }
  const versions = [...byVersion.entries()].map(([version, records]) => summarise(version, records));
  return { sinceMs: window.sinceMs, untilMs: window.untilMs, versions, unrouted, unparsed };
}

export function summarise(version: string, records: readonly AccessRecord[]): VersionStats {
  const latencies = records.map((r) => r.requestMs).sort((a, b) => a - b);
  const errors = records.filter((r) => r.status >= 500).length;
  return {
    version,
    requests: records.length,
    errors,
    errorRate: records.length === 0 ? 0 : errors / records.length,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    p99Ms: percentile(latencies, 99),
    retried: records.filter((r) => r.upstreamTime.includes(',')).length,
  };
}

/** Nearest-rank percentile of ascending values; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

/** A table for humans: one row per version, live/canary marked by the caller's labels. */
export function formatStats(report: StatsReport, marks: Record<string, string> = {}): string {
  if (report.versions.length === 0) return 'No requests in this window.';
  const header = ['version', 'requests', '5xx', '5xx rate', 'p50', 'p95', 'p99'];
  const rows = report.versions.map((v) => [
    marks[v.version] ? `${v.version} (${marks[v.version]})` : v.version,
    String(v.requests),
    String(v.errors),
    `${(v.errorRate * 100).toFixed(2)}%`,
    `${v.p50Ms}ms`,
    `${v.p95Ms}ms`,
    `${v.p99Ms}ms`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
