import { randomBytes } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_LABEL_PREFIX } from '../../src/plan/local-nodes.js';
import { silentLogger } from '../../src/util/log.js';
import { openCluster } from '../../src/workflows/cluster.js';
import { nodeUp } from '../../src/workflows/node-up.js';
import { nodeInputsFor } from '../../src/workflows/command-inputs.js';
import { importBusyboxImage } from '../support/busybox-image.js';
import { runCli } from '../support/cli.js';
import { loadImageOnNodes, startTestCluster, type TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const exists = (file: string) => access(file).then(() => true, () => false);

describe('node-up --nodes, status and node-down through the CLI', () => {
  let tc: TestCluster;
  const image = `depl-test-busybox:${randomBytes(4).toString('hex')}`;
  const cli = (...args: string[]) => runCli(['--config', tc.configFile, ...args], { cwd: tc.dir, timeoutMs: 240_000 });
  const labelled = { label: [] as string[] };

  beforeAll(async () => {
    const [cluster] = await Promise.all([startTestCluster({ nodes: 2 }), importBusyboxImage(image)]);
    tc = cluster;
    labelled.label = [`${LOCAL_LABEL_PREFIX}=${tc.prefix}`];
  });

  afterAll(async () => {
    await tc?.stop();
    await docker.getImage(image).remove({ force: true }).catch(() => {});
  });

  it('status --json shows the node table from the swarm, and no release yet', async () => {
    const run = await cli('--json', 'status');
    expect(run.exitCode, run.stderr).toBe(0);
    const subnetBase = tc.subnet.replace(/\.0\/24$/, '');
    expect(JSON.parse(run.stdout)).toEqual({
      nodes: [
        { name: 'node-1', address: `${subnetBase}.11`, role: 'manager', availability: 'Active', state: 'Ready' },
        { name: 'node-2', address: `${subnetBase}.12`, role: 'worker', availability: 'Active', state: 'Ready' },
      ],
      live: null, canary: null, versions: [],
      tls: { mode: 'off', certificates: [] },
      jobs: [], autoscale: null, scale: {},
    });
  });

  it('grows to 3 nodes with --nodes 3, printing progress lines per node and step', async () => {
    const run = await cli('node-up', '--nodes', '3');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain('node-3: container');
    expect(run.stderr).toContain('node-3: joined the swarm');
    expect(run.stderr).toMatch(/node-1: ssh ready/);
    expect(run.stdout).toMatch(/node-3\s+\S+\s+worker\s+Active\s+Ready/);
    const hosts = await readFile(path.join(tc.dir, 'ansible', 'generated_hosts.ini'), 'utf8');
    expect(hosts).toMatch(/\[workers\]\nnode-2 ansible_host=\S+\nnode-3 ansible_host=\S+\n/);
  });

  it('shrinks to 2 nodes, draining node-3 so its tasks move before it goes', async () => {
    // the fixture's Cluster was opened on 2 nodes: open the grown one
    const grown = await openCluster(tc.loaded, silentLogger);
    await loadImageOnNodes(grown, image);
    const manager = grown.manager;
    await manager.exec(['docker', 'service', 'create', '--detach', '--name', 'spread', '--replicas', '3', '--no-resolve-image',
      '--stop-grace-period', '1s', image, 'sleep', '100000']);
    const runningOn = async () => {
      const ps = await manager.exec(['docker', 'service', 'ps', 'spread', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
      return ps.stdout.trim().split('\n').filter((l) => l.includes('Running')).map((l) => l.split(' ')[0]!).sort();
    };
    const nodesWithTasks = await waitFor('a task on each of the 3 nodes', async () => {
      const nodes = new Set(await runningOn());
      return nodes.size >= 3 ? nodes : undefined;
    }, 30_000, 500);
    expect([...nodesWithTasks].sort()).toEqual(['node-1', 'node-2', 'node-3']);

    const result = await nodeUp(nodeInputsFor(tc.loaded), silentLogger, { nodes: 2 });
    expect(result.changes).toContain('node-3: drained and removed from the swarm');
    expect(result.nodes.map((n) => n.name)).toEqual(['node-1', 'node-2']);
    const rows = (await manager.exec(['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).stdout.trim().split('\n').sort();
    expect(rows).toEqual(['node-1 Ready', 'node-2 Ready']);
    const placed = await waitFor('the 3 tasks running again', async () => {
      const nodes = await runningOn();
      return nodes.length === 3 ? nodes : undefined;
    }, 30_000, 500);
    expect(placed).toHaveLength(3);
    expect(placed.every((node) => node === 'node-1' || node === 'node-2')).toBe(true);
    const containers = await docker.listContainers({ all: true, filters: labelled });
    expect(containers.map((c) => c.Names[0]).sort()).toEqual([`/${tc.prefix}-node-1`, `/${tc.prefix}-node-2`]);
    const knownHosts = await readFile(path.join(tc.dir, '.depl', 'known_hosts'), 'utf8');
    expect(knownHosts).not.toContain(tc.subnet.replace(/0\/24$/, '13 '));
    await manager.exec(['docker', 'service', 'rm', 'spread']);
    await grown.close();
  });

  it('node-down refuses without --yes when it cannot ask, and changes nothing', async () => {
    const run = await cli('node-down');
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('node-down would remove node-1');
    expect(run.stderr).toContain('Pass --yes to confirm.');
    expect(await docker.listContainers({ all: true, filters: labelled })).toHaveLength(2);
  });

  it('node-down --yes removes the nodes, their volumes and network, and the inventory', async () => {
    const run = await cli('--yes', 'node-down');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('Removed 2 nodes.');
    expect(await docker.listContainers({ all: true, filters: labelled })).toEqual([]);
    expect((await docker.listVolumes({ filters: labelled })).Volumes ?? []).toEqual([]);
    expect(await docker.listNetworks({ filters: labelled })).toEqual([]);
    expect(await exists(path.join(tc.dir, '.depl', 'inventory.json'))).toBe(false);
    const status = await cli('status');
    expect(status.exitCode).toBe(2);
    expect(status.stderr).toContain("Run 'depl node-up' first.");
  });
});
