import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ensureDebianPackages } from '../../../src/apply/host/packages.js';
import { deplCacheDir } from '../../../src/apply/local/cache-dir.js';
import { withFileLock } from '../../../src/apply/local/file-lock.js';
import type { Logger } from '../../../src/util/log.js';

/**
 * Debian's real Keystone 22 (uwsgi, sqlite) and Heat 19 (`heat-all`: API and engine in one process,
 * sqlite, fake:// messaging) on loopback, started by the tests and stopped by pid. The settings below are
 * the ones without which they fail on these machines (../../shared/reference/openstack-real.md): ONE uwsgi
 * thread, sqlite in WAL mode, `Connection: close`, workers = 1, /usr/bin/python3 first in PATH.
 */

const KEYSTONE_PACKAGES = ['keystone', 'uwsgi-core', 'uwsgi-plugin-python3'];
const HEAT_PACKAGES = ['python3-heat', 'heat-api', 'heat-engine'];
const ADMIN_PASSWORD = 'depl-test-admin';

/** PATH with Debian's python first: a pyenv shim must not run OpenStack's scripts. */
function serviceEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/_proxy$/i.test(k) && !/^OS_/.test(k)) env[k] = v;
  return { ...env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin`, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...extra };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function packageVersion(name: string): Promise<string> {
  const result = await execa('dpkg-query', ['-W', '-f=${Version}', name]);
  return String(result.stdout).replace(/[^A-Za-z0-9.+~-]/g, '_');
}

async function waitFor(what: string, check: () => Promise<boolean>, child: ResultPromise, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.then(() => (exited = true), () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${what} exited while starting; its log:\n${(await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n')}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs / 1000} s; log: ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function answers(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await response.arrayBuffer();
  return response.status < 500;
}

async function stop(child: ResultPromise | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await child.catch(() => undefined);
  clearTimeout(timer);
}

function keystoneConf(dir: string): string {
  return `[DEFAULT]
log_dir = ${dir}
[database]
connection = sqlite:///${dir}/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = ${dir}/fernet-keys
[fernet_receipts]
key_repository = ${dir}/fernet-keys
[credential]
key_repository = ${dir}/credential-keys
# Keystone's own cache in its one process, as clouds run it (with memcached): without it every request paid for
# rebuilding its token from the database (0.9 s against 0.06 s for an unauthenticated one at load 16), Heat's
# checks of each request's token included. A revocation empties it, so a revoked token is refused at once.
[cache]
enabled = true
backend = dogpile.cache.memory
# bcrypt's fewest rounds for the users the tests make: each hash or password login cost 1.5 s more at load 16
[identity]
password_hash_rounds = 4
`;
}

/**
 * A bootstrapped Keystone database (schema, admin user/project/roles) and its keys, made once per
 * package version under the cache dir: db_sync and bootstrap take most of Keystone's start-up.
 */
async function bootstrappedKeystone(log: Logger): Promise<string> {
  const cache = path.join(deplCacheDir(), 'openstack', `keystone-${await packageVersion('keystone')}`);
  try {
    await readFile(path.join(cache, 'keystone.db'));
    return cache;
  } catch {
    // not made yet
  }
  await mkdir(path.dirname(cache), { recursive: true });
  return withFileLock(`${cache}.lock`, 'the Keystone database cache', log, async () => {
    try {
      await readFile(path.join(cache, 'keystone.db'));
      return cache;
    } catch {
      // still not there: make it
    }
    const work = await mkdtemp(`${cache}.tmp-`);
    await writeFile(path.join(work, 'keystone.conf'), keystoneConf(work));
    const manage = (args: string[]) => execa('keystone-manage', ['--config-file', path.join(work, 'keystone.conf'), ...args], { env: serviceEnv(), extendEnv: false });
    log.step('bootstrapping a Keystone database (once; cached)');
    await manage(['db_sync']);
    const user = os.userInfo().username;
    await manage(['fernet_setup', '--keystone-user', user, '--keystone-group', user]);
    await manage(['credential_setup', '--keystone-user', user, '--keystone-group', user]);
    await manage(['bootstrap', '--bootstrap-password', ADMIN_PASSWORD, '--bootstrap-project-name', 'admin', '--bootstrap-username', 'admin']);
    await rm(path.join(work, 'keystone.conf'));
    await rm(path.join(work, 'keystone-manage.log'), { force: true });
    await rename(work, cache);
    return cache;
  });
}

export interface ApplicationCredential {
  id: string;
  secret: string;
}

export interface RealKeystone {
  /** http://127.0.0.1:<port>/v3 */
  authUrl: string;
  /** http://127.0.0.1:<port> (unversioned: depl finds v3 through the version document) */
  baseUrl: string;
  regions: [string, string];
  projectId: string;
  projectName: string;
  user: { name: string; password: string; id: string };
  restricted: ApplicationCredential;
  unrestricted: ApplicationCredential;
  /** A token of the admin user (project admin). */
  adminToken(): Promise<string>;
  /** Registers a service with one URL per region and interface. */
  addService(type: string, name: string, urls: (region: string, iface: string) => string): Promise<void>;
  /** Revokes every token the user holds now (as a password change or an operator would). */
  revokeUserTokens(tokens: string[]): Promise<void>;
  /** Keystone's own API, as admin. */
  admin(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: unknown; headers: Headers }>;
  stop(): Promise<void>;
}

/**
 * Where Keystone will listen and the service user Heat signs in with, chosen before either starts: heat-all
 * needs only these in its configuration (it asks Keystone nothing until a request comes), so it starts beside
 * Keystone instead of after it (each takes 20-50 s to answer on a busy 2-core machine).
 */
export interface KeystonePlan {
  port: number;
  heatUser: { name: string; password: string };
}

export async function planKeystone(): Promise<KeystonePlan> {
  return { port: await freePort(), heatUser: { name: 'heat', password: `heat-${Math.random().toString(36).slice(2)}` } };
}

/** What heat-all's configuration takes from Keystone (known from its plan before Keystone answers). */
export interface HeatKeystone {
  authUrl: string;
  baseUrl: string;
  region: string;
  heatUser: { name: string; password: string };
}

const KEYSTONE_REGIONS: [string, string] = ['RegionOne', 'RegionTwo'];

export function heatKeystoneFor(plan: KeystonePlan): HeatKeystone {
  const baseUrl = `http://127.0.0.1:${plan.port}`;
  return { authUrl: `${baseUrl}/v3`, baseUrl, region: KEYSTONE_REGIONS[0], heatUser: plan.heatUser };
}

export async function startKeystone(log: Logger, plan?: KeystonePlan): Promise<RealKeystone> {
  const { port, heatUser: heatServiceUser } = plan ?? (await planKeystone());
  await ensureDebianPackages(KEYSTONE_PACKAGES, log);
  const cache = await bootstrappedKeystone(log);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-keystone-'));
  await cp(cache, dir, { recursive: true });
  await writeFile(path.join(dir, 'keystone.conf'), keystoneConf(dir));
  // sqlite without WAL answers "database is locked" (HTTP 500) now and then
  await execa('/usr/bin/python3', ['-c', `import sqlite3; sqlite3.connect(${JSON.stringify(path.join(dir, 'keystone.db'))}).execute('PRAGMA journal_mode=WAL')`]);
  const logFile = path.join(dir, 'uwsgi.log');
  const child = execa(
    'uwsgi',
    ['--plugin', 'python3', '--http-socket', `127.0.0.1:${port}`, '--wsgi-file', '/usr/bin/keystone-wsgi-public', '--master', '--processes', '1', '--threads', '1',
      '--add-header', 'Connection: close', '--die-on-term', '--logto', logFile],
    { env: serviceEnv({ OS_KEYSTONE_CONFIG_FILES: path.join(dir, 'keystone.conf') }), extendEnv: false, reject: false, cleanup: true, stdio: 'ignore' },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  const authUrl = `${baseUrl}/v3`;
  try {
    await waitFor('keystone (uwsgi)', () => answers(`${authUrl}/`), child, logFile, 120_000);
  } catch (error) {
    await stop(child);
    throw error;
  }

  let adminTokenValue: string | undefined;
  async function adminToken(): Promise<string> {
    if (adminTokenValue) return adminTokenValue;
    const response = await fetch(`${authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: ADMIN_PASSWORD } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
    });
    await response.arrayBuffer();
    if (response.status !== 201) throw new Error(`Keystone refused the admin login: HTTP ${response.status}`);
    adminTokenValue = response.headers.get('x-subject-token')!;
    return adminTokenValue;
  }
  async function admin(method: string, pathname: string, body?: unknown, token?: string) {
    const response = await fetch(`${authUrl}${pathname}`, {
      method,
      headers: { 'x-auth-token': token ?? (await adminToken()), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (response.status >= 400) throw new Error(`Keystone: ${method} ${pathname} -> HTTP ${response.status}: ${text}`);
    return { status: response.status, body: parsed, headers: response.headers };
  }
  const id = (r: { body: unknown }, key: string) => ((r.body as Record<string, { id: string }>)[key]!).id;

  const regions = KEYSTONE_REGIONS;
  for (const region of regions) await admin('POST', '/regions', { region: { id: region } });
  const roles = (await admin('GET', '/roles')).body as { roles: Array<{ id: string; name: string }> };
  const member = roles.roles.find((r) => r.name === 'member')!.id;
  const adminRole = roles.roles.find((r) => r.name === 'admin')!.id;
  const projectName = 'depl-project';
  const projectId = id(await admin('POST', '/projects', { project: { name: projectName, domain_id: 'default' } }), 'project');
  const user = { name: 'operator', password: `pw-${Math.random().toString(36).slice(2)}` };
  const userId = id(await admin('POST', '/users', { user: { name: user.name, password: user.password, domain_id: 'default', default_project_id: projectId } }), 'user');
  await admin('PUT', `/projects/${projectId}/users/${userId}/roles/${member}`);
  // Heat's service user
  const serviceProject = id(await admin('POST', '/projects', { project: { name: 'service', domain_id: 'default' } }), 'project');
  const heatUser = id(await admin('POST', '/users', { user: { name: heatServiceUser.name, password: heatServiceUser.password, domain_id: 'default' } }), 'user');
  await admin('PUT', `/projects/${serviceProject}/users/${heatUser}/roles/${adminRole}`);
  // heat_stack_owner is what Heat's policy lets manage stacks besides member; heat_stack_user is for its own users
  await admin('POST', '/roles', { role: { name: 'heat_stack_user' } });

  // the user's own token makes the application credentials (a user may only make their own)
  const userToken = await (async () => {
    const response = await fetch(`${authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { id: userId, password: user.password } } }, scope: { project: { id: projectId } } } }),
    });
    await response.arrayBuffer();
    return response.headers.get('x-subject-token')!;
  })();
  const credential = async (name: string, unrestricted: boolean): Promise<ApplicationCredential> => {
    const made = (await admin('POST', `/users/${userId}/application_credentials`, { application_credential: { name, unrestricted } }, userToken)).body as { application_credential: { id: string; secret: string } };
    return { id: made.application_credential.id, secret: made.application_credential.secret };
  };
  const restricted = await credential('depl-restricted', false);
  const unrestricted = await credential('depl-unrestricted', true);

  const keystone: RealKeystone & { dir: string } = {
    authUrl,
    baseUrl,
    regions,
    projectId,
    projectName,
    user: { ...user, id: userId },
    restricted,
    unrestricted,
    dir,
    adminToken,
    admin: (method, pathname, body) => admin(method, pathname, body),
    async addService(type, name, urls) {
      const service = id(await admin('POST', '/services', { service: { type, name } }), 'service');
      for (const region of regions) {
        for (const iface of ['public', 'internal', 'admin']) {
          await admin('POST', '/endpoints', { endpoint: { service_id: service, interface: iface, region_id: region, url: urls(region, iface) } });
        }
      }
    },
    async revokeUserTokens(tokens) {
      for (const token of tokens) await fetch(`${authUrl}/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': await adminToken(), 'x-subject-token': token } }).then((r) => r.arrayBuffer());
    },
    async stop() {
      await stop(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await keystone.addService('identity', 'keystone', (region, iface) => (iface === 'internal' ? `http://localhost:${port}/v3` : authUrl));
  return keystone;
}

export interface RealHeat {
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * heat-all behind the Keystone of that plan (heatKeystoneFor), which need not answer yet. The orchestration
 * endpoints are registered by the caller (the URLs per region and interface are the test's to choose); `port`
 * is where heat-api listens.
 */
export async function startHeat(keystone: HeatKeystone, log: Logger, port?: number): Promise<RealHeat> {
  await ensureDebianPackages(HEAT_PACKAGES, log);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-heat-'));
  const heatPort = port ?? (await freePort());
  const auth = (section: string) => `[${section}]
auth_type = password
auth_url = ${keystone.authUrl}
username = ${keystone.heatUser.name}
password = ${keystone.heatUser.password}
user_domain_id = default
${section === 'trustee' ? '' : 'project_name = service\nproject_domain_id = default\n'}`;
  await writeFile(path.join(dir, 'heat.conf'), `[DEFAULT]
transport_url = fake://
num_engine_workers = 1
# measured here: with the convergence engine, Heat 19 on sqlite fails a ResourceGroup's outputs after an
# update ("ResourcePropertiesData with id N not found") for good; the legacy engine does not
convergence_engine = false
log_dir = ${dir}
region_name_for_services = ${keystone.region}
[database]
connection = sqlite:///${dir}/heat.db
[heat_api]
bind_host = 127.0.0.1
bind_port = ${heatPort}
workers = 1
[heat_all]
enabled_services = api,engine
${auth('keystone_authtoken')}www_authenticate_uri = ${keystone.authUrl}
service_token_roles_required = false
# no cache of validated tokens: a revoked token is refused at once, as with memcache on a real cloud
token_cache_time = -1
${auth('trustee')}
[clients_keystone]
auth_uri = ${keystone.baseUrl}
[clients]
endpoint_type = publicURL
[oslo_messaging_notifications]
driver = noop
`);
  const env = serviceEnv();
  await execa('heat-manage', ['--config-file', path.join(dir, 'heat.conf'), 'db_sync'], { env, extendEnv: false });
  await execa('/usr/bin/python3', ['-c', `import sqlite3; sqlite3.connect(${JSON.stringify(path.join(dir, 'heat.db'))}).execute('PRAGMA journal_mode=WAL')`]);
  const logFile = path.join(dir, 'heat-all.log');
  const child = execa('heat-all', ['--config-file', path.join(dir, 'heat.conf')], { env, extendEnv: false, reject: false, cleanup: true, stdio: 'ignore' });
  try {
    await waitFor('heat-all', () => answers(`http://127.0.0.1:${heatPort}/`), child, logFile, 180_000);
  } catch (error) {
    await stop(child);
    throw error;
  }
  return {
    port: heatPort,
    logFile,
    async stop() {
      await stop(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
