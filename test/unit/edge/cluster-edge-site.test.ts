import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../../src/apply/cluster.js';
import type { Engine } from '../../../src/apply/docker.js';
import { clusterEdgeSite } from '../../../src/apply/edge/site.js';
import type { ExecResult, Remote } from '../../../src/apply/remote.js';
import type { Argv } from '../../../src/plan/shell.js';

/**
 * Opening a cluster's edge (every release command does, before it takes the lock): what it asks the manager. The
 * shell side of the container cache is in probe-from-node.test.ts; here, what the port does with its answer.
 */
const CACHED = 'c0ffee00c0ffee00';
const SETTINGS = { certificates: [{ id: 'shop', hosts: ['shop.example'] }] };

function clusterAnswering(printed: string, engineFinds: string | null): { cluster: Cluster; asked: string[] } {
  const asked: string[] = [];
  const manager: Remote = {
    name: 'node-1 (192.0.2.1)',
    exec: async (argv: Argv): Promise<ExecResult> => {
      asked.push(`exec ${argv[3]} ${argv.slice(6).join(' ')}`.trim());
      return { code: 0, stdout: printed, stderr: '' };
    },
    shell: async (line) => { asked.push(`shell ${line}`); return { code: 0, stdout: '', stderr: '' }; },
    writeFileAtomic: async () => { throw new Error('no writes'); },
    readFile: async (file) => { asked.push(`read ${file}`); return null; },
    close: async () => {},
  };
  const engine = { api: { runningContainerOf: async (service: string) => { asked.push(`engine: running container of ${service}`); return engineFinds; } } } as unknown as Engine;
  const cluster: Cluster = {
    nodes: [], manager, managerNode: { name: 'node-1', address: '192.0.2.1', role: 'manager' }, network: 'shop-net',
    remote: async () => manager, engine: async () => engine, close: async () => {},
  };
  return { cluster, asked };
}

describe("a cluster's edge is opened with one command to the manager while its container is the one the last probe found", () => {
  it('reads the HTTPS settings and the cached container together, and does not ask the Engine', async () => {
    const { cluster, asked } = clusterAnswering(`+${JSON.stringify(SETTINGS)}\0${CACHED}`, 'other');
    const site = await clusterEdgeSite(cluster, 'shop');
    expect(asked).toEqual(['exec depl-edge-files /var/lib/depl/shop/edge/tls/render.json']);
    expect(site.reload).toEqual(['docker', 'kill', '--signal', 'HUP', CACHED]);
    expect(site.nginx(['-t'])).toEqual(['docker', 'exec', CACHED, 'nginx', '-t']);
    expect(site.render.tls).toEqual(SETTINGS);
  });

  it('asks the Engine when the cache names no running container, and says so when the Engine finds none either', async () => {
    const missed = clusterAnswering('-\0', 'feedface');
    const site = await clusterEdgeSite(missed.cluster, 'shop');
    expect(missed.asked).toEqual(['exec depl-edge-files /var/lib/depl/shop/edge/tls/render.json', 'engine: running container of shop-edge']);
    expect(site.reload).toEqual(['docker', 'kill', '--signal', 'HUP', 'feedface']);
    expect(site.render.tls).toBeUndefined();
    await expect(clusterEdgeSite(clusterAnswering('-\0', null).cluster, 'shop')).rejects.toMatchObject({ code: 'EDGE_NOT_RUNNING' });
  });

  it('with the HTTPS settings already known, reads only the cached container', async () => {
    const { cluster, asked } = clusterAnswering(CACHED, null);
    const site = await clusterEdgeSite(cluster, 'shop', { render: undefined });
    expect(asked).toEqual(['exec depl-edge-files']);
    expect(site.processes).toEqual(['docker', 'top', CACHED, '-o', 'pid,args']);
  });

  it('refuses settings that are not JSON and an answer it cannot split, as a read of the file would', async () => {
    await expect(clusterEdgeSite(clusterAnswering(`+{not json\0${CACHED}`, null).cluster, 'shop')).rejects.toMatchObject({ code: 'EDGE_TLS_CORRUPT' });
    await expect(clusterEdgeSite(clusterAnswering('+{}', null).cluster, 'shop')).rejects.toMatchObject({ code: 'REMOTE_READ_FAILED' });
  });
});
