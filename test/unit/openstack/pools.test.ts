import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createOpenStackProvider } from '../../../src/apply/providers/openstack.js';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { NECTAR_SU_RATES } from '../../../src/plan/service-units.js';
import { silentLogger } from '../../../src/util/log.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * Worker pools through the Heat emulator: the pool's servers as a ResourceGroup beside the nodes, counted by the
 * quota check and the SU cost, and a preempted pool node (shutdown signal, then deleted behind Heat's back) made
 * again by node-up's stack check and update.
 */
describe('worker pools on OpenStack', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 1;
  const signalled: string[] = [];
  const live = new Set<string>();

  const start = async (quotas: Record<string, number> = {}) => {
    emulator = await startOpenStackEmulator({
      servers: {
        createServer: async (name) => {
          live.add(name);
          return { address: `10.3.0.${next++}` };
        },
        deleteServer: async (name) => { live.delete(name); },
        shutdownSignal: async (name) => { signalled.push(name); },
      },
      quotas,
      keypairs: { mine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a me' },
    });
  };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-pools-'));
    signalled.length = 0;
    live.clear();
  });
  afterEach(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  const provider = (count: unknown = '0..3') =>
    createOpenStackProvider(
      openStackProviderSettings({
        config: parseConfig(stringify({
          app: 'crawler',
          domain: 'd.localhost',
          provider: { type: 'openstack', parameters: { key_name: 'mine' }, pools: { crawl: { flavor: 'p3.small', count, preemptible: true, services: ['worker'] } } },
          services: { api: { image: 'x', port: 8000, http: true }, worker: { image: 'x' } },
        })),
        file: path.join(dir, 'depl.yaml'),
        root: dir,
      }),
      silentLogger,
      { env: passwordLoginEnv(emulator), cwd: dir, interactive: false, pollMs: 10 },
    );

  it('makes the pool as its own server group, costs p3 at a quarter of m3, and replaces a preempted node', async () => {
    await start();
    const p = await provider();
    const counts = await p.poolCounts!({ crawl: 2 });
    expect(counts).toEqual({ crawl: 2 });

    const plan = await p.plan!(3, silentLogger, counts);
    // 3 x m3.small (the template's default flavor) + 2 x p3.small
    const su = (plan.allocation as { serviceUnits: { perHour: number } }).serviceUnits.perHour;
    expect(su).toBeCloseTo(3 * NECTAR_SU_RATES['m3.small']! + 2 * NECTAR_SU_RATES['p3.small']!, 10);
    expect(NECTAR_SU_RATES['p3.small']! * 4).toBeCloseTo(NECTAR_SU_RATES['m3.small']!, 10);
    expect(plan.lines.join('\n')).toContain('2 x p3.small');

    const nodes = await p.up(3, silentLogger, counts);
    expect(nodes.map((n) => [n.name, n.pool, n.fresh])).toEqual([
      ['crawler-nodes-0', undefined, true], ['crawler-nodes-1', undefined, true], ['crawler-nodes-2', undefined, true],
      ['crawler-nodes-crawl-0', 'crawl', true], ['crawler-nodes-crawl-1', 'crawl', true],
    ]);
    expect([...live].sort()).toEqual(nodes.map((n) => n.name).sort());
    expect((await p.list(silentLogger)).map((n) => n.name)).toEqual(nodes.map((n) => n.name));
    // a range keeps what the stack has
    expect(await p.poolCounts!({})).toEqual({ crawl: 2 });

    await emulator.preempt('crawler-nodes-crawl-1');
    expect(signalled).toEqual(['crawler-nodes-crawl-1']);
    expect(live.has('crawler-nodes-crawl-1')).toBe(false);
    expect((await p.list(silentLogger)).map((n) => n.name)).not.toContain('crawler-nodes-crawl-1');

    // the plan names what is lost and how it comes back
    const repair = await p.plan!(3, silentLogger, await p.poolCounts!({}));
    expect(repair.action).toBe('update');
    expect(repair.resources.lost).toEqual(['crawler-nodes-crawl-1']);
    expect(repair.recovery).toMatchObject({ steps: [{ kind: 'check-stack' }, { kind: 'replace-lost', nodes: ['crawler-nodes-crawl-1'] }] });

    const actionsBefore = emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/actions')).length;
    const again = await p.up(3, silentLogger, await p.poolCounts!({}));
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/actions')).length).toBe(actionsBefore + 1);
    expect(again.find((n) => n.name === 'crawler-nodes-crawl-1')).toMatchObject({ pool: 'crawl', fresh: true });
    expect(again.find((n) => n.name === 'crawler-nodes-crawl-0')).toMatchObject({ fresh: false });
    expect(live.has('crawler-nodes-crawl-1')).toBe(true);
    expect(emulator.stacks()[0]!.status).toBe('UPDATE_COMPLETE');

    // nothing lost: no check, no update
    const puts = emulator.requests.filter((r) => r.method === 'PUT').length;
    await p.up(3, silentLogger, await p.poolCounts!({}));
    expect(emulator.requests.filter((r) => r.method === 'PUT').length).toBe(puts);
  });

  it('counts the pool in the quota check: a plan over the instance quota is refused before anything is made', async () => {
    await start({ instances: 4 });
    const p = await provider(2);
    const counts = await p.poolCounts!({});
    expect(counts).toEqual({ crawl: 2 });
    const refusal = await p.up(3, silentLogger, counts).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(UserError);
    expect((refusal as UserError).message).toMatch(/instances \(Nova\): needs 5, 0 of 4 used, 4 left/);
    expect(emulator.stacks()).toEqual([]);
    expect(live.size).toBe(0);
  });

  it('refuses a pool size outside the range', async () => {
    await start();
    const p = await provider('1..3');
    await expect(p.poolCounts!({ crawl: 4 })).rejects.toThrow('--pool crawl=4 is outside the pool\'s count 1..3');
    await expect(p.poolCounts!({ other: 1 })).rejects.toThrow('no pool named "other"');
    expect(await p.poolCounts!({})).toEqual({ crawl: 1 });
  });
});
