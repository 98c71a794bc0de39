import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { request } from 'undici';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { createLogger } from '../../src/util/log.js';
import { freePort } from './redis.js';
import { waitFor } from './wait.js';

/**
 * A real OpenStack Swift (Debian's swift-proxy, swift-account, swift-container, swift-object) for one test file:
 * rings of one replica on one "device" (a folder in a temp dir), every server on its own free loopback port,
 * tempauth in the proxy (its tokens live in a memcached of our own, on a free port too). Nothing under /etc/swift is
 * used: every server is given `swift_dir` = the temp dir, which also holds its swift.conf. Stopped by pid.
 */
export interface TestSwift {
  /** tempauth's v1 auth URL: GET it with X-Auth-User / X-Auth-Key for X-Auth-Token and X-Storage-Url. */
  authUrl: string;
  user: string;
  key: string;
  /** The account's storage URL (http://127.0.0.1:<proxy>/v1/AUTH_test). */
  storageUrl: string;
  dir: string;
  /** With the expirer: one sweep of swift-container-updater, so the expirer's account lists every task container. */
  updateContainers?(): Promise<void>;
  stop(): Promise<void>;
}

export const SWIFT_PACKAGES = ['swift', 'swift-proxy', 'swift-object', 'swift-container', 'swift-account', 'memcached'];

export async function ensureSwift(): Promise<void> {
  await ensureDebianPackages(SWIFT_PACKAGES, createLogger());
}

/** Swift's proxy with keystonemiddleware: tokens checked by `authtoken` against a Keystone, accounts opened by roles. */
export interface SwiftKeystoneOptions {
  /** Keystone's v3 URL: where authtoken logs its service user in and, through that token's catalog, validates tokens. */
  authUrl: string;
  /** The user authtoken validates tokens as (Keystone lets a service or admin role validate anyone's token). */
  serviceUser: { name: string; password: string; projectName: string; domainName?: string };
  /** The catalog's identity endpoint authtoken uses (keystonemiddleware's default is internal). */
  interface?: 'public' | 'internal' | 'admin';
  regionName?: string;
  /** Roles that own their project's account AUTH_<project id> (keystoneauth's operator_roles; default admin, member). */
  operatorRoles?: string[];
  /** A token of a user with an operator role in `projectId`: the proxy is ready once it opens that account with it. */
  readyToken(): Promise<string>;
  projectId: string;
}

export interface TestKeystoneSwift {
  /** http://127.0.0.1:<port> of the proxy behind Keystone */
  proxyUrl: string;
  /** A project's account: http://127.0.0.1:<port>/v1/AUTH_<project id> (what a catalog's object-store names). */
  accountUrl(projectId: string): string;
}

export const SWIFT_KEYSTONE_PACKAGES = [...SWIFT_PACKAGES, 'python3-keystonemiddleware'];

/**
 * Swift's object expirer (Debian's swift-object-expirer: its own package, with /etc/swift/object-expirer.conf,
 * which is not used here), as a daemon. The proxy queues every object written with X-Delete-At in the hidden
 * account .expiring_objects (a container per time slot and object hash, made by the container server when the
 * object server records the task); the expirer lists that account every `intervalSeconds` and deletes what is
 * due, which is what takes an expired object out of its container's listing (the object server alone only
 * answers 404 for it). The account learns of those containers only from swift-container-updater (the container
 * server does not tell it when it makes one on its own): without it the expirer finds nothing. Run as a daemon
 * here its sweeps took from 0 to more than 25 s (forked per device, on the loaded 2-core machine), so a test runs
 * one sweep itself when it needs one: TestSwift.updateContainers (swift-container-updater --once).
 */
export interface ExpirerOptions {
  intervalSeconds: number;
}

export const SWIFT_EXPIRER_PACKAGES = [...SWIFT_PACKAGES, 'swift-object-expirer'];

/**
 * The test Swift. With `keystone`, a second proxy on the same account, container and object servers runs
 * Keystone in front of them instead of tempauth, as Nectar's does: `authtoken` (keystonemiddleware: every token
 * validated with GET /v3/auth/tokens, nothing cached, so a revoked token is refused at once) and `keystoneauth`
 * (the token's roles in its project open AUTH_<project id>). One more Python process, not a second Swift.
 */
export async function startSwift(options: { keystone?: SwiftKeystoneOptions; expirer?: ExpirerOptions } = {}): Promise<TestSwift & { keystone?: TestKeystoneSwift }> {
  let key = '';
  const tempauth: SwiftProxy = {
    name: 'proxy',
    pipeline: 'catch_errors cache tempauth proxy-server',
    filters: (dir) => {
      key = `key-${path.basename(dir)}`;
      return ['[filter:tempauth]', 'use = egg:swift#tempauth', `user_test_tester = ${key} .admin`, 'token_life = 3600'];
    },
    ready: async (proxyUrl) => {
      const response = await request(`${proxyUrl}/auth/v1.0`, { headers: { 'x-auth-user': 'test:tester', 'x-auth-key': key } });
      await response.body.dump();
      if (response.statusCode !== 200) return { last: `auth answered ${response.statusCode}` };
      // the account and container servers may still be starting: the account answers once they are up
      return headAccount(String(response.headers['x-storage-url']), String(response.headers['x-auth-token']));
    },
  };
  const keystone = options.keystone;
  if (keystone !== undefined) await ensureDebianPackages(SWIFT_KEYSTONE_PACKAGES, createLogger());
  if (options.expirer !== undefined) await ensureDebianPackages(SWIFT_EXPIRER_PACKAGES, createLogger());
  const started = await startSwiftServers([tempauth, ...(keystone === undefined ? [] : [keystoneProxy(keystone)])], options.expirer);
  return {
    authUrl: `${started.proxies[0]!.url}/auth/v1.0`, user: 'test:tester', key, storageUrl: started.proxies[0]!.storageUrl, dir: started.dir, stop: started.stop,
    ...(options.expirer === undefined ? {} : {
      updateContainers: async () => {
        await execa('swift-container-updater', [path.join(started.dir, 'container-updater.conf'), '--once'], { cwd: started.dir, timeout: 60_000 });
      },
    }),
    ...(keystone === undefined ? {} : { keystone: { proxyUrl: started.proxies[1]!.url, accountUrl: (projectId: string) => `${started.proxies[1]!.url}/v1/AUTH_${projectId}` } }),
  };
}

function keystoneProxy(options: SwiftKeystoneOptions): SwiftProxy {
  const user = options.serviceUser;
  return {
    name: 'proxy-keystone',
    pipeline: 'catch_errors cache authtoken keystoneauth proxy-server',
    filters: () => [
      '[filter:authtoken]', 'paste.filter_factory = keystonemiddleware.auth_token:filter_factory',
      'auth_type = password', `auth_url = ${options.authUrl}`, `www_authenticate_uri = ${options.authUrl}`,
      `username = ${user.name}`, `password = ${user.password}`, `project_name = ${user.projectName}`,
      `user_domain_name = ${user.domainName ?? 'Default'}`, `project_domain_name = ${user.domainName ?? 'Default'}`,
      `interface = ${options.interface ?? 'public'}`, ...(options.regionName === undefined ? [] : [`region_name = ${options.regionName}`]),
      // no cache of validated tokens: a revoked or expired token is refused at once
      'token_cache_time = -1', 'delay_auth_decision = false', 'service_token_roles_required = false',
      '[filter:keystoneauth]', 'use = egg:swift#keystoneauth', `operator_roles = ${(options.operatorRoles ?? ['admin', 'member']).join(', ')}`,
    ],
    ready: async (proxyUrl) => headAccount(`${proxyUrl}/v1/AUTH_${options.projectId}`, await options.readyToken()),
  };
}

async function headAccount(url: string, token: string): Promise<{ storageUrl?: string; last: string }> {
  const head = await request(url, { method: 'HEAD', headers: { 'x-auth-token': token } });
  await head.body.dump();
  return { storageUrl: head.statusCode >= 200 && head.statusCode < 300 ? url : undefined, last: `HEAD ${url} answered ${head.statusCode}` };
}

interface SwiftProxy {
  /** Its config file and log: <name>-server.conf, <name>.log. */
  name: string;
  /** The proxy's pipeline, and the filter sections it needs besides catch_errors and cache. */
  pipeline: string;
  filters(dir: string): string[];
  /** One readiness probe: the account URL once the proxy opens it. */
  ready(proxyUrl: string): Promise<{ storageUrl?: string; last: string }>;
}

/** The account, container and object servers, a memcached and the proxies, each on a free loopback port, in a temp dir. */
async function startSwiftServers(proxies: SwiftProxy[], expirer?: ExpirerOptions): Promise<{ proxies: Array<{ url: string; storageUrl: string }>; dir: string; stop(): Promise<void> }> {
  await ensureSwift();
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-swift-'));
  const children: ChildProcess[] = [];
  try {
    const [account, container, object, memcache, ...proxyPorts] = await uniquePorts(4 + proxies.length);
    const devices = path.join(dir, 'devices');
    await mkdir(path.join(devices, 'd1'), { recursive: true });
    await writeFile(path.join(dir, 'swift.conf'), [
      '[swift-hash]', `swift_hash_path_suffix = ${path.basename(dir)}`, 'swift_hash_path_prefix = depl-test',
      '[storage-policy:0]', 'name = Policy-0', 'default = yes', '',
    ].join('\n'));
    // the three rings in one Python (each start costs seconds on a busy machine): part power 4, one replica,
    // min_part_hours 0, one device: the smallest ring Swift accepts
    await execa('/usr/bin/python3', ['-c', BUILD_RINGS, dir, JSON.stringify({ account, container, object })]);
    const user = process.getuid?.() === 0 ? 'root' : (await execa('id', ['-un'])).stdout.trim();
    const common = (port: number) => [
      '[DEFAULT]', 'bind_ip = 127.0.0.1', `bind_port = ${port}`, `swift_dir = ${dir}`, `devices = ${devices}`, 'mount_check = false',
      'workers = 0', `user = ${user}`, 'log_level = WARNING', // no /dev/log in a container: syslog falls back to UDP and drops lines
    ];
    const server = (kind: string, port: number) => [...common(port), '[pipeline:main]', `pipeline = ${kind}-server`, `[app:${kind}-server]`, `use = egg:swift#${kind}`, ''].join('\n');
    await writeFile(path.join(dir, 'account-server.conf'), server('account', account!));
    await writeFile(path.join(dir, 'container-server.conf'), server('container', container!));
    await writeFile(path.join(dir, 'object-server.conf'), server('object', object!));
    for (const [i, proxy] of proxies.entries()) {
      await writeFile(path.join(dir, `${proxy.name}-server.conf`), [
        ...common(proxyPorts[i]!),
        '[pipeline:main]', `pipeline = ${proxy.pipeline}`,
        '[app:proxy-server]', 'use = egg:swift#proxy', 'account_autocreate = true',
        '[filter:catch_errors]', 'use = egg:swift#catch_errors',
        '[filter:cache]', 'use = egg:swift#memcache', `memcache_servers = 127.0.0.1:${memcache}`,
        ...proxy.filters(dir),
        '',
      ].join('\n'));
    }
    children.push(launch('memcached', ['-l', '127.0.0.1', '-p', String(memcache), '-U', '0', '-u', user, '-m', '16'], dir, 'memcached'));
    for (const kind of ['account', 'container', 'object']) children.push(launch(`swift-${kind}-server`, [path.join(dir, `${kind}-server.conf`)], dir, kind));
    for (const proxy of proxies) children.push(launch('swift-proxy-server', [path.join(dir, `${proxy.name}-server.conf`)], dir, proxy.name));
    if (expirer !== undefined) {
      // the updater (run by updateContainers) reads the container server's config with its own section; recon files
      // (stats) stay in the temp dir
      await writeFile(path.join(dir, 'container-updater.conf'), `${server('container', container!)}[container-updater]\n${[
        `interval = ${expirer.intervalSeconds}`, 'containers_per_second = 1000', `recon_cache_path = ${dir}`, 'log_level = INFO',
        // an account update that fails (a busy machine's slow answer) would silence the account for 60 s
        'account_suppression_time = 0', 'conn_timeout = 5', 'node_timeout = 10',
      ].join('\n')}\n`);
      // the expirer's own internal client: a proxy app in its process, reading the same rings
      await writeFile(path.join(dir, 'object-expirer.conf'), [
        '[DEFAULT]', `swift_dir = ${dir}`, `user = ${user}`, 'log_level = INFO',
        '[object-expirer]', `interval = ${expirer.intervalSeconds}`, `report_interval = ${expirer.intervalSeconds}`, 'concurrency = 1', `recon_cache_path = ${dir}`,
        // no memcache in its pipeline: nothing it reads is cached (a proxy caches an account's or container's absence,
        // and the expirer's first passes run before the updater has told the account about its task containers)
        '[pipeline:main]', 'pipeline = catch_errors proxy-server',
        '[app:proxy-server]', 'use = egg:swift#proxy',
        '[filter:catch_errors]', 'use = egg:swift#catch_errors',
        '',
      ].join('\n'));
      // -v: its log lines on stderr, kept in <dir>/object-expirer.log for a failing test's message (expirerLog)
      children.push(launch('swift-object-expirer', [path.join(dir, 'object-expirer.conf'), '-v'], dir, 'object-expirer'));
    }
    // each server is a Python process that takes a few seconds to start on an idle machine, far longer on a busy one
    const started = await Promise.all(proxies.map(async (proxy, i) => {
      const url = `http://127.0.0.1:${proxyPorts[i]}`;
      let last = 'no answer yet';
      const storageUrl = await waitFor(`the test Swift's ${proxy.name} to open its account`, async () => {
        for (const child of children) if (child.exitCode !== null) throw new Error(`${child.spawnargs[0]} exited with ${child.exitCode}: ${await logTail(dir, proxies)}`);
        try {
          const probe = await proxy.ready(url);
          last = probe.last;
          return probe.storageUrl;
        } catch (error) {
          last = (error as Error).message;
          return undefined;
        }
      }, 120_000, 100).catch(async (error: Error) => {
        throw new Error(`${error.message} (last: ${last}); server output:\n${await logTail(dir, proxies)}`);
      });
      return { url, storageUrl };
    }));
    return {
      proxies: started, dir,
      async stop() {
        await Promise.all(children.map(terminate));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(children.map(terminate));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

const BUILD_RINGS = [
  'import json, sys',
  'from swift.common.ring import RingBuilder',
  'for name, port in json.loads(sys.argv[2]).items():',
  '    builder = RingBuilder(4, 1, 0)',
  "    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1', 'weight': 1})",
  '    builder.rebalance()',
  "    builder.get_ring().save(f'{sys.argv[1]}/{name}.ring.gz')",
].join('\n');

function launch(command: string, args: string[], dir: string, name: string): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  // the servers' own errors (a config they refuse) go to stderr: kept for the failure message
  child.stderr!.on('data', (chunk: Buffer) => void writeFile(path.join(dir, `${name}.log`), chunk, { flag: 'a' }).catch(() => undefined));
  return child;
}

/** The last lines the expirer logged (for a test that waited on it in vain). */
export async function expirerLog(swift: TestSwift, lines = 15): Promise<string> {
  const parts: string[] = [];
  for (const name of ['object-expirer']) {
    const text = await readFile(path.join(swift.dir, `${name}.log`), 'utf8').catch(() => '(no log)');
    parts.push(`${name}:\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`);
  }
  return parts.join('\n');
}

async function logTail(dir: string, proxies: SwiftProxy[]): Promise<string> {
  const parts: string[] = [];
  for (const name of [...proxies.map((proxy) => proxy.name), 'account', 'container', 'object', 'object-expirer', 'memcached']) {
    const text = await readFile(path.join(dir, `${name}.log`), 'utf8').catch(() => '');
    if (text !== '') parts.push(`${name}: ${text.split('\n').slice(-5).join(' | ')}`);
  }
  return parts.join('\n') || '(no output)';
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const killed = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(killed);
}

async function uniquePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
