import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInstallIntent } from '../../../src/apply/install-intent.js';
import { readAndPlan } from '../../../src/workflows/buildinst.js';
import { readRelease } from '../../../src/workflows/release.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * The stateful takeover on the fake cluster (src/plan/install-plan.ts statefulTakeover): a new version stops the
 * live version's stateful service before starting its own on the same volume, goes live once healthy, and gives
 * the volume and the live domain back when it fails or is killed after any step.
 */
const yaml = `
app: shop
domain: shop.test
services:
  web: { image: "notes:1", port: 3000, http: true, health: /healthz, volume: "notes-data:/data" }
accessories:
  db: { image: "postgres:16", node: manager, port: 5432, volume: "pg-data:/var/lib/postgresql/data" }
`;

let fake: FakeCluster;
beforeEach(async () => {
  fake = await startFakeCluster({ versions: [] });
});
afterEach(async () => {
  await fake.close();
});

const { loaded, request, port, buildinst } = fakeBuildinst(() => fake, yaml);

/** v1 installed and live: the version the next install takes the volume from. */
async function v1Live() {
  await buildinst('v1');
  await switchVersion(fake.freshControl(), 'v1');
}

const replicas = (service: string) => fake.versions.find((v) => v.services.includes(service))?.replicas?.[service];

describe('a stateful service on the fake cluster', () => {
  it('a new version stops the live one first, starts on the volume, and goes live; the earlier version keeps its service at 0', async () => {
    await v1Live();
    fake.swarm.calls.length = 0;
    await buildinst('v2');
    const calls = fake.swarm.calls;
    expect(calls.indexOf('stop-services shop-v1-web')).toBeGreaterThan(-1);
    expect(calls.indexOf('stop-services shop-v1-web')).toBeLessThan(calls.indexOf('create-service shop-v2-web'));
    expect(replicas('shop-v1-web')).toBe(0);
    expect(replicas('shop-v2-web')).toBe(1);
    const { state } = await readRelease(fake.control);
    expect(state.live).toBe('v2');
    expect(state.previous).toBe('v1');
    expect((await fake.get('shop.test', '/healthz')).version).toBe('v2');
  }, 60_000);

  it('a new version that fails its health check gives the volume back: its services go, the stopped one starts, v1 stays live', async () => {
    await v1Live();
    fake.unhealthy.add('v2');
    await expect(buildinst('v2')).rejects.toMatchObject({ code: 'HEALTH_CHECK_FAILED' });
    expect(fake.versions.map((v) => v.label)).toEqual(['v1']);
    expect(replicas('shop-v1-web')).toBe(1);
    expect(fake.swarm.calls.at(-2)).toBe('start-services shop-v1-web=1');
    expect(fake.swarm.calls.at(-1)).toBe('remove-network shop-v2-net');
    expect((await readRelease(fake.control)).state.live).toBe('v1');
  }, 60_000);

  it('killed after a step of the takeover, the next buildinst repairs (the stopped service runs again first) and takes over again', async () => {
    await v1Live();
    const steps = (await readAndPlan(port(), { ...request('v2'), config: loaded().config })).steps;
    expect(steps.map((s) => s.kind)).toContain('take-live');
    // the takeover's own steps, and the one between them where both versions are routed (buildinst-fake.test.ts
    // kills after every step of a stateless install; these runs are slow enough to keep to what is new here)
    const points = new Set(['stop-stateful', 'route-version', 'take-live']);
    for (const [index, step] of steps.entries()) {
      if (!points.has(step.kind)) continue;
      await fake.close();
      fake = await startFakeCluster({ versions: [] });
      await v1Live();
      await expect(buildinst('v2', index), `killed after step ${index + 1} (${step.kind})`).rejects.toBeInstanceOf(Killed);
      // once v2 is live it keeps the volume (the repair keeps a live version); before that, it is removed
      const kept = steps.findIndex((s) => s.kind === 'take-live') <= index;
      if (!kept) {
        // a second run killed before its first step shows what the repair did: v2 gone, v1's service running again
        await expect(buildinst('v2', 0)).rejects.toBeInstanceOf(Killed);
        expect(fake.versions.map((v) => v.label), `step ${index + 1} (${step.kind})`).toEqual(['v1']);
        expect(replicas('shop-v1-web'), `step ${index + 1} (${step.kind})`).toBe(1);
        expect((await readRelease(fake.control)).state.live).toBe('v1');
      }
      const again = await buildinst('v2').then(() => 'installed', (error: { code?: string }) => error.code ?? String(error));
      expect(again, `after a kill after step ${index + 1} (${step.kind})`).toBe(kept ? 'VERSION_EXISTS' : 'installed');
      // one version holds the volume: v2, live
      expect([replicas('shop-v1-web'), replicas('shop-v2-web')], `step ${index + 1} (${step.kind})`).toEqual([0, 1]);
      expect((await readRelease(fake.control)).state.live, `step ${index + 1}`).toBe('v2');
      expect(await readInstallIntent(fake.control.stateRemote, fake.app, fake.control.stateRoot), `step ${index + 1}`).toBeNull();
    }
  }, 240_000);
});
