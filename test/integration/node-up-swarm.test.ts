import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../support/cluster.js';

describe('node-up on the local provider, from nothing', () => {
  let tc: TestCluster;

  beforeAll(async () => {
    tc = await startTestCluster({ nodes: 3 });
  });

  afterAll(async () => {
    await tc?.stop();
  });

  it('ends with `docker node ls` on the manager, over SSH, showing 3 Ready nodes', async () => {
    const out = await tc.cluster.manager.exec(['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}']);
    const rows = out.stdout.trim().split('\n').map((r) => r.trim()).sort();
    expect(rows).toEqual(['node-1 Ready Leader', 'node-2 Ready', 'node-3 Ready']);
    expect(tc.cluster.nodes.map((n) => [n.name, n.role])).toEqual([['node-1', 'manager'], ['node-2', 'worker'], ['node-3', 'worker']]);
  });

  it('labels the manager as the edge and creates the attachable overlay network', async () => {
    const labels = await tc.cluster.manager.exec(['docker', 'node', 'inspect', '--format', '{{json .Spec.Labels}}', 'self']);
    expect(JSON.parse(labels.stdout)).toMatchObject({ 'depl.edge': 'true', 'depl.node': 'node-1' });
    const network = await tc.cluster.manager.exec(['docker', 'network', 'inspect', '--format', '{{.Driver}} {{.Attachable}}', tc.cluster.network]);
    expect(network.stdout.trim()).toBe('overlay true');
    expect(tc.cluster.network).toBe('testapp-net');
  });
});
