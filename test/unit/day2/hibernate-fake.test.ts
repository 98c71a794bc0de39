import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readHibernationRecord, writeHibernationRecord } from '../../../src/apply/hibernation-record.js';
import { createOpenStackProvider, type OpenStackProviderSettings } from '../../../src/apply/providers/openstack.js';
import type { Provider, StackServers } from '../../../src/apply/providers/types.js';
import { swiftBackupObjects, type BackupObjects } from '../../../src/apply/hibernation-objects.js';
import { backupContainerName, parseHibernationRecord, renderHibernationRecord } from '../../../src/plan/hibernation.js';
import { readInventory, writeInventory } from '../../../src/apply/inventory.js';
import type { AccessoryConfig } from '../../../src/config/schema.js';
import { parseConfig } from '../../../src/config/load.js';
import { isDeplError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';
import type { AccessoryTarget } from '../../../src/workflows/backup.js';
import { hibernate, wake, type HibernationTarget } from '../../../src/workflows/hibernation.js';
import { hibernationStatus } from '../../../src/workflows/status.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * depl hibernate and depl wake on the fake cluster, whose instances are the OpenStack emulator's servers
 * (Nova's shelve and unshelve with their task states): the manager answers only while its instance is
 * ACTIVE, and a node's swarm state follows its instance (Down when shelved, Ready a moment after it starts).
 * A run killed after any step of its plan is finished by the next run of the same command; wake restores an
 * accessory whose data was lost from the hibernate backup and brings the same live version back, healthy.
 */
let fake: FakeCluster;
let emulator: OpenStackEmulator;
let servers: StackServers;
let cloud: Provider;
let settings: OpenStackProviderSettings;
let root: string;
let tick = 0;
let next = 1;
const keys = { 'job:1': 'queued', 'job:2': 'done' };
const dbFiles = () => new Map([['PG_VERSION', Buffer.from('16\n')], ['base/', Buffer.alloc(0)], ['base/1', Buffer.from('rows')]]);

const redisTarget: AccessoryTarget = {
  name: 'redis', accessory: { image: 'redis:7', node: 'node-2', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'redis-data', target: '/data' }, type: 'redis', kind: 'redis',
};
const dbTarget: AccessoryTarget = {
  name: 'db', accessory: { image: 'postgres:16', node: 'node-1', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'pg-data', target: '/var/lib/postgresql/data' }, type: 'postgres', kind: 'volume',
};

beforeAll(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  await switchVersion(fake.control, 'v2');
  fake.accessories.set('redis', { image: 'redis:7', node: 'node-2', replicas: 1, paused: false, crashed: false, target: '/data', files: new Map(), redis: { version: '7.2.4', aof: true, keys: { ...keys }, saves: 0 } });
  fake.accessories.set('db', { image: 'postgres:16', node: 'node-1', replicas: 1, paused: false, crashed: false, target: '/var/lib/postgresql/data', files: dbFiles() });
  root = await mkdtemp(path.join(tmpdir(), 'depl-hibernate-'));
  emulator = await startOpenStackEmulator({
    servers: {
      createServer: async (name) => {
        fake.nodeStates.set(name, 'Ready');
        return { address: `10.4.0.${next++}` };
      },
      deleteServer: async (name) => void fake.nodeStates.delete(name),
      stopServer: async (name) => void fake.nodeStates.set(name, 'Down'),
      // a node rejoins the swarm a moment after its machine is up
      startServer: async (name) => void setTimeout(() => fake.nodeStates.set(name, 'Ready'), 30),
    },
    behaviour: { serverActionMs: 5 },
    // its own Swift subset: where hibernate shares its backups and record with other operators' machines
    services: { objectStore: 'emulated' },
  });
  settings = openStackProviderSettings({ config: parseConfig(stringify({ app: 'shop', domain: fake.domain, provider: { type: 'openstack' }, services: { api: { image: 'x' } } })), file: path.join(root, 'depl.yaml'), root });
  const provider = await createOpenStackProvider(
    settings,
    silentLogger, { env: passwordLoginEnv(emulator), cwd: root, interactive: false, pollMs: 10 },
  );
  const nodes = await provider.up(2, silentLogger);
  await writeInventory({ root }, {
    version: 1, app: 'shop', provider: 'openstack', network: 'shop', updatedAt: '2026-12-06T12:00:00Z',
    nodes: nodes.map((n, i) => ({ name: n.name, address: n.address, role: i === 0 ? 'manager' : 'worker' })),
  });
  servers = provider.servers!;
  cloud = provider;
}, 60_000);
afterAll(async () => {
  await emulator.close();
  await fake.close();
  await rm(root, { recursive: true, force: true });
});

function target(extra: Partial<HibernationTarget> = {}): HibernationTarget {
  const control = fake.freshControl();
  return {
    app: 'shop', domain: fake.domain, root, servers, accessories: [redisTarget, dbTarget], log: silentLogger, by: 'ops@test', pollMs: 10,
    // every run a second later than the last: backup files are named by their time
    now: () => new Date(Date.UTC(2026, 11, 6, 12, 0, tick++)),
    timeouts: { shelveMs: 60_000, activeMs: 60_000, swarmMs: 60_000, healthyMs: 60_000 },
    async openPort() {
      // the manager answers only while its instance runs
      if (emulator.servers.statusOf('shop-nodes-0')?.status !== 'ACTIVE') throw new Error('connect ECONNREFUSED 10.4.0.1:22 (the manager is not running)');
      return { port: { ...control, accessoryData: control.accessoryData!, nodes: control.nodes! }, close: async () => {} };
    },
    ...extra,
  };
}

const killedAfter = (k: number) => (index: number) => {
  if (index === k) throw new Killed(`after step ${k + 1}`);
};

const statuses = async () => (await servers.list()).map((s) => s.status);

/** Awake as before: every instance ACTIVE, every node Ready, no record, v2 live and healthy, the data as it was. */
async function expectAwake(options: { recordOn?: string } = {}): Promise<void> {
  expect(await statuses()).toEqual(['ACTIVE', 'ACTIVE']);
  expect([...fake.nodeStates.values()]).toEqual(['Ready', 'Ready']);
  // recordOn: a machine whose record another machine's wake could not remove
  if (options.recordOn !== root) expect(await readHibernationRecord({ root })).toBeNull();
  expect(await fake.get(fake.domain, '/healthz')).toMatchObject({ status: 200, version: 'v2' });
  expect(await fake.get(`v2.${fake.domain}`, '/healthz')).toMatchObject({ status: 200, version: 'v2' });
  expect(fake.accessories.get('redis')!.redis!.keys).toEqual(keys);
  expect(fake.accessories.get('db')!.files.get('base/1')?.toString()).toBe('rows');
}

/** Hibernating: every instance shelved, each node Down, the record complete with the live version and the backups. */
async function expectHibernating(accessories = ['redis', 'db']): Promise<void> {
  expect(await statuses()).toEqual(['SHELVED_OFFLOADED', 'SHELVED_OFFLOADED']);
  expect([...fake.nodeStates.values()]).toEqual(['Down', 'Down']);
  const record = await readHibernationRecord({ root });
  expect(record).toMatchObject({ phase: 'hibernating', complete: true, live: 'v2', backups: Object.fromEntries(accessories.map((a) => [a, expect.any(String)])) });
  if (record === null || record === 'unreadable') throw new Error('no record');
  expect(JSON.parse(await readFile(record.releaseCopy!, 'utf8'))).toMatchObject({ app: 'shop', live: 'v2' });
}

describe('depl hibernate and depl wake (fake cluster, emulated Nova)', () => {
  beforeEach(async () => {
    if ((await readHibernationRecord({ root })) !== null || (await statuses()).some((s) => s !== 'ACTIVE')) await wake(target());
  }, 60_000);

  it('hibernate: the dry run is the plan that runs; status then says "hibernating since" without reaching the nodes; both are no-ops the second time', async () => {
    const fixed = new Date('2026-12-06T13:00:00Z');
    const dry = await hibernate(target({ now: () => fixed }), { dryRun: true });
    expect(await statuses()).toEqual(['ACTIVE', 'ACTIVE']);
    expect(await readHibernationRecord({ root })).toBeNull();
    const done = await hibernate(target({ now: () => fixed }));
    expect(done.plan).toEqual(dry.plan);
    await expectHibernating();

    const status = await hibernationStatus({ root });
    expect(status?.human).toMatch(/^hibernation: hibernating since 2026-12-06T13:00:00.000Z \(by ops@test\): every instance is shelved/);
    expect(status?.report).toMatchObject({ live: 'v2', nodes: [{ name: 'shop-nodes-0', state: 'shelved' }, { name: 'shop-nodes-1', state: 'shelved' }] });

    const again = await hibernate(target());
    expect(again.plan.steps).toEqual([]);
    expect(again.plan.notes[0]).toMatch(/^already hibernating since 2026-12-06T13:00:00.000Z/);

    await wake(target());
    await expectAwake();
    expect(await hibernationStatus({ root })).toBeNull();
    const awake = await wake(target());
    expect(awake.plan).toEqual({ command: 'depl wake', notes: [expect.stringMatching(/^shop is awake/)], steps: [] });
  }, 60_000);

  it('hibernate killed after each step of its plan is finished by the next depl hibernate', async () => {
    const steps = (await hibernate(target(), { dryRun: true })).plan.steps;
    expect(steps.map((s) => s.kind)).toEqual(['record-hibernation', 'keep-release-state', 'backup-accessory', 'backup-accessory', 'shelve-server', 'shelve-server', 'wait-shelved', 'complete-hibernation']);
    for (let k = 0; k < steps.length; k += 1) {
      await expect(hibernate(target(), { afterStep: killedAfter(k) })).rejects.toBeInstanceOf(Killed);
      // what the killed run left is seen by status, and finished by the next run
      expect((await hibernationStatus({ root }))?.human).toMatch(/^hibernation: hibernating since/);
      const rerun = await hibernate(target());
      // what was left (the wait looks again); an instance the killed run asked to shelve is waited for, not asked again
      const left = k === steps.length - 1 ? [] : steps.slice(Math.min(k + 1, 6)).map((s) => s.kind);
      expect(rerun.plan.steps.map((s) => s.kind)).toEqual(left);
      await expectHibernating();
      await wake(target());
      await expectAwake();
    }
  }, 240_000);

  it('wake killed after each step of its plan is finished by the next depl wake; a hibernate in between is refused', async () => {
    // one accessory: each round hibernates again first, and a backup is most of a hibernate's time on the fake
    const oneAccessory = () => target({ accessories: [dbTarget] });
    await hibernate(oneAccessory());
    const steps = (await wake(oneAccessory(), { dryRun: true })).plan.steps;
    expect(steps.map((s) => s.kind)).toEqual(['record-wake', 'unshelve-server', 'unshelve-server', 'wait-active', 'wait-swarm', 'restore-release-state', 'restore-accessory', 'wait-live', 'clear-record']);
    for (let k = 0; k < steps.length; k += 1) {
      if (k > 0) await hibernate(oneAccessory());
      await expect(wake(oneAccessory(), { afterStep: killedAfter(k) })).rejects.toBeInstanceOf(Killed);
      if (k < steps.length - 1) {
        const refused = await hibernate(oneAccessory()).catch((e: unknown) => e);
        expect(refused).toMatchObject({ code: 'WAKE_INTERRUPTED' });
        expect((await hibernationStatus({ root }))?.human).toMatch(/^hibernation: waking since/);
      }
      const rerun = await wake(oneAccessory());
      // what was left, the waits and checks included (they look again); after the last step, nothing
      const left = k === steps.length - 1 ? [] : steps.slice(Math.min(k + 1, 3)).map((s) => s.kind);
      expect(rerun.plan.steps.map((s) => s.kind)).toEqual(left);
      await expectAwake();
    }
  }, 240_000);

  it('wake restores an accessory whose data is gone from the hibernate backup, and leaves one that holds its data', async () => {
    await hibernate(target());
    // the volumes did not survive (a node replaced, a disk lost): Redis starts empty, the database's folder is empty
    const redis = fake.accessories.get('redis')!;
    redis.files.clear();
    redis.redis!.keys = {};
    const result = await wake(target());
    expect(result.restored).toEqual(['redis']);
    await expectAwake();

    await hibernate(target());
    fake.accessories.get('db')!.files.clear();
    expect((await wake(target())).restored).toEqual(['db']);
    await expectAwake();
  }, 60_000);

  it('wake puts back the release document the manager lost, from the copy hibernate kept', async () => {
    await hibernate(target());
    await rm(path.join(fake.dir, 'state', 'shop', 'release.json'));
    expect((await wake(target())).restored).toEqual(['the release document']);
    await expectAwake();
  }, 60_000);

  it('an unreadable record stops both commands, changing nothing', async () => {
    await writeHibernationRecord({ root }, { app: 'shop' } as never);
    for (const run of [hibernate, wake]) {
      const error = await run(target()).catch((e: unknown) => e);
      expect(isDeplError(error) && error.code).toBe('HIBERNATION_RECORD_UNREADABLE');
    }
    expect(await statuses()).toEqual(['ACTIVE', 'ACTIVE']);
    await rm(path.join(root, '.depl', 'hibernation.json'));
  });
});

describe('where hibernate keeps its backups is the cloud\'s catalog\'s say', () => {
  it('no object-store in the catalog: the operator\'s folder only; with one: also a container named after the stack, at the catalog\'s URL', async () => {
    const folderOnly = (await hibernate(target(), { dryRun: true })).plan;
    expect(folderOnly.notes).toContain(`the backups go to ${path.join(root, '.depl', 'backups')} (no object store in the cloud's catalog)`);
    expect(folderOnly.steps.map((s) => s.kind)).not.toContain('upload-backup');

    // a cloud without Swift in its catalog (it makes no servers)
    const none = async () => { throw new Error('this emulator makes no servers'); };
    const withoutSwift = await startOpenStackEmulator({ servers: { createServer: none, deleteServer: none, stopServer: none, startServer: none } });
    try {
      const other = await createOpenStackProvider(settings, silentLogger, { env: passwordLoginEnv(withoutSwift), cwd: root, interactive: false });
      expect(await other.objectStore!()).toBeUndefined();
    } finally {
      await withoutSwift.close();
    }
    const objects = await swiftObjects(cloud);
    expect(objects).toMatchObject({ container: `${settings.stack}-depl-backups`, endpoint: `${emulator.url}/object-store/v1/AUTH_${emulator.projectId}` });
    const toSwift = (await hibernate(target({ objects }), { dryRun: true })).plan;
    expect(toSwift.notes).toContain(`the backups go to ${path.join(root, '.depl', 'backups')} and to the private Swift container ${settings.stack}-depl-backups (${objects.endpoint}), where another operator's depl wake finds them`);
    expect(toSwift.steps.filter((s) => s.kind === 'upload-backup').map((s) => s.kind === 'upload-backup' && s.container)).toEqual([`${settings.stack}-depl-backups`, `${settings.stack}-depl-backups`, `${settings.stack}-depl-backups`]);
  }, 30_000);
});

const swiftObjects = async (provider: Provider) => swiftBackupObjects((await provider.objectStore!())!, backupContainerName(settings.stack));

/**
 * A second operator's machine: a project folder with only depl.yaml, logged in to the same cloud with the same
 * credentials. Everything it knows of the hibernation comes from Swift.
 */
async function secondMachine(): Promise<{ root: string; target: (extra?: Partial<HibernationTarget>) => HibernationTarget; objects: BackupObjects }> {
  const other = await mkdtemp(path.join(tmpdir(), 'depl-hibernate-other-'));
  await writeFile(path.join(other, 'depl.yaml'), stringify({ app: 'shop', domain: fake.domain, provider: { type: 'openstack' }, services: { api: { image: 'x' } } }));
  const provider = await createOpenStackProvider(
    openStackProviderSettings({ config: parseConfig(await readFile(path.join(other, 'depl.yaml'), 'utf8')), file: path.join(other, 'depl.yaml'), root: other }),
    silentLogger, { env: passwordLoginEnv(emulator), cwd: other, interactive: false, pollMs: 10 },
  );
  const objects = await swiftObjects(provider);
  return { root: other, objects, target: (extra = {}) => target({ root: other, servers: provider.servers!, objects, ...extra }) };
}

describe('the hibernation record in Swift: another machine sees and wakes the cluster', () => {
  const container = () => backupContainerName(settings.stack);
  const sharedRecord = () => {
    const bytes = emulator.swift!.object(container(), 'hibernation.json');
    return bytes === undefined ? null : parseHibernationRecord(bytes.toString('utf8'));
  };
  beforeEach(async () => {
    // what a failed case left: woken from this machine, which reads Swift's copy too
    if ((await readHibernationRecord({ root })) !== null || sharedRecord() !== null || (await statuses()).some((st) => st !== 'ACTIVE')) await wake(target({ objects: await swiftObjects(cloud) }));
  }, 60_000);

  it('hibernate writes the record to Swift after the backups and before any shelve; a second machine\'s status and wake go by it; the first machine\'s leftover record is then refused by hibernate and cleared by wake', async () => {
    const objects = await swiftObjects(cloud);
    const done = await hibernate(target({ objects }));
    const order = done.plan.steps.map((s) => s.kind);
    expect(order.indexOf('share-record')).toBe(order.lastIndexOf('upload-backup') + 1);
    expect(order.indexOf('share-record')).toBeLessThan(order.indexOf('shelve-server'));
    await expectHibernating();
    // Swift holds the record as this machine has it, the release document's copy and every backup
    expect(sharedRecord()).toEqual(await readHibernationRecord({ root }));
    expect(sharedRecord()).toMatchObject({ complete: true, live: 'v2', swift: { recordShared: true } });
    expect(emulator.swift!.names(container())).toEqual(expect.arrayContaining(['hibernation.json', ...Object.values(sharedRecord()!.swift!.objects).map((o) => o.object)]));

    const other = await secondMachine();
    try {
      const status = await hibernationStatus({ root: other.root }, async () => other.objects);
      expect(status?.human).toMatch(/^hibernation: hibernating since .* \(by ops@test\): every instance is shelved/);
      expect(status?.human).toContain(`record:   also in Swift, ${container()} (read from there: this machine has none)`);
      expect(status?.report).toMatchObject({ live: 'v2', recordFrom: 'swift' });

      const woken = await wake(other.target());
      // the release copy, two backups and the inventory (this machine had none: the nodes' addresses)
      expect(woken.plan.steps.filter((s) => s.kind === 'fetch-backup')).toHaveLength(4);
      expect(await readInventory({ root: other.root })).toEqual(await readInventory({ root }));
      await expectAwake({ recordOn: root });
      expect(sharedRecord()).toBeNull();
      expect(await readHibernationRecord({ root: other.root })).toBeNull();
      expect(await hibernationStatus({ root: other.root }, async () => other.objects)).toBeNull();
    } finally {
      await rm(other.root, { recursive: true, force: true });
    }

    // the first machine still has its record: status says why it is stale, hibernate refuses to reuse its backups, wake clears it
    const stale = await hibernationStatus({ root }, async () => objects);
    expect(stale?.human).toContain('Swift has no copy of the record any more: a depl wake removed it');
    expect(await hibernate(target({ objects })).catch((e: unknown) => e)).toMatchObject({ code: 'HIBERNATION_RECORD_STALE' });
    await wake(target({ objects }));
    await expectAwake();
  }, 90_000);

  it('a record on this machine and one in Swift of two different hibernations: both commands refuse, naming both; status shows it', async () => {
    const objects = await swiftObjects(cloud);
    const mine = { app: 'shop', phase: 'hibernating' as const, since: '2026-12-06T08:00:00.000Z', by: 'ops@test', complete: true, live: 'v2', releaseCopy: null, backups: {}, swift: { container: container(), endpoint: objects.endpoint, objects: {}, recordShared: true } };
    await writeHibernationRecord({ root }, mine);
    // Swift's is older than this machine's: not a leftover of a finished wake, so neither is chosen
    await objects.writeRecord(renderHibernationRecord({ ...mine, since: '2026-12-05T10:00:00.000Z', by: 'other@test' }));
    try {
      for (const run of [hibernate, wake]) expect(await run(target({ objects })).catch((e: unknown) => e)).toMatchObject({ code: 'HIBERNATION_RECORD_CONFLICT', message: expect.stringContaining('are of two different hibernations') });
      expect((await hibernationStatus({ root }, async () => objects))?.human).toMatch(/^hibernation: this machine's hibernation record .* by other@test\) are of two different hibernations/);
      expect(await statuses()).toEqual(['ACTIVE', 'ACTIVE']);
      // Swift's copy damaged behind its ETag: refused as corrupt, not read
      emulator.swift!.corrupt(container(), 'hibernation.json', Buffer.from('{"app":"shop"}'));
      expect(await wake(target({ objects })).catch((e: unknown) => e)).toMatchObject({ code: 'OBJECT_STORE_CORRUPT' });
    } finally {
      await objects.removeRecord();
      await rm(path.join(root, '.depl', 'hibernation.json'));
    }
  }, 30_000);

  it('hibernate with Swift killed after each step of its plan is finished by the next run, on this machine or another', async () => {
    const objects = await swiftObjects(cloud);
    const oneAccessory = (extra: Partial<HibernationTarget> = {}) => target({ accessories: [dbTarget], objects, ...extra });
    const steps = (await hibernate(oneAccessory(), { dryRun: true })).plan.steps;
    expect(steps.map((s) => s.kind)).toEqual(['record-hibernation', 'keep-release-state', 'backup-accessory', 'upload-backup', 'upload-backup', 'share-record', 'shelve-server', 'shelve-server', 'wait-shelved', 'complete-hibernation']);
    const shareAt = steps.findIndex((s) => s.kind === 'share-record');
    for (let k = 0; k < steps.length; k += 1) {
      await expect(hibernate(oneAccessory(), { afterStep: killedAfter(k) })).rejects.toBeInstanceOf(Killed);
      // the record is in Swift from its step on, and nothing was shelved before it
      expect(sharedRecord() === null).toBe(k < shareAt);
      if (k <= shareAt) expect(await statuses()).toEqual(['ACTIVE', 'ACTIVE']);
      const rerun = await hibernate(oneAccessory());
      // what was left; an instance already asked to shelve is waited for
      const left = k === steps.length - 1 ? [] : steps.slice(Math.min(k + 1, shareAt + 3)).map((s) => s.kind);
      expect(rerun.plan.steps.map((s) => s.kind)).toEqual(left);
      await expectHibernating(['db']);
      expect(sharedRecord()).toEqual(await readHibernationRecord({ root }));
      // every second round the other machine wakes it, the rest this one
      if (k % 2 === 1) {
        const other = await secondMachine();
        try {
          await wake(other.target({ accessories: [dbTarget] }));
        } finally {
          await rm(other.root, { recursive: true, force: true });
        }
        // this machine's leftover: cleared by its own wake, which finds the cluster awake
        await wake(oneAccessory());
      } else {
        await wake(oneAccessory());
      }
      await expectAwake();
      expect(sharedRecord()).toBeNull();
    }
  }, 300_000);

  it('a wake on another machine killed after each step is finished by the next wake, from either machine', async () => {
    const objects = await swiftObjects(cloud);
    const here = () => target({ accessories: [dbTarget], objects });
    await hibernate(here());
    const other = await secondMachine();
    try {
      const steps = (await wake(other.target({ accessories: [dbTarget] }), { dryRun: true })).plan.steps;
      expect(steps.map((s) => s.kind)).toEqual(['fetch-backup', 'fetch-backup', 'fetch-backup', 'record-wake', 'unshelve-server', 'unshelve-server', 'wait-active', 'wait-swarm', 'restore-release-state', 'restore-accessory', 'wait-live', 'clear-record']);
      for (let k = 0; k < steps.length; k += 1) {
        if (k > 0) await hibernate(here());
        // the other machine has no inventory of its own each round (the first wake fetched it)
        await rm(path.join(other.root, '.depl', 'inventory.json'), { force: true });
        await expect(wake(other.target({ accessories: [dbTarget] }), { afterStep: killedAfter(k) })).rejects.toBeInstanceOf(Killed);
        if (k >= 3 && k < steps.length - 1) {
          // the wake began: this machine sees it in Swift, and its hibernate refuses until the wake is finished
          expect((await hibernationStatus({ root }, async () => objects))?.human).toMatch(/^hibernation: waking since/);
          expect(await hibernate(here()).catch((e: unknown) => e)).toMatchObject({ code: 'WAKE_INTERRUPTED' });
        }
        // odd rounds: this machine finishes the other's wake; even rounds: the other machine does
        await wake(k % 2 === 1 ? here() : other.target({ accessories: [dbTarget] }));
        // the machine that did not finish may keep a leftover record: its next wake clears it
        await wake(here());
        await expectAwake();
        expect(sharedRecord()).toBeNull();
      }
    } finally {
      await rm(other.root, { recursive: true, force: true });
    }
  }, 300_000);
});
