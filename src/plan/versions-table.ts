import type { HistoryEntry } from './release-state.js';
import { formatTable } from './table.js';

/** One installed version as `depl versions` and `depl status` show it. */
export interface VersionRow {
  version: string;
  createdAt: string;
  branch: string | null;
  url: string;
  live: boolean;
  previous: boolean;
  canary: { weight: number } | null;
  services: { name: string; replicas: number; running: number | null }[];
  /** A consumers-only app (src/plan/consumers.ts): whether any of its consumers' tasks run now (only the live version's should). */
  consumers?: 'running' | 'stopped';
  /** Its release phase as the history last recorded it (depl.yaml's release:); absent when none ran. */
  release?: { at: string; exitCode: number | null; note: string };
  /** A buildinst is installing it, or was killed doing so (the next command that takes the lock removes it). */
  installing?: { command: string; by: string; at: string };
}

/** `depl versions`: one aligned row per version, tasks as running/wanted per service. */
export function formatVersions(rows: VersionRow[]): string {
  if (rows.length === 0) return 'No versions installed. Run `depl buildinst`.';
  return formatTable(['VERSION', 'CREATED', 'TASKS', 'URL', 'MARKS'], rows.map((r) => {
    const marks = [r.live ? 'live' : '', r.canary ? `canary ${r.canary.weight}%` : '', r.previous ? 'previous' : '', r.branch ? `branch ${r.branch}` : '', r.installing ? `installing (${r.installing.by})` : '', r.release ? releaseMark(r.release) : '', r.consumers !== undefined ? `consumers ${r.consumers}` : ''].filter(Boolean);
    const tasks = r.services.map((s) => `${shortService(s.name)} ${s.running ?? '?'}/${s.replicas}`);
    return [r.version, r.createdAt.slice(0, 19).replace('T', ' '), tasks.join(' '), r.url, marks.join(', ')];
  }));
}

/** `release ok` or `release failed (exit 1)`: how the version's release phase ended. */
function releaseMark(release: NonNullable<VersionRow['release']>): string {
  if (release.exitCode === 0) return 'release ok';
  return `release failed (${release.exitCode === null ? 'timed out or did not run' : `exit ${release.exitCode}`})`;
}

/** The last release phase the history records for each version (action `release`), by version label. */
export function releasesOf(history: readonly HistoryEntry[]): Map<string, NonNullable<VersionRow['release']>> {
  const found = new Map<string, NonNullable<VersionRow['release']>>();
  for (const h of history) if (h.action === 'release' && h.version !== null) found.set(h.version, { at: h.at, exitCode: h.exitCode ?? null, note: h.note ?? '' });
  return found;
}

/** `<app>-<version>-<service>` -> `<service>` (service names are DNS labels without "-" only by convention; the last part is what we show). */
function shortService(name: string): string {
  return name.slice(name.lastIndexOf('-') + 1);
}

/** Which versions' consumers run now (a consumers-only app), for `depl status`: `v3` or `v2, v3` (a handover under way). */
export function consumersRunning(rows: readonly VersionRow[]): string[] | null {
  if (!rows.some((r) => r.consumers !== undefined)) return null;
  return rows.filter((r) => r.consumers === 'running').map((r) => r.version);
}
