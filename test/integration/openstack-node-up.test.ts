import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import Docker from 'dockerode';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument, stringify } from 'yaml';
import { ensureBaseImages } from '../../src/apply/base-images.js';
import { engineAtSocket } from '../../src/apply/docker.js';
import { LocalLauncher } from '../../src/apply/local/launcher.js';
import { ensureNodeImage } from '../../src/apply/local/node-image.js';
import { acquireLock } from '../../src/apply/lock.js';
import { ensureKeyPair } from '../../src/apply/ssh-keypair.js';
import { installCertificate, listCertificates, tlsStoreFor } from '../../src/apply/tls/store.js';
import { loadConfig } from '../../src/config/load.js';
import { LOCAL_LABEL_PREFIX } from '../../src/plan/local-nodes.js';
import type { RenewalRecord } from '../../src/plan/tls/renewal.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { pollUntil } from '../../src/util/poll.js';
import { openCluster } from '../../src/workflows/cluster.js';
import { runCli } from '../support/cli.js';
import { loadImageOnManager, loadImageOnNodes } from '../support/cluster.js';
import { makeTestImages, testImages } from '../support/image-cluster.js';
import { isolatedEnv } from '../support/openstack-emulator/client.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';
import { certificateBetween, designateOnPebble, startPebble, type TestPebble } from '../support/pebble.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

async function freeSubnet(): Promise<string> {
  const used = new Set((await docker.listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet)));
  for (let tries = 0; tries < 200; tries += 1) {
    const subnet = `10.214.${Math.floor(Math.random() * 250) + 1}.0/24`;
    if (!used.has(subnet)) return subnet;
  }
  throw new Error('no free 10.214.X.0/24 subnet on this machine: remove old test networks (docker network ls)');
}

/**
 * The acceptance path for Nectar, with the built CLI as a user runs it: `depl init --provider openstack` with no
 * domain takes `<app>.<the project's zone>` from Designate; `depl node-up` with a password login from clouds.yaml +
 * secure.yaml, through Keystone and Heat (the emulator, with passing faults on the polls), whose servers are real
 * local nodes (privileged containers running sshd + dockerd), bootstrapped over SSH into a swarm exactly as on the
 * cloud, points the domain at it; `depl buildinst` gets its certificate by DNS-01 through the emulator's Designate
 * from Pebble (standing in for Let's Encrypt) with the tls: section init wrote, and after `depl switch` the live URL
 * answers over HTTPS, the renewal task runs beside the edge and `depl status` shows the domain's records in place.
 * node-up also makes the task's own DNS credential (an application credential for the zone's recordsets, kept in a
 * swarm secret the task mounts), and the task, on the manager, renews the wildcard itself with it through Designate
 * when it comes close to its end, with no depl command run: the emulator and Pebble listen on the cluster bridge's
 * gateway, where the nodes reach this machine (the traffic stays on it). node-down deletes the credential.
 */
describe('depl init, node-up and a live HTTPS URL through the OpenStack provider', () => {
  const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;
  const prefix = `dos-${randomBytes(3).toString('hex')}`;
  const stack = `nodes-${randomBytes(2).toString('hex')}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const serverIndex = new Map<string, number>();
  const zone = 'myproject.cloud.edu.au.';
  // the app is a compose file's (name: hello): its domain is the one init proposes in the project's zone
  const app = 'hello';
  const domain = `${app}.myproject.cloud.edu.au`;
  const images = testImages();
  let madeImages: Awaited<ReturnType<typeof makeTestImages>> | undefined;
  let launcher: LocalLauncher;
  let emulator: OpenStackEmulator;
  let pebble: TestPebble;
  /** The offline node base image (this machine's Node on Debian): the renewal task and its engine gate run on it. */
  let nodeImage: string;
  let dir: string;
  let env: Record<string, string>;
  /** The first node's, where the edge runs and the domain's A records point (from node-up's own output). */
  let managerAddress: string;
  const configFile = () => path.join(dir, 'depl.yaml');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-e2e-'));
    launcher = new LocalLauncher(prefix, await freeSubnet(), docker);
    await launcher.ensureNetwork();
    // the nodes' bridge's gateway: the renewal task, on the manager, reaches Keystone, Designate and Pebble there
    const [network] = await docker.listNetworks({ filters: { label: [`${LOCAL_LABEL_PREFIX}=${prefix}`] } });
    const gateway = network?.IPAM?.Config?.[0]?.Gateway;
    if (!gateway) throw new Error(`no gateway on the bridge of the nodes ${prefix}`);
    // the app's image, the edge's (nginx with its Lua module, and the shell tools the renewal task runs in it to
    // reload it) and the node image the renewal task runs on: the nodes cannot pull, so the test loads them (the node
    // image is the machine's offline one, kept like a cache)
    const [made, started, base] = await Promise.allSettled([makeTestImages(images, ['busybox', 'nginx'], { edgeShell: true }), startPebble({ listenHost: gateway }), ensureBaseImages(engineAtSocket(), log)]);
    // afterAll removes what was made, even when another failed
    if (made.status === 'fulfilled') madeImages = made.value;
    if (started.status === 'fulfilled') pebble = started.value;
    const failed = [made, started, base].find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    nodeImage = (base as PromiseFulfilledResult<Awaited<ReturnType<typeof ensureBaseImages>>>).value.node;
    const [image, key] = await Promise.all([ensureNodeImage(log), ensureKeyPair(path.join(dir, '.depl', 'id_ed25519'), 'depl-os-e2e')]);
    let next = 1;
    emulator = await startOpenStackEmulator({
      // each Nova server is a real local node that takes this key, as a cloud server takes the key pair
      // depl uploads (depl-crawler, the public half of ssh.key)
      servers: {
        async createServer(name) {
          const index = next++;
          serverIndex.set(name, index);
          const { node } = await launcher.ensureNode(index, image.tag, key.publicKey);
          return { address: node.address };
        },
        async deleteServer(name) {
          const node = (await launcher.list()).find((n) => n.index === serverIndex.get(name));
          if (node) await launcher.removeNode(node);
        },
      },
      users: [{ name: 'operator', domain: 'Default', password }],
      projectName: 'myproject',
      behaviour: { stepDelayMs: 100 },
      // Designate publishes to the DNS Pebble validates through (and this test resolves the domain with)
      dns: designateOnPebble(pebble),
      listenHost: gateway,
    });
    // the project's own zone, as Nectar makes one for every project: the zero-config domain lives in it
    emulator.designate.addZone(zone);
    // under the name depl init writes into depl.yaml (provider.cloud: nectar)
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: {
        nectar: {
          // a password login (Heat cannot make its trust from an application credential); the password
          // itself lives in secure.yaml, as the README suggests
          auth: { auth_url: emulator.authUrl, username: 'operator', user_domain_name: 'Default', project_id: emulator.projectId },
          region_name: emulator.region,
          interface: 'public',
          identity_api_version: 3,
        },
      },
    }));
    await writeFile(path.join(dir, 'secure.yaml'), stringify({ clouds: { nectar: { auth: { password } } } }));
    // the user's app: one HTTP service from an image (busybox's httpd), as a compose file names it
    const serve = 'mkdir -p /www && echo hello from the live version > /www/index.html && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www';
    await writeFile(path.join(dir, 'compose.yaml'), stringify({
      name: app,
      services: { web: { image: images.busybox, command: ['sh', '-c', serve], ports: ['8080:8080'], healthcheck: { test: ['CMD', 'wget', '-q', '-O', '-', 'http://localhost:8080/healthz'] } } },
    }));
    env = isolatedEnv(dir);
  });

  afterAll(async () => {
    await emulator?.close();
    await launcher?.removeAll();
    await pebble?.stop();
    await madeImages?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function swarmNodes(): Promise<string[]> {
    const cluster = await openCluster(await loadConfig(configFile()), silentLogger);
    try {
      const out = await cluster.manager.exec(['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}']);
      return out.stdout.trim().split('\n').sort();
    } finally {
      await cluster.close();
    }
  }

  it('depl init --provider openstack without --domain takes <app>.<the project\'s zone> from Designate, and HTTPS by DNS-01 there', async () => {
    const run = await runCli(['--json', 'init', '--provider', 'openstack'], { cwd: dir, env });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ app, domain, provider: 'openstack', source: 'compose.yaml', services: ['web'], dns: { zone }, tls: { mode: 'acme', challenge: 'dns-01' } });
    const doc = parseDocument(await readFile(configFile(), 'utf8'));
    // HTTPS from the first buildinst with no edit: ACME, no challenge named (DNS-01 follows provider.dns), no contact address
    expect(doc.toJS()).toMatchObject({
      domain, provider: { type: 'openstack', cloud: 'nectar', dns: { zone } }, services: { web: { image: images.busybox, port: 8080, http: true, health: '/healthz' } },
      tls: { mode: 'acme', directory: 'letsencrypt' },
    });
    expect(Object.keys(doc.toJS().tls as object).sort()).toEqual(['directory', 'mode']);
    // what this machine needs and Nectar does not: a stack name of this run's, root on the emulated nodes (Nectar's
    // Ubuntu images want ubuntu), the edge's and the node image loaded on them (they cannot pull), and Pebble for
    // Let's Encrypt: only its directory and the CA of its HTTPS change in init's tls: section
    doc.setIn(['provider', 'stack'], stack);
    doc.setIn(['provider', 'timeoutMinutes'], 10);
    doc.setIn(['ssh', 'user'], 'root');
    doc.setIn(['images', 'nginx'], images.nginx);
    doc.setIn(['images', 'node'], nodeImage);
    doc.setIn(['tls', 'directory'], pebble.directory);
    doc.setIn(['tls', 'caBundle'], pebble.listenerCaFile);
    // the renewal task looks every 5 s (its default is 12 h): it then finds, within seconds, the wildcard this test
    // puts in close to its end, which on a cloud would come due by the passing of days it wakes up for
    doc.setIn(['tls', 'renewEvery'], '5s');
    await writeFile(configFile(), doc.toString());
  });

  it('creates the Heat stack, riding out a 503 page, a dropped connection and a 429 on its polls, and ends with a 3-node swarm', async () => {
    emulator.behaviour.faults = [
      { kind: 'html-503', method: 'GET', path: '/events' },
      { kind: 'drop', method: 'GET', path: `/stacks/${stack}/` },
      { kind: 'throttle-429', method: 'GET', path: '/events', retryAfter: 1 },
    ];
    const started = Date.now();
    const tokens = emulator.tokensIssued();
    const run = await runCli(['--json', 'node-up', '--config', configFile()], { cwd: dir, env, timeoutMs: 290_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    log.info(`node-up (3 nodes via Heat) took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const result = JSON.parse(run.stdout) as { nodes: Array<{ name: string; role: string; state: string; address: string }> };
    expect(result.nodes.map((n) => [n.name, n.role, n.state])).toEqual([
      [`${stack}-0`, 'manager', 'Ready'],
      [`${stack}-1`, 'worker', 'Ready'],
      [`${stack}-2`, 'worker', 'Ready'],
    ]);
    expect(run.stderr).toContain(`creating Heat stack ${stack} with 3 nodes`);
    expect(run.stderr).toContain(`key pair depl-${app} uploaded`);
    expect(emulator.keypairs()).toEqual([`depl-${app}`]);
    expect(run.stderr).toContain('nodes CREATE_COMPLETE');
    expect(emulator.requests.filter((r) => r.fault).map((r) => r.fault)).toEqual(['html-503', 'drop', 'throttle-429']);
    expect(emulator.behaviour.faults).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain(password);
    // the operator's token, and one of the renewal task's new credential (node-up reads the zone with it once)
    expect(emulator.tokensIssued()).toBe(tokens + 2);
    // the renewal task's DNS credential: the zone's recordsets only, the member role, in a swarm secret and nowhere else
    const [credential, ...more] = emulator.applicationCredentials();
    expect(more).toEqual([]);
    expect(credential).toMatchObject({ name: expect.stringMatching(new RegExp(`^depl-${app}-tls-renewer-dns01-`)), roles: ['member'], user: 'operator' });
    expect(credential!.accessRules!.every((r) => r.service === 'dns' && r.path.includes('/recordsets'))).toBe(true);
    expect(run.stdout + run.stderr).not.toContain(credential!.secret);
    const told = (JSON.parse(run.stdout) as { changes: string[] }).changes.filter((c) => c.startsWith('TLS: '));
    expect(told).toEqual([`TLS: the renewal task's DNS credential ${credential!.id} (restricted to ${zone}'s recordsets) is in the swarm secret ${told[0]?.split(' swarm secret ')[1]}`]);
    expect(await readFile(configFile(), 'utf8')).not.toContain(credential!.secret);
    // exactly one stack, created by one POST
    expect(emulator.stacks()).toMatchObject([{ name: stack, status: 'CREATE_COMPLETE' }]);
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/stacks'))).toHaveLength(1);
    expect(await swarmNodes()).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready']);
    // the zero-config domain: both names point at the manager (where the edge runs), published in the project's zone
    const manager = result.nodes[0]!.address;
    managerAddress = manager;
    expect(JSON.parse(run.stdout)).toMatchObject({ dns: { domain, zone, address: manager } });
    expect([emulator.designate.records(`${domain}.`, 'A'), emulator.designate.records(`*.${domain}.`, 'A')]).toEqual([[manager], [manager]]);
  });

  it('re-run with 4 nodes updates the same stack in place and joins the fourth node', async () => {
    const [before] = emulator.stacks();
    const started = Date.now();
    const run = await runCli(['--json', 'node-up', '--nodes', '4', '--config', configFile()], { cwd: dir, env, timeoutMs: 290_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    log.info(`node-up 3 -> 4 via a Heat update took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const [after] = emulator.stacks();
    expect(after!.id).toBe(before!.id);
    expect(after!.status).toBe('UPDATE_COMPLETE');
    expect(after!.servers.slice(0, 3)).toEqual(before!.servers);
    expect(emulator.requests.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([expect.stringContaining(`/stacks/${stack}/${before!.id}`)]);
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/stacks'))).toHaveLength(1);
    const result = JSON.parse(run.stdout) as { nodes: Array<{ name: string; state: string }>; changes: string[] };
    expect(result.nodes.map((n) => `${n.name} ${n.state}`)).toEqual([0, 1, 2, 3].map((i) => `${stack}-${i} Ready`));
    expect(result.changes).toContain(`${stack}-3: joined the swarm`);
    expect(result.changes.filter((c) => c.includes('joined the swarm'))).toHaveLength(1);
    expect(await swarmNodes()).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready', 'node-4 Ready']);
  });

  it('a re-run with the same count changes nothing, without a Heat update', async () => {
    const puts = emulator.requests.filter((r) => r.method === 'PUT').length;
    const run = await runCli(['--json', 'node-up', '--nodes', '4', '--config', configFile()], { cwd: dir, env, timeoutMs: 120_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('already has 4 nodes from this template: no update');
    expect(emulator.requests.filter((r) => r.method === 'PUT')).toHaveLength(puts);
    expect((JSON.parse(run.stdout) as { changes: string[] }).changes).toEqual([]);
  });

  it('buildinst gets the wildcard certificate by DNS-01 through Designate, and after switch the live URL answers over HTTPS', async () => {
    const started = Date.now();
    const cluster = await openCluster(await loadConfig(configFile()), silentLogger);
    try {
      // the node image (the renewal task's) on the manager alone, where the task runs beside the edge, while the
      // app's and the edge's go to every node
      const loading = Date.now();
      const took = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
      await Promise.all([
        loadImageOnNodes(cluster, images.busybox, images.nginx).then(() => log.info(`the app's and the edge's images on 4 nodes: ${took(loading)}`)),
        loadImageOnManager(cluster, nodeImage).then(() => log.info(`the node image on the manager: ${took(loading)}`)),
      ]);
    } finally {
      await cluster.close();
    }
    const build = await runCli(['--json', 'buildinst', '--version', 'v1', '--config', configFile()], { cwd: dir, env, timeoutMs: 240_000 });
    expect(build.exitCode, build.stderr).toBe(0);
    const installed = JSON.parse(build.stdout) as { url: string; httpsMissing?: string };
    expect(installed.httpsMissing).toBeUndefined();
    expect(installed.url).toBe(`https://v1.${domain}/`);
    // one wildcard for the domain and every version, its challenge answered in the project's zone and taken away
    expect(build.stderr).toContain(`issued the certificate for ${domain}, *.${domain}`);
    await emulator.designate.settle();
    expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual([]);
    expect(emulator.requests.some((r) => r.method === 'POST' && r.path.includes('/recordsets'))).toBe(true);

    const switched = await runCli(['--json', 'switch', 'v1', '--config', configFile()], { cwd: dir, env, timeoutMs: 120_000 });
    expect(switched.exitCode, switched.stderr).toBe(0);
    expect(JSON.parse(switched.stdout)).toMatchObject({ live: 'v1' });

    // the name as the world finds it: the A record node-up made, published by Designate to the name server
    const resolver = new Resolver();
    resolver.setServers([pebble.dnsServer]);
    const [address] = await resolver.resolve4(domain);
    expect(address).toBe(managerAddress);
    const live = await execa('curl', ['-sS', '-i', '--max-time', '10', '--cacert', pebble.rootsFile, '--resolve', `${domain}:443:${address}`, `https://${domain}/`], { reject: false });
    expect(live.exitCode, live.stderr).toBe(0);
    const [head = '', body = ''] = live.stdout.split(/\r?\n\r?\n/);
    expect(head).toMatch(/^HTTP\/2 200/);
    expect(head).toMatch(/x-depl-version: v1/i);
    expect(body.trim()).toBe('hello from the live version');
    // the certificate the edge serves is Pebble's wildcard (curl checked its chain against Pebble's root)
    expect((await served(address!, domain)).names).toEqual([`DNS:*.${domain}`, `DNS:${domain}`]);
    // the renewal task mounts the swarm secret node-up made, at the file its settings name
    const inspected = await openCluster(await loadConfig(configFile()), silentLogger).then(async (c) => {
      try {
        return (await c.manager.exec(['docker', 'service', 'inspect', `${app}-tls-renewer`, '--format', '{{json .Spec.TaskTemplate.ContainerSpec}}'])).stdout;
      } finally {
        await c.close();
      }
    });
    const container = JSON.parse(inspected) as { Secrets?: Array<{ SecretName: string; File: { Name: string } }>; Env: string[] };
    expect(container.Secrets).toEqual([expect.objectContaining({ SecretName: expect.stringContaining('depl-tls-renewer-dns'), File: expect.objectContaining({ Name: '/run/secrets/depl-tls-renewer-dns' }) })]);
    expect(container.Env.join('\n')).toContain('"dnsCredentialFile":"/run/secrets/depl-tls-renewer-dns"');
    expect(inspected).not.toContain(emulator.applicationCredentials()[0]!.secret);
    log.info(`init -> live HTTPS: loading images, buildinst with DNS-01 and switch took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('depl status: the renewal task runs beside the edge and has recorded a round; the domain\'s records point at the entry address', async () => {
    const started = Date.now();
    interface Status {
      tls: { mode: string; certificates: Array<{ id: string }>; renewal?: { installed: boolean; running: boolean; last: { outcome: string; decisions: string[] } | null; dnsCredential?: { id: string; expires: string | null } } };
      dns?: { zone: string; entryAddress: string | null; records: Array<{ name: string; addresses: string[]; depl: boolean; matches: boolean | null }> };
    }
    // the task's first round starts with its container and ends in a record; status is asked until it shows one
    const status = await pollUntil(async () => {
      const run = await runCli(['--json', 'status', '--config', configFile()], { cwd: dir, env, timeoutMs: 60_000 });
      expect(run.exitCode, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as Status;
      return report.tls.renewal?.last ? report : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000, onTimeout: () => { throw new Error('the renewal task recorded no round within 60 s'); } });
    expect(status.tls).toMatchObject({ mode: 'acme', certificates: [{ id: `wildcard.${domain}` }], renewal: { installed: true, running: true } });
    // the wildcard was just issued: nothing due, and the round says why
    expect(status.tls.renewal!.last!.outcome).toBe('nothing-due');
    // the credential node-up gave the task, and until when (a year out: no warning)
    expect(status.tls.renewal!.dnsCredential).toEqual({ id: emulator.applicationCredentials()[0]!.id, expires: expect.stringMatching(/^20\d\d-/) });
    expect(status.tls.renewal!.last!.decisions.join('\n')).toContain(domain);
    expect(status.dns).toMatchObject({
      zone, entryAddress: managerAddress,
      records: [
        { name: `${domain}.`, addresses: [managerAddress], depl: true, matches: true },
        { name: `*.${domain}.`, addresses: [managerAddress], depl: true, matches: true },
      ],
    });
    log.info(`status with the renewal task's first round took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('the renewal task renews the wildcard close to its end itself, through Designate with node-up\'s credential, and the edge serves the new one', async () => {
    const started = Date.now();
    const id = `wildcard.${domain}`;
    const credential = emulator.applicationCredentials()[0]!;
    const cluster = await openCluster(await loadConfig(configFile()), silentLogger);
    try {
      const store = tlsStoreFor(cluster.manager, app);
      const renewalRecord = async () => {
        const text = await cluster.manager.readFile(`/var/lib/depl/${app}/tls/renewal.json`);
        return text === null ? null : (JSON.parse(text) as RenewalRecord);
      };
      const before = await served(managerAddress, `v1.${domain}`);
      // the wildcard replaced by one with a day left (due: renewBefore is 30 days), under the cluster lock as a depl
      // command would; a throwaway CA's, as the task reads only its dates and names
      const lock = await acquireLock(cluster.manager, app, { command: 'depl test puts in a wildcard close to its end', waitMs: 60_000 });
      let shortLived: string;
      try {
        const pair = await certificateBetween(pebble.dir, [domain, `*.${domain}`], new Date(Date.now() - 3_600_000), new Date(Date.now() + 86_400_000));
        shortLived = pair.chain;
        await installCertificate({ ...store, remote: lock.fenced(cluster.manager) }, id, pair);
      } finally {
        await lock.release();
      }
      const since = new Date().toISOString();
      const seen = emulator.requests.length;
      // no depl command from here on: only the task can renew it
      const renewed = await pollUntil(async () => {
        const record = await renewalRecord().catch(() => null);
        if (record === null || record.at < since || !record.renewed.includes(id)) return undefined;
        const now = await served(managerAddress, `v1.${domain}`).catch(() => undefined);
        return now !== undefined && now.serial !== before.serial ? { record, now } : undefined;
      }, {
        timeoutMs: 60_000, intervalMs: 500,
        onTimeout: async () => {
          const logs = await cluster.manager.exec(['docker', 'service', 'logs', '--raw', '--tail', '40', `${app}-tls-renewer`], { check: false });
          throw new Error(`the renewal task did not renew ${id} within 60 s\nrecord: ${JSON.stringify(await renewalRecord())}\ntask log:\n${logs.stdout}${logs.stderr}`);
        },
      });
      // Pebble's (the TLS check trusted only its root), for both names, a new serial; the throwaway never reached the edge's HTTPS
      expect(renewed.now.names).toEqual([`DNS:*.${domain}`, `DNS:${domain}`]);
      expect(renewed.record.failed).toEqual([]);
      const [stored] = (await listCertificates(store)).filter((c) => c.id === id);
      expect(stored!.serial).toBe(renewed.now.serial);
      expect(stored!.notAfter - Date.now()).toBeGreaterThan(86_400_000);
      expect((await cluster.manager.readFile(`${store.edgeDir}/tls/${id}/fullchain.pem`))).not.toBe(shortLived);
      // the challenge was answered in the project's zone by the task itself, signed in with node-up's credential
      const dnsCalls = emulator.requests.slice(seen).filter((r) => r.path.startsWith('/dns/v2/'));
      expect(dnsCalls.filter((r) => r.method === 'POST' && r.path.endsWith('/recordsets')).map((r) => [r.status, r.credential])).toEqual([[202, credential.id]]);
      expect(dnsCalls.every((r) => r.credential === credential.id)).toBe(true);
      await emulator.designate.settle();
      expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual([]);
      const logs = await cluster.manager.exec(['docker', 'service', 'logs', '--raw', `${app}-tls-renewer`]);
      expect(logs.stdout + logs.stderr).toContain(`renewed the certificate for ${domain}, *.${domain}`);
      expect(logs.stdout + logs.stderr).not.toContain(credential.secret);
    } finally {
      await cluster.close();
    }
    log.info(`the renewal task's own DNS-01 renewal of the wildcard took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  /** The certificate the edge at `address` presents for `host` (names, serial), verified against Pebble's root. */
  function served(address: string, host: string): Promise<{ names: string[]; serial: string }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: address, port: 443, servername: host, ca: pebble.roots }, () => {
        const peer = socket.getPeerCertificate();
        resolve({ names: (peer.subjectaltname ?? '').split(', ').sort(), serial: peer.serialNumber });
        socket.end();
      });
      socket.on('error', reject);
    });
  }

  it('node-down deletes the stack and its servers, the domain\'s records and the renewal task\'s credential', async () => {
    const tokens = emulator.tokensIssued();
    const run = await runCli(['--yes', 'node-down', '--config', configFile()], { cwd: dir, env, timeoutMs: 120_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    // one token for the whole run, though node-down asks for the provider more than once
    expect(emulator.tokensIssued()).toBe(tokens + 1);
    expect(emulator.stacks()).toEqual([]);
    expect(await launcher.list()).toEqual([]);
    // the records depl made went first
    expect(run.stdout).toContain('and 2 DNS records');
    await emulator.designate.settle();
    expect([emulator.designate.records(`${domain}.`, 'A'), emulator.designate.records(`*.${domain}.`, 'A')]).toEqual([[], []]);
    // and the renewal task's credential in Keystone
    expect(emulator.applicationCredentials()).toEqual([]);
  });
});
