import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { nodeUp } from '../../src/workflows/node-up.js';
import { startTestCluster, type TestCluster } from '../support/cluster.js';

describe('node-up on a node without Docker', () => {
  let tc: TestCluster;

  beforeAll(async () => {
    tc = await startTestCluster({ nodes: 2 });
  });

  afterAll(async () => {
    await tc?.stop();
  });

  it('installs docker.io with apt over SSH, starts dockerd and joins the node to the swarm', async () => {
    const node2 = await tc.cluster.remote('node-2');
    await node2.shell('kill "$(cat /run/docker.pid)"; for i in $(seq 50); do pidof dockerd >/dev/null || break; sleep 0.2; done; ' +
      'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq docker.io >/dev/null 2>&1', { timeoutMs: 120_000 });
    expect((await node2.exec(['sh', '-c', 'command -v docker'], { check: false })).code).not.toBe(0);

    const result = await nodeUp(tc.loaded, silentLogger);
    expect(result.changes).toEqual(expect.arrayContaining(['node-2: Docker installed', 'node-2: dockerd started']));
    expect(result.nodes.map((n) => `${n.name} ${n.state}`)).toEqual(['node-1 Ready', 'node-2 Ready']);
    expect((await node2.exec(['docker', 'info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim()).toBe('active');

    const again = await nodeUp(tc.loaded, silentLogger);
    expect(again.changes).toEqual([]);
  });
});
