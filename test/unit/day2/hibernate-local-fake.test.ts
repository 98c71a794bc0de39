import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readHibernationRecord } from '../../../src/apply/hibernation-record.js';
import { writeInventory } from '../../../src/apply/inventory.js';
import type { AccessoryConfig } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/util/log.js';
import type { AccessoryTarget } from '../../../src/workflows/backup.js';
import { hibernate, wake, type HibernationTarget } from '../../../src/workflows/hibernation.js';
import { hibernationStatus } from '../../../src/workflows/status.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';
import { fakeNodeContainers, type FakeNodeContainers } from '../../support/fake-node-containers.js';

/**
 * depl hibernate and depl wake on the local provider: the same plans and workflow as on OpenStack, with node
 * containers for instances (stopped to hibernate, started to wake). The manager answers only while its
 * container runs; a node's swarm state follows its container. A run killed after any step of either plan is
 * finished by the next run of the same command, and wake brings the same live version back with its data.
 */
let fake: FakeCluster;
let containers: FakeNodeContainers;
let root: string;
let tick = 0;
const keys = { 'job:1': 'done', 'job:1:images': '32' };
const NODES = ['node-1', 'node-2', 'node-3'];

const redisTarget: AccessoryTarget = {
  name: 'redis', accessory: { image: 'redis:7', node: 'node-2', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'redis-data', target: '/data' }, type: 'redis', kind: 'redis',
};

beforeAll(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  await switchVersion(fake.control, 'v2');
  fake.accessories.set('redis', { image: 'redis:7', node: 'node-2', replicas: 1, paused: false, crashed: false, target: '/data', files: new Map(), redis: { version: '7.2.4', aof: true, keys: { ...keys }, saves: 0 } });
  containers = fakeNodeContainers(fake.nodeStates, NODES);
  root = await mkdtemp(path.join(tmpdir(), 'depl-hibernate-local-'));
  await writeInventory({ root }, {
    version: 1, app: 'shop', provider: 'local', network: 'shop', updatedAt: '2026-12-06T12:00:00Z',
    nodes: NODES.map((name, i) => ({ name, address: `10.5.0.${i + 2}`, role: i === 0 ? 'manager' : 'worker' })),
  });
});
afterAll(async () => {
  await fake.close();
  await rm(root, { recursive: true, force: true });
});

function target(extra: Partial<HibernationTarget> = {}): HibernationTarget {
  const control = fake.freshControl();
  return {
    app: 'shop', domain: fake.domain, root, servers: containers.servers, accessories: [redisTarget], log: silentLogger, by: 'ops@test', pollMs: 10,
    now: () => new Date(Date.UTC(2026, 11, 6, 12, 0, tick++)),
    timeouts: { shelveMs: 30_000, activeMs: 30_000, swarmMs: 30_000, healthyMs: 30_000 },
    async openPort() {
      // the manager's sshd and dockerd run only while its container does
      if (containers.states.get('c-node-1') !== 'running') throw new Error('connect EHOSTUNREACH 10.5.0.2:22 (node-1 is stopped)');
      return { port: { ...control, accessoryData: control.accessoryData!, nodes: control.nodes! }, close: async () => {} };
    },
    ...extra,
  };
}

const killedAfter = (k: number) => (index: number) => {
  if (index === k) throw new Killed(`after step ${k + 1}`);
};
const states = () => [...containers.states.values()];

async function expectAwake(): Promise<void> {
  expect(states()).toEqual(['running', 'running', 'running']);
  expect([...fake.nodeStates.values()]).toEqual(['Ready', 'Ready', 'Ready']);
  expect(await readHibernationRecord({ root })).toBeNull();
  expect(await fake.get(fake.domain, '/healthz')).toMatchObject({ status: 200, version: 'v2' });
  expect(await fake.get(`v2.${fake.domain}`, '/healthz')).toMatchObject({ status: 200, version: 'v2' });
  expect(fake.accessories.get('redis')!.redis!.keys).toEqual(keys);
}

async function expectHibernating(): Promise<void> {
  expect(states()).toEqual(['exited', 'exited', 'exited']);
  expect([...fake.nodeStates.values()]).toEqual(['Down', 'Down', 'Down']);
  const record = await readHibernationRecord({ root });
  expect(record).toMatchObject({ phase: 'hibernating', complete: true, live: 'v2', instances: 'node-containers', backups: { redis: expect.any(String) } });
  if (record === null || record === 'unreadable') throw new Error('no record');
  expect(JSON.parse(await readFile(record.releaseCopy!, 'utf8'))).toMatchObject({ app: 'shop', live: 'v2' });
}

describe('depl hibernate and depl wake on the local provider (fake cluster, node containers)', () => {
  beforeEach(async () => {
    if ((await readHibernationRecord({ root })) !== null || states().some((s) => s !== 'running')) await wake(target());
  }, 30_000);

  it('hibernate stops every node container after the backups; status says "stopped"; wake starts them and brings v2 back with its data', async () => {
    const dry = await hibernate(target({ now: () => new Date('2026-12-06T13:00:00Z') }), { dryRun: true });
    expect(dry.plan.steps.map((s) => s.describe).filter((d) => d.startsWith('stop '))).toEqual([
      expect.stringMatching(/^stop node-1 \(running; its \/var\/lib\/docker volume/), expect.stringMatching(/^stop node-2/), expect.stringMatching(/^stop node-3/),
    ]);
    expect(states()).toEqual(['running', 'running', 'running']);
    const done = await hibernate(target({ now: () => new Date('2026-12-06T13:00:00Z') }));
    expect(done.plan).toEqual(dry.plan);
    await expectHibernating();
    const status = await hibernationStatus({ root });
    expect(status?.human).toMatch(/^hibernation: hibernating since 2026-12-06T13:00:00.000Z \(by ops@test\): every node container is stopped; live version v2/);
    expect(status?.report).toMatchObject({ nodes: [{ name: 'node-1', state: 'stopped' }, { name: 'node-2', state: 'stopped' }, { name: 'node-3', state: 'stopped' }] });
    expect((await hibernate(target())).plan.steps).toEqual([]);

    const woken = await wake(target());
    expect(woken.plan.steps.filter((s) => s.kind === 'unshelve-server').map((s) => s.describe)).toEqual(['start node-1 (exited)', 'start node-2 (exited)', 'start node-3 (exited)']);
    expect(woken.restored).toEqual([]);
    await expectAwake();
    expect((await wake(target())).plan.steps).toEqual([]);
  }, 30_000);

  it('hibernate killed after each step of its plan is finished by the next depl hibernate', async () => {
    const steps = (await hibernate(target(), { dryRun: true })).plan.steps;
    expect(steps.map((s) => s.kind)).toEqual(['record-hibernation', 'keep-release-state', 'backup-accessory', 'shelve-server', 'shelve-server', 'shelve-server', 'wait-shelved', 'complete-hibernation']);
    for (let k = 0; k < steps.length; k += 1) {
      await expect(hibernate(target(), { afterStep: killedAfter(k) })).rejects.toBeInstanceOf(Killed);
      expect((await hibernationStatus({ root }))?.human).toMatch(/^hibernation: hibernating since/);
      const rerun = await hibernate(target());
      // what was left: a container the killed run stopped is not stopped again; the wait looks again
      const left = k === steps.length - 1 ? [] : steps.slice(Math.min(k + 1, 6)).map((s) => s.kind);
      expect(rerun.plan.steps.map((s) => s.kind)).toEqual(left);
      await expectHibernating();
      await wake(target());
      await expectAwake();
    }
  }, 120_000);

  it('wake killed after each step of its plan is finished by the next depl wake; a hibernate in between is refused', async () => {
    await hibernate(target());
    const steps = (await wake(target(), { dryRun: true })).plan.steps;
    expect(steps.map((s) => s.kind)).toEqual(['record-wake', 'unshelve-server', 'unshelve-server', 'unshelve-server', 'wait-active', 'wait-swarm', 'restore-release-state', 'restore-accessory', 'wait-live', 'clear-record']);
    for (let k = 0; k < steps.length; k += 1) {
      if (k > 0) await hibernate(target());
      await expect(wake(target(), { afterStep: killedAfter(k) })).rejects.toBeInstanceOf(Killed);
      if (k < steps.length - 1) {
        expect(await hibernate(target()).catch((e: unknown) => e)).toMatchObject({ code: 'WAKE_INTERRUPTED' });
        expect((await hibernationStatus({ root }))?.human).toMatch(/^hibernation: waking since/);
      }
      const rerun = await wake(target());
      // the containers the killed run started are not started again; the waits and checks look again
      const left = k === steps.length - 1 ? [] : steps.slice(Math.min(k + 1, 4)).map((s) => s.kind);
      expect(rerun.plan.steps.map((s) => s.kind)).toEqual(left);
      await expectAwake();
    }
  }, 120_000);

  it('wake restores Redis from the hibernate backup when its volume came back empty', async () => {
    await hibernate(target());
    const redis = fake.accessories.get('redis')!;
    redis.files.clear();
    redis.redis!.keys = {};
    expect((await wake(target())).restored).toEqual(['redis']);
    await expectAwake();
  }, 30_000);
});
