import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../../../src/apply/lock.js';
import { readVolumeMoveRecord } from '../../../src/apply/volume-move-record.js';
import { silentLogger } from '../../../src/util/log.js';
import { planVolumeMove, moveLegacyVolumes } from '../../../src/workflows/volume-move.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * A volume an earlier depl made under depl.yaml's name alone, moved into the app-scoped one by the next buildinst
 * (src/plan/volume-move.ts), on the fake cluster: its data arrives, the services run on it, the old one goes; a
 * depl killed after any step leaves what the next buildinst finishes; a copy that fails is undone.
 */
const yaml = `
app: shop
domain: shop.test
images: { node: depl-base/node:20, redis: depl-base/redis:7 }
services:
  web: { build: { context: ., dockerfile: Dockerfile }, port: 8080, http: true, health: /healthz, replicas: 1, volume: "files:/data", node: m1 }
accessories:
  db: { image: depl-base/postgres:16, node: w1, port: 5432, volume: "pg-data:/var/lib/postgresql/data" }
`;

let fake: FakeCluster;
let other: FakeCluster | undefined;
afterEach(async () => {
  // blog shares shop's state root: closed first
  await other?.close();
  other = undefined;
  await fake.close();
});
const shop = fakeBuildinst(() => fake, yaml);
const config = () => shop.loaded().config;

/** shop as an earlier depl left it: v1 (live) on `files`, its db on `pg-data`, each volume with data on its node. */
async function earlierShop(): Promise<FakeCluster> {
  const f = await startFakeCluster({ versions: ['v1'] });
  f.versions[0]!.services = ['shop-v1-web'];
  f.versions[0]!.replicas = { 'shop-v1-web': 1 };
  f.swarm.specs.set('shop-v1-web', {
    Name: 'shop-v1-web', Labels: { 'depl.app': 'shop', 'depl.version': 'v1', 'depl.service': 'web', 'depl.http': 'true', 'depl.port': '8080', 'depl.health': '/healthz', 'depl.volume': 'files' },
    TaskTemplate: { ContainerSpec: { Image: 'shop/web:v1', Mounts: [{ Type: 'volume', Source: 'files', Target: '/data' }] } }, Mode: { Replicated: { Replicas: 1 } },
  });
  const dbLabels = { 'depl.app': 'shop', 'depl.accessory': 'db' };
  f.swarm.accessories.set('shop-db', { name: 'shop-db', labels: dbLabels, createdAt: '2026-11-01T00:00:00Z', replicas: 1, image: 'depl-base/postgres:16' });
  f.swarm.specs.set('shop-db', { Name: 'shop-db', Labels: dbLabels, TaskTemplate: { ContainerSpec: { Image: 'depl-base/postgres:16', Mounts: [{ Type: 'volume', Source: 'pg-data', Target: '/var/lib/postgresql/data' }] } } });
  f.swarm.volumes.set('files', { node: 'm1', files: new Map([['avatars/1.png', 'png']]) });
  f.swarm.volumes.set('pg-data', { node: 'w1', files: new Map([['PG_VERSION', '16'], ['base/1/1259', 'rows']]) });
  return f;
}

async function move(killAfter?: number) {
  const control = shop.port();
  const lock = await acquireLock(control.stateRemote, fake.app, { command: 'depl buildinst --version v2', root: control.stateRoot!, log: silentLogger });
  try {
    return await moveLegacyVolumes(control, lock, config(), 'depl buildinst --version v2', {
      afterStep: (index) => {
        if (index === killAfter) throw new Killed(`after step ${index + 1}`);
      },
    });
  } finally {
    await lock.release();
  }
}

const mountsOf = (service: string) => (fake.swarm.specs.get(service) as { TaskTemplate: { ContainerSpec: { Mounts: { Source: string }[] } } }).TaskTemplate.ContainerSpec.Mounts.map((m) => m.Source);

/** Where a finished move leaves shop: data in the app-scoped volumes, every service on them, the old volumes gone. */
async function expectMoved(why: string) {
  expect([...fake.swarm.volumes.keys()].filter((name) => !name.startsWith('blog-')).sort(), why).toEqual(['shop-files', 'shop-pg-data']);
  expect(Object.fromEntries(fake.swarm.volumes.get('shop-pg-data')!.files), why).toEqual({ PG_VERSION: '16', 'base/1/1259': 'rows' });
  expect(fake.swarm.volumes.get('shop-pg-data')!.node, why).toBe('w1');
  expect(Object.fromEntries(fake.swarm.volumes.get('shop-files')!.files), why).toEqual({ 'avatars/1.png': 'png' });
  expect(mountsOf('shop-db'), why).toEqual(['shop-pg-data']);
  expect(mountsOf('shop-v1-web'), why).toEqual(['shop-files']);
  expect((fake.swarm.specs.get('shop-v1-web') as { Labels: Record<string, string> }).Labels['depl.volume'], why).toBe('shop-files');
  expect(fake.swarm.accessories.get('shop-db')?.replicas, why).toBe(1);
  expect(await readVolumeMoveRecord(fake.control.stateRemote, fake.app, fake.control.stateRoot), why).toBeNull();
}

describe('moving volumes into their app-scoped names, on the fake cluster', () => {
  it('the next buildinst moves both, then installs the new version on them (taking the stateful volume over from v1)', async () => {
    fake = await earlierShop();
    await shop.buildinst('v2');
    await expectMoved('after buildinst');
    // the job ran on each volume's node; the services were started again before the install took over
    expect(fake.swarm.calls.filter((c) => /volume|repoint|shop-db|shop-v1-web/.test(c))).toEqual([
      'locate-volumes pg-data,files',
      'stop-services shop-v1-web', 'await-volume-free m1 files', expect.stringMatching(/^run-job shop-volume-move-/), 'repoint shop-v1-web files->shop-files', 'start-services shop-v1-web=1', 'remove-volume m1 files',
      'stop-services shop-db', 'await-volume-free w1 pg-data', expect.stringMatching(/^run-job shop-volume-move-/), 'repoint shop-db pg-data->shop-pg-data', 'start-services shop-db=1', 'remove-volume w1 pg-data',
      'stop-services shop-v1-web',
    ]);
    expect([...fake.swarm.jobs.values()].map((j) => (j as { TaskTemplate: { Placement: { Constraints: string[] } } }).TaskTemplate.Placement.Constraints)).toEqual([['node.hostname==m1'], ['node.hostname==w1']]);
    expect(mountsOf('shop-v2-web')).toEqual(['shop-files']);
    expect(fake.versions.find((v) => v.label === 'v2')?.replicas).toEqual({ 'shop-v2-web': 1 });
    // a second buildinst has nothing left to move
    const calls = fake.swarm.calls.length;
    await shop.buildinst('v3');
    expect(fake.swarm.calls.slice(calls).filter((c) => /volume|repoint/.test(c))).toEqual([]);
  }, 60_000);

  it('killed after any step of the move, the next buildinst finishes it; the data is never lost and copied once it is pointed', async () => {
    fake = await earlierShop();
    const steps = (await planVolumeMove(shop.port(), config(), 'depl buildinst --version v2')).steps;
    expect(steps.map((s) => s.kind)).toEqual([
      'record-moves', 'stop-users', 'await-free', 'copy-volume', 'repoint-users', 'start-users', 'remove-old-volume',
      'stop-users', 'await-free', 'copy-volume', 'repoint-users', 'start-users', 'remove-old-volume', 'clear-record',
    ]);
    await fake.close();
    for (let index = 0; index < steps.length; index++) {
      fake = await earlierShop();
      const why = `killed after step ${index + 1} (${steps[index]!.kind})`;
      await expect(move(index), why).rejects.toBeInstanceOf(Killed);
      // until a service is pointed at the new volume, its old one is whole: nothing was written to it
      for (const [volume, service] of [['files', 'shop-v1-web'], ['pg-data', 'shop-db']] as const) {
        if (mountsOf(service).includes(volume)) expect(fake.swarm.volumes.has(volume), why).toBe(true);
      }
      await shop.buildinst('v2');
      await expectMoved(why);
      await fake.close();
    }
    fake = await earlierShop();
  }, 240_000);

  it('a copy that does not match is undone: the services run on the old volume again, the partial copy goes, the record too', async () => {
    fake = await earlierShop();
    fake.swarm.corruptNextCopy = true;
    await expect(shop.buildinst('v2')).rejects.toMatchObject({ code: 'VOLUME_COPY_FAILED', message: expect.stringContaining('the copy differs from the volume') });
    expect(mountsOf('shop-v1-web')).toEqual(['files']);
    expect(fake.versions.find((v) => v.label === 'v1')?.replicas).toEqual({ 'shop-v1-web': 1 });
    expect([...fake.swarm.volumes.keys()].sort()).toEqual(['files', 'pg-data']);
    expect(await readVolumeMoveRecord(fake.control.stateRemote, fake.app, fake.control.stateRoot)).toBeNull();
    expect(fake.versions.map((v) => v.label)).toEqual(['v1']);
    // the next one moves it
    await shop.buildinst('v2');
    await expectMoved('after the retry');
  }, 60_000);

  it('refuses when the node that may hold the volume cannot be reached: nothing stopped, nothing recorded (exit 2)', async () => {
    fake = await earlierShop();
    fake.swarm.unreachableNodes.add('w1');
    const calls = fake.swarm.calls.length;
    await expect(shop.buildinst('v2')).rejects.toMatchObject({ code: 'VOLUME_UNREACHABLE', exitCode: 2, message: 'volume pg-data must be moved into its app-scoped name, but node w1 could not be reached to find it' });
    expect(fake.swarm.calls.slice(calls)).toEqual(['locate-volumes pg-data,files']);
    expect(fake.swarm.accessories.get('shop-db')?.replicas).toBe(1);
    expect(await readVolumeMoveRecord(fake.control.stateRemote, fake.app, fake.control.stateRoot)).toBeNull();
    fake.swarm.unreachableNodes.clear();
    await shop.buildinst('v2');
    await expectMoved('once w1 is back');
  }, 60_000);
});

describe('two apps on one swarm, one of them (or both) deployed before volume names were app-scoped', () => {
  // blog: workers and a db with the same depl.yaml volume name (one edge per app: blog has no http service)
  const blogYaml = `
app: blog
domain: blog.test
images: { node: depl-base/node:20, redis: depl-base/redis:7 }
services:
  worker: { build: { context: ., dockerfile: Dockerfile }, replicas: 1 }
accessories:
  db: { image: depl-base/postgres:16, node: w1, port: 5432, volume: "pg-data:/var/lib/postgresql/data" }
`;
  const blog = fakeBuildinst(() => other!, blogYaml);

  /** blog's db, on `volume`, beside shop on the same swarm and state root. */
  async function withBlog(volume: string, files: Record<string, string>): Promise<FakeCluster> {
    const b = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [], swarm: fake.swarm, stateRoot: fake.control.stateRoot });
    const labels = { 'depl.app': 'blog', 'depl.accessory': 'db' };
    b.swarm.accessories.set('blog-db', { name: 'blog-db', labels, createdAt: '2026-11-01T00:00:00Z', replicas: 1, image: 'depl-base/postgres:16' });
    b.swarm.specs.set('blog-db', { Name: 'blog-db', Labels: labels, TaskTemplate: { ContainerSpec: { Image: 'depl-base/postgres:16', Mounts: [{ Type: 'volume', Source: volume, Target: '/var/lib/postgresql/data' }] } } });
    if (!b.swarm.volumes.has(volume)) b.swarm.volumes.set(volume, { node: 'w1', files: new Map(Object.entries(files)) });
    return b;
  }

  /** Everything of blog's on the swarm: its services' specs and replicas, secrets, configs, networks, volumes, its state files. */
  const blogsThings = () => {
    const mine = (name: string) => name.startsWith('blog-') || name.startsWith('blog/');
    return structuredClone({
      specs: [...fake.swarm.specs.entries()].filter(([name]) => mine(name)),
      accessories: [...fake.swarm.accessories.values()].filter((s) => mine(s.name)),
      secrets: [...fake.swarm.secrets.keys()].filter(mine),
      configs: [...fake.swarm.configs.keys()].filter(mine),
      networks: [...fake.swarm.networks.entries()].filter(([name]) => mine(name)),
      volumes: [...fake.swarm.volumes.entries()].filter(([name]) => mine(name)).map(([name, v]) => [name, v.node, Object.fromEntries(v.files)]),
      versions: other!.versions,
    });
  };

  it("shop's move takes its own volume only: blog's db, its volume and its data are as they were", async () => {
    fake = await earlierShop();
    other = await withBlog('blog-pg-data', { PG_VERSION: '16', 'base/1/1259': 'blog rows' });
    await blog.buildinst('b1');
    const before = blogsThings();
    await shop.buildinst('v2');
    await expectMoved('shop beside blog');
    expect(blogsThings()).toEqual(before);
    expect(fake.swarm.calls.filter((c) => c.includes('blog-db'))).toEqual([]);
  }, 60_000);

  it("both on one unscoped volume: refused while blog's db runs on it; once stopped, shop moves a copy and keeps the volume for blog, whose next buildinst moves its own", async () => {
    fake = await earlierShop();
    other = await withBlog('pg-data', {});
    const calls = fake.swarm.calls.length;
    await expect(shop.buildinst('v2')).rejects.toMatchObject({
      code: 'VOLUME_SHARED', exitCode: 2, message: expect.stringContaining('blog-db (app blog) also runs on it: its files would change during the copy'),
    });
    expect(fake.swarm.calls.slice(calls)).toEqual(['locate-volumes pg-data,files']);
    // the operator stops blog's db, as the hint says
    fake.swarm.accessories.set('blog-db', { ...fake.swarm.accessories.get('blog-db')!, replicas: 0 });
    const before = blogsThings();
    await shop.buildinst('v2');
    expect(mountsOf('shop-db')).toEqual(['shop-pg-data']);
    expect(Object.fromEntries(fake.swarm.volumes.get('shop-pg-data')!.files)).toEqual({ PG_VERSION: '16', 'base/1/1259': 'rows' });
    // kept: blog still mounts it
    expect(fake.swarm.volumes.has('pg-data')).toBe(true);
    expect(fake.swarm.calls).not.toContain('remove-volume w1 pg-data');
    expect(blogsThings()).toEqual(before);
    // blog's next buildinst moves its own copy (its db stays stopped: it was), and the unscoped volume goes
    await blog.buildinst('b1');
    expect((fake.swarm.specs.get('blog-db') as { TaskTemplate: { ContainerSpec: { Mounts: { Source: string }[] } } }).TaskTemplate.ContainerSpec.Mounts[0]!.Source).toBe('blog-pg-data');
    expect(Object.fromEntries(fake.swarm.volumes.get('blog-pg-data')!.files)).toEqual({ PG_VERSION: '16', 'base/1/1259': 'rows' });
    expect([...fake.swarm.volumes.keys()].sort()).toEqual(['blog-pg-data', 'shop-files', 'shop-pg-data']);
    expect(mountsOf('shop-db')).toEqual(['shop-pg-data']);
  }, 60_000);
});
