import { OperationError } from '../../errors.js';
import { renderRoutingTable, type EdgeReport } from '../../plan/edge-routing.js';
import { configGeneration, renderNginxConfig, type EdgeSettings } from '../../plan/nginx.js';
import type { Routing } from '../../plan/release-state.js';
import { quote, shellLine } from '../../plan/shell.js';
import { pausePoint } from '../../util/pause-point.js';
import { pollUntil } from '../../util/poll.js';
import { edgeReport, type EdgeSite } from './site.js';

/**
 * Puts what the edge serves in place, in two layers (see src/plan/edge-lua.ts for the design):
 * - the routing table (versions, live, canary): written atomically to the edge's directory, the previous one
 *   kept beside it; the edge reads it without a reload and reports its generation, which is how depl knows the
 *   change is in effect. If the edge does not confirm it in time, the previous table goes back before the
 *   error is returned, so the edge never later picks up a change depl reported as failed;
 * - the nginx configuration (settings only): written beside the live file, checked with `nginx -t`, renamed
 *   over the live file, then a graceful reload (SIGHUP) — only when the edge reports a different configuration
 *   than the one depl renders. A configuration nginx rejects never replaces the live one; a reload that does
 *   not take puts the previous file back (and reloads it) before the error is returned.
 */
export interface AppliedEdge {
  /** The routing generation the edge now serves. */
  generation: string;
  /** Whether the nginx configuration had to change (and nginx was reloaded gracefully). */
  reloaded: boolean;
  /** Writing the routing table on the edge's node. */
  writeMs: number;
  /** From the routing table in place to the edge reporting it serves it. */
  confirmMs: number;
  /** Writing a candidate configuration and `nginx -t` on it (0 without a reload). */
  checkMs: number;
  /** From the checked file replacing the live one to the edge answering with it (0 without a reload). */
  reloadMs: number;
}

const CONFIRM_TIMEOUT_MS = 15_000;

export function liveConfigPath(site: Pick<EdgeSite, 'dir'>): string {
  return `${site.dir}/nginx.conf`;
}

export function routingFile(site: Pick<EdgeSite, 'render'>): string {
  return site.render.paths.routing;
}

/** The routing table the edge reads, or null before the first. */
export async function readRoutingFile(site: EdgeSite): Promise<string | null> {
  return site.remote.readFile(routingFile(site));
}

/**
 * Makes the edge serve `routing`: the nginx settings reloaded first only if the edge runs other ones, then the
 * routing table in place and confirmed by the edge (no reload). A stale `runningConfig` costs at most a
 * needless reload: the settings are rewritten whenever it differs from what depl renders.
 */
export async function applyEdgeConfig(site: EdgeSite, routing: Routing, options: { runningConfig?: string } = {}): Promise<AppliedEdge> {
  const table = renderRoutingTable(routing);
  const settings: EdgeSettings = { app: routing.app };
  const applied: AppliedEdge = { generation: table.generation, reloaded: false, writeMs: 0, confirmMs: 0, checkMs: 0, reloadMs: 0 };
  const file = routingFile(site);
  const writeRouting = async () => {
    const started = performance.now();
    // One round trip: keep the previous table (the way back), write the new one beside it and rename it in.
    await site.remote.shell(`{ [ ! -f ${quote(file)} ] || cp -p ${quote(file)} ${quote(`${file}.previous`)}; } && cat > ${quote(`${file}.next`)} && mv -f ${quote(`${file}.next`)} ${quote(file)}`, { stdin: table.text });
    applied.writeMs = performance.now() - started;
  };
  // Settings first, when they changed: a configuration nginx rejects stops everything before the routing
  // changes; one it accepts loads the new routing in its init (an edge coming from a configuration without
  // the routing table, or from older routing code, serves the right versions from its first new worker).
  // `runningConfig`: what the caller's own probe of the edge reported, under the lock (saves asking again)
  const running = options.runningConfig !== undefined ? { config: options.runningConfig } : await edgeReport(site).catch(() => null);
  if (running?.config !== configGeneration(settings, site.render)) {
    Object.assign(applied, await reloadEdgeConfig(site, settings, writeRouting), { reloaded: true });
  } else {
    await writeRouting();
  }
  const written = performance.now();
  await pausePoint('after-config-written');
  // Log rotation goes beside the confirmation, off the critical path.
  const rotated = rotateAccessLog(site).catch(() => undefined);
  try {
    await waitForEdge(site, (r) => r.routing === table.generation, `the new routing ${table.generation}`);
  } catch (error) {
    await rotated;
    await site.remote.shell(`[ ! -f ${quote(`${file}.previous`)} ] || mv -f ${quote(`${file}.previous`)} ${quote(file)}`, { check: false }).catch(() => undefined);
    throw error;
  }
  applied.confirmMs = performance.now() - written;
  await rotated;
  await pausePoint('after-reload');
  return applied;
}

/**
 * Render, check, swap, reload: for changes nginx cannot take live. Resolves once the edge answers with the new
 * configuration and its old workers accept nothing more; puts the previous file back if it does not.
 * `afterCheck` runs once nginx accepted the candidate, before it replaces the live file.
 */
export async function reloadEdgeConfig(site: EdgeSite, settings: EdgeSettings, afterCheck?: () => Promise<void>): Promise<{ checkMs: number; reloadMs: number }> {
  const text = renderNginxConfig(settings, site.render);
  const generation = configGeneration(settings, site.render);
  const live = liveConfigPath(site);
  const candidate = `${site.dir}/nginx.conf.next`;
  const previous = `${site.dir}/nginx.conf.previous`;
  const started = performance.now();
  await site.remote.writeFileAtomic(candidate, text);
  const check = await site.remote.exec(site.nginx(['-t', '-q', '-e', 'stderr', '-c', candidate]), { check: false, timeoutMs: 30_000 });
  if (check.code !== 0) {
    await site.remote.exec(['mv', '-f', candidate, `${site.dir}/nginx.conf.rejected`], { check: false });
    throw new OperationError(
      `nginx rejected the new edge configuration; the running one is unchanged:\n${(check.stderr || check.stdout).trim()}`,
      `The rejected file is kept at ${site.remote.name}:${site.dir}/nginx.conf.rejected.`,
      'EDGE_CONFIG_REJECTED',
    );
  }
  const checkMs = performance.now() - started;
  await afterCheck?.();
  const oldWorkers = await acceptingWorkers(site);
  await site.remote.shell(`{ [ ! -f ${quote(live)} ] || cp -p ${quote(live)} ${quote(previous)}; } && mv -f ${quote(candidate)} ${quote(live)} && ${shellLine(site.reload)}`);
  const swappedAt = performance.now();
  try {
    await waitForEdge(site, (r) => r.config === generation, `the new configuration ${generation}`, async () => {
      if (oldWorkers === null) return true;
      return [...(await acceptingWorkers(site) ?? [])].every((pid) => !oldWorkers.has(pid));
    });
  } catch (error) {
    const restore = `[ -f ${quote(previous)} ] && cp -p ${quote(previous)} ${quote(`${live}.restore`)} && mv -f ${quote(`${live}.restore`)} ${quote(live)} && ${shellLine(site.reload)}`;
    await site.remote.shell(restore, { check: false, timeoutMs: 30_000 }).catch(() => undefined);
    throw error;
  }
  return { checkMs, reloadMs: performance.now() - swappedAt };
}

/**
 * Asks the edge (which re-reads its routing file when asked) until its report satisfies `done` (and `settled`,
 * for a reload: nginx's old workers keep accepting for ~100 ms after the new ones start).
 */
async function waitForEdge(site: EdgeSite, done: (report: EdgeReport) => boolean, what: string, settled?: () => Promise<boolean>): Promise<EdgeReport> {
  const timeoutMs = site.reloadTimeoutMs ?? CONFIRM_TIMEOUT_MS;
  let last = 'no answer';
  return pollUntil(async () => {
    try {
      const report = await edgeReport(site);
      if (report.status === 200 && done(report) && (settled === undefined || (await settled()))) return report;
      last = `status ${report.status}, configuration ${report.config || '(none)'}, routing ${report.routing ?? '(none)'}`;
    } catch (error) {
      last = (error as Error).message;
    }
    return undefined;
  }, {
    timeoutMs,
    intervalMs: 5,
    onTimeout: async () => {
      const errors = await site.remote.shell(`tail -n 5 ${quote(`${site.dir}/logs/error.log`)} 2>/dev/null || true`, { check: false }).catch(() => ({ stdout: '' }));
      throw new OperationError(
        `the edge at ${site.url} did not start serving ${what} within ${timeoutMs / 1000}s (${last}); the previous one was put back`,
        `nginx's error log ends with:\n${errors.stdout.trim() || '(empty)'}`,
        'EDGE_APPLY_TIMEOUT',
      );
    },
  });
}

const DEFAULT_ROTATE_BYTES = 256 * 1024 * 1024;

/** Keeps the access log bounded: moved aside (replacing the older one) and reopened by nginx. */
export async function rotateAccessLog(site: EdgeSite): Promise<void> {
  if (site.reopenLogs === undefined) return;
  const file = quote(`${site.dir}/logs/access.log`);
  const limit = site.rotateLogBytes ?? DEFAULT_ROTATE_BYTES;
  await site.remote.shell(`[ -f ${file} ] && [ "$(wc -c < ${file})" -gt ${limit} ] && mv -f ${file} ${file}.1 && ${shellLine(site.reopenLogs)} || true`, { check: false });
}

/** Pids of nginx workers that still accept connections; null when the site cannot list processes. */
async function acceptingWorkers(site: EdgeSite): Promise<Set<string> | null> {
  if (site.processes === undefined) return null;
  const listing = await site.remote.exec(site.processes, { check: false });
  if (listing.code !== 0) return null;
  const pids = new Set<string>();
  for (const line of listing.stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (match && match[2]!.includes('nginx: worker process') && !match[2]!.includes('shutting down')) pids.add(match[1]!);
  }
  return pids;
}
