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
  stop(): Promise<void>;
}

export const SWIFT_PACKAGES = ['swift', 'swift-proxy', 'swift-object', 'swift-container', 'swift-account', 'memcached'];

export async function ensureSwift(): Promise<void> {
  await ensureDebianPackages(SWIFT_PACKAGES, createLogger());
}

export async function startSwift(): Promise<TestSwift> {
  await ensureSwift();
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-swift-'));
  const children: ChildProcess[] = [];
  try {
    const [proxy, account, container, object, memcache] = await uniquePorts(5);
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
    const key = `key-${path.basename(dir)}`;
    await writeFile(path.join(dir, 'account-server.conf'), server('account', account!));
    await writeFile(path.join(dir, 'container-server.conf'), server('container', container!));
    await writeFile(path.join(dir, 'object-server.conf'), server('object', object!));
    await writeFile(path.join(dir, 'proxy-server.conf'), [
      ...common(proxy!),
      '[pipeline:main]', 'pipeline = catch_errors cache tempauth proxy-server',
      '[app:proxy-server]', 'use = egg:swift#proxy', 'account_autocreate = true',
      '[filter:catch_errors]', 'use = egg:swift#catch_errors',
      '[filter:cache]', 'use = egg:swift#memcache', `memcache_servers = 127.0.0.1:${memcache}`,
      '[filter:tempauth]', 'use = egg:swift#tempauth', `user_test_tester = ${key} .admin`, 'token_life = 3600',
      '',
    ].join('\n'));
    children.push(launch('memcached', ['-l', '127.0.0.1', '-p', String(memcache), '-U', '0', '-u', user, '-m', '16'], dir, 'memcached'));
    for (const kind of ['account', 'container', 'object']) children.push(launch(`swift-${kind}-server`, [path.join(dir, `${kind}-server.conf`)], dir, kind));
    children.push(launch('swift-proxy-server', [path.join(dir, 'proxy-server.conf')], dir, 'proxy'));
    const authUrl = `http://127.0.0.1:${proxy}/auth/v1.0`;
    // each server is a Python process that takes a few seconds to start on an idle machine, far longer on a busy one
    let last = 'no answer yet';
    const storageUrl = await waitFor('the test Swift to hand out a token and list its account', async () => {
      for (const child of children) if (child.exitCode !== null) throw new Error(`${child.spawnargs[0]} exited with ${child.exitCode}: ${await logTail(dir)}`);
      try {
        const response = await request(authUrl, { headers: { 'x-auth-user': 'test:tester', 'x-auth-key': key } });
        await response.body.dump();
        if (response.statusCode !== 200) {
          last = `auth answered ${response.statusCode}`;
          return undefined;
        }
        // the account and container servers may still be starting: the account answers once they are up
        const token = String(response.headers['x-auth-token']);
        const url = String(response.headers['x-storage-url']);
        const head = await request(url, { method: 'HEAD', headers: { 'x-auth-token': token } });
        await head.body.dump();
        last = `HEAD ${url} answered ${head.statusCode}`;
        return head.statusCode >= 200 && head.statusCode < 300 ? url : undefined;
      } catch (error) {
        last = (error as Error).message;
        return undefined;
      }
    }, 120_000, 100).catch(async (error: Error) => {
      throw new Error(`${error.message} (last: ${last}); server output:\n${await logTail(dir)}`);
    });
    return {
      authUrl, user: 'test:tester', key, storageUrl, dir,
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

async function logTail(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ['proxy', 'account', 'container', 'object', 'memcached']) {
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
