import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { request } from 'undici';
import { deplCacheDir } from '../../src/apply/local/cache-dir.js';

/**
 * The Debian archive as nodes like Nectar's meet it (provider.image: cloud), from a cache on this machine. Their
 * node-up (depl's install script, or Ansible's apt task) runs `apt-get update` and installs docker.io from
 * deb.debian.org, as on a fresh VM: about 9 MB of package lists and 60 MB of .debs per node, fetched again by
 * every node of every such cluster. Here the cluster's port-80 traffic to anywhere off its own bridge is
 * redirected (one iptables rule for its subnet, removed with the cluster) to an HTTP server on this machine that
 * answers from the tests' cache folder and fetches from the archive only what the cache lacks, once. Nothing on
 * the node changes: its sources.list, apt's signature checks on InRelease and the packages' hashes, dpkg's install
 * and dockerd's start all run as they would against the archive.
 *
 * Keyed by URL, which is what decides what apt gets: pool files and by-hash indexes never change under their
 * name, so they are kept; the rest of dists/ (InRelease, Release) is taken again from the archive once a day,
 * so a point release's new versions arrive by their own new names.
 */
const MUTABLE_FOR_MS = 24 * 3600_000;

/** The tests' own folder in depl's cache folder, beside the crawler's build cache: nothing depl itself reads. */
export function aptCacheDir(): string {
  return path.join(deplCacheDir(), 'test-apt-cache');
}

/** Names the rule as this process's, so a run killed before its cleanup has its rules removed by the next one. */
const RULE_COMMENT_PREFIX = 'depl-test-apt-cache-pid-';

export interface AptCache {
  /** Sends the subnet's port-80 traffic (to addresses off that subnet) to the cache until the returned undo runs. */
  redirect(subnet: string): Promise<() => Promise<void>>;
  /** What was answered from the cache and what had to be fetched, by request. */
  readonly served: { hits: number; fetched: number };
  close(): Promise<void>;
}

function isImmutable(urlPath: string): boolean {
  return !urlPath.includes('/dists/') || urlPath.includes('/by-hash/');
}

async function fresh(file: string, urlPath: string): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (!info) return false;
  return isImmutable(urlPath) || Date.now() - info.mtimeMs < MUTABLE_FOR_MS;
}

/** The first three octets of a /24 (the local provider's subnets are all /24s). */
function subnetBase(subnet: string): string {
  return subnet.replace(/\.0\/24$/, '');
}

export async function startAptCache(cacheDir = aptCacheDir()): Promise<AptCache> {
  await removeRulesOfDeadRuns();
  await removePartialsOfDeadRuns(cacheDir);
  const served = { hits: 0, fetched: 0 };
  /** One fetch per file: a cluster's nodes ask for the same files at the same moment. */
  const fetching = new Map<string, Promise<number>>();
  const allowedSubnets = new Set<string>();

  async function fill(host: string, urlPath: string, file: string): Promise<number> {
    const upstream = await request(`http://${host}${urlPath}`, { method: 'GET', headers: { 'user-agent': 'depl-test-apt-cache' } });
    if (upstream.statusCode !== 200) {
      await upstream.body.dump();
      return upstream.statusCode;
    }
    await mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.partial-${process.pid}`;
    try {
      await pipeline(upstream.body, createWriteStream(partial));
      await rename(partial, file);
    } finally {
      await rm(partial, { force: true });
    }
    return 200;
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const peer = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
      const host = (req.headers.host ?? '').replace(/:80$/, '');
      const urlPath = (req.url ?? '/').split('?')[0]!;
      // only the redirected nodes, only GETs of archive paths on a plain host name
      if (![...allowedSubnets].some((base) => peer.startsWith(`${base}.`)) || req.method !== 'GET'
        || !/^[a-z0-9.-]+$/i.test(host) || urlPath.split('/').includes('..')) {
        res.writeHead(403).end();
        return;
      }
      const file = path.join(cacheDir, host, urlPath);
      if (await fresh(file, urlPath)) {
        served.hits += 1;
      } else {
        const key = `${host}${urlPath}`;
        let pending = fetching.get(key);
        if (!pending) {
          pending = fill(host, urlPath, file).finally(() => fetching.delete(key));
          fetching.set(key, pending);
        }
        const status = await pending;
        if (status !== 200) {
          res.writeHead(status).end();
          return;
        }
        served.fetched += 1;
      }
      const { size } = await stat(file);
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      await pipeline(createReadStream(file), res);
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(502).end(String(error));
      else res.destroy();
    });
  });
  // every address: the cluster's gateway, where the redirected connections arrive, exists only once node-up made the bridge
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    served,
    async redirect(subnet) {
      const rule = ['PREROUTING', '-s', subnet, '!', '-d', subnet, '-p', 'tcp', '--dport', '80',
        '-m', 'comment', '--comment', `${RULE_COMMENT_PREFIX}${process.pid}`, '-j', 'REDIRECT', '--to-ports', String(port)];
      await execa('iptables', ['-w', '-t', 'nat', '-I', ...rule]);
      allowedSubnets.add(subnetBase(subnet));
      return async () => {
        allowedSubnets.delete(subnetBase(subnet));
        await execa('iptables', ['-w', '-t', 'nat', '-D', ...rule], { reject: false });
      };
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Rules whose test process is gone would send a later cluster on the same subnet to a closed port. */
async function removeRulesOfDeadRuns(): Promise<void> {
  const listed = await execa('iptables', ['-w', '-t', 'nat', '-S', 'PREROUTING']);
  for (const line of listed.stdout.split('\n')) {
    const pid = new RegExp(`--comment "?${RULE_COMMENT_PREFIX}(\\d+)"?`).exec(line)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    const spec = line.replace(/^-A /, '').split(' ').map((word) => word.replace(/^"(.*)"$/, '$1'));
    await execa('iptables', ['-w', '-t', 'nat', '-D', ...spec], { reject: false });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A run killed during a download leaves a `.partial-<pid>` file that no later run reads. */
async function removePartialsOfDeadRuns(dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const pid = /\.partial-(\d+)$/.exec(entry.name)?.[1];
    if (entry.isFile() && pid !== undefined && !isAlive(Number(pid))) await rm(path.join(entry.parentPath, entry.name), { force: true });
  }
}
