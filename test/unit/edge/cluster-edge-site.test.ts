import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../../src/apply/cluster.js';
import type { Engine } from '../../../src/apply/docker.js';
import { clusterEdgeSite } from '../../../src/apply/edge/site.js';
import type { ExecResult, Remote } from '../../../src/apply/remote.js';
import type { Argv } from '../../../src/plan/shell.js';

/**
 * Opening a cluster's edge (every release command does, before it takes the lock): what it asks the manager, side by
 * side, and when it asks the Engine. The shell side of the container cache is in probe-from-node.test.ts; here, what
 * the port does with its answers.
 */
const CACHED = 'c0ffee00c0ffee00';
const SETTINGS = { certificates: [{ id: 'shop', hosts: ['shop.example'] }] };

interface Manager { cached?: Record<string, string>; settings?: string | null; clusterEdge?: boolean; engineFinds?: string | null }

function clusterAnswering(answers: Manager): { cluster: Cluster; asked: string[] } {
  const asked: string[] = [];
  const manager: Remote = {
    name: 'node-1 (192.0.2.1)',
    exec: async (argv: Argv): Promise<ExecResult> => {
      if (argv[3] === 'depl-edge-files') {
        const service = argv[5]!;
        asked.push(`cached container of ${service}`);
        return { code: 0, stdout: answers.cached?.[service] ?? '', stderr: '' };
      }
      if (argv[0] === 'test') {
        asked.push(`test ${argv.slice(1).join(' ')}`);
        return { code: answers.clusterEdge === true ? 0 : 1, stdout: '', stderr: '' };
      }
      throw new Error(`unexpected command ${argv.join(' ')}`);
    },
    shell: async (line) => { asked.push(`shell ${line}`); return { code: 0, stdout: '', stderr: '' }; },
    writeFileAtomic: async () => { throw new Error('no writes'); },
    readFile: async (file) => { asked.push(`read ${file}`); return answers.settings ?? null; },
    close: async () => {},
  };
  const engine = { api: { runningContainerOf: async (service: string) => { asked.push(`engine: running container of ${service}`); return answers.engineFinds ?? null; } } } as unknown as Engine;
  const cluster: Cluster = {
    nodes: [], manager, managerNode: { name: 'node-1', address: '192.0.2.1', role: 'manager' }, network: 'shop-net',
    remote: async () => manager, engine: async () => engine, close: async () => {},
  };
  return { cluster, asked };
}

const ASKED_SIDE_BY_SIDE = [
  'cached container of depl_edge',
  'cached container of shop-edge',
  'test -f /var/lib/depl/_edge/nginx.conf',
  'read /var/lib/depl/shop/edge/tls/render.json',
];

describe("a cluster's edge is opened from what the manager's last probe found, the Engine asked only when that no longer runs", () => {
  it("reads the app's own edge container from the cache beside the HTTPS settings, and does not ask the Engine", async () => {
    const { cluster, asked } = clusterAnswering({ cached: { 'shop-edge': CACHED, depl_edge: 'other' }, settings: JSON.stringify(SETTINGS), engineFinds: 'engine' });
    const site = await clusterEdgeSite(cluster, 'shop');
    expect([...asked].sort()).toEqual([...ASKED_SIDE_BY_SIDE].sort());
    expect(site.reload).toEqual(['docker', 'kill', '--signal', 'HUP', CACHED]);
    expect(site.nginx(['-t'])).toEqual(['docker', 'exec', CACHED, 'nginx', '-t']);
    expect(site.render.tls).toEqual(SETTINGS);
  });

  it("uses the cluster's depl_edge container once the cluster's edge was made", async () => {
    const { cluster, asked } = clusterAnswering({ cached: { 'shop-edge': 'gone0000gone0000', depl_edge: CACHED }, clusterEdge: true });
    const site = await clusterEdgeSite(cluster, 'shop');
    expect(asked).not.toContain('engine: running container of depl_edge');
    expect(site.reload).toEqual(['docker', 'kill', '--signal', 'HUP', CACHED]);
    expect(site.probeApp).toBe('shop');
  });

  it('asks the Engine when the cache names no running container, and says so when the Engine finds none either', async () => {
    const missed = clusterAnswering({ engineFinds: 'feedface' });
    const site = await clusterEdgeSite(missed.cluster, 'shop');
    expect(missed.asked).toContain('engine: running container of shop-edge');
    expect(site.reload).toEqual(['docker', 'kill', '--signal', 'HUP', 'feedface']);
    expect(site.render.tls).toBeUndefined();
    await expect(clusterEdgeSite(clusterAnswering({ engineFinds: null }).cluster, 'shop')).rejects.toMatchObject({ code: 'EDGE_NOT_RUNNING' });
  });

  it('with the HTTPS settings already known, does not read them', async () => {
    const { cluster, asked } = clusterAnswering({ cached: { 'shop-edge': CACHED } });
    const site = await clusterEdgeSite(cluster, 'shop', { render: undefined });
    expect(asked.some((line) => line.startsWith('read '))).toBe(false);
    expect(site.processes).toEqual(['docker', 'top', CACHED, '-o', 'pid,args']);
  });

  it('refuses settings that are not JSON, as a read of the file would', async () => {
    await expect(clusterEdgeSite(clusterAnswering({ cached: { 'shop-edge': CACHED }, settings: '{not json' }).cluster, 'shop')).rejects.toMatchObject({ code: 'EDGE_TLS_CORRUPT' });
  });
});
