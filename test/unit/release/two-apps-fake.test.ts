import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import type { AccessoryConfig } from '../../../src/config/schema.js';
import { backupAccessory, type AccessoryPort, type AccessoryTarget } from '../../../src/workflows/backup.js';
import { pruneVersions } from '../../../src/workflows/prune.js';
import { restoreAccessory } from '../../../src/workflows/restore.js';
import { rollback } from '../../../src/workflows/rollback.js';
import { scaleServices } from '../../../src/workflows/scale.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { startFakeCluster, type FakeAccessory, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * Two apps, each with its own depl.yaml, on one cluster: one swarm (services, secrets, configs, accessories) and one
 * state root on the manager (release state, lock, intents under each app's folder). The same version labels in
 * both (v1..v4), the same accessory name (redis). One app's switch, rollback, scale, prune, backup and restore change
 * that app and leave everything of the other as it was: its services, accessory and its data, secrets, configs,
 * networks, volumes, routing and release state. Both ways round. (Each app's edge is its own here; one shared edge is not built yet.)
 */
let clusters: FakeCluster[] = [];
let backups: string | undefined;
afterEach(async () => {
  // the second shares the first's state root: closed first
  for (const fake of clusters.reverse()) await fake.close();
  clusters = [];
  if (backups !== undefined) await rm(backups, { recursive: true, force: true });
  backups = undefined;
});

const LABELS = ['v1', 'v2', 'v3', 'v4'];
const now = new Date('2026-12-07T01:00:00Z');

function redisOf(keys: Record<string, string>): FakeAccessory {
  return { image: 'redis:7', node: 'node-1', replicas: 1, paused: false, crashed: false, target: '/data', files: new Map(), redis: { version: '7.2.4', aof: true, keys: { ...keys }, saves: 0 } };
}

/** depl.yaml's redis of either app: the same name and volume name in both (`redis-data:/data`). */
const redisTarget: AccessoryTarget = {
  name: 'redis', accessory: { image: 'redis:7', node: 'node-1', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'redis-data', target: '/data' }, type: 'redis', kind: 'redis',
};

/** Both apps on one swarm and one state root, each with v4 live, its own Redis, secrets, configs and old objects. */
async function twoApps(first: string, second: string): Promise<[FakeCluster, FakeCluster]> {
  const a = await startFakeCluster({ app: first, domain: `${first}.test`, versions: LABELS });
  const b = await startFakeCluster({ app: second, domain: `${second}.test`, versions: LABELS, swarm: a.swarm, stateRoot: a.control.stateRoot });
  clusters.push(a, b);
  for (const fake of [a, b]) {
    for (const v of fake.versions) {
      for (const name of v.services) fake.swarm.specs.set(name, { Name: name, Labels: { 'depl.app': fake.app, 'depl.version': v.label, 'depl.service': name.split('-').at(-1)! } });
    }
    fake.swarm.secrets.set(`${fake.app}-token-1`, 'id');
    fake.swarm.networks.set(`${fake.app}-v4-net`, { 'depl.app': fake.app, 'depl.version': 'v4' });
    fake.swarm.volumes.set(`${fake.app}-redis-data`, { node: 'node-1', files: new Map([['appendonlydir/appendonly.aof.1.base.rdb', fake.app]]) });
    fake.swarm.configs.set(`${fake.app}-config-1`, 'id');
    fake.swarm.accessories.set(`${fake.app}-redis`, { name: `${fake.app}-redis`, labels: { 'depl.app': fake.app, 'depl.accessory': 'redis' }, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image: 'redis:7' });
    fake.accessories.set('redis', { ...redisOf({ [`${fake.app}:1`]: fake.app }), volume: `${fake.app}-redis-data` });
    fake.leftovers.objects = [
      { kind: 'config', name: `${fake.app}-v1-web-1`, usedBy: [`${fake.app}-v1-web`] },
      { kind: 'secret', name: `${fake.app}-token-0`, usedBy: [`${fake.app}-v1-worker`] },
    ];
    fake.leftovers.images = { 'node-1': LABELS.map((v) => `${fake.app}/web:${v}`) };
    // nothing uses Redis while it is restored (the versions' services are not the test's business here)
    for (const v of fake.versions) v.replicas = Object.fromEntries(v.services.map((s) => [s, 1]));
    await switchVersion(fake.control, 'v4');
  }
  return [a, b];
}

/** Every file under a folder, with its content (the app's release state, lock, intents, certificates). */
async function filesUnder(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const files: Record<string, string> = {};
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, file)] = await readFile(file, 'utf8');
  }
  return files;
}

/** All of an app a command could touch, as the next command (or a user of it) would find it. */
async function everythingOf(fake: FakeCluster) {
  const mine = (name: string) => name.startsWith(`${fake.app}-`) || name.startsWith(`${fake.app}/`);
  const redis = fake.accessories.get('redis')!;
  return {
    state: await filesUnder(path.join(fake.control.stateRoot!, fake.app)),
    release: await readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot),
    routing: await readFile(path.join(fake.dir, 'edge', 'routing'), 'utf8'),
    served: fake.served(),
    answers: await Promise.all([fake.domain, ...LABELS.map((v) => `${v}.${fake.domain}`)].map(async (host) => {
      const reply = await fake.get(host);
      return `${host} ${reply.status} ${reply.version}`;
    })),
    versions: structuredClone(fake.versions),
    specs: [...fake.swarm.specs.entries()].filter(([name]) => mine(name)),
    secrets: [...fake.swarm.secrets.keys()].filter(mine),
    configs: [...fake.swarm.configs.keys()].filter(mine),
    networks: [...fake.swarm.networks.entries()].filter(([name]) => mine(name)),
    volumes: [...fake.swarm.volumes.entries()].filter(([name]) => mine(name)).map(([name, v]) => [name, v.node, Object.fromEntries(v.files)]),
    accessories: [...fake.swarm.accessories.values()].filter((s) => mine(s.name)),
    redis: { replicas: redis.replicas, paused: redis.paused, keys: { ...redis.redis!.keys }, files: [...redis.files.keys()].sort(), volume: redis.volume },
    leftovers: structuredClone(fake.leftovers),
  };
}

const portOf = (fake: FakeCluster): AccessoryPort => ({ ...fake.control, accessoryData: fake.control.accessoryData! });

describe.each([['shop', 'blog'], ['blog', 'shop']])('two apps on one cluster: %s, then %s acting', (first, second) => {
  // one case per direction (the setup is most of the time): each command, then all of the other app compared
  it(`${second}'s switch, rollback, scale, prune, backup and restore change ${second} only`, async () => {
    const [a, b] = await twoApps(first, second);
    const before = await everythingOf(a);

    expect((await switchVersion(b.control, 'v2')).live).toBe('v2');
    expect((await b.get(b.domain)).version).toBe('v2');
    expect(await everythingOf(a), 'after the switch').toEqual(before);
    expect((await rollback(b.control)).live).toBe('v4');
    expect((await b.get(b.domain)).version).toBe('v4');
    expect(await everythingOf(a), 'after the rollback').toEqual(before);
    // the same service names in both apps: b's live workers only
    const scaled = await scaleServices(b.control, { worker: 3 }, { waitMs: 1_000 });
    expect(scaled.services).toEqual([expect.objectContaining({ service: `${b.app}-v4-worker`, replicas: 3 })]);
    expect(b.versions.find((v) => v.label === 'v4')?.replicas?.[`${b.app}-v4-worker`]).toBe(3);
    expect(await everythingOf(a), 'after the scale').toEqual(before);

    // the same version labels in both apps: only b's old versions, objects and image tags go
    const pruned = await pruneVersions(b.control, { keep: 1 });
    expect(pruned.plan.steps.length).toBeGreaterThan(0);
    // the live and previous versions, and one more
    expect(b.versions.map((v) => v.label)).toEqual(['v2', 'v3', 'v4']);
    expect(b.leftovers.objects).toEqual([]);
    expect(b.leftovers.images['node-1']).toEqual([`${b.app}/web:v2`, `${b.app}/web:v3`, `${b.app}/web:v4`]);
    expect([...b.swarm.specs.keys()].filter((name) => name.startsWith(`${b.app}-v1-`))).toEqual([]);
    expect(await everythingOf(a), 'after the prune').toEqual(before);

    // the same accessory name and depl.yaml volume name in both apps
    backups = await mkdtemp(path.join(tmpdir(), 'depl-two-apps-'));
    const file = path.join(backups, `${b.app}-redis.tar`);
    const made = await backupAccessory(portOf(b), redisTarget, { file, now });
    expect(made.plan.steps.map((s) => s.kind)).toContain('redis-snapshot');
    expect(await everythingOf(a), 'after the backup').toEqual(before);
    // b's Redis changes, then its backup is restored into it: b's keys come back, a's are as they were
    b.accessories.get('redis')!.redis!.keys = { [`${b.app}:2`]: 'changed' };
    const restored = await restoreAccessory(portOf(b), redisTarget, { file, manifest: made.manifest!, warnings: [], force: true, now, root: backups, pinnedNode: 'node-1', startTimeoutMs: 1_000 });
    expect(restored.plan.steps.flatMap((s) => ('volume' in s && s.volume !== undefined ? [s.volume.name] : []))).toContain(`${b.app}-redis-data`);
    expect(b.accessories.get('redis')!.redis!.keys).toEqual({ [`${b.app}:1`]: b.app });
    expect(await everythingOf(a), 'after the restore').toEqual(before);

    // and the other's own switch still works on the state b left
    expect((await switchVersion(a.control, 'v1')).live).toBe('v1');
    expect((await a.get(a.domain)).version).toBe('v1');
  }, 120_000);
});
