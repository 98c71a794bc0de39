import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { verifyBackupFile, writeBackupFile } from '../../../src/apply/backup-file.js';
import { forceReleaseLock, lockStatus } from '../../../src/apply/lock.js';
import type { AccessoryConfig } from '../../../src/config/schema.js';
import { OperationError, UserError } from '../../../src/errors.js';
import type { BackupManifest } from '../../../src/plan/backup.js';
import { backupAccessory, journalPath, readRestoreJournal, type AccessoryPort, type AccessoryTarget } from '../../../src/workflows/backup.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { restoreAccessory, type RestoreRun } from '../../../src/workflows/restore.js';
import { Killed, startFakeCluster, type FakeAccessory, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * depl backup and depl restore on the fake cluster (ClusterPort.accessoryData): the dry run is the plan that
 * then runs, refusals change nothing, a failed restore puts back what the accessory held, and a run killed
 * after any step of its plan is reported by the next backup (with what to run) and finished by the next restore.
 */
let fake: FakeCluster;
let root: string;
const now = new Date('2026-12-06T12:00:00Z');
const original = { 'user:1': 'ada', 'user:2': 'grace' };
const backedUp = { 'job:1': 'queued', 'job:2': 'done', 'job:3': 'failed' };

const redisTarget: AccessoryTarget = {
  name: 'redis', accessory: { image: 'redis:7', node: 'node-2', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'redis-data', target: '/data' }, type: 'redis', kind: 'redis',
};
const dbTarget: AccessoryTarget = {
  name: 'db', accessory: { image: 'postgres:16', node: 'node-1', secrets: [] } as unknown as AccessoryConfig, volume: { name: 'pg-data', target: '/var/lib/postgresql/data' }, type: 'postgres', kind: 'volume',
};

function redisAccessory(keys: Record<string, string>): FakeAccessory {
  const accessory: FakeAccessory = { image: 'redis:7', node: 'node-2', replicas: 1, paused: false, crashed: false, target: '/data', files: new Map(), redis: { version: '7.2.4', aof: true, keys: { ...keys }, saves: 0 } };
  return accessory;
}

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1'] });
  root = await mkdtemp(path.join(tmpdir(), 'depl-backup-'));
  fake.accessories.set('redis', redisAccessory(original));
  fake.accessories.set('db', {
    image: 'postgres:16', node: 'node-1', replicas: 1, paused: false, crashed: false, target: '/var/lib/postgresql/data',
    files: new Map([['PG_VERSION', Buffer.from('16\n')], ['base/', Buffer.alloc(0)], ['base/1', Buffer.from('rows')]]),
  });
  // nothing of v1 uses the accessories unless a test scales it up
  fake.versions[0]!.replicas = Object.fromEntries(fake.versions[0]!.services.map((s) => [s, 0]));
});
afterEach(async () => {
  await fake.close();
  await rm(root, { recursive: true, force: true });
});

const port = (control: ClusterPort = fake.control): AccessoryPort => ({ ...control, accessoryData: control.accessoryData! });
const redis = () => fake.accessories.get('redis')!;
const backupFile = (name: string) => path.join(root, name);

/** A backup of the Redis accessory holding `keys` (made through the workflow, as depl backup makes one). */
async function redisBackupOf(keys: Record<string, string>, name = 'redis.tar'): Promise<{ file: string; manifest: BackupManifest }> {
  const held = { ...redis().redis!.keys };
  redis().redis!.keys = { ...keys };
  const { manifest } = await backupAccessory(port(), redisTarget, { file: backupFile(name), now });
  redis().redis!.keys = held;
  return { file: backupFile(name), manifest: manifest! };
}

const restoreRun = (file: string, manifest: BackupManifest, extra: Partial<RestoreRun> = {}): RestoreRun => ({
  file, manifest, warnings: [], force: false, now, root, pinnedNode: 'node-2', startTimeoutMs: 1_000, ...extra,
});

/** What the next depl would find: the accessory, the record of a restore, the lock. */
async function cluster() {
  const accessory = redis();
  return {
    replicas: accessory.replicas, paused: accessory.paused, keys: accessory.redis!.keys,
    record: await fake.control.stateRemote.readFile(journalPath(fake.control, 'redis')),
    locked: (await lockStatus(fake.control.stateRemote, fake.app, fake.control.stateRoot)) !== null,
  };
}

describe('depl backup on the fake cluster', () => {
  it('Redis: the dry run is the plan that then runs; the file holds the snapshot with its manifest', async () => {
    const dry = await backupAccessory(port(), redisTarget, { file: backupFile('r.tar'), now, dryRun: true });
    expect(dry.manifest).toBeUndefined();
    expect(redis().redis!.saves).toBe(0);
    expect(await readdir(root)).toEqual([]);
    const ran = await backupAccessory(port(), redisTarget, { file: backupFile('r.tar'), now });
    expect(ran.plan).toEqual(dry.plan);
    expect(ran.plan.steps.map((s) => s.kind)).toEqual(['redis-snapshot', 'copy-redis-snapshot']);
    const { manifest, head } = await verifyBackupFile(backupFile('r.tar'));
    expect(manifest).toMatchObject({ app: 'shop', accessory: 'redis', type: 'redis', node: 'node-2', payload: { kind: 'redis-rdb', file: 'dump.rdb' }, redis: { keys: 2, aof: true, version: '7.2.4' } });
    expect(head.subarray(0, 9).toString()).toBe('REDIS0011');
    expect(ran.manifest).toEqual(manifest);
    expect(await cluster()).toMatchObject({ replicas: 1, paused: false, locked: false });
  });

  it('a volume: paused while copied, resumed; killed after any step, the next backup resumes what it left paused', async () => {
    const ran = await backupAccessory(port(), dbTarget, { file: backupFile('db.tar'), now });
    expect(ran.plan.steps.map((s) => s.kind)).toEqual(['pause-accessory', 'copy-volume', 'resume-accessory']);
    expect(ran.manifest).toMatchObject({ type: 'postgres', payload: { kind: 'volume-tar', file: 'volume.tar' } });
    expect(fake.accessories.get('db')!.paused).toBe(false);
    for (const step of [0, 1]) {
      const dying = fake.killable();
      const killed = await backupAccessory(port(dying.control), dbTarget, { file: backupFile(`killed-${step}.tar`), now, afterStep: (i) => { if (i === step) dying.kill(); } }).catch((error: unknown) => error);
      expect(killed).toBeInstanceOf(Killed);
      expect(fake.accessories.get('db')!.paused).toBe(true);
      await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
      const next = await backupAccessory(port(fake.freshControl()), dbTarget, { file: backupFile(`next-${step}.tar`), now });
      expect(next.plan.steps.map((s) => s.kind)).toEqual(['resume-accessory', 'pause-accessory', 'copy-volume', 'resume-accessory']);
      expect(fake.accessories.get('db')!.paused).toBe(false);
      await verifyBackupFile(backupFile(`next-${step}.tar`));
    }
  });

  it('copies the volume the accessory runs on: the unscoped one an app deployed before keeps, else the app-scoped one', async () => {
    const copied = async () => {
      const dry = await backupAccessory(port(), dbTarget, { file: backupFile('db.tar'), now, dryRun: true });
      return dry.plan.steps.flatMap((s) => (s.kind === 'copy-volume' ? [s.volume.name] : []));
    };
    // the swarm does not say (no service spec seen): the name a new install gives it
    expect(await copied()).toEqual(['shop-pg-data']);
    fake.accessories.get('db')!.volume = 'pg-data';
    expect(await copied()).toEqual(['pg-data']);
    fake.accessories.get('db')!.volume = 'shop-pg-data';
    expect(await copied()).toEqual(['shop-pg-data']);
    // and a restore replaces that same volume's files
    const { manifest } = await backupAccessory(port(), dbTarget, { file: backupFile('db.tar'), now });
    fake.accessories.get('db')!.volume = 'pg-data';
    const restore = await restoreAccessory(port(), dbTarget, restoreRun(backupFile('db.tar'), manifest!, { dryRun: true, pinnedNode: 'node-1' }));
    expect(restore.plan.steps.flatMap((s) => ('volume' in s && s.volume !== undefined ? [s.volume.name] : []))).toContain('pg-data');
    expect(restore.plan.steps.flatMap((s) => ('volume' in s && s.volume !== undefined ? [s.volume.name] : []))).not.toContain('shop-pg-data');
  });

  it('refuses a stopped or missing accessory, changing nothing', async () => {
    redis().replicas = 0;
    await expect(backupAccessory(port(), redisTarget, { file: backupFile('x.tar'), now })).rejects.toMatchObject({ code: 'ACCESSORY_NOT_RUNNING' });
    fake.accessories.delete('redis');
    await expect(backupAccessory(port(), redisTarget, { file: backupFile('x.tar'), now })).rejects.toMatchObject({ code: 'ACCESSORY_MISSING' });
    expect(await readdir(root)).toEqual([]);
  });
});

describe('depl restore on the fake cluster', () => {
  it('the dry run is the plan that then runs; the keys come back, and the copy it kept restores what was there', async () => {
    const { file, manifest } = await redisBackupOf(backedUp);
    const before = await cluster();
    const dry = await restoreAccessory(port(), redisTarget, restoreRun(file, manifest, { dryRun: true }));
    expect(await cluster()).toEqual(before);
    expect(await readdir(root)).toEqual(['redis.tar']);
    const ran = await restoreAccessory(port(), redisTarget, restoreRun(file, manifest));
    expect(ran.plan).toEqual(dry.plan);
    expect(ran).toMatchObject({ keys: 3, safetyCopy: path.join(root, '.depl/backups/shop-redis-20261206-120000-before-restore.tar') });
    expect(await cluster()).toEqual({ replicas: 1, paused: false, keys: backedUp, record: null, locked: false });
    // the copy is a volume backup of what Redis held: restoring it brings that back
    const copy = await verifyBackupFile(ran.safetyCopy);
    expect(copy.manifest.payload.kind).toBe('volume-tar');
    const back = await restoreAccessory(port(), redisTarget, restoreRun(ran.safetyCopy, copy.manifest, { now: new Date('2026-12-06T12:01:00Z') }));
    expect(back.plan.steps.map((s) => s.kind)).not.toContain('verify-redis');
    expect(redis().redis!.keys).toEqual(original);
  });

  it('refuses while a version uses the accessory (exit 2, nothing changed); --force restores under it', async () => {
    const { file, manifest } = await redisBackupOf(backedUp);
    fake.versions[0]!.replicas = { ...fake.versions[0]!.replicas, 'shop-v1-worker': 1 };
    const before = await cluster();
    const refused = await restoreAccessory(port(), redisTarget, restoreRun(file, manifest)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UserError);
    expect(refused).toMatchObject({ code: 'ACCESSORY_IN_USE', message: expect.stringContaining('version v1 (shop-v1-worker)') });
    expect(await cluster()).toEqual(before);
    expect((await restoreAccessory(port(), redisTarget, restoreRun(file, manifest, { force: true }))).keys).toBe(3);
  });

  it('a backup Redis cannot load fails the restore, and what it held is put back', async () => {
    const { manifest } = await redisBackupOf(backedUp);
    // an RDB header (so the file passes the checks) over bytes the (fake) Redis cannot load
    const broken = backupFile('broken.tar');
    const brokenManifest = await writeBackupFile(broken, 'dump.rdb', Readable.from([Buffer.from('REDIS0011not a snapshot')]), (facts) => ({ ...manifest, payload: { ...manifest.payload, size: facts.size, sha256: facts.sha256 } }));
    const failed = await restoreAccessory(port(), redisTarget, restoreRun(broken, brokenManifest)).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(OperationError);
    expect(failed).toMatchObject({ code: 'TASKS_FAILED' });
    expect(await cluster()).toEqual({ replicas: 1, paused: false, keys: original, record: null, locked: false });
  });

  const RESTORE_STEPS = ['record-restore', 'stop-accessory', 'copy-volume', 'replace-volume', 'start-accessory', 'verify-redis', 'clear-record'];

  it.each(RESTORE_STEPS.map((kind, index) => [index + 1, kind] as const))('killed after step %i (%s): the next backup says what to run, the next restore finishes it', async (number, kind) => {
    const { file, manifest } = await redisBackupOf(backedUp);
    const dying = fake.killable();
    const killed = await restoreAccessory(port(dying.control), redisTarget, restoreRun(file, manifest, { afterStep: (i, step) => { if (i === number - 1) { expect(step.kind).toBe(kind); dying.kill(); } } })).catch((error: unknown) => error);
    expect(killed).toBeInstanceOf(Killed);
    // the dead process never gave the lock back; its lease runs out (here broken by hand)
    await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    const record = await readRestoreJournal(fake.control, 'redis');
    const firstCopy = path.join(root, '.depl/backups/shop-redis-20261206-120000-before-restore.tar');
    if (kind === 'clear-record') {
      expect(record).toBeNull();
    } else {
      expect(record).toMatchObject({ file, safetyCopy: firstCopy });
      const refused = await backupAccessory(port(fake.freshControl()), redisTarget, { file: backupFile('after-kill.tar'), now }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(OperationError);
      expect(refused).toMatchObject({
        code: 'RESTORE_INTERRUPTED',
        message: `a restore of redis (from ${file}, by ops@test at 2026-12-06T12:00:00.000Z) did not finish, so its data may be half replaced`,
        hint: `Run \`depl restore redis ${file}\` again, or put the data it replaced back: depl restore redis ${firstCopy}.`,
      });
    }
    const later = new Date('2026-12-06T12:05:00Z');
    const next = await restoreAccessory(port(fake.freshControl()), redisTarget, restoreRun(file, manifest, { now: later }));
    expect(await cluster()).toEqual({ replicas: 1, paused: false, keys: backedUp, record: null, locked: false });
    // what Redis held before the first, interrupted, restore is the copy reported and kept (a copy taken now could be half replaced)
    // (killed after its last step, the restore had finished: the next one is a restore of its own)
    const finished = kind === 'clear-record';
    const copyTaken = number >= 3 && !finished;
    expect(next.safetyCopy).toBe(copyTaken ? firstCopy : path.join(root, '.depl/backups/shop-redis-20261206-120500-before-restore.tar'));
    expect(next.plan.steps.map((s) => s.kind)).toContain(copyTaken ? 'check-earlier-copy' : 'copy-volume');
    const copy = await verifyBackupFile(next.safetyCopy);
    await restoreAccessory(port(), redisTarget, restoreRun(next.safetyCopy, copy.manifest, { now: new Date('2026-12-06T12:10:00Z') }));
    expect(redis().redis!.keys).toEqual(finished ? backedUp : original);
  }, 30_000);
});
