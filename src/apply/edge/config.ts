import { OperationError, type ErrorCode } from '../../errors.js';
import { renderRoutingTable, type EdgeReport } from '../../plan/edge-routing.js';
import { appRoutingPath, configGeneration, edgeSettingsFor, renderNginxConfig, type EdgeSettings } from '../../plan/nginx.js';
import type { Routing } from '../../plan/release-state.js';
import { quote, shellLine } from '../../plan/shell.js';
import { keepPreviousLine, stdinFilesLine, type StdinFile } from '../../plan/stdin-files.js';
import { pausePoint } from '../../util/pause-point.js';
import { pollUntil } from '../../util/poll.js';
import { edgeReport, edgeReportFrom, PROBE_TIMEOUT_S, type EdgeSite } from './site.js';

/**
 * Puts what the edge serves in place, in two layers (see src/plan/edge-lua.ts for the design):
 * - the routing table (versions, live, canary): written atomically to the edge's directory, the previous one
 *   kept beside it; the edge reads it without a reload and reports its generation, which is how depl knows the
 *   change is in effect. If the edge does not confirm it in time, or the settings reload that came with it
 *   does not take, the previous table goes back and the edge must report it again before the error says so
 *   (EdgeApplyError.outcome), so the edge never later picks up a change depl reported as failed;
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

/** Where the edge's files are changed: `site.files` when nginx runs behind a narrower door than its files (the renewal task). */
function filesOf(site: Pick<EdgeSite, 'remote' | 'files'>): EdgeSite['remote'] {
  return site.files ?? site.remote;
}

export function liveConfigPath(site: Pick<EdgeSite, 'dir'>): string {
  return `${site.dir}/nginx.conf`;
}

/** App `app`'s routing table on this edge (the edge's one table, or the app's own on the cluster's edge). */
export function routingFile(site: Pick<EdgeSite, 'render'>, app: string): string {
  return appRoutingPath(site.render.paths, app);
}

/** The routing table the edge reads, or null before the first. */
export async function readRoutingFile(site: EdgeSite, app: string): Promise<string | null> {
  return filesOf(site).readFile(routingFile(site, app));
}

/**
 * Makes the edge serve `routing`: the nginx settings reloaded first only if the edge runs other ones, then the
 * routing table in place and confirmed by the edge (no reload). A stale `runningConfig` costs at most a
 * needless reload: the settings are rewritten whenever it differs from what depl renders.
 */
export interface EdgeApplyOptions {
  /** The nginx settings generation the caller's own probe of the edge reported (saves asking again). */
  runningConfig?: string;
  /**
   * A file written in the same command just before the routing table, where the edge's files are (the release
   * state's intent, src/workflows/release.ts): one round trip for both, the intent still first.
   */
  before?: StdinFile;
}

export async function applyEdgeConfig(site: EdgeSite, routing: Routing, options: EdgeApplyOptions = {}): Promise<AppliedEdge> {
  const table = renderRoutingTable(routing);
  const settings: EdgeSettings = edgeSettingsFor(site.render, routing.app);
  const applied: AppliedEdge = { generation: table.generation, reloaded: false, writeMs: 0, confirmMs: 0, checkMs: 0, reloadMs: 0 };
  const file = routingFile(site, routing.app);
  let routingWritten = false;
  // Settings first, when they changed: a configuration nginx rejects stops everything before the routing
  // changes; one it accepts loads the new routing in its init (an edge coming from a configuration without
  // the routing table, or from older routing code, serves the right versions from its first new worker).
  const running = options.runningConfig !== undefined ? { config: options.runningConfig } : await edgeReport(site).catch(() => null);
  const needsReload = running?.config !== configGeneration(settings, site.render);
  // Without a reload, where nginx runs on the node that holds its files, the command that writes the table also
  // asks the probe (which makes the edge re-read it) and looks at the access log's size: one round trip from the
  // intent to the edge's first answer. With a reload the edge is asked once the new settings are in.
  const together = !needsReload && site.files === undefined && site.probe !== undefined ? { probe: site.probe, rotate: site.reopenLogs !== undefined } : undefined;
  let firstReport: (EdgeReport & { status: number }) | undefined;
  let logRotated = false;
  const writeRouting = async () => {
    const started = performance.now();
    // keep the previous table (the way back; none when there was none, so a stale copy from an earlier run is
    // never mistaken for it), write the new one beside it and rename it in
    const { line, stdin } = stdinFilesLine([...(options.before !== undefined ? [options.before] : []), { file, content: table.text, mode: 0o644, keepPrevious: true }]);
    if (together === undefined) {
      await filesOf(site).shell(line, { stdin });
    } else {
      // the probe's own failure is not the write's: its answer (or none) is looked at below
      const asked = `${line} && { timeout ${PROBE_TIMEOUT_S} ${shellLine(together.probe)} || true; }${together.rotate ? `; ${rotateLogLine(site)}` : ''}`;
      const result = await site.remote.shell(asked, { stdin });
      firstReport = edgeReportFrom(result.stdout);
      logRotated = result.stderr.includes(LOG_ROTATED);
    }
    routingWritten = true;
    applied.writeMs = performance.now() - started;
  };
  let written = 0;
  // Log rotation goes beside the confirmation, off the critical path.
  let rotated: Promise<void> = Promise.resolve();
  try {
    if (needsReload) {
      Object.assign(applied, await reloadEdgeConfig(site, settings, writeRouting), { reloaded: true });
    } else {
      await writeRouting();
    }
    written = performance.now();
    await pausePoint('after-config-written');
    rotated = (together?.rotate === true ? (logRotated ? reopenLogs(site) : Promise.resolve()) : rotateAccessLog(site)).catch(() => undefined);
    const confirmed = (r: EdgeReport & { status: number }) => r.status === 200 && r.routing === table.generation;
    if (firstReport === undefined || !confirmed(firstReport)) await waitForEdge(site, (r) => r.routing === table.generation, `the new routing ${table.generation}`);
  } catch (error) {
    await rotated;
    // nginx rejected the settings: nothing was written, the edge runs what it ran
    if (!routingWritten || !(error instanceof OperationError)) throw error;
    throw await putPreviousRoutingBack(site, routing.app, error, needsReload ? running?.config : undefined);
  }
  applied.confirmMs = performance.now() - written;
  await rotated;
  await pausePoint('after-reload');
  return applied;
}

/** What an edge change that failed left behind, so the caller records what is really served. */
export type EdgeFailureOutcome =
  /** The previous routing table (and settings) are back in the files and the edge confirms it serves them. */
  | 'restored'
  /** The previous files are back but the edge did not confirm serving them (it may still serve the new routing). */
  | 'files-restored'
  /** Putting the previous files back failed: the new routing may be on disk and served. */
  | 'unknown';

export class EdgeApplyError extends OperationError {
  constructor(message: string, hint: string | undefined, code: ErrorCode, readonly outcome: EdgeFailureOutcome) {
    super(message, hint, code);
  }
}


/**
 * After a change the edge did not confirm (or whose reload did not take, which already put the previous
 * settings back): the previous routing table goes back over the new one, and the edge (which re-reads its
 * file when asked, and polls it) must then report the previous generation, and the previous settings when
 * they were changed. Only then does the error say the previous one is served: depl records what it reports.
 */
async function putPreviousRoutingBack(site: EdgeSite, app: string, error: OperationError, previousConfig: string | undefined): Promise<EdgeApplyError> {
  const file = routingFile(site, app);
  const previous = `${file}.previous`;
  let restoredGeneration: string | null;
  try {
    // prints the generation of the table now in place (nothing when there was none before this change)
    const restored = await filesOf(site).shell(
      `if [ -f ${quote(previous)} ]; then mv -f ${quote(previous)} ${quote(file)} && sed -n 's/^generation //p' ${quote(file)}; else rm -f ${quote(file)}; fi`,
      { timeoutMs: 30_000 },
    );
    restoredGeneration = restored.stdout.trim() || null;
  } catch (restoreError) {
    return new EdgeApplyError(
      `${error.message}; putting the previous routing back failed too (${(restoreError as Error).message}): the edge may serve the new routing`,
      'The change stays recorded as pending: the next depl command resolves it against what the edge serves.',
      error.code, 'unknown',
    );
  }
  const settingsBack = (report: EdgeReport) => previousConfig === undefined || report.config === previousConfig;
  const what = restoredGeneration === null ? 'no routing table (none was there before)' : `the previous routing ${restoredGeneration}`;
  if (restoredGeneration === null) {
    // an edge keeps the last table it read when its file goes: nothing to confirm
    return new EdgeApplyError(`${error.message}; the routing file was removed (there was none before), but the edge keeps serving what it last read`, error.hint, error.code, 'files-restored');
  }
  try {
    // the previous table is one the edge served a moment ago: a short wait (an edge that stopped answering
    // altogether already cost the full one)
    await waitForEdge(site, (r) => r.routing === restoredGeneration && settingsBack(r), what, undefined, Math.min(site.reloadTimeoutMs ?? CONFIRM_TIMEOUT_MS, 5_000));
  } catch (confirmError) {
    return new EdgeApplyError(
      `${error.message}; the previous files were put back, but the edge does not confirm serving them (${(confirmError as Error).message})`,
      `${error.hint ? `${error.hint}\n` : ''}The next depl command re-applies the recorded state.`,
      error.code, 'files-restored',
    );
  }
  return new EdgeApplyError(`${error.message}; the previous routing ${restoredGeneration}${previousConfig !== undefined ? ' and settings were' : ' was'} put back and the edge serves it`, error.hint, error.code, 'restored');
}

/**
 * Render, check, swap, reload: for changes nginx cannot take live. Resolves once the edge answers with the new
 * configuration and its old workers accept nothing more; puts the previous file back (and reloads it) if it
 * does not, the reload command failing included. `afterCheck` runs once nginx accepted the candidate, before it
 * replaces the live file.
 */
export async function reloadEdgeConfig(site: EdgeSite, settings: EdgeSettings, afterCheck?: () => Promise<void>): Promise<{ checkMs: number; reloadMs: number }> {
  const text = renderNginxConfig(settings, site.render);
  const generation = configGeneration(settings, site.render);
  const live = liveConfigPath(site);
  const candidate = `${site.dir}/nginx.conf.next`;
  const previous = `${site.dir}/nginx.conf.previous`;
  const started = performance.now();
  const files = filesOf(site);
  await files.writeFileAtomic(candidate, text);
  const check = await site.remote.exec(site.nginx(['-t', '-q', '-e', 'stderr', '-c', candidate]), { check: false, timeoutMs: 30_000 });
  if (check.code !== 0) {
    await files.exec(['mv', '-f', candidate, `${site.dir}/nginx.conf.rejected`], { check: false });
    throw new OperationError(
      `nginx rejected the new edge configuration; the running one is unchanged:\n${(check.stderr || check.stdout).trim()}`,
      `The rejected file is kept at ${files.name}:${site.dir}/nginx.conf.rejected.`,
      'EDGE_CONFIG_REJECTED',
    );
  }
  const checkMs = performance.now() - started;
  await afterCheck?.();
  const oldWorkers = await acceptingWorkers(site);
  await files.shell(`${keepPreviousLine(live)} && mv -f ${quote(candidate)} ${quote(live)}`);
  const swappedAt = performance.now();
  try {
    await site.remote.exec(site.reload, { timeoutMs: 30_000 });
    await waitForEdge(site, (r) => r.config === generation, `the new configuration ${generation}`, async () => {
      if (oldWorkers === null) return true;
      return [...(await acceptingWorkers(site) ?? [])].every((pid) => !oldWorkers.has(pid));
    });
  } catch (error) {
    // the previous file back where the files are, then the reload where nginx runs
    const restore = `[ -f ${quote(previous)} ] && cp -p ${quote(previous)} ${quote(`${live}.restore`)} && mv -f ${quote(`${live}.restore`)} ${quote(live)}`;
    const restored = await files.shell(restore, { check: false, timeoutMs: 30_000 })
      .then(async (r) => r.code === 0 && (await site.remote.exec(site.reload, { check: false, timeoutMs: 30_000 })).code === 0, () => false);
    const failure = error instanceof OperationError ? error : new OperationError((error as Error).message, undefined, 'EDGE_APPLY_TIMEOUT');
    throw new OperationError(
      `${failure.message}; ${restored ? 'the previous configuration was put back and reloaded' : 'the previous configuration could not be put back'}`,
      failure.hint, failure.code,
    );
  }
  return { checkMs, reloadMs: performance.now() - swappedAt };
}

/**
 * Asks the edge (which re-reads its routing file when asked) until its report satisfies `done` (and `settled`,
 * for a reload: nginx's old workers keep accepting for ~100 ms after the new ones start).
 */
async function waitForEdge(site: EdgeSite, done: (report: EdgeReport) => boolean, what: string, settled?: () => Promise<boolean>, timeoutMs = site.reloadTimeoutMs ?? CONFIRM_TIMEOUT_MS): Promise<EdgeReport> {
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
      const errors = await filesOf(site).shell(`tail -n 5 ${quote(`${site.dir}/logs/error.log`)} 2>/dev/null || true`, { check: false }).catch(() => ({ stdout: '' }));
      throw new OperationError(
        `the edge at ${site.url} did not start serving ${what} within ${timeoutMs / 1000}s (${last})`,
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
  const moved = await filesOf(site).shell(rotateLogLine(site), { check: false });
  if (moved.stderr.includes(LOG_ROTATED)) await reopenLogs(site);
}

/** What rotateLogLine prints on stderr when it moved the log. */
const LOG_ROTATED = 'depl-log-rotated';

/** Moves the access log aside when it is over the limit, saying so on stderr; exits 0 either way. */
function rotateLogLine(site: Pick<EdgeSite, 'dir' | 'rotateLogBytes'>): string {
  const file = quote(`${site.dir}/logs/access.log`);
  const limit = site.rotateLogBytes ?? DEFAULT_ROTATE_BYTES;
  return `if [ -f ${file} ] && [ "$(wc -c < ${file})" -gt ${limit} ]; then mv -f ${file} ${file}.1 && echo ${LOG_ROTATED} >&2; fi; true`;
}

async function reopenLogs(site: EdgeSite): Promise<void> {
  if (site.reopenLogs !== undefined) await site.remote.exec(site.reopenLogs, { check: false });
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
