import http from 'node:http';
import { UserError, OperationError } from '../../errors.js';
import { parseEdgeReport, type EdgeReport } from '../../plan/edge-routing.js';
import { parseRawHttpAnswer, PROBE_HOST, probePath, type NginxRenderOptions } from '../../plan/nginx.js';
import { CLUSTER_EDGE_SERVICE, clusterEdgeRenderOptions } from '../../plan/cluster-edge.js';
import { clusterEdgeDir } from '../../plan/edge-apps.js';
import type { EdgeTlsRender } from '../../plan/tls/nginx.js';
import { cachedEdgeContainerCommand, edgeContainerRenderOptions, edgeDir, edgeProbeCommand, edgeServiceName, edgeSiteCommands, parseCachedEdgeContainer } from '../../plan/edge-service.js';
import type { Argv } from '../../plan/shell.js';
import type { Cluster } from '../cluster.js';
import type { Remote } from '../remote.js';
import { readEdgeTlsRender } from '../tls/store.js';

/** One running nginx that serves the edge, where its files are, and how to reach it over HTTP. */
export interface EdgeSite {
  /** The machine holding the configuration directory and running nginx (the edge node, or this machine). */
  remote: Remote;
  /**
   * Where the edge's files are read and written, when not on `remote`: the renewal task changes them in its
   * own mount of the edge's folder and reaches nginx through the engine gate, which runs nginx's commands
   * only (src/plan/tls/engine-gate.ts). Absent: `remote` (the manager over SSH holds both).
   */
  files?: Remote;
  /** Holds nginx.conf, routing and logs/; the same path on the node and inside the edge container. */
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
  /** How long a reload may take before it counts as failed (and the previous configuration goes back); default 15 s. */
  reloadTimeoutMs?: number;
  /** Where the operator's machine reaches the edge: `http://192.168.77.11:80`. */
  url: string;
  /**
   * Run on `remote`, asks the probe from inside the edge's container and prints the raw HTTP answer: the
   * probe answers only the container's loopback (src/plan/nginx.ts PROBE_ALLOW). Absent: asked over `url`
   * (an edge on this machine, in tests).
   */
  probe?: Argv;
  /** On the cluster's edge (several apps' tables): the app whose routing generation the probe over `url` reports. */
  probeApp?: string;
}

export interface EdgeAnswer {
  status: number;
  version: string | null;
  body: string;
}

/**
 * GET a path on the edge as if for `host`; returns status, the serving version and the body. Plain node:http:
 * every release command asks the edge this, and undici (a large module) is loaded only to follow a redirect
 * to HTTPS (src/apply/tls/edge-https.ts).
 */
export async function requestThroughEdge(site: Pick<EdgeSite, 'url'>, host: string, path: string, timeoutMs = 5_000): Promise<EdgeAnswer> {
  const first = await getOnce(new URL(path, site.url), host, timeoutMs);
  // a host with a certificate redirects to https on the same edge
  if (first.statusCode === 301 || first.statusCode === 308) {
    const { followHttpsRedirect } = await import('../tls/edge-https.js');
    const secure = await followHttpsRedirect(site.url, host, first, timeoutMs);
    if (secure !== null) {
      const header = secure.headers['x-depl-version'];
      return { status: secure.statusCode, version: typeof header === 'string' ? header : null, body: await secure.body.text() };
    }
  }
  const header = first.headers['x-depl-version'];
  return { status: first.statusCode, version: typeof header === 'string' ? header : null, body: first.body };
}

/** One GET on a fresh connection: a pooled one may belong to an nginx worker that a reload is retiring. */
function getOnce(url: URL, host: string, timeoutMs: number): Promise<{ statusCode: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'GET', headers: { host }, agent: false, timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${url.host} did not answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end();
  });
}

/**
 * What the edge reports it runs (it re-reads its routing file when asked): configuration and routing
 * generations. A cluster's edge answers only from inside its container (`site.probe`, over the SSH
 * connection depl has, or the renewal task's Engine API); an edge without one is asked over HTTP.
 */
export async function edgeReport(site: Pick<EdgeSite, 'url'> & Partial<Pick<EdgeSite, 'remote' | 'probe' | 'probeApp'>>, timeoutMs = 2_000): Promise<EdgeReport & { status: number }> {
  if (site.probe === undefined || site.remote === undefined) {
    const answer = await requestThroughEdge(site, PROBE_HOST, probePath(site.probeApp), timeoutMs);
    return { ...parseEdgeReport(answer.status === 200 ? answer.body : ''), status: answer.status };
  }
  const raw = await site.remote.exec(site.probe, { check: false, timeoutMs: Math.max(timeoutMs, PROBE_TIMEOUT_S * 1000) });
  return edgeReportFrom(raw.stdout);
}

/** How long the probe (`site.probe`) may take on the node, in seconds. */
export const PROBE_TIMEOUT_S = 5;

/** The report in the probe's raw HTTP answer (`site.probe`'s output); status 0 when there is none. */
export function edgeReportFrom(probeOutput: string): EdgeReport & { status: number } {
  const answer = parseRawHttpAnswer(probeOutput);
  return { ...parseEdgeReport(answer.status === 200 ? answer.body : ''), status: answer.status };
}

/** The routing generation the edge serves now; null when it does not answer or has no routing table. */
export async function servedGeneration(site: Pick<EdgeSite, 'url'> & Partial<Pick<EdgeSite, 'remote' | 'probe' | 'probeApp'>>, timeoutMs = 2_000): Promise<string | null> {
  return (await servedReport(site, timeoutMs))?.routing ?? null;
}

/** What the edge reports it runs, null when it does not answer. */
export async function servedReport(site: Pick<EdgeSite, 'url'> & Partial<Pick<EdgeSite, 'remote' | 'probe' | 'probeApp'>>, timeoutMs = 2_000): Promise<EdgeReport | null> {
  try {
    const report = await edgeReport(site, timeoutMs);
    return report.status === 200 ? report : null;
  } catch {
    return null;
  }
}

/** Render options for nginx in the edge container: Docker's DNS, files in the bind-mounted directory. */
export function containerRenderOptions(app: string): NginxRenderOptions {
  const dir = edgeDir(app);
  return edgeContainerRenderOptions(dir, { routing: `${dir}/routing` });
}

/**
 * The edge that routes app `app` on the manager (the edge node): the cluster's `depl_edge` once it was made (every
 * app's own edge was taken over before it: src/plan/cluster-edge.ts), else the app's own `<app>-edge`. The
 * container of either is read from what the last probe on the manager found (src/plan/edge-service.ts); only when
 * that container no longer runs (or no probe ran since the manager started) is the Engine asked.
 */
export async function clusterEdgeSite(cluster: Cluster, app: string, tls?: { render: EdgeTlsRender | undefined }): Promise<EdgeSite> {
  // independent round trips, side by side: the cached container of either edge, and the files (which say which it is)
  const [shared, own, files] = await Promise.all([cachedEdgeContainer(cluster, CLUSTER_EDGE_SERVICE), cachedEdgeContainer(cluster, edgeServiceName(app)), clusterEdgeFiles(cluster, app, tls)]);
  const service = files.probeApp !== undefined ? CLUSTER_EDGE_SERVICE : edgeServiceName(app);
  const cached = files.probeApp !== undefined ? shared : own;
  const commands = cached !== null ? edgeSiteCommands(cached) : await edgeContainerCommands(cluster, service);
  if (commands === null) {
    throw new OperationError(`the edge service ${service} has no running container on ${cluster.manager.name}`, `Run \`depl buildinst\`, which starts the edge, or check \`docker service ps ${service}\` on the manager.`, 'EDGE_NOT_RUNNING');
  }
  return { ...files, ...commands };
}

/** The running container of the edge service that the manager's last probe found; null when the cache names none that runs. */
async function cachedEdgeContainer(cluster: Cluster, service: string): Promise<string | null> {
  const read = await cluster.manager.exec(cachedEdgeContainerCommand(service, []), { check: false });
  const found = read.code === 0 ? parseCachedEdgeContainer(read.stdout, 0) : null;
  return found?.container ?? null;
}

/**
 * How to run nginx in the running container of the edge service (null: none runs), found through the manager's
 * Engine API on the cluster's connection when the manager's cache does not name it: a `docker ps` would cost an
 * SSH session and a docker CLI start on the manager.
 */
async function edgeContainerCommands(cluster: Cluster, service: string): Promise<ReturnType<typeof edgeSiteCommands> | null> {
  const id = await (await cluster.engine()).api.runningContainerOf(service);
  return id === null ? null : edgeSiteCommands(id);
}

/** Whether the cluster's edge was made: its nginx.conf is written before depl_edge is created, and the apps' own edges are gone by then. */
async function clusterEdgeMade(manager: Remote): Promise<boolean> {
  return (await manager.exec(['test', '-f', liveClusterEdgeConfig()], { check: false })).code === 0;
}

function liveClusterEdgeConfig(): string {
  return `${clusterEdgeDir()}/nginx.conf`;
}

/**
 * The files of the edge that routes app `app`, readable even while its container is down. An app's own edge renders
 * HTTPS from what the last certificate refresh wrote next to its files (src/apply/tls/store.ts); a caller that has
 * just refreshed them passes what it wrote (`tls`) and saves the read. On the cluster's edge the app's routing is its
 * own file (`_edge/routes/<app>`) and the probe reports the app's generation (`?app=`); it serves no HTTPS yet.
 */
export async function clusterEdgeFiles(cluster: Cluster, app: string, tls?: { render: EdgeTlsRender | undefined }): Promise<EdgeSite> {
  if (!/^[a-z0-9-]+$/.test(app)) throw new UserError(`app name "${app}" is not a DNS label`, undefined, 'BAD_APP_NAME');
  const url = `http://${cluster.managerNode.address}:80`;
  const nginx = (): never => { throw new OperationError('the edge container is not known here', undefined, 'EDGE_CONTAINER_UNKNOWN'); };
  const [shared, https] = await Promise.all([
    clusterEdgeMade(cluster.manager),
    tls !== undefined ? tls.render : readEdgeTlsRender(cluster.manager, edgeDir(app)),
  ]);
  if (shared) {
    const render = clusterEdgeRenderOptions();
    return { remote: cluster.manager, dir: clusterEdgeDir(), nginx, reload: [], render, url, probe: edgeProbeCommand(CLUSTER_EDGE_SERVICE, render.listen.port, undefined, probePath(app)), probeApp: app };
  }
  const render = containerRenderOptions(app);
  return {
    remote: cluster.manager,
    dir: edgeDir(app),
    nginx,
    reload: [],
    render: https === undefined ? render : { ...render, tls: https },
    url,
    probe: edgeProbeCommand(edgeServiceName(app), render.listen.port),
  };
}
