import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { requestThroughEdge } from '../../src/apply/edge/site.js';
import { ansibleInventoryPath } from '../../src/apply/inventory.js';
import { renderAnsibleInventory } from '../../src/plan/ansible-inventory.js';
import { parsePlayRecap } from '../../src/plan/ansible-playbook.js';
import { desiredNodeLabels, nodeLabelsCommand, parseNodeLabels, parseNodeList, nodeListCommand, parseSwarmInfo, swarmInfoCommand } from '../../src/plan/bootstrap.js';
import { localGateway } from '../../src/plan/local-nodes.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { providerFor, sshPoolFor } from '../../src/workflows/cluster.js';
import { BOOTSTRAP_PLAYBOOK, ensureAnsible, runAnsible } from '../support/ansible.js';
import { runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startTestCluster } from '../support/cluster.js';
import { startDnsStub } from '../support/dns-stub.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;

/** The swarm as depl's own bootstrap shapes it: every node Ready under its depl name, labels, one manager, the network. */
async function expectDeplSwarm(tc: TestCluster): Promise<void> {
  const manager = tc.cluster.manager;
  const nodes = parseNodeList((await manager.exec(nodeListCommand())).stdout);
  const names = tc.cluster.nodes.map((n) => n.name);
  expect(nodes.map((n) => [n.hostname, n.status]).sort()).toEqual(names.map((name) => [name, 'Ready']));
  expect(nodes.filter((n) => n.managerStatus !== '').map((n) => n.hostname)).toEqual([tc.cluster.managerNode.name]);
  const labels = parseNodeLabels((await manager.exec(nodeLabelsCommand(nodes.map((n) => n.id)))).stdout);
  for (const node of nodes) {
    expect(labels.get(node.id), node.hostname).toEqual(desiredNodeLabels(node.hostname, node.hostname === tc.cluster.managerNode.name));
  }
  const network = JSON.parse((await manager.exec(['docker', 'network', 'inspect', '--format', '{{json .}}', `${tc.loaded.config.app}-net`])).stdout) as
    { Driver: string; Attachable: boolean; Scope: string; Labels: Record<string, string> };
  expect(network).toMatchObject({ Driver: 'overlay', Attachable: true, Scope: 'swarm', Labels: { 'depl.app': tc.loaded.config.app } });
  expect(tc.cluster.network).toBe(`${tc.loaded.config.app}-net`);
}

/** `depl node-up` through the built CLI with depl.yaml's bootstrap set as asked; the other keys are left as they are. */
async function nodeUpWith(tc: TestCluster, bootstrap: 'ssh' | 'ansible'): Promise<{ exitCode: number; changes: string[]; stderr: string }> {
  const document = parse(await readFile(tc.configFile, 'utf8')) as Record<string, unknown>;
  await writeFile(tc.configFile, stringify({ ...document, bootstrap }));
  const run = await runCli(['--json', '--config', tc.configFile, 'node-up'], { cwd: tc.dir, timeoutMs: 600_000 });
  const changes = run.exitCode === 0 ? (JSON.parse(run.stdout) as { changes: string[] }).changes : [];
  return { exitCode: run.exitCode, changes, stderr: run.stderr };
}

/**
 * Ansible as a first-class bootstrap: Debian's ansible runs ansible/bootstrap.yml (community.docker modules)
 * against local nodes. On 3 root nodes: node-up with `bootstrap: ansible` end to end, the same swarm node-up's
 * own bootstrap makes (node-up over SSH finds nothing to change in it), a second play through node-up that
 * changes nothing, the seed's ad-hoc commands as written, buildinst and switch on that swarm, and --check on a
 * fresh node. On 2 nodes like Nectar's (ubuntu + sudo, no Docker): the play installs Docker through become, and
 * the operator's own `ansible-playbook` run, as the playbook's header gives it, changes nothing. Every play costs
 * 30-80 s on a busy 2-core machine, so each claim gets one play. What needs no node (ansible-lint, node-up
 * without Ansible, vault import) is in ansible-tools.test.ts, beside the cluster files.
 */
/**
 * The Nectar-like nodes boot while the root nodes' cases run: their node-up is mostly apt fetching and installing
 * docker.io on them (170-180 s here at load 15), which the file otherwise waited through after those cases. Stopped
 * at the end of the file whichever cases ran.
 */
let nectarLikeCluster: Promise<TestCluster> | undefined;

beforeAll(async () => {
  await ensureAnsible(log);
  nectarLikeCluster = startTestCluster({
    nodes: 2,
    app: 'ancloud',
    log,
    provider: { image: 'cloud' },
    config: { bootstrap: 'ansible', ssh: { user: 'ubuntu', key: '.depl/id_ed25519' } },
  });
  // awaited by its describe's beforeAll, which reports its failure; not an unhandled rejection meanwhile
  nectarLikeCluster.catch(() => {});
}, 300_000);

afterAll(async () => {
  await (await nectarLikeCluster?.catch(() => undefined))?.stop();
}, 300_000);

describe('bootstrap: ansible on 3 local root nodes', () => {
  const images = testImages();
  const app = `an${images.suffix.slice(0, 4)}`;
  const serve = 'mkdir -p /www && echo ok > /www/healthz && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www';
  let tc: TestCluster;

  beforeAll(async () => {
    tc = await startClusterWithImages(images, ['busybox', 'nginx'], {
      nodes: 3,
      app,
      log,
      config: {
        bootstrap: 'ansible',
        images: { node: images.busybox, nginx: images.nginx, redis: images.busybox, web: images.busybox },
        services: { web: { image: 'web', command: ['sh', '-c', serve], port: 8080, http: true, health: '/healthz', stopGracePeriod: '2s' } },
      },
    });
  }, 900_000);

  afterAll(async () => {
    await tc?.stop();
  });

  it('node-up ran the playbook: a Ready swarm with depl\'s node labels, one manager and the app\'s overlay network', async () => {
    expect(tc.nodeUp.changes).toEqual(expect.arrayContaining([expect.stringMatching(/^node-1: \d+ changes? by ansible\/bootstrap\.yml$/)]));
    expect(tc.nodeUp.nodes.map((n) => [n.name, n.role, n.state])).toEqual([['node-1', 'manager', 'Ready'], ['node-2', 'worker', 'Ready'], ['node-3', 'worker', 'Ready']]);
    await expectDeplSwarm(tc);
    const inventory = await readFile(ansibleInventoryPath(tc.loaded), 'utf8');
    expect(inventory).toContain('[manager]\nnode-1 ansible_host=');
    expect(inventory).toContain(`depl_app="${app}"`);
  });

  it('node-up by either bootstrap changes nothing on the swarm the playbook made; its second play changes nothing', async () => {
    const bySsh = await nodeUpWith(tc, 'ssh');
    expect(bySsh.exitCode, bySsh.stderr).toBe(0);
    expect(bySsh.changes).toEqual([]);
    // the second play, through node-up: its recap (relayed as progress) says no host changed, failed or went unreachable
    const byAnsible = await nodeUpWith(tc, 'ansible');
    expect(byAnsible.exitCode, byAnsible.stderr).toBe(0);
    expect(byAnsible.changes).toEqual([]);
    expect(byAnsible.stderr).toContain('ansible: task: swarm : Node labels and roles, as node-up sets them');
    const recap = parsePlayRecap(`PLAY RECAP\n${byAnsible.stderr.split('\n').flatMap((line) => /ansible: recap (.*)$/.exec(line)?.[1] ?? []).join('\n')}`);
    expect([...recap].map(([host, r]) => [host, r.changed, r.failed, r.unreachable])).toEqual([['node-1', 0, 0, 0], ['node-2', 0, 0, 0], ['node-3', 0, 0, 0]]);
    expect(byAnsible.stderr).not.toMatch(/SWMTKN-/);
  });

  it('the seed\'s ad-hoc commands create and inspect helloswarm, as written', async () => {
    // `ping docker.com` needs docker.com to resolve; no DNS leaves this machine, so a stub on the nodes' gateway answers it
    const gateway = localGateway(tc.subnet);
    const dns = await startDnsStub(gateway, { 'docker.com': '127.0.0.1' });
    try {
      await Promise.all(tc.cluster.nodes.map(async (node) => {
        const remote = await tc.cluster.remote(node.name);
        await remote.exec(['sh', '-c', `printf 'nameserver ${gateway}\\n' > /etc/resolv.conf`]);
      }));
      const inventory = path.relative(tc.dir, ansibleInventoryPath(tc.loaded));
      expect(inventory).toBe('ansible/generated_hosts.ini');
      const create = await runAnsible('ansible', ['-i', 'ansible/generated_hosts.ini', '--become', 'manager', '-a', `docker service create --replicas 2 --name helloswarm ${images.busybox} ping docker.com`], tc.dir, 240_000);
      expect(create.exitCode, create.output).toBe(0);
      expect(create.output).toMatch(/node-1 \| CHANGED \| rc=0 >>/);
      expect(create.output).toMatch(/converged/);
      const inspect = await runAnsible('ansible', ['-i', 'ansible/generated_hosts.ini', '--become', 'manager', '-a', 'docker service inspect --pretty helloswarm'], tc.dir, 120_000);
      expect(inspect.exitCode, inspect.output).toBe(0);
      expect(inspect.output).toMatch(/Name:\s+helloswarm/);
      expect(inspect.output).toMatch(/Replicas:\s+2/);
      expect(inspect.output).toMatch(/Args:\s+ping docker\.com/);
    } finally {
      await tc.cluster.manager.exec(['docker', 'service', 'rm', 'helloswarm'], { check: false });
      await dns.close();
    }
  });

  it('buildinst and switch work on the swarm the playbook made', async () => {
    const cli = (...args: string[]) => runCli(['--config', tc.configFile, ...args], { cwd: tc.dir, timeoutMs: 300_000 });
    const built = await cli('buildinst', '--version', 'v1');
    expect(built.exitCode, built.stderr).toBe(0);
    expect(built.stdout).toContain('Version v1 is successfully installed');
    const live = await cli('switch', 'v1');
    expect(live.exitCode, live.stderr).toBe(0);
    const served = await requestThroughEdge({ url: `http://${tc.cluster.managerNode.address}:80` }, tc.loaded.config.domain, '/');
    expect(served.version).toBe('v1');
  });

  it('--check on a fresh node reports what the play would change, and changes nothing', async () => {
    const provider = await providerFor(tc.loaded, log);
    const nodes = await provider.up(4, log);
    const fresh = nodes[3]!;
    const pool = await sshPoolFor(tc.loaded, log, 120_000);
    try {
      // pins the new node's host key in .depl/known_hosts, as node-up does before any play
      const remote = await pool.remote(fresh);
      const inventory = path.join(tc.dir, 'ansible', 'with-fresh-node.ini');
      await writeFile(inventory, renderAnsibleInventory({
        nodes: nodes.map((n, i) => ({ name: n.name, address: n.address, role: i === 0 ? 'manager' : 'worker' })),
        user: 'root', port: 22, keyFile: path.join(tc.dir, '.depl', 'id_ed25519'), knownHostsFile: path.join(tc.dir, '.depl', 'known_hosts'),
        app, networkEncrypted: tc.nodeUp.encrypted,
      }));
      const check = await runAnsible('ansible-playbook', ['-i', inventory, '--check', BOOTSTRAP_PLAYBOOK], tc.dir);
      expect(check.exitCode, check.output).toBe(0);
      expect(check.recap.get('node-4')?.changed).toBeGreaterThan(0);
      expect(check.output).toMatch(/changed: \[node-4\]/);
      for (const host of ['node-1', 'node-2', 'node-3']) expect(check.recap.get(host)?.changed, host).toBe(0);
      expect(parseSwarmInfo((await remote.exec(swarmInfoCommand())).stdout).state).toBe('inactive');
      const listed = parseNodeList((await tc.cluster.manager.exec(nodeListCommand())).stdout);
      expect(listed.map((n) => n.hostname).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    } finally {
      await pool.closeAll();
      await provider.up(3, log);
    }
  });
});

describe('bootstrap: ansible on 2 local nodes like Nectar\'s (ubuntu + sudo, no Docker)', () => {
  let tc: TestCluster;

  beforeAll(async () => {
    tc = await nectarLikeCluster!;
  }, 900_000);

  it('the play installs Docker through become and forms the same swarm; the operator\'s own second play changes nothing', async () => {
    expect(tc.nodeUp.changes.filter((c) => c.includes('by ansible/bootstrap.yml'))).toHaveLength(2);
    await expectDeplSwarm(tc);
    const inventory = await readFile(ansibleInventoryPath(tc.loaded), 'utf8');
    expect(inventory).toContain('ansible_user=ubuntu');
    expect(inventory).toContain('ansible_become=true');
    // as the playbook's header tells an operator to run it, with the inventory node-up wrote
    const again = await runAnsible('ansible-playbook', ['-i', 'ansible/generated_hosts.ini', BOOTSTRAP_PLAYBOOK], tc.dir);
    expect(again.exitCode, again.output).toBe(0);
    expect([...again.recap].map(([host, r]) => [host, r.changed, r.failed, r.unreachable])).toEqual([['node-1', 0, 0, 0], ['node-2', 0, 0, 0]]);
    expect(again.output).not.toMatch(/SWMTKN-/);
  });

  it('ad-hoc commands reach Docker on the manager through sudo', async () => {
    const listed = await runAnsible('ansible', ['-i', 'ansible/generated_hosts.ini', '--become', 'manager', '-a', 'docker node ls'], tc.dir, 120_000);
    expect(listed.exitCode, listed.output).toBe(0);
    expect(listed.output).toMatch(/node-1 \| CHANGED \| rc=0 >>/);
    expect(listed.output).toMatch(/node-2\s+Ready/);
  });
});
