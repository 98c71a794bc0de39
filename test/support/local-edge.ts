import { chmod, mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { EdgeSite } from '../../src/apply/edge.js';
import { LocalRemote } from '../../src/apply/local-remote.js';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import type { EdgeVersion } from '../../src/plan/edge-state.js';
import { CONFIG_PROBE_PATH, renderNginxConfig, type NginxRenderOptions } from '../../src/plan/nginx.js';
import { createLogger } from '../../src/util/log.js';

/**
 * Debian's nginx on loopback, configured by depl's own renderer and applier: the edge without a cluster.
 * Stopped by the pid of the master this started.
 */
export interface LocalEdge {
  site: EdgeSite;
  port: number;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startLocalEdge(app: string): Promise<LocalEdge> {
  await ensureDebianPackages(['nginx-light'], createLogger());
  const dir = await mkdtemp(path.join(tmpdir(), `depl-edge-${app}-`));
  // nginx workers run as nobody and reopen the logs after a rotation: they must reach the directory.
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'logs'), { recursive: true });
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const render: NginxRenderOptions = {
    listen: { port, address: '127.0.0.1' },
    paths: { pid: `${dir}/nginx.pid`, accessLog: `${dir}/logs/access.log`, errorLog: `${dir}/logs/error.log`, temp: `${dir}/tmp` },
    workerProcesses: 2,
  };
  const remote = new LocalRemote();
  await remote.writeFileAtomic(`${dir}/nginx.conf`, renderNginxConfig({ app, domain: 'localhost', versions: [] }, render));
  const master: ResultPromise = execa('nginx', ['-e', 'stderr', '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { reject: false });
  const pid = master.pid;
  if (pid === undefined) throw new Error('nginx did not start');
  const site: EdgeSite = {
    remote,
    dir,
    nginx: (args) => ['nginx', ...args],
    reload: ['kill', '-HUP', String(pid)],
    processes: ['ps', '-o', 'pid=,args=', '--ppid', String(pid)],
    reopenLogs: ['kill', '-USR1', String(pid)],
    render,
    url: `http://127.0.0.1:${port}`,
  };
  await waitForHttp(`${site.url}${CONFIG_PROBE_PATH}`, master);
  return {
    site,
    port,
    dir,
    pid,
    async stop() {
      process.kill(pid, 'SIGTERM');
      await master;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A stand-in for one version's http service: answers its version name, /healthz, and optional failures. */
export interface VersionServer {
  label: string;
  port: number;
  edgeVersion: EdgeVersion;
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

async function waitForHttp(url: string, master: ResultPromise): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited = false;
  void master.then(() => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) {
      const result = await master;
      throw new Error(`nginx exited at start: ${String(result.stderr)}`);
    }
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not answer ${url} within 10s`);
}
