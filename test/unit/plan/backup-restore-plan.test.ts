import { describe, expect, it } from 'vitest';
import { redisSettings, type BackupManifest, type RestoreJournal } from '../../../src/plan/backup.js';
import { planBackup, type BackupRead } from '../../../src/plan/backup-plan.js';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import { planRestore, type RestoreRead } from '../../../src/plan/restore-plan.js';

/** depl backup and depl restore as plans: data in (what was read on the cluster), steps or a refusal out. */

const redisVolume = { name: 'redis-data', target: '/data' };
const running = { image: 'redis:7', node: 'node-2', running: true, paused: false };
const settings = redisSettings({ redis_version: '7.2.4' }, { dir: '/data', appendonly: 'yes' });

const backupRead = (extra: Partial<BackupRead> = {}): BackupRead => ({
  app: 'shop', accessory: 'redis', kind: 'redis', volume: redisVolume, file: '/ops/.depl/backups/shop-redis.tar', place: running, earlierRestore: null,
  redis: { settings, loading: false }, ...extra,
});

const journal: RestoreJournal = { accessory: 'redis', file: '/ops/old.tar', safetyCopy: '/ops/.depl/backups/first-before-restore.tar', startedAt: '2026-12-01T00:00:00.000Z', by: 'ops@laptop' };

describe('planBackup', () => {
  it('Redis: a snapshot, then its file copied, online', () => {
    const planned = planBackup(backupRead());
    expect(planned).toEqual({
      ok: true,
      plan: {
        command: 'depl backup redis', accessory: 'redis', kind: 'redis', file: '/ops/.depl/backups/shop-redis.tar',
        notes: ['redis is Redis 7.2.4: backed up online from a snapshot (BGSAVE)'],
        steps: [
          { kind: 'redis-snapshot', describe: 'ask redis for a snapshot (BGSAVE) and wait until it is written', accessory: 'redis' },
          { kind: 'copy-redis-snapshot', describe: 'copy /data/dump.rdb from redis on node-2 to /ops/.depl/backups/shop-redis.tar', accessory: 'redis', node: 'node-2', path: '/data/dump.rdb', file: '/ops/.depl/backups/shop-redis.tar' },
        ],
      },
    });
  });

  it('a volume: paused, copied, resumed; the pause is undone when the copy fails', () => {
    const planned = planBackup(backupRead({ accessory: 'db', kind: 'volume', volume: { name: 'pg', target: '/var/lib/postgresql/data' }, file: '/b/db.tar' }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps).toEqual([
      { kind: 'pause-accessory', describe: 'pause db on node-2 to copy its volume pg', undo: 'resume db', accessory: 'db', node: 'node-2' },
      { kind: 'copy-volume', describe: 'copy volume pg (/var/lib/postgresql/data) on node-2 to /b/db.tar', accessory: 'db', node: 'node-2', volume: { name: 'pg', target: '/var/lib/postgresql/data' }, file: '/b/db.tar' },
      { kind: 'resume-accessory', describe: 'resume db on node-2', accessory: 'db', node: 'node-2' },
    ]);
    expect(renderPlanText(planned.plan)).toContain('1. pause db on node-2 to copy its volume pg\n     undo: resume db');
  });

  it('resumes first what an interrupted backup left paused (a paused Redis is asked for its settings once resumed)', () => {
    const planned = planBackup(backupRead({ place: { ...running, paused: true } }));
    const { redis: _unknown, ...read } = backupRead({ place: { ...running, paused: true } });
    const paused = planBackup(read);
    if (!planned.ok || !paused.ok) throw new Error('refused');
    expect(paused.plan.steps.map((s) => s.kind)).toEqual(['resume-accessory', 'redis-snapshot', 'copy-redis-snapshot']);
    expect(paused.plan.steps[0]).toEqual({ kind: 'resume-accessory', describe: 'resume redis on node-2: an interrupted depl backup left it paused', accessory: 'redis', node: 'node-2' });
    expect(paused.plan.steps[2]).toMatchObject({ path: null });
  });

  it('refuses: an unfinished restore (saying what to run), a missing or stopped accessory, a Redis still loading', () => {
    expect(planBackup(backupRead({ earlierRestore: journal }))).toEqual({
      ok: false, error: 'operation', code: 'RESTORE_INTERRUPTED',
      message: 'a restore of redis (from /ops/old.tar, by ops@laptop at 2026-12-01T00:00:00.000Z) did not finish, so its data may be half replaced',
      hint: 'Run `depl restore redis /ops/old.tar` again, or put the data it replaced back: depl restore redis /ops/.depl/backups/first-before-restore.tar.',
    });
    expect(planBackup(backupRead({ earlierRestore: 'unreadable' }))).toMatchObject({ ok: false, code: 'RESTORE_INTERRUPTED', hint: 'Run depl restore redis <file> again.' });
    expect(planBackup(backupRead({ place: null }))).toMatchObject({ ok: false, error: 'operation', code: 'ACCESSORY_MISSING' });
    expect(planBackup(backupRead({ place: { ...running, running: false } }))).toMatchObject({ ok: false, code: 'ACCESSORY_NOT_RUNNING' });
    expect(planBackup(backupRead({ redis: { settings, loading: true } }))).toMatchObject({ ok: false, code: 'REDIS_LOADING' });
  });
});

const manifest = (extra: Partial<BackupManifest> = {}): BackupManifest => ({
  format: 'depl-backup', formatVersion: 1, app: 'shop', accessory: 'redis', type: 'redis', image: 'redis:7', createdAt: '2026-12-01T00:00:00.000Z',
  createdBy: 'ops@laptop', node: 'node-2', volume: redisVolume, payload: { kind: 'redis-rdb', file: 'dump.rdb', size: 10, sha256: 'a'.repeat(64) },
  redis: { version: '7.2.4', keys: 3, aof: true, rdbVersion: 11 }, ...extra,
});

const restoreRead = (extra: Partial<RestoreRead> = {}): RestoreRead => ({
  app: 'shop', accessory: 'redis', volume: redisVolume, file: '/ops/redis.tar', manifest: manifest(), warnings: [], force: false, place: running, pinnedNode: 'node-2',
  services: [{ name: 'redis', labels: { 'depl.app': 'shop', 'depl.accessory': 'redis' }, replicas: 1 }], earlier: null, liveRedis: settings,
  freshCopy: '/ops/.depl/backups/now-before-restore.tar', startedAt: '2026-12-06T12:00:00.000Z', by: 'ops@laptop', ...extra,
});

describe('planRestore', () => {
  it('Redis: record, stop, copy, replace with the files Redis loads, start, verify the keys, clear; undo puts the copy back', () => {
    const planned = planRestore(restoreRead());
    if (!planned.ok) throw new Error(planned.message);
    const putBack = 'stop redis and put back what it held, from /ops/.depl/backups/now-before-restore.tar';
    expect(planned.plan).toEqual({
      command: 'depl restore redis /ops/redis.tar', accessory: 'redis', file: '/ops/redis.tar', safetyCopy: '/ops/.depl/backups/now-before-restore.tar', notes: [],
      steps: [
        {
          kind: 'record-restore', describe: 'record this restore of redis on the manager (what the next depl reads if this one dies)', undo: 'remove the record',
          journal: { accessory: 'redis', file: '/ops/redis.tar', safetyCopy: '/ops/.depl/backups/now-before-restore.tar', startedAt: '2026-12-06T12:00:00.000Z', by: 'ops@laptop' },
        },
        { kind: 'stop-accessory', describe: 'stop redis (scale to 0) and wait until its task has exited', undo: 'start redis again', accessory: 'redis' },
        { kind: 'copy-volume', describe: 'copy what redis holds (volume redis-data on node-2) to /ops/.depl/backups/now-before-restore.tar', undo: putBack, accessory: 'redis', node: 'node-2', volume: redisVolume, copy: '/ops/.depl/backups/now-before-restore.tar' },
        {
          kind: 'replace-volume', describe: 'empty volume redis-data on node-2 and load /ops/redis.tar into it', accessory: 'redis', node: 'node-2', volume: redisVolume, file: '/ops/redis.tar',
          load: {
            kind: 'redis-files', at: '/data', entries: [
              { name: 'dump.rdb', type: 'file', mode: 0o644, content: { rdb: true } },
              { name: 'appendonlydir', type: 'directory', mode: 0o755 },
              { name: 'appendonlydir/appendonly.aof.1.base.rdb', type: 'file', mode: 0o644, content: { rdb: true } },
              { name: 'appendonlydir/appendonly.aof.manifest', type: 'file', mode: 0o644, content: { text: 'file appendonly.aof.1.base.rdb seq 1 type b\n' } },
            ],
          },
        },
        { kind: 'start-accessory', describe: 'start redis (scale to 1) and wait until it runs', accessory: 'redis' },
        { kind: 'verify-redis', describe: 'wait until redis has loaded its data (the backup was made with 3 keys)', accessory: 'redis', expectedKeys: 3 },
        { kind: 'clear-record', describe: 'remove the record of this restore of redis', accessory: 'redis' },
      ],
    });
  });

  it('a volume copy goes back in at the mount point\'s parent, with no Redis check', () => {
    const volume = { name: 'pg', target: '/var/lib/postgresql/data' };
    const planned = planRestore(restoreRead({
      accessory: 'db', volume, liveRedis: null,
      manifest: manifest({ accessory: 'db', type: 'postgres', volume, payload: { kind: 'volume-tar', file: 'volume.tar', size: 10, sha256: 'b'.repeat(64) } }),
    }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps.map((s) => s.kind)).toEqual(['record-restore', 'stop-accessory', 'copy-volume', 'replace-volume', 'start-accessory', 'clear-record']);
    expect(planned.plan.steps[3]).toMatchObject({ load: { kind: 'volume-tar', at: '/var/lib/postgresql' } });
  });

  it('refuses while a version uses the accessory (exit 2), unless forced; says so in the notes when forced', () => {
    const services = [...restoreRead().services, { name: 'shop-v1-worker', labels: { 'depl.app': 'shop', 'depl.version': 'v1' }, replicas: 1 }];
    expect(planRestore(restoreRead({ services }))).toMatchObject({
      ok: false, error: 'user', code: 'ACCESSORY_IN_USE',
      message: 'accessory redis is in use by version v1 (shop-v1-worker); they would read and write it while its data is replaced',
    });
    // a version scaled to 0 does not use it
    expect(planRestore(restoreRead({ services: services.map((s) => ({ ...s, replicas: s.name === 'shop-v1-worker' ? 0 : 1 })) })).ok).toBe(true);
    const forced = planRestore(restoreRead({ services, force: true, warnings: ['the file was made from app other, not shop'] }));
    expect(forced).toMatchObject({ ok: true, plan: { notes: ['the file was made from app other, not shop', '--force: restoring under version(s) v1 (shop-v1-worker)'] } });
  });

  it('a Redis that does not answer is planned from the backup\'s settings; one keeping its files off the volume is refused', () => {
    const assumed = planRestore(restoreRead({ liveRedis: null, manifest: manifest({ redis: { version: '6.2.0', keys: 3, aof: true, rdbVersion: 9 } }) }));
    if (!assumed.ok) throw new Error(assumed.message);
    expect(assumed.plan.notes).toEqual(['redis does not answer: assuming the settings it had when the backup was made (Redis 6.2.0, AOF on, files in /data)']);
    expect(assumed.plan.steps[3]).toMatchObject({ load: { entries: [{ name: 'dump.rdb' }, { name: 'appendonly.aof' }] } });
    expect(planRestore(restoreRead({ liveRedis: { ...settings, dir: '/elsewhere' } }))).toMatchObject({ ok: false, code: 'RESTORE_LAYOUT' });
    expect(planRestore(restoreRead({ place: null }))).toMatchObject({ ok: false, code: 'ACCESSORY_MISSING' });
  });

  it('after an interrupted restore: keeps the copy it took of what was there before (checked, put back on failure), else takes a fresh one', () => {
    const kept = planRestore(restoreRead({ earlier: { journal, copyExists: true }, place: { ...running, running: false } }));
    if (!kept.ok) throw new Error(kept.message);
    expect(kept.plan.safetyCopy).toBe(journal.safetyCopy);
    expect(kept.plan.notes).toEqual([
      'an earlier restore of redis did not finish (from /ops/old.tar, by ops@laptop at 2026-12-01T00:00:00.000Z); this restore replaces its leftovers',
      'what redis held before it is in /ops/.depl/backups/first-before-restore.tar: that copy is kept and put back if this restore fails',
    ]);
    expect(kept.plan.steps[0]).toMatchObject({ kind: 'record-restore', journal: { safetyCopy: journal.safetyCopy, file: '/ops/redis.tar' } });
    expect(kept.plan.steps[2]).toEqual({
      kind: 'check-earlier-copy', describe: `check ${journal.safetyCopy}, the copy of what redis held before the interrupted restore`,
      undo: `stop redis and put back what it held, from ${journal.safetyCopy}`, accessory: 'redis', node: 'node-2', volume: redisVolume, copy: journal.safetyCopy,
    });
    const fresh = planRestore(restoreRead({ earlier: { journal, copyExists: false } }));
    expect(fresh).toMatchObject({ ok: true, plan: { safetyCopy: '/ops/.depl/backups/now-before-restore.tar', steps: [{}, {}, { kind: 'copy-volume' }, {}, {}, {}, {}] } });
    const paused = planRestore(restoreRead({ place: { ...running, paused: true } }));
    expect(paused).toMatchObject({ ok: true, plan: { steps: [{ kind: 'resume-accessory', node: 'node-2' }, { kind: 'record-restore' }, {}, {}, {}, {}, {}, {}] } });
  });
});
