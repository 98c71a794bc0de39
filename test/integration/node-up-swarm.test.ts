import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeplError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { nodeUp } from '../../src/workflows/node-up.js';
import { nodeInputsFor } from '../../src/workflows/command-inputs.js';
import { installPoolHandoff } from '../../src/workflows/pool-handoff.js';
import type { DeplConfig } from '../../src/config/schema.js';
import { importBusyboxImage } from '../support/busybox-image.js';
import { loadImageOnNodes, startTestCluster, type TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

async function nodeRows(tc: TestCluster): Promise<string[]> {
  const out = await tc.cluster.manager.exec(['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}']);
  return out.stdout.trim().split('\n').map((r) => r.trim()).sort();
}

async function nodeContainerId(tc: TestCluster, index: number): Promise<string> {
  const [found] = await docker.listContainers({ all: true, filters: { name: [`^/${tc.prefix}-node-${index}$`] } });
  if (!found) throw new Error(`no container ${tc.prefix}-node-${index}`);
  return found.Id;
}

describe('node-up on the local provider', () => {
  let tc: TestCluster;
  const image = `depl-test-busybox:${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    const [cluster] = await Promise.all([startTestCluster({ nodes: 3 }), importBusyboxImage(image)]);
    tc = cluster;
  });

  afterAll(async () => {
    await tc?.stop();
    await docker.getImage(image).remove({ force: true }).catch(() => {});
  });

  it('from nothing, ends with `docker node ls` on the manager (over SSH) showing 3 Ready nodes', async () => {
    expect(await nodeRows(tc)).toEqual(['node-1 Ready Leader', 'node-2 Ready', 'node-3 Ready']);
    expect(tc.cluster.nodes.map((n) => [n.name, n.role])).toEqual([['node-1', 'manager'], ['node-2', 'worker'], ['node-3', 'worker']]);
  });

  it('labels the manager as the edge and creates the attachable overlay network', async () => {
    const labels = await tc.cluster.manager.exec(['docker', 'node', 'inspect', '--format', '{{json .Spec.Labels}}', 'self']);
    expect(JSON.parse(labels.stdout)).toMatchObject({ 'depl.edge': 'true', 'depl.node': 'node-1' });
    const network = await tc.cluster.manager.exec(['docker', 'network', 'inspect', '--format', '{{.Driver}} {{.Attachable}}', tc.cluster.network]);
    expect(network.stdout.trim()).toBe('overlay true');
  });

  it('runs a dnsrr service with 3 replicas on 3 nodes whose tasks reach each other by service name', async () => {
    await loadImageOnNodes(tc.cluster, image);
    // each task answers a TCP connection with the name of the node it runs on
    await tc.cluster.manager.exec(['docker', 'service', 'create', '--detach', '--name', 'echo', '--network', tc.cluster.network,
      '--endpoint-mode', 'dnsrr', '--replicas', '3', '--replicas-max-per-node', '1', '--no-resolve-image',
      '--stop-grace-period', '1s', '--env', 'NODE={{.Node.Hostname}}', image, 'nc', '-ll', '-p', '8080', '-e', 'sh', '-c', 'echo $NODE']);
    const placed = await waitFor('3 running echo tasks', async () => {
      const ps = await tc.cluster.manager.exec(['docker', 'service', 'ps', 'echo', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
      const running = ps.stdout.trim().split('\n').filter((l) => l.includes('Running')).map((l) => l.split(' ')[0]!);
      return running.length >= 3 ? running : undefined;
    }, 60_000, 500);
    expect(placed.sort()).toEqual(['node-1', 'node-2', 'node-3']);

    // from the task on node-1: the service name resolves (dnsrr) to the 3 tasks, and each answers over the overlay
    const node1 = await tc.cluster.remote('node-1');
    const task = (await node1.exec(['docker', 'ps', '-q', '--filter', 'label=com.docker.swarm.service.name=echo'])).stdout.trim();
    expect(task).toMatch(/^[0-9a-f]+$/);
    const probe = 'for ip in $(nslookup echo | awk \'/^Address: /{print $2}\'); do printf "%s " "$ip"; sleep 1 | nc -w 3 "$ip" 8080; done';
    // the overlay's DNS and routes settle a moment after the tasks run
    const answers = await waitFor('an answer from each of the 3 tasks', async () => {
      const out = await node1.exec(['docker', 'exec', task, 'sh', '-c', probe], { check: false });
      const names = out.stdout.trim().split('\n').map((line) => line.split(' ')[1] ?? '').filter((name) => name.length > 0).sort();
      return names.length >= 3 ? names : undefined;
    }, 30_000, 1_000);
    expect(answers).toEqual(['node-1', 'node-2', 'node-3']);
    // and by name alone (not an address), from inside the task
    const byName = await node1.exec(['docker', 'exec', task, 'sh', '-c', 'sleep 1 | nc -w 3 echo 8080']);
    expect(byName.stdout.trim()).toMatch(/^node-[123]$/);
    await tc.cluster.manager.exec(['docker', 'service', 'rm', 'echo']);
  });

  it('changes nothing when re-run on a healthy cluster, in under 15 s', async () => {
    const started = Date.now();
    const result = await nodeUp(nodeInputsFor(tc.loaded), silentLogger);
    expect(result.changes).toEqual([]);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.nodes.map((n) => `${n.name} ${n.state}`)).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready']);
  });

  it('brings a killed node back into the swarm when re-run', async () => {
    await docker.getContainer(await nodeContainerId(tc, 2)).kill();
    const result = await nodeUp(nodeInputsFor(tc.loaded), silentLogger);
    expect(result.nodes.map((n) => `${n.name} ${n.state}`)).toEqual(['node-1 Ready', 'node-2 Ready', 'node-3 Ready']);
    expect(await nodeRows(tc)).toEqual(['node-1 Ready Leader', 'node-2 Ready', 'node-3 Ready']);
  });

  it('replaces a removed node with a new machine, trusts its new host key, and drops the stale swarm entry', async () => {
    const before = await nodeContainerId(tc, 3);
    await docker.getContainer(before).remove({ force: true });
    const result = await nodeUp(nodeInputsFor(tc.loaded), silentLogger);
    expect(result.changes).toContain('node-3: joined the swarm');
    expect(await nodeContainerId(tc, 3)).not.toBe(before);
    expect(await nodeRows(tc)).toEqual(['node-1 Ready Leader', 'node-2 Ready', 'node-3 Ready']);
  });

  it('rebuilds the swarm when the manager was lost: workers leave the dead swarm and join the new one', async () => {
    await docker.getContainer(await nodeContainerId(tc, 1)).remove({ force: true });
    const result = await nodeUp(nodeInputsFor(tc.loaded), silentLogger);
    expect(result.changes).toEqual(expect.arrayContaining([
      'node-1: swarm initialised (manager)', 'node-2: joined the swarm', 'node-3: joined the swarm', `swarm: overlay network ${tc.cluster.network} created`,
    ]));
    expect(await nodeRows(tc)).toEqual(['node-1 Ready Leader', 'node-2 Ready', 'node-3 Ready']);
  });

  it('a preemptible pool node shutting down asks the manager to drain it, its task stops on SIGTERM, and it leaves the swarm', async () => {
    // node-3 as a node of a preemptible pool: labelled, and the hand-off installed as node-up installs it
    const config = { ...tc.loaded.config, provider: { type: 'openstack', pools: { crawl: { flavor: 'p3.small', count: { min: 1, max: 1 }, preemptible: true, services: [] } } } } as unknown as DeplConfig;
    await tc.cluster.manager.exec(['docker', 'node', 'update', '--label-add', 'depl.pool=crawl', 'node-3']);
    const notes: string[] = [];
    await installPoolHandoff({
      config, root: tc.dir, manager: tc.cluster.managerNode, nodes: [{ name: 'node-3', pool: 'crawl' }],
      remote: (name) => tc.cluster.remote(name), log: silentLogger, change: () => {}, note: (line) => notes.push(line),
    });
    expect(notes).toEqual(['node-3: no systemd runs there, so depl-pool-drain.service is written but cannot run at shutdown']);
    // a task on every node that records the signal it was stopped with
    await loadImageOnNodes(tc.cluster, image);
    await tc.cluster.manager.exec(['docker', 'service', 'create', '--detach', '--name', 'handoff', '--replicas', '3', '--replicas-max-per-node', '1',
      '--no-resolve-image', '--stop-grace-period', '5s', '--mount', 'type=bind,source=/tmp,target=/out', image,
      'sh', '-c', 'trap "echo TERM > /out/handoff-stopped; exit 0" TERM; while :; do sleep 1; done']);
    await waitFor('a handoff task on node-3', async () => {
      const ps = await tc.cluster.manager.exec(['docker', 'service', 'ps', 'handoff', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
      return ps.stdout.split('\n').some((l) => l.startsWith('node-3 Running')) ? true : undefined;
    }, 30_000, 200);
    const remote3 = await tc.cluster.remote('node-3');
    // what the unit's ExecStop runs at shutdown
    const run = await remote3.exec(['/usr/local/lib/depl/pool-drain'], { timeoutMs: 60_000 });
    expect(run.stderr).toContain(`drained by root@${tc.cluster.managerNode.address}`);
    expect(run.stderr).toContain('left the swarm');
    expect((await remote3.exec(['cat', '/tmp/handoff-stopped'])).stdout.trim()).toBe('TERM');
    const entry = await tc.cluster.manager.exec(['docker', 'node', 'inspect', '--format', '{{.Spec.Availability}}', 'node-3']);
    expect(entry.stdout.trim()).toBe('drain');
    await tc.cluster.manager.exec(['docker', 'service', 'rm', 'handoff']);
  }, 60_000);

  it('refuses a node whose host key changed, naming the known_hosts file to fix', async () => {
    const node2 = await tc.cluster.remote('node-2');
    const address = tc.cluster.nodes.find((n) => n.name === 'node-2')!.address;
    // the key the node's sshd offers now, as any SSH client sees it before it trusts it
    const hostKey = () => new Promise<string>((resolve) => {
      let offered = '';
      new Client().on('error', () => resolve(offered)).connect({
        host: address, port: 22, username: 'probe', readyTimeout: 5_000,
        hostVerifier: (key: Buffer) => { offered = key.toString('base64'); return false; },
      });
    });
    const oldKey = await hostKey();
    await node2.shell('rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP $(cat /run/sshd.pid)');
    // until sshd, re-executed by the HUP, offers its new key
    await waitFor('node-2 to offer its new host key', async () => {
      const key = await hostKey();
      return key !== '' && key !== oldKey ? true : undefined;
    }, 30_000, 100);
    const knownHosts = `${tc.dir}/.depl/known_hosts`;
    const error = await nodeUp(nodeInputsFor(tc.loaded), silentLogger).then(() => null, (e: unknown) => e);
    expect(isDeplError(error) && error.code).toBe('HOST_KEY_CHANGED');
    expect((error as Error).message).toContain('node-2');
    expect((error as Error).message).toContain(knownHosts);
    expect(isDeplError(error) && error.hint).toContain(knownHosts);
  });
});
