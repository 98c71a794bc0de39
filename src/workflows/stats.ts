import { readSiteLogs } from '../apply/edge/logs.js';
import { computeStats, type StatsReport } from '../plan/stats.js';
import type { ClusterPort } from './cluster-port.js';
import { readRelease, type ReleaseView } from './release.js';

export interface EdgeStats extends StatsReport {
  live: string | null;
  canary: { version: string; weight: number } | null;
  /** The install intent's file is not one (the figures and the release state are shown anyway). */
  intentUnreadable?: ReleaseView['intentUnreadable'];
}

/** Per-version figures of the edge's requests in the last `windowMs`, with live and canary named. */
export async function edgeStats(control: ClusterPort, windowMs: number): Promise<EdgeStats> {
  const untilMs = Date.now();
  const sinceMs = untilMs - windowMs;
  const [lines, { state, intentUnreadable }] = await Promise.all([readSiteLogs(control.site, sinceMs), readRelease(control)]);
  const report = computeStats(lines, { sinceMs, untilMs });
  // Live first, then the canary beside it, then the rest.
  const rank = (v: string) => (v === state.live ? 0 : v === state.canary?.version ? 1 : 2);
  report.versions.sort((a, b) => rank(a.version) - rank(b.version));
  return { ...report, live: state.live, canary: state.canary, ...(intentUnreadable !== undefined ? { intentUnreadable } : {}) };
}
