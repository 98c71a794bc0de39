import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LocalLauncher } from '../../src/apply/local/launcher.js';
import { ensureNodeImage } from '../../src/apply/local/node-image.js';
import { ensureKeyPair } from '../../src/apply/ssh-keypair.js';
import { loadConfig } from '../../src/config/load.js';
import { openCluster } from '../../src/workflows/cluster.js';
import { HeatClient } from '../../src/apply/openstack/heat.js';
import { KeystoneSession } from '../../src/apply/openstack/keystone.js';
import { ApplicationCredentials } from '../../src/apply/openstack/application-credentials.js';
import { renewerCredentialRequest } from '../../src/plan/tls/renewer-credential.js';
import { createOpenStackProvider } from '../../src/apply/providers/openstack.js';
import type { CloudCredentials, OpenStackAuth } from '../../src/config/clouds.js';
import { parseConfig } from '../../src/config/load.js';
import { UserError } from '../../src/errors.js';
import { packagePath } from '../../src/util/paths.js';
import { createLogger, silentLogger, type Logger } from '../../src/util/log.js';
import { runCli } from '../support/cli.js';
import { isolatedEnv } from '../support/openstack-emulator/client.js';
import { startCloudServices, type CloudServices } from '../support/openstack-emulator/cloud-services.js';
import { startFaultProxy, type FaultProxy } from '../support/openstack-emulator/fault-proxy.js';
import { heatKeystoneFor, planKeystone, startHeat, startKeystone, type RealHeat, type RealKeystone } from '../support/openstack-real/services.js';
import { openStackProviderSettings } from '../../src/workflows/adapter-slices.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

async function freeSubnet(): Promise<string> {
  const used = new Set((await docker.listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet)));
  for (let tries = 0; tries < 200; tries += 1) {
    const subnet = `10.215.${Math.floor(Math.random() * 250) + 1}.0/24`;
    if (!used.has(subnet)) return subnet;
  }
  throw new Error('no free 10.215.X.0/24 subnet on this machine: remove old test networks (docker network ls)');
}

/** A TCP relay that counts connections: which catalog entry a client chose shows up here. */
async function relay(targetPort: number): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count += 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(socket).add(upstream);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Stacks without servers: what Heat does itself (trusts, events, outputs) with no Nova behind it. */
const NO_SERVERS = `heat_template_version: 2018-08-31
parameters:
  count: { type: number, default: 1 }
  wait: { type: number, default: 0 }
resources:
  slow:
    type: OS::Heat::TestResource
    properties: { value: ready, action_wait_secs: { create: { get_param: wait } } }
  nodes:
    type: OS::Heat::ResourceGroup
    properties:
      count: { get_param: count }
      resource_def: { type: OS::Heat::None }
outputs:
  node_names:
    value: [n0]
  node_addresses:
    value: [192.0.2.10]
`;

/**
 * Debian's real Keystone 22 and Heat 19 (heat-all) on loopback: depl's Keystone client, its endpoint
 * choice across two regions and three interfaces, re-login after a revoked token, Heat's trust refusal
 * for application credentials, Heat's own full check of a broken template, and `depl node-up` /
 * `node-down` end to end: real Heat orchestrates heat/stack.yaml against the Nova, Glance and Neutron
 * subset in test/support, whose servers are real local nodes bootstrapped into a swarm over SSH.
 */
describe('depl against real Keystone and real Heat', () => {
  const log: Logger = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;
  let keystone: RealKeystone;
  let heat: RealHeat;
  let dir: string;
  let cloud: CloudServices;
  let launcher: LocalLauncher;
  let nodeKey: { publicKey: string };
  const prefix = `dor-${randomBytes(3).toString('hex')}`;
  const serverIndex = new Map<string, number>();
  const relays = new Map<string, { port: number; connections: () => number; close: () => Promise<void> }>();
  /** Region two's public Heat endpoint: a load balancer that can fail as real ones do. */
  let balancer: FaultProxy;
  let heatStarting: Promise<RealHeat> | undefined;

  beforeAll(async () => {
    const heatPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    // heat-all starts beside Keystone (it asks Keystone nothing until a request comes); stopped in afterAll
    // whichever of them failed
    let keystonePlan = await planKeystone();
    while (keystonePlan.port === heatPort) keystonePlan = await planKeystone();
    heatStarting = startHeat(heatKeystoneFor(keystonePlan), createLogger(), heatPort);
    heatStarting.catch(() => {});
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-real-'));
    // Nova's servers are real local nodes that take the key depl uploads as its key pair
    launcher = new LocalLauncher(prefix, await freeSubnet(), docker);
    const nodesReady = Promise.all([ensureNodeImage(log), ensureKeyPair(path.join(dir, 'swarm', '.depl', 'id_ed25519'), 'depl-os-real'), launcher.ensureNetwork()]);
    nodesReady.catch(() => {});
    keystone = await startKeystone(createLogger(), keystonePlan);
    // region one's public endpoint is Heat itself; every other region/interface goes through a relay of its own
    for (const region of keystone.regions) {
      for (const iface of ['public', 'internal', 'admin']) {
        if (region === keystone.regions[0] && iface === 'public') continue;
        if (region === keystone.regions[1] && iface === 'public') {
          balancer = await startFaultProxy(heatPort);
          relays.set(`${region}/${iface}`, { port: balancer.port, connections: () => balancer.requests.length, close: () => balancer.close() });
          continue;
        }
        relays.set(`${region}/${iface}`, await relay(heatPort));
      }
    }
    const heatUrl = (region: string, iface: string) => {
      const port = region === keystone.regions[0] && iface === 'public' ? heatPort : relays.get(`${region}/${iface}`)!.port;
      return `http://127.0.0.1:${port}/v1/%(tenant_id)s`;
    };
    await keystone.addService('orchestration', 'heat', heatUrl);
    const [image, key] = await nodesReady;
    nodeKey = key;
    let next = 1;
    cloud = await startCloudServices({
      servers: {
        async createServer(name) {
          const index = next++;
          serverIndex.set(name, index);
          const { node } = await launcher.ensureNode(index, image.tag, nodeKey.publicKey);
          return { address: node.address };
        },
        async deleteServer(name) {
          const node = (await launcher.list()).find((n) => n.index === serverIndex.get(name));
          if (node) await launcher.removeNode(node);
        },
      },
    });
    await keystone.addService('compute', 'nova', () => cloud.endpoints.compute);
    await keystone.addService('image', 'glance', () => cloud.endpoints.image);
    await keystone.addService('network', 'neutron', () => cloud.endpoints.network);
    heat = await heatStarting;
  }, 600_000);

  afterAll(async () => {
    await (await heatStarting?.catch(() => undefined))?.stop();
    await keystone?.stop();
    await cloud?.close();
    await launcher?.removeAll();
    for (const r of relays.values()) await r.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const passwordAuth = (): OpenStackAuth => ({ type: 'password', username: keystone.user.name, userDomainName: 'Default', password: keystone.user.password, projectId: keystone.projectId });
  const credentials = (auth: OpenStackAuth, extra: Partial<CloudCredentials> = {}): CloudCredentials => ({ authUrl: keystone.authUrl, interface: 'public', auth, source: 'test', ...extra });

  it('logs in with a password (project by id, or by name through the unversioned URL) and with restricted and unrestricted application credentials', async () => {
    expect(await new KeystoneSession(credentials(passwordAuth())).projectId()).toBe(keystone.projectId);
    const byName = new KeystoneSession(credentials({ type: 'password', username: keystone.user.name, userDomainName: 'Default', password: keystone.user.password, projectName: keystone.projectName, projectDomainId: 'default' }, { authUrl: keystone.baseUrl }));
    expect(await byName.projectId()).toBe(keystone.projectId);
    for (const credential of [keystone.restricted, keystone.unrestricted]) {
      expect(await new KeystoneSession(credentials({ type: 'application_credential', id: credential.id, secret: credential.secret })).projectId()).toBe(keystone.projectId);
    }
    const wrong = await new KeystoneSession(credentials({ ...passwordAuth(), password: 'not-it' } as OpenStackAuth)).token().catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/^Keystone rejected the credentials from test: /);
  });

  it('the renewal task\'s DNS credential as real Keystone makes it: accepted as asked (member role, access rules, expiry), refused to a restricted login as depl says, deleted', async () => {
    // the emulator answers these as this does (test/unit/openstack/renewer-credential.test.ts)
    const session = new KeystoneSession(credentials(passwordAuth()));
    const asked = renewerCredentialRequest({ app: 'realcheck', domain: 'realcheck.example.org', zone: { id: 'zone1', name: 'example.org.' }, dnsEndpoint: 'https://dns.example.org:9001/', roles: await session.roles(), now: Date.now() });
    if ('refuse' in asked) throw new Error(asked.refuse);
    const owner = new ApplicationCredentials(session);
    const made = await owner.create(asked.body);
    try {
      const rules = asked.body.application_credential.access_rules as Array<Record<string, string>>;
      expect(made.accessRules).toEqual(rules.map((r) => ({ ...r, id: expect.any(String) })));
      expect(made.expiresAt).toBe(Date.parse(asked.body.application_credential.expires_at as string));
      expect((await owner.list()).find((c) => c.id === made.id)).toMatchObject({ name: asked.body.application_credential.name, expiresAt: made.expiresAt });
      // the same name again is Keystone's 409 (the planner counts up instead)
      expect(await owner.create(asked.body).catch((e: Error) => e.message)).toMatch(/HTTP 409.*Duplicate entry found with name depl-realcheck-tls-renewer-dns01-/);
      const restricted = new ApplicationCredentials(new KeystoneSession(credentials({ type: 'application_credential', id: keystone.restricted.id, secret: keystone.restricted.secret })));
      const refused = await restricted.create(asked.body).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(UserError);
      expect(refused).toMatchObject({ code: 'APP_CREDENTIAL_REFUSED', hint: expect.stringContaining('sign in with your password for node-up') });
    } finally {
      await owner.delete(made.id);
    }
    expect((await owner.list()).some((c) => c.id === made.id)).toBe(false);
  });

  it('picks the orchestration endpoint of the region and interface asked for, and talks to Heat through it', async () => {
    const project = keystone.projectId;
    for (const region of keystone.regions) {
      for (const iface of ['public', 'internal', 'admin']) {
        const session = new KeystoneSession(credentials(passwordAuth(), { regionName: region, interface: iface }));
        const relayed = relays.get(`${region}/${iface}`);
        expect(await session.endpoint('orchestration')).toBe(`http://127.0.0.1:${relayed?.port ?? heat.port}/v1/${project}`);
        const before = [...relays.values()].map((r) => r.connections());
        expect(await new HeatClient(session).find('no-such-stack')).toBeUndefined();
        const after = [...relays.values()].map((r) => r.connections());
        const used = [...relays.keys()].filter((_, i) => after[i]! > before[i]!);
        expect(used).toEqual(relayed ? [`${region}/${iface}`] : []);
      }
    }
  });

  // The next four cases run at the same time (it.concurrent): each has stacks, folders and tokens of its own, and much
  // of their time is waiting on Heat (the first one's stack takes 8 s): 34 s one after the other in CI; 84.6 s
  // one after the other and 61.3 s side by side at load ~20. The endpoint case above counts the relays'
  // connections and the node-up case below scripts the balancer's faults: those two run alone.
  it.concurrent('a token revoked while waiting for a stack: depl logs in again and the wait ends', async () => {
    const session = new KeystoneSession(credentials(passwordAuth(), { regionName: keystone.regions[0] }));
    const client = new HeatClient(session);
    const ref = await client.create('revoked-mid-wait', { template: NO_SERVERS, parameters: { wait: '8' } });
    const first = await session.token();
    const lines: string[] = [];
    const waitLog: Logger = { ...silentLogger, step: (m) => lines.push(m) };
    const waiting = client.waitFor(ref, { action: 'CREATE', timeoutMs: 120_000, log: waitLog, pollMs: 500, maxPollMs: 1000 });
    await keystone.revokeUserTokens([first]);
    const stack = await waiting;
    expect(stack?.stack_status).toBe('CREATE_COMPLETE');
    // the revoked token drew a 401, and the session logged in again
    expect(await session.token()).not.toBe(first);
    expect(lines).toContain('nodes CREATE_COMPLETE');
    await client.delete(ref);
    await client.waitFor(ref, { action: 'DELETE', timeoutMs: 120_000, log: silentLogger, pollMs: 500 });
  });

  async function project(name: string, cloud: Record<string, unknown>, provider: Record<string, unknown>, template = NO_SERVERS): Promise<string> {
    const folder = path.join(dir, name);
    await import('node:fs/promises').then((fs) => fs.mkdir(folder, { recursive: true }));
    await writeFile(path.join(folder, 'clouds.yaml'), stringify({ clouds: { real: { auth: { auth_url: keystone.authUrl, ...cloud }, region_name: keystone.regions[0] } } }));
    await writeFile(path.join(folder, 'stack.yaml'), template);
    await writeFile(path.join(folder, 'depl.yaml'), stringify({
      app: name,
      domain: 'crawler.localhost',
      provider: { type: 'openstack', cloud: 'real', template: 'stack.yaml', stack: `${name}-stack`, nodes: 1, timeoutMinutes: 5, ...provider },
      ssh: { user: 'root' },
      services: { api: { image: 'crawler:1' } },
    }));
    return folder;
  }

  it.concurrent('an application-credential stack create is refused (trusts) with depl\'s specific hint; the password one succeeds', async () => {
    // the CLI, with a restricted credential: exit 2, the hint, no stack
    const acFolder = await project('ac-restricted', { application_credential_id: keystone.restricted.id, application_credential_secret: keystone.restricted.secret }, {});
    const run = await runCli(['node-up', '--config', path.join(acFolder, 'depl.yaml')], { cwd: acFolder, env: isolatedEnv(acFolder), timeoutMs: 180_000 });
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('Heat refused to create or update stack ac-restricted-stack for an application-credential login (HTTP 403');
    expect(run.stderr).toContain('Keystone refuses trusts to application credentials');
    expect(run.stdout + run.stderr).not.toContain(keystone.restricted.secret);
    // Heat's engine log shows why: Keystone's own refusal of the trust
    expect(await readFile(heat.logFile, 'utf8')).toContain('Delegated tokens cannot manage trusts');

    // the provider, with an unrestricted credential: the same
    const unrestricted = await project('ac-unrestricted', { application_credential_id: keystone.unrestricted.id, application_credential_secret: keystone.unrestricted.secret }, {});
    const providerFor = async (folder: string, env: Record<string, string> = {}) => {
      const text = await readFile(path.join(folder, 'depl.yaml'), 'utf8');
      return createOpenStackProvider(openStackProviderSettings({ config: parseConfig(text), file: path.join(folder, 'depl.yaml'), root: folder }), log, { env: { ...env }, cwd: folder, interactive: false, pollMs: 500 });
    };
    const refused = await (await providerFor(unrestricted)).up(1, log).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as UserError).code).toBe('OPENSTACK_APP_CREDENTIAL_TRUST');

    // a password login (from OS_PASSWORD) makes the stack and reads the nodes from its outputs
    const pw = await project('password', { username: keystone.user.name, user_domain_name: 'Default', project_id: keystone.projectId }, {});
    const provider = await providerFor(pw, { OS_PASSWORD: keystone.user.password });
    expect(await provider.up(1, log)).toEqual([{ name: 'n0', address: '192.0.2.10', fresh: true }]);
    const plan = await provider.plan!(3, log);
    expect(plan.action).toBe('update');
    expect(plan.resources.updated).toContain('nodes (OS::Heat::ResourceGroup)');
    await provider.down(log);
    expect(await provider.list(log)).toEqual([]);
  });

  it.concurrent('the stack owner\'s restricted application credential updates a stack a password login made: Heat makes no trust for its trustor', async () => {
    // what the autoscale controller does to a pool's count (src/apply/openstack/pool-scaler.ts), and the emulator copies
    const owner = new HeatClient(new KeystoneSession(credentials(passwordAuth())));
    const ref = await owner.create(`ac-update-${randomBytes(2).toString('hex')}`, { template: NO_SERVERS, parameters: { count: '1' } });
    await owner.waitFor(ref, { action: 'CREATE', timeoutMs: 120_000, log: silentLogger, pollMs: 500 });
    const client = new HeatClient(new KeystoneSession(credentials({ type: 'application_credential', id: keystone.restricted.id, secret: keystone.restricted.secret })));
    const marker = await client.lastEventId(ref);
    await client.update(ref, { parameters: { count: '2' } });
    const stack = await client.waitFor(ref, { action: 'UPDATE', timeoutMs: 120_000, log: silentLogger, pollMs: 500, marker });
    expect([stack?.stack_status, stack?.parameters?.count]).toEqual(['UPDATE_COMPLETE', '2']);
    // Heat deletes it in the background; the suite's Heat goes with the file
    await owner.delete(ref);
  });

  it.concurrent('a broken copy of heat/stack.yaml (a misspelled property inside the ResourceGroup) is refused by Heat itself, nothing made', async () => {
    const broken = (await readFile(packagePath('heat', 'stack.yaml'), 'utf8')).replace('          flavor: { get_param: flavor }', '          flavour: { get_param: flavor }');
    expect(broken).toContain('flavour:');
    const folder = await project('broken', { username: keystone.user.name, user_domain_name: 'Default', project_id: keystone.projectId }, { parameters: { key_name: 'somebody' } }, broken);
    const env = isolatedEnv(folder, { OS_PASSWORD: keystone.user.password });
    const plan = await runCli(['node-up', '--plan', '--config', path.join(folder, 'depl.yaml')], { cwd: folder, env, timeoutMs: 180_000 });
    expect(plan.exitCode, plan.stderr).toBe(2);
    expect(plan.stderr).toContain('Unknown Property flavour');
    const run = await runCli(['node-up', '--config', path.join(folder, 'depl.yaml')], { cwd: folder, env, timeoutMs: 180_000 });
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('Heat rejected the template or its parameters');
    expect(run.stderr).toContain('Unknown Property flavour');
    const client = new HeatClient(new KeystoneSession(credentials(passwordAuth())));
    expect(await client.find('broken-stack')).toBeUndefined();
  });

  it('node-up through real Keystone and real Heat to a Ready swarm on local nodes, riding out a 503, a dropped connection and a 429 on its polls; an update to 4 nodes; node-down', async () => {
    const folder = path.join(dir, 'swarm');
    const stack = `swarm-${randomBytes(2).toString('hex')}`;
    // region two: Heat behind the load balancer that fails now and then
    await writeFile(path.join(folder, 'clouds.yaml'), stringify({ clouds: { real: { auth: { auth_url: keystone.authUrl, username: keystone.user.name, user_domain_name: 'Default', project_id: keystone.projectId }, regions: keystone.regions, region_name: keystone.regions[1] } } }));
    await writeFile(path.join(folder, 'depl.yaml'), stringify({
      app: 'crawler',
      domain: 'crawler.localhost',
      provider: { type: 'openstack', cloud: 'real', stack, nodes: 3, timeoutMinutes: 10 },
      ssh: { user: 'root', key: '.depl/id_ed25519' },
      services: { api: { image: 'crawler:1', port: 8000, http: true } },
    }));
    const env = isolatedEnv(folder, { OS_PASSWORD: keystone.user.password });
    const config = path.join(folder, 'depl.yaml');
    const swarmNodes = async () => {
      const cluster = await openCluster(await loadConfig(config), silentLogger);
      try {
        return (await cluster.manager.exec(['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).stdout.trim().split('\n').sort();
      } finally {
        await cluster.close();
      }
    };

    const planned = await runCli(['--json', 'node-up', '--plan', '--config', config], { cwd: folder, env, timeoutMs: 180_000 });
    expect(planned.exitCode, planned.stderr).toBe(0);
    expect(JSON.parse(planned.stdout)).toMatchObject({ action: 'create', resources: { keypairs: ['depl-crawler'] } });
    expect(cloud.servers()).toEqual([]);
    expect(cloud.keypairs()).toEqual([]);

    balancer.faults.push(
      { kind: 'html-503', method: 'GET', path: '/events' },
      { kind: 'drop', method: 'GET', path: `/stacks/${stack}/` },
      { kind: 'throttle-429', method: 'GET', path: '/events', retryAfter: 1 },
    );
    const seen = balancer.requests.length;
    const up = await runCli(['--json', 'node-up', '--config', config], { cwd: folder, env, timeoutMs: 400_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    expect(balancer.requests.slice(seen).filter((r) => r.fault).map((r) => r.fault)).toEqual(['html-503', 'drop', 'throttle-429']);
    expect(balancer.faults).toEqual([]);
    // exactly one stack, made by one POST
    expect(balancer.requests.slice(seen).filter((r) => r.method === 'POST' && r.path.endsWith('/stacks'))).toHaveLength(1);
    expect((JSON.parse(up.stdout) as { nodes: Array<{ name: string; role: string; state: string }> }).nodes.map((n) => [n.name, n.role, n.state])).toEqual([
      [`${stack}-0`, 'manager', 'Ready'],
      [`${stack}-1`, 'worker', 'Ready'],
      [`${stack}-2`, 'worker', 'Ready'],
    ]);
    expect(up.stderr).toContain('key pair depl-crawler uploaded');
    expect(up.stderr).toContain(`stack ${stack} CREATE_COMPLETE`);
    expect(cloud.keypairs()).toContain('depl-crawler');
    // what real Heat asked of Nova and Neutron for heat/stack.yaml
    expect(cloud.servers().map((s) => [s.name, s.status, s.networks, s.availabilityZone]).sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([0, 1, 2].map((i) => [`${stack}-${i}`, 'ACTIVE', 'auto', undefined]));
    expect(cloud.securityGroups()).toEqual([{ id: expect.any(String), name: `${stack}-swarm`, rules: 11 }]);
    expect(await swarmNodes()).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready']);

    // Heat's own update preview, changing nothing
    const plan = await runCli(['--json', 'node-up', '--plan', '--nodes', '4', '--config', config], { cwd: folder, env, timeoutMs: 180_000 });
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({ action: 'update', resources: { updated: ['nodes (OS::Heat::ResourceGroup)'], unchanged: ['swarm_security_group (OS::Neutron::SecurityGroup)'] } });
    expect(cloud.servers()).toHaveLength(3);

    const grown = await runCli(['--json', 'node-up', '--nodes', '4', '--config', config], { cwd: folder, env, timeoutMs: 400_000 });
    expect(grown.exitCode, grown.stderr).toBe(0);
    expect(grown.stderr).toContain(`updating Heat stack ${stack} to 4 nodes (was 3)`);
    expect((JSON.parse(grown.stdout) as { changes: string[] }).changes.filter((c) => c.includes('joined the swarm'))).toEqual([`${stack}-3: joined the swarm`]);
    expect(cloud.servers().map((s) => s.name).sort()).toEqual([0, 1, 2, 3].map((i) => `${stack}-${i}`));
    expect(await swarmNodes()).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready', 'node-4 Ready']);

    const down = await runCli(['--yes', 'node-down', '--config', config], { cwd: folder, env, timeoutMs: 400_000 });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(cloud.servers()).toEqual([]);
    expect(cloud.securityGroups()).toEqual([]);
    expect(await launcher.list()).toEqual([]);
    const client = new HeatClient(new KeystoneSession(credentials(passwordAuth())));
    expect(await client.find(stack)).toBeUndefined();
  });
});
