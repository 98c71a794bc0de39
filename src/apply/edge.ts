import { request } from 'undici';
import { OperationError, UserError } from '../errors.js';
import type { EdgeState } from '../plan/edge-state.js';
import { parseEdgeReport, renderRoutingTable, type EdgeReport } from '../plan/edge-routing.js';
import { CONFIG_PROBE_PATH, configGeneration, DEBIAN_NGINX_MODULES, PROBE_HOST, renderNginxConfig, type EdgeSettings, type NginxRenderOptions } from '../plan/nginx.js';
import { quote, shellLine, type Argv } from '../plan/shell.js';
import type { Cluster } from './cluster.js';
import type { Remote } from './remote.js';
import { readEdgeTlsRender } from './tls/store.js';
import { followHttpsRedirect } from './tls/edge-https.js';

/**
 * Puts what the edge serves in place, in two layers (see src/plan/edge-lua.ts for the design):
 * - the routing table (versions, live, canary): written atomically to the edge's directory; the edge reads it
 *   without a reload and reports its generation, which is how depl knows the change is in effect;
 * - the nginx configuration (settings only): written beside the live file, checked with `nginx -t`, renamed
 *   over the live file, then a graceful reload (SIGHUP: old workers finish their requests) — only when the
 *   edge reports a different configuration than the one depl renders. A configuration nginx rejects never
 *   replaces the live one.
 */

/** One running nginx that serves the edge, and where its files are. */
export interface EdgeSite {
  /** The machine holding the configuration directory and running nginx (the edge node, or this machine). */
  remote: Remote;
  /** Holds nginx.conf, routing, edge-state.json and logs/; the same path on the node and inside the edge container. */
  dir: string;
  /** The argv that runs the serving nginx binary with these arguments (inside its container, or here). */
  nginx(args: readonly string[]): Argv;
  /** Tells the running master to reload gracefully. */
  reload: Argv;
  /**
   * Lists the nginx processes as `pid command` lines (`docker top`, `ps`): the switch waits until the old
   * workers say "shutting down", after which they accept nothing new.
   */
  processes?: Argv;
  /** Tells nginx to reopen its log files (SIGUSR1), after the access log was rotated. */
  reopenLogs?: Argv;
  /** The access log is rotated (one old file kept) when an apply finds it larger; default 256 MiB. */
  rotateLogBytes?: number;
  render: NginxRenderOptions;
  /** Where the operator's machine reaches the edge: `http://192.168.77.11:80`. */
  url: string;
}

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

const PROBE_TIMEOUT_MS = 15_000;

export function edgeDir(app: string): string {
  return `/var/lib/depl/${app}/edge`;
}

export function edgeServiceName(app: string): string {
  return `${app}-edge`;
}

/** Render options for nginx in the edge container: Docker's DNS, files in the bind-mounted directory. */
export function containerRenderOptions(app: string): NginxRenderOptions {
  const dir = edgeDir(app);
  return {
    listen: { port: 80 },
    resolver: '127.0.0.11',
    resolverValidSeconds: 5,
    paths: {
      pid: '/run/nginx.pid', accessLog: `${dir}/logs/access.log`, errorLog: `${dir}/logs/error.log`, temp: '/tmp',
      routing: `${dir}/routing`, modules: DEBIAN_NGINX_MODULES,
    },
    workerProcesses: 'auto',
  };
}

/**
 * Makes the edge serve `state`: the routing table goes in place and the edge confirms it (no reload); the
 * nginx configuration is reloaded only if the edge reports another one than depl renders.
 */
export async function applyEdgeConfig(site: EdgeSite, state: EdgeState): Promise<AppliedEdge> {
  const routing = renderRoutingTable(state);
  const settings: EdgeSettings = { app: state.app };
  const applied: AppliedEdge = { generation: routing.generation, reloaded: false, writeMs: 0, confirmMs: 0, checkMs: 0, reloadMs: 0 };
  const writeRouting = async () => {
    const started = performance.now();
    await site.remote.writeFileAtomic(routingFile(site), routing.text);
    applied.writeMs = performance.now() - started;
  };
  // Settings first, when they changed: a configuration nginx rejects stops everything before the routing
  // changes; one it accepts loads the new routing in its init (an edge coming from a configuration without
  // the routing table, or from older routing code, serves the right versions from its first new worker).
  const running = await edgeReport(site).catch(() => null);
  if (running?.config !== configGeneration(settings, site.render)) {
    Object.assign(applied, await reloadEdgeConfig(site, settings, writeRouting), { reloaded: true });
  }
  // The routing write and its confirmation are the critical path; the rest goes beside them.
  await Promise.all([
    (applied.reloaded ? Promise.resolve() : writeRouting()).then(async () => {
      const confirming = performance.now();
      await waitForEdge(site, (r) => r.routing === routing.generation, 'the new routing');
      applied.confirmMs = performance.now() - confirming;
    }),
    site.remote.writeFileAtomic(`${site.dir}/edge-state.json`, JSON.stringify(state, null, 2) + '\n'),
    rotateAccessLog(site),
  ]);
  return applied;
}

/**
 * Render, check, swap, reload: for changes nginx cannot take live. Resolves once the edge answers with the new
 * configuration and its old workers accept nothing more. `afterCheck` runs once nginx accepted the candidate,
 * before it replaces the live file.
 */
export async function reloadEdgeConfig(site: EdgeSite, settings: EdgeSettings, afterCheck?: () => Promise<void>): Promise<{ checkMs: number; reloadMs: number }> {
  const text = renderNginxConfig(settings, site.render);
  const generation = configGeneration(settings, site.render);
  const live = `${site.dir}/nginx.conf`;
  const candidate = `${site.dir}/nginx.conf.next`;
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
  // One round trip: keep the previous file for a manual way back, rename (atomic), signal the master.
  await site.remote.shell(`{ [ ! -f ${quote(live)} ] || cp -p ${quote(live)} ${quote(`${site.dir}/nginx.conf.previous`)}; } && mv -f ${quote(candidate)} ${quote(live)} && ${shellLine(site.reload)}`);
  const swappedAt = performance.now();
  await waitForGeneration(site, generation, oldWorkers);
  return { checkMs, reloadMs: performance.now() - swappedAt };
}

/** What the edge reports it runs: its configuration and routing generations. */
export async function edgeReport(site: EdgeSite, timeoutMs = 2_000): Promise<EdgeReport & { status: number }> {
  const answer = await requestThroughEdge(site, PROBE_HOST, CONFIG_PROBE_PATH, timeoutMs);
  return { ...parseEdgeReport(answer.status === 200 ? answer.body : ''), status: answer.status };
}

export function routingFile(site: EdgeSite): string {
  return site.render.paths.routing;
}

/** Asks the edge (which re-reads its routing file when asked) until its report satisfies `done`. */
async function waitForEdge(site: EdgeSite, done: (report: EdgeReport) => boolean, what: string): Promise<EdgeReport> {
  const deadline = performance.now() + PROBE_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    try {
      const report = await edgeReport(site);
      if (report.status === 200 && done(report)) return report;
      last = `status ${report.status}, configuration ${report.config || '(none)'}, routing ${report.routing ?? '(none)'}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(5);
  }
  const errors = await site.remote.shell(`tail -n 5 ${quote(`${site.dir}/logs/error.log`)} 2>/dev/null || true`, { check: false });
  throw new OperationError(
    `the edge at ${site.url} did not start serving ${what} within ${PROBE_TIMEOUT_MS / 1000}s (${last})`,
    `nginx's error log ends with:\n${errors.stdout.trim() || '(empty)'}`,
    'EDGE_APPLY_TIMEOUT',
  );
}

/** The EdgeState the edge last applied, or null before the first apply. */
export async function readSiteState(site: EdgeSite): Promise<EdgeState | null> {
  const text = await site.remote.readFile(`${site.dir}/edge-state.json`);
  if (text === null) return null;
  try {
    return JSON.parse(text) as EdgeState;
  } catch (error) {
    throw new OperationError(`${site.remote.name}:${site.dir}/edge-state.json is not valid JSON`, 'Re-run depl buildinst to rewrite it.', 'EDGE_STATE_CORRUPT', { cause: error });
  }
}

/** Access-log lines (JSON, see plan/nginx.ts) of requests that ended at or after sinceMs. */
export async function readSiteLogs(site: EdgeSite, sinceMs: number): Promise<string[]> {
  const file = `${site.dir}/logs/access.log`;
  const sinceSeconds = sinceMs / 1000;
  // Filtered on the node, so only the window crosses SSH; every line starts with {"msec":<seconds>,
  const awk = `match($0, /^\\{"msec":[0-9.]+/) && substr($0, 9, RLENGTH - 8) + 0 >= ${sinceSeconds.toFixed(3)}`;
  const files = [`${file}.1`, file].map(quote).join(' ');
  const result = await site.remote.shell(`for f in ${files}; do [ ! -f "$f" ] || awk ${quote(awk)} "$f"; done`, { timeoutMs: 120_000 });
  return result.stdout.split('\n').filter((line) => {
    const match = /^\{"msec":([0-9.]+),/.exec(line);
    return match !== null && Number(match[1]) >= sinceSeconds;
  });
}

/** GET a path on the edge as if for `host`; returns status, the serving version and the body. */
export async function requestThroughEdge(site: EdgeSite, host: string, path: string, timeoutMs = 5_000): Promise<{ status: number; version: string | null; body: string }> {
  const first = await request(new URL(path, site.url), {
    // A fresh connection each time: a pooled one may belong to an nginx worker that a reload is retiring.
    reset: true,
    headers: { host },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  // a host with a certificate redirects to https on the same edge
  const secure = await followHttpsRedirect(site.url, host, first, timeoutMs);
  if (secure !== null) await first.body.dump();
  const response = secure ?? first;
  const body = await response.body.text();
  const header = response.headers['x-depl-version'];
  return { status: response.statusCode, version: typeof header === 'string' ? header : null, body };
}

/**
 * nginx's master starts the new workers, then gives them ~100 ms before telling the old ones to stop
 * accepting; during that overlap a new connection may still land on an old worker. The new configuration
 * serves every new request once the edge answers with its generation AND every old worker has been told
 * to shut down (it closes its listening sockets at once). Without a process listing, a fixed settle time.
 */
const GENERATION_SETTLE_MS = 300;

async function waitForGeneration(site: EdgeSite, generation: string, oldWorkers: Set<string> | null): Promise<void> {
  const deadline = performance.now() + PROBE_TIMEOUT_MS;
  let last = 'no answer';
  let firstSeen: number | null = null;
  while (performance.now() < deadline) {
    try {
      const answer = await requestThroughEdge(site, PROBE_HOST, CONFIG_PROBE_PATH, 2_000);
      if (parseEdgeReport(answer.body).config === generation) {
        firstSeen ??= performance.now();
        if (oldWorkers !== null) {
          const stillAccepting = [...(await acceptingWorkers(site) ?? [])].filter((pid) => oldWorkers.has(pid));
          if (stillAccepting.length === 0) return;
          last = `old workers ${stillAccepting.join(', ')} still accepting`;
        } else if (performance.now() - firstSeen >= GENERATION_SETTLE_MS) {
          return;
        }
      } else {
        firstSeen = null;
        last = `serving generation ${answer.body.trim() || '(none)'} (status ${answer.status})`;
      }
    } catch (error) {
      firstSeen = null;
      last = (error as Error).message;
    }
    await sleep(10);
  }
  const errors = await site.remote.shell(`tail -n 5 ${quote(`${site.dir}/logs/error.log`)} 2>/dev/null || true`, { check: false });
  throw new OperationError(
    `the edge at ${site.url} did not start serving the new configuration ${generation} within ${PROBE_TIMEOUT_MS / 1000}s (${last})`,
    `nginx's error log ends with:\n${errors.stdout.trim() || '(empty)'}`,
    'EDGE_RELOAD_TIMEOUT',
  );
}

// ---- the edge on a swarm cluster -------------------------------------------------------------------------

/** The edge container on the manager (the edge node), found by its swarm service. */
export async function clusterEdgeSite(cluster: Cluster, app: string): Promise<EdgeSite> {
  const containers = await cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${edgeServiceName(app)}`]);
  const id = containers.stdout.trim().split('\n')[0];
  if (!id) {
    throw new OperationError(`the edge service ${edgeServiceName(app)} has no running container on ${cluster.manager.name}`, 'Run `depl buildinst`, which starts the edge, or check `docker service ps ' + edgeServiceName(app) + '` on the manager.', 'EDGE_NOT_RUNNING');
  }
  return {
    remote: cluster.manager,
    dir: edgeDir(app),
    nginx: (args) => ['docker', 'exec', id, 'nginx', ...args],
    reload: ['docker', 'kill', '--signal', 'HUP', id],
    processes: ['docker', 'top', id, '-o', 'pid,args'],
    reopenLogs: ['docker', 'kill', '--signal', 'USR1', id],
    render: await withTls(cluster.manager, app),
    url: `http://${cluster.managerNode.address}:80`,
  };
}

/** The edge renders HTTPS from what the last certificate refresh wrote next to its files (src/apply/tls/store.ts). */
async function withTls(remote: Remote, app: string): Promise<NginxRenderOptions> {
  const render = containerRenderOptions(app);
  const tls = await readEdgeTlsRender(remote, edgeDir(app));
  return tls === undefined ? render : { ...render, tls };
}

/**
 * nginx as the swarm service `<app>-edge` on the node labelled depl.edge=true, port 80 published in host
 * mode (no routing mesh here), on the app's overlay network so Docker's DNS resolves version services.
 * Idempotent: an existing service is left alone unless its image differs.
 */
export async function ensureEdgeService(cluster: Cluster, opts: { app: string; image: string; https?: boolean }): Promise<void> {
  const { app, image } = opts;
  const name = edgeServiceName(app);
  const dir = edgeDir(app);
  const manager = cluster.manager;
  await manager.exec(['mkdir', '-p', `${dir}/logs`]);
  if ((await manager.readFile(`${dir}/nginx.conf`)) === null) {
    // Before the first routing table there is nothing to serve: every host gets a 404.
    await manager.writeFileAtomic(`${dir}/nginx.conf`, renderNginxConfig({ app }, containerRenderOptions(app)));
  }
  const existing = await manager.exec(['docker', 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', name], { check: false });
  if (existing.code === 0) {
    const update: string[] = [];
    if (existing.stdout.trim() !== image) update.push('--image', image);
    if (opts.https) {
      const ports = await manager.exec(['docker', 'service', 'inspect', '--format', '{{range .Endpoint.Spec.Ports}}{{.PublishedPort}} {{end}}', name]);
      // an edge made before tls: was turned on: publish 443 too (the task restarts once)
      if (!ports.stdout.split(/\s+/).includes('443')) update.push('--publish-add', 'mode=host,published=443,target=443,protocol=tcp');
    }
    if (update.length > 0) {
      await manager.exec(['docker', 'service', 'update', '--detach', '--no-resolve-image', ...update, name], { timeoutMs: 60_000 });
    }
  } else {
    await manager.exec([
      'docker', 'service', 'create', '--detach', '--no-resolve-image',
      '--name', name,
      '--label', `depl.app=${app}`, '--label', 'depl.role=edge',
      '--constraint', 'node.labels.depl.edge==true',
      '--replicas', '1',
      '--publish', 'mode=host,published=80,target=80,protocol=tcp',
      ...(opts.https ? ['--publish', 'mode=host,published=443,target=443,protocol=tcp'] : []),
      '--network', cluster.network,
      '--mount', `type=bind,source=${dir},target=${dir}`,
      // SIGQUIT is nginx's graceful shutdown; a host-mode port cannot be held by two tasks, so stop first.
      '--stop-signal', 'SIGQUIT', '--stop-grace-period', '30s', '--update-order', 'stop-first',
      '--entrypoint', 'nginx',
      image, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;',
    ], { timeoutMs: 60_000 });
  }
  await waitForEdgeContainer(cluster, app);
}

async function waitForEdgeContainer(cluster: Cluster, app: string): Promise<void> {
  const name = edgeServiceName(app);
  const deadline = Date.now() + 90_000;
  let state = '';
  while (Date.now() < deadline) {
    const running = await cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${name}`, '--filter', 'status=running']);
    if (running.stdout.trim() !== '') {
      const site = await clusterEdgeSite(cluster, app);
      const answer = await requestThroughEdge(site, PROBE_HOST, CONFIG_PROBE_PATH, 2_000).catch(() => null);
      if (answer?.status === 200) return;
    }
    const tasks = await cluster.manager.exec(['docker', 'service', 'ps', '--no-trunc', '--format', '{{.CurrentState}} {{.Error}}', name], { check: false });
    state = tasks.stdout.trim().split('\n')[0] ?? '';
    await sleep(500);
  }
  throw new OperationError(`the edge service ${name} did not start within 90s (${state || 'no task'})`, `Check \`docker service ps --no-trunc ${name}\` on ${cluster.manager.name}.`, 'EDGE_NOT_RUNNING');
}

/** Render, check with nginx -t, swap atomically and reload the cluster's edge. */
export async function applyEdge(cluster: Cluster, state: EdgeState): Promise<void> {
  await applyEdgeConfig(await clusterEdgeSite(cluster, state.app), state);
}

/** The EdgeState the cluster's edge serves (versions, live, canary), or null before the first apply. */
export async function readEdgeState(cluster: Cluster, app: string): Promise<EdgeState | null> {
  return readSiteState(await clusterEdgeFiles(cluster, app));
}

/** Access-log lines of the cluster's edge for requests since sinceMs (epoch milliseconds). */
export async function readEdgeLogs(cluster: Cluster, app: string, sinceMs: number): Promise<string[]> {
  return readSiteLogs(await clusterEdgeFiles(cluster, app), sinceMs);
}

/** The files of the cluster's edge, readable even while its container is down. */
export async function clusterEdgeFiles(cluster: Cluster, app: string): Promise<EdgeSite> {
  if (!/^[a-z0-9-]+$/.test(app)) throw new UserError(`app name "${app}" is not a DNS label`);
  return {
    remote: cluster.manager,
    dir: edgeDir(app),
    nginx: () => { throw new OperationError('the edge container is not known here'); },
    reload: [],
    render: await withTls(cluster.manager, app),
    url: `http://${cluster.managerNode.address}:80`,
  };
}

const DEFAULT_ROTATE_BYTES = 256 * 1024 * 1024;

/** Keeps the access log bounded: moved aside (replacing the older one) and reopened by nginx. */
async function rotateAccessLog(site: EdgeSite): Promise<void> {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
