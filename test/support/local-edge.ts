import { chmod, mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { request } from 'undici';
import type { EdgeSite } from '../../src/apply/edge/site.js';
import { LocalRemote } from '../../src/apply/local-remote.js';
import { EDGE_PACKAGES } from '../../src/apply/base-images.js';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import type { InstalledVersion, RoutedVersion } from '../../src/plan/release-state.js';
import type { ClusterPort } from '../../src/workflows/cluster-port.js';
import { CONFIG_PROBE_PATH, DEBIAN_NGINX_MODULES, edgeSettingsFor, PROBE_HOST, renderNginxConfig, type NginxRenderOptions } from '../../src/plan/nginx.js';
import { createLogger, silentLogger } from '../../src/util/log.js';

/**
 * Debian's nginx with its Lua module on loopback, configured by depl's own renderer and applier: the edge
 * without a cluster. Stopped by the pid of the master this started; restart() stops it and starts it again on
 * the same files (an edge restart).
 */
export interface LocalEdge {
  site: EdgeSite;
  port: number;
  dir: string;
  pid: number;
  /** Stops nginx (SIGTERM: fast, as a crash or a killed container) and starts it again on the same files. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `cluster`: the cluster's edge (docs/ARCHITECTURE.md): it reads the app list at `<dir>/apps` and each listed app's
 * table at `<dir>/routes/<app>`; the site's probe then needs the app it asks about (`{ ...site, probeApp }`).
 */
export async function startLocalEdge(app: string, options: { probeAllow?: string[]; cluster?: boolean } = {}): Promise<LocalEdge> {
  await ensureDebianPackages(EDGE_PACKAGES, createLogger());
  const dir = await mkdtemp(path.join(tmpdir(), `depl-edge-${app}-`));
  // nginx workers run as nobody and reopen the logs after a rotation: they must reach the directory.
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'logs'), { recursive: true });
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  if (options.cluster === true) await mkdir(path.join(dir, 'routes'), { recursive: true });
  const port = await freePort();
  const render: NginxRenderOptions = {
    listen: { port, address: '127.0.0.1' },
    paths: {
      pid: `${dir}/nginx.pid`, accessLog: `${dir}/logs/access.log`, errorLog: `${dir}/logs/error.log`, temp: `${dir}/tmp`,
      ...(options.cluster === true ? { apps: `${dir}/apps`, routes: `${dir}/routes` } : { routing: `${dir}/routing` }), modules: DEBIAN_NGINX_MODULES,
    },
    workerProcesses: 2,
    ...(options.probeAllow !== undefined ? { probeAllow: options.probeAllow } : {}),
  };
  const remote = new LocalRemote();
  await remote.writeFileAtomic(`${dir}/nginx.conf`, renderNginxConfig(edgeSettingsFor(render, app), render));
  const url = `http://127.0.0.1:${port}`;
  let master!: ResultPromise;
  let pid = 0;
  const site: EdgeSite = { remote, dir, nginx: (args) => ['nginx', ...args], reload: [], render, url };
  const start = async () => {
    master = execa('nginx', ['-e', 'stderr', '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { reject: false });
    if (master.pid === undefined) throw new Error('nginx did not start');
    pid = master.pid;
    Object.assign(site, {
      reload: ['kill', '-HUP', String(pid)],
      processes: ['ps', '-o', 'pid=,args=', '--ppid', String(pid)],
      reopenLogs: ['kill', '-USR1', String(pid)],
    });
    // an edge whose probe does not answer loopback is up once it answers at all
    await waitForHttp(`${url}${CONFIG_PROBE_PATH}`, master, options.probeAllow !== undefined ? [200, 403] : [200]);
  };
  const halt = async () => {
    process.kill(pid, 'SIGTERM');
    await master;
  };
  await start();
  return {
    site,
    port,
    dir,
    get pid() { return pid; },
    async restart() {
      await halt();
      await start();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A stand-in for one version's http service: answers its version name, /healthz, and optional failures. */
export interface VersionServer {
  label: string;
  port: number;
  edgeVersion: RoutedVersion;
  /** As the swarm's labels would list it. */
  installed: InstalledVersion;
  requests: number;
  stop(): Promise<void>;
}

export async function startVersionServer(app: string, label: string, behaviour: { failPath?: string; delayMs?: number } = {}): Promise<VersionServer> {
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    state.requests++;
    const reply = () => {
      if (behaviour.failPath !== undefined && req.url?.startsWith(behaviour.failPath)) {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'boom' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, version: label, path: req.url }));
    };
    if (behaviour.delayMs) setTimeout(reply, behaviour.delayMs);
    else reply();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    label,
    port,
    edgeVersion: { label, upstream: { service: `${app}-${label}-api`, port: 8000, address: `127.0.0.1:${port}` } },
    installed: { label, createdAt: new Date().toISOString(), services: [`${app}-${label}-api`], http: { service: `${app}-${label}-api`, port: 8000, health: '/healthz', address: `127.0.0.1:${port}` } },
    get requests() { return state.requests; },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForHttp(url: string, master: ResultPromise, statuses: number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited = false;
  void master.then(() => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) {
      const result = await master;
      throw new Error(`nginx exited at start: ${String(result.stderr)}`);
    }
    const ok = await request(url, { headers: { host: PROBE_HOST }, reset: true }).then(async (r) => {
      await r.body.text();
      return statuses.includes(r.statusCode);
    }, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not answer ${url} within 10s`);
}

/**
 * The release workflows' view of a loopback edge: state and lock in the edge's folder, the installed versions
 * being the given version servers (a cluster reads them from the swarm's labels).
 */
export function localControl(edge: LocalEdge, app: string, domain: string, servers: () => (VersionServer | undefined)[]): ClusterPort {
  return {
    app, domain, site: edge.site, stateRemote: edge.site.remote, stateRoot: `${edge.dir}/state`, healthPath: '/healthz', log: silentLogger,
    installed: async () => servers().filter((s): s is VersionServer => s !== undefined).map((s) => s.installed),
  };
}
