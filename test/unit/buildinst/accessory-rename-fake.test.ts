import { afterEach, describe, expect, it } from 'vitest';
import { readInstallIntent } from '../../../src/apply/install-intent.js';
import type { PresentService } from '../../../src/plan/install-plan.js';
import { readAndPlan } from '../../../src/workflows/buildinst.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * Accessories are app-scoped (`<app>-<accessory>`, answering to `<accessory>` on the app's network): one made
 * under its old name (the accessory alone) is moved by the next buildinst, its volume's data moved into the
 * app-scoped volume first (src/plan/volume-move.ts); and two apps,
 * each with its own depl.yaml and its own `redis`, install on one swarm without touching each other's.
 */
const shopYaml = `
app: shop
domain: shop.test
images: { node: depl-base/node:20, redis: depl-base/redis:7 }
services:
  web: { build: { context: ., dockerfile: Dockerfile }, port: 8080, http: true, health: /healthz, replicas: 2 }
accessories:
  redis: { image: redis, node: manager, port: 6379, volume: "redis-data:/data" }
config: { redis: "redis://redis:6379" }
`;
const blogYaml = shopYaml.replace('app: shop', 'app: blog').replace('domain: shop.test', 'domain: blog.test');

let fake: FakeCluster;
let other: FakeCluster | undefined;
afterEach(async () => {
  await fake.close();
  await other?.close();
  other = undefined;
});

const shop = fakeBuildinst(() => fake, shopYaml);
const blog = fakeBuildinst(() => other!, blogYaml);

/** shop's Redis as buildinst made it before names were app-scoped: the service `redis`, on shop's network. */
function legacyRedis(f: FakeCluster): void {
  const labels = { 'depl.app': 'shop', 'depl.accessory': 'redis' };
  const legacy: PresentService = { name: 'redis', labels, createdAt: '2026-11-01T00:00:00Z', replicas: 1, image: 'depl-base/redis:7' };
  f.swarm.accessories.set('redis', legacy);
  f.swarm.specs.set('redis', {
    Name: 'redis', Labels: labels,
    TaskTemplate: { ContainerSpec: { Image: 'depl-base/redis:7', Mounts: [{ Type: 'volume', Source: 'redis-data', Target: '/data' }] }, Networks: [{ Target: 'shop-net' }] },
  });
  f.swarm.volumes.set('redis-data', { node: 'm1', files: new Map([['dump.rdb', 'shop keys']]) });
}

const volumeOf = (f: FakeCluster, service: string) =>
  (f.swarm.specs.get(service) as { TaskTemplate: { ContainerSpec: { Mounts: { Source: string }[] } } } | undefined)?.TaskTemplate.ContainerSpec.Mounts.map((m) => m.Source);

describe('an accessory under its old name, on the fake cluster', () => {
  it('the next buildinst stops it, makes it again as shop-redis on the same volume, answering to redis, then removes it', async () => {
    fake = await startFakeCluster({ versions: ['v1'] });
    legacyRedis(fake);
    const plan = await readAndPlan(shop.port(), { ...shop.request('v2'), config: shop.loaded().config });
    expect(plan.steps.filter((s) => s.kind.includes('accessory')).map((s) => s.kind)).toEqual(['stop-legacy-accessory', 'create-accessory', 'remove-legacy-accessory']);
    await shop.buildinst('v2');
    // its volume is moved into the app-scoped one first (src/plan/volume-move.ts), then the service
    expect(fake.swarm.calls.filter((c) => /redis|run-job/.test(c))).toEqual([
      'locate-volumes redis-data', 'stop-services redis', 'await-volume-free m1 redis-data', expect.stringMatching(/^run-job shop-volume-move-[0-9a-f]{6}$/),
      'repoint redis redis-data->shop-redis-data', 'start-services redis=1', 'remove-volume m1 redis-data',
      'stop-services redis', 'create-service shop-redis', 'remove-service redis', 'await-tasks shop-redis,shop-v2-web',
    ]);
    expect([...fake.swarm.accessories.keys()]).toEqual(['shop-redis']);
    expect(volumeOf(fake, 'shop-redis')).toEqual(['shop-redis-data']);
    expect([...fake.swarm.volumes.keys()]).toEqual(['shop-redis-data']);
    expect(fake.swarm.volumes.get('shop-redis-data')?.files.get('dump.rdb')).toBe('shop keys');
    expect((fake.swarm.specs.get('shop-redis') as { TaskTemplate: { Networks: unknown[] } }).TaskTemplate.Networks).toEqual([{ Target: 'shop-net', Aliases: ['redis'] }]);
    expect((await fake.get('v2.shop.test', '/healthz')).status).toBe(200);
  }, 60_000);

  it('killed after any step of the move, the next buildinst finishes it: one Redis, app-scoped, on the same volume, the version installed', async () => {
    fake = await startFakeCluster({ versions: ['v1'] });
    legacyRedis(fake);
    const steps = (await readAndPlan(shop.port(), { ...shop.request('v2'), config: shop.loaded().config })).steps;
    // from the step before the move to the new service (a kill before those is buildinst's own test's business)
    const first = steps.findIndex((s) => s.kind === 'stop-legacy-accessory') - 1;
    const last = steps.findIndex((s) => s.kind === 'remove-legacy-accessory');
    expect(steps.slice(first + 1, last + 1).map((s) => s.kind)).toEqual(['stop-legacy-accessory', 'create-accessory', 'remove-legacy-accessory']);
    for (let index = first; index <= last; index++) {
      await fake.close();
      fake = await startFakeCluster({ versions: ['v1'] });
      legacyRedis(fake);
      await expect(shop.buildinst('v2', index), `killed after step ${index + 1} (${steps[index]!.kind})`).rejects.toBeInstanceOf(Killed);
      await shop.buildinst('v2');
      expect([...fake.swarm.accessories.keys()], `after a kill after step ${index + 1} (${steps[index]!.kind})`).toEqual(['shop-redis']);
      expect(fake.swarm.accessories.get('shop-redis')?.replicas, `step ${index + 1}`).toBe(1);
      expect(volumeOf(fake, 'shop-redis'), `step ${index + 1}`).toEqual(['shop-redis-data']);
      expect(fake.swarm.volumes.get('shop-redis-data')?.files.get('dump.rdb'), `step ${index + 1}`).toBe('shop keys');
      expect(fake.swarm.calls.filter((c) => c === 'create-service shop-redis'), `step ${index + 1}`).toHaveLength(1);
      expect(fake.versions.find((v) => v.label === 'v2')?.services, `step ${index + 1}`).toEqual(['shop-v2-web']);
      expect(await readInstallIntent(fake.control.stateRemote, fake.app, fake.control.stateRoot), `step ${index + 1}`).toBeNull();
    }
  }, 240_000);
});

describe('two apps on one swarm, each with its own depl.yaml and its own redis', () => {
  // shop without an http service: workers and Redis (an app routed by an edge needs the cluster's edge ports)
  const shopWorkersYaml = shopYaml.replace('  web: { build: { context: ., dockerfile: Dockerfile }, port: 8080, http: true, health: /healthz, replicas: 2 }', '  web: { build: { context: ., dockerfile: Dockerfile }, replicas: 1 }');
  const shopWorkers = fakeBuildinst(() => fake, shopWorkersYaml);

  it("both install; each gets its own accessory, config and network; neither moves, refuses or lists the other's", async () => {
    fake = await startFakeCluster({ versions: [] });
    other = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [], swarm: fake.swarm });
    // shop is still on the old name when blog arrives: blog neither takes nor moves it
    legacyRedis(fake);
    await blog.buildinst('b1');
    expect([...fake.swarm.accessories.keys()].sort()).toEqual(['blog-redis', 'redis']);
    expect((fake.swarm.specs.get('blog-redis') as { TaskTemplate: { Networks: unknown[] } }).TaskTemplate.Networks).toEqual([{ Target: 'blog-net', Aliases: ['redis'] }]);
    await shopWorkers.buildinst('s1');
    expect([...fake.swarm.accessories.keys()].sort()).toEqual(['blog-redis', 'shop-redis']);
    expect(fake.swarm.accessories.get('blog-redis')?.replicas).toBe(1);
    // what each app lists is its own (the swarm's depl.app label)
    expect((await shopWorkers.port().install.appServices()).map((s) => s.name).sort()).toEqual(['shop-redis', 'shop-s1-web']);
    expect((await blog.port().install.appServices()).map((s) => s.name).sort()).toEqual(['blog-b1-web', 'blog-redis']);
    // swarm objects carry the app's name: the same config: in two apps is two configs
    expect([...fake.swarm.configs.keys()].map((name) => name.replace(/-[0-9a-f]+$/, '')).sort()).toEqual(['blog-config', 'shop-config']);
    expect([...fake.swarm.networks.keys()].sort()).toEqual(['blog-b1-net', 'shop-s1-net']);
    // an app's next install keeps its accessory and leaves the other's alone
    await blog.buildinst('b2');
    expect(fake.swarm.calls.filter((c) => c.startsWith('create-service') && c.includes('redis'))).toEqual(['create-service blog-redis', 'create-service shop-redis']);
    expect((await other!.get('b2.blog.test', '/healthz')).status).toBe(200);
  }, 60_000);

  it("a second app with an http service is routed by the cluster's edge: the first app's own edge is taken over, both answer", async () => {
    fake = await startFakeCluster({ versions: [] });
    other = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [], swarm: fake.swarm, stateRoot: fake.control.stateRoot });
    await blog.buildinst('b1');
    expect([...fake.swarm.edges.keys()]).toEqual(['blog-edge']);
    await shop.buildinst('s1');
    expect([...fake.swarm.edges.keys()]).toEqual(['depl_edge']);
    expect((await other.get('b1.blog.test', '/healthz')).status).toBe(200);
    expect((await fake.get('s1.shop.test', '/healthz')).status).toBe(200);
  }, 60_000);
});
