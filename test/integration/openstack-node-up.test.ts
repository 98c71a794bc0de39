import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LocalLauncher } from '../../src/apply/local/launcher.js';
import { ensureNodeImage } from '../../src/apply/local/node-image.js';
import { ensureKeyPair } from '../../src/apply/ssh-keypair.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { openCluster } from '../../src/workflows/cluster.js';
import { runCli } from '../support/cli.js';
import { isolatedEnv } from '../support/openstack-emulator/client.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';

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
 * The acceptance path for Nectar: `depl node-up` (the built CLI) with a password login from clouds.yaml +
 * secure.yaml, through Keystone and Heat (the emulator, with passing faults on the polls), whose servers are real local nodes (privileged
 * containers running sshd + dockerd), bootstrapped over SSH into a swarm exactly as on the cloud.
 */
describe('depl node-up through the OpenStack provider', () => {
  const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;
  const prefix = `dos-${randomBytes(3).toString('hex')}`;
  const stack = `nodes-${randomBytes(2).toString('hex')}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const serverIndex = new Map<string, number>();
  const zone = 'myproject.cloud.edu.au.';
  const domain = 'crawler.myproject.cloud.edu.au';
  let launcher: LocalLauncher;
  let emulator: OpenStackEmulator;
  let dir: string;
  let env: Record<string, string>;
  const configFile = () => path.join(dir, 'depl.yaml');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-e2e-'));
    launcher = new LocalLauncher(prefix, await freeSubnet(), docker);
    const [image, key] = await Promise.all([ensureNodeImage(log), ensureKeyPair(path.join(dir, '.depl', 'id_ed25519'), 'depl-os-e2e')]);
    await launcher.ensureNetwork();
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
      behaviour: { stepDelayMs: 100 },
    });
    // the project's own zone, as Nectar makes one for every project: the zero-config domain lives in it
    emulator.designate.addZone(zone);
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: {
        emu: {
          // a password login (Heat cannot make its trust from an application credential); the password
          // itself lives in secure.yaml, as the README suggests
          auth: { auth_url: emulator.authUrl, username: 'operator', user_domain_name: 'Default', project_id: emulator.projectId },
          region_name: emulator.region,
          interface: 'public',
          identity_api_version: 3,
        },
      },
    }));
    await writeFile(configFile(), stringify({
      app: 'crawler',
      domain,
      provider: { type: 'openstack', cloud: 'emu', stack, nodes: 3, parameters: { flavor: 'm3.small' }, timeoutMinutes: 10, dns: { zone } },
      // emulated nodes take root; Nectar's Ubuntu images want ssh.user: ubuntu
      ssh: { user: 'root', key: '.depl/id_ed25519' },
      services: { api: { image: 'crawler:1', port: 8000, http: true } },
    }));
    await writeFile(path.join(dir, 'secure.yaml'), stringify({ clouds: { emu: { auth: { password } } } }));
    env = isolatedEnv(dir);
  });

  afterAll(async () => {
    await emulator?.close();
    await launcher?.removeAll();
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

  it('creates the Heat stack, riding out a 503 page, a dropped connection and a 429 on its polls, and ends with a 3-node swarm', async () => {
    emulator.behaviour.faults = [
      { kind: 'html-503', method: 'GET', path: '/events' },
      { kind: 'drop', method: 'GET', path: `/stacks/${stack}/` },
      { kind: 'throttle-429', method: 'GET', path: '/events', retryAfter: 1 },
    ];
    const started = Date.now();
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
    expect(run.stderr).toContain('key pair depl-crawler uploaded');
    expect(emulator.keypairs()).toEqual(['depl-crawler']);
    expect(run.stderr).toContain('nodes CREATE_COMPLETE');
    expect(emulator.requests.filter((r) => r.fault).map((r) => r.fault)).toEqual(['html-503', 'drop', 'throttle-429']);
    expect(emulator.behaviour.faults).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain(password);
    expect(emulator.tokensIssued()).toBe(1);
    // exactly one stack, created by one POST
    expect(emulator.stacks()).toMatchObject([{ name: stack, status: 'CREATE_COMPLETE' }]);
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/stacks'))).toHaveLength(1);
    expect(await swarmNodes()).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready']);
    // the zero-config domain: both names point at the manager (where the edge runs), published in the project's zone
    const manager = result.nodes[0]!.address;
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

  it('node-down deletes the stack and its servers', async () => {
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
  });
});
