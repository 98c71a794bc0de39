import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import {
  accessoryType, accessoryUsers, accessoryVolume, backupKind, bgsaveProgress, bgsaveReply, backupOutputPath, checkManifestFor, defaultBackupFileName, helperContainerSpec,
  imageRepositoryName, keyCount, parseConfigGet, parseManifest, parseRedisInfo, rdbVersion, redisCliCommand, redisError, redisPasswordSecret,
  redisRestoreEntries, redisSettings, renderManifest, volumeArchiveParent, type BackupManifest, type RestoreEntry,
} from '../../../src/plan/backup.js';

const accessory = (extra: Record<string, unknown> = {}) => ({ image: 'redis', secrets: [] as string[], ...extra });

const manifest = (extra: Partial<BackupManifest> = {}): BackupManifest => ({
  format: 'depl-backup', formatVersion: 1, app: 'crawler', accessory: 'redis', type: 'redis', image: 'depl-base/redis:abc',
  createdAt: '2026-11-30T03:00:00.000Z', createdBy: 'me@laptop', node: 'node-1', volume: { name: 'redis-data', target: '/data' },
  payload: { kind: 'redis-rdb', file: 'dump.rdb', size: 99, sha256: 'a'.repeat(64) },
  redis: { version: '7.0.15', keys: 3, aof: true, rdbVersion: 10 },
  ...extra,
});

describe('backup planning: which path an accessory takes', () => {
  it('takes Redis online and anything else as a volume copy, unless depl.yaml says otherwise', () => {
    expect(imageRepositoryName('docker.io/library/redis:7.2@sha256:abc')).toBe('redis');
    expect(imageRepositoryName('depl-test/postgres:0123')).toBe('postgres');
    expect(imageRepositoryName('registry:5000/team/Valkey')).toBe('valkey');
    expect(backupKind(accessory())).toBe('redis');
    expect(backupKind(accessory({ image: 'redis:7' }))).toBe('redis');
    expect(backupKind(accessory({ image: 'postgres:16' }))).toBe('volume');
    expect(backupKind(accessory({ image: 'my/cache:1', backup: { kind: 'redis' } }))).toBe('redis');
    expect(backupKind(accessory({ backup: { kind: 'volume' } }))).toBe('volume');
    expect(accessoryType(accessory({ image: 'postgres:16' }))).toBe('postgres');
    expect(accessoryType(accessory({ image: 'my/cache:1', backup: { kind: 'redis' } }))).toBe('redis');
  });

  it('finds the password secret and the volume', () => {
    expect(redisPasswordSecret(accessory())).toBeNull();
    expect(redisPasswordSecret(accessory({ secrets: ['redis_password'] }))).toBe('redis_password');
    expect(redisPasswordSecret(accessory({ secrets: ['tls_key', 'redis_pass'] }))).toBe('redis_pass');
    expect(redisPasswordSecret(accessory({ secrets: ['a', 'b'], backup: { passwordSecret: 'b' } }))).toBe('b');
    expect(accessoryVolume({ volume: 'pg-data:/var/lib/postgresql/data/' })).toEqual({ name: 'pg-data', target: '/var/lib/postgresql/data' });
    expect(accessoryVolume({})).toBeNull();
    expect(volumeArchiveParent('/var/lib/postgresql/data')).toBe('/var/lib/postgresql');
    expect(volumeArchiveParent('/data')).toBe('/');
  });

  it('validates backup: in depl.yaml, naming the path', () => {
    const base = { app: 'a', domain: 'a.localhost', services: { web: { image: 'x' } }, secrets: ['one', 'two'] };
    expect(() => parseConfig(JSON.stringify({ ...base, accessories: { redis: { image: 'redis', secrets: ['one'], backup: { passwordSecret: 'two' } } } })))
      .toThrow(/accessories\.redis\.backup\W+passwordSecret\W+: "two" is not one of this accessory's secrets/);
    expect(() => parseConfig(JSON.stringify({ ...base, accessories: { redis: { image: 'redis', backup: { kind: 'rsync' } } } }))).toThrow(/accessories\.redis\.backup\.kind/);
  });
});

describe('backup planning: commands and Redis answers', () => {
  it('runs redis-cli in the container with the password read there, never on a command line', () => {
    const argv = redisCliCommand('c0ffee', 6379, 'redis_password', ['BGSAVE', 'SCHEDULE']);
    expect(argv.slice(0, 4)).toEqual(['docker', 'exec', 'c0ffee', 'sh']);
    expect(argv.slice(-4)).toEqual(['/run/secrets/redis_password', '6379', 'BGSAVE', 'SCHEDULE']);
    expect(argv[5]).toContain('REDISCLI_AUTH=$(cat "$f")');
    expect(redisCliCommand('c0ffee', 6380, null, ['INFO']).slice(-3)).toEqual(['', '6380', 'INFO']);
  });

  it('reads INFO, CONFIG GET and error replies', () => {
    const info = parseRedisInfo('# Persistence\r\nloading:0\r\nrdb_saves:4\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=5,expires=0,avg_ttl=0\r\n');
    expect(info.rdb_saves).toBe('4');
    expect(keyCount(info)).toBe(8);
    expect(parseConfigGet('dir\n/data\ndbfilename\ndump.rdb\nappendonly\nyes\n')).toEqual({ dir: '/data', dbfilename: 'dump.rdb', appendonly: 'yes' });
    expect(redisError('NOAUTH Authentication required.\n')).toBe('NOAUTH Authentication required.');
    expect(redisError('(error) ERR unknown command')).toBe('ERR unknown command');
    expect(redisError('Background saving started\n')).toBeNull();
    expect(bgsaveReply('Background saving started')).toBe('started');
    expect(bgsaveReply('Background saving scheduled')).toBe('started');
    expect(bgsaveReply('ERR Background save already in progress')).toBe('busy');
    expect(bgsaveReply('MISCONF no space')).toEqual({ error: 'MISCONF no space' });
  });

  it('waits for a save that started after the request, by the save counter or the last save time', () => {
    const before = { rdb_bgsave_in_progress: '0', rdb_saves: '4', rdb_last_save_time: '100', rdb_last_bgsave_status: 'ok' };
    expect(bgsaveProgress(before, { ...before, rdb_bgsave_in_progress: '1' })).toBe('waiting');
    expect(bgsaveProgress(before, before)).toBe('waiting');
    expect(bgsaveProgress(before, { ...before, rdb_saves: '5', rdb_last_save_time: '101' })).toBe('done');
    expect(bgsaveProgress(before, { ...before, rdb_saves: '5', rdb_last_bgsave_status: 'err' })).toBe('failed');
    const old = { rdb_bgsave_in_progress: '0', rdb_last_save_time: '100', rdb_last_bgsave_status: 'ok' };
    expect(bgsaveProgress(old, old)).toBe('waiting');
    expect(bgsaveProgress(old, { ...old, rdb_last_save_time: '102' })).toBe('done');
  });

  it('recognises an RDB by its magic', () => {
    expect(rdbVersion(Buffer.from('REDIS0010\xfa\x09redis-ver', 'latin1'))).toBe(10);
    expect(rdbVersion(Buffer.from('PGDMP....'))).toBeNull();
    expect(rdbVersion(Buffer.from('REDIS'))).toBeNull();
  });
});

describe('backup planning: what a Redis restore writes', () => {
  const settings = (extra: Record<string, string> = {}, version = '7.0.15') => redisSettings({ redis_version: version }, { dir: '/data', dbfilename: 'dump.rdb', appendonly: 'no', appendfilename: 'appendonly.aof', appenddirname: 'appendonlydir', ...extra });

  it('writes dump.rdb when AOF is off', () => {
    expect(redisRestoreEntries(settings(), '/data')).toEqual([{ name: 'dump.rdb', type: 'file', mode: 0o644, content: { rdb: true } }]);
  });

  it('with AOF on (Redis 7), makes the RDB the base of a one-part AOF, which is what Redis loads', () => {
    expect(redisRestoreEntries(settings({ appendonly: 'yes' }), '/data')).toEqual([
      { name: 'dump.rdb', type: 'file', mode: 0o644, content: { rdb: true } },
      { name: 'appendonlydir', type: 'directory', mode: 0o755 },
      { name: 'appendonlydir/appendonly.aof.1.base.rdb', type: 'file', mode: 0o644, content: { rdb: true } },
      { name: 'appendonlydir/appendonly.aof.manifest', type: 'file', mode: 0o644, content: { text: 'file appendonly.aof.1.base.rdb seq 1 type b\n' } },
    ]);
  });

  it('with AOF on before Redis 7, writes the RDB as the appendonly file (an RDB-preamble AOF)', () => {
    expect((redisRestoreEntries(settings({ appendonly: 'yes' }, '6.2.14'), '/data') as RestoreEntry[]).slice(1)).toEqual([{ name: 'appendonly.aof', type: 'file', mode: 0o644, content: { rdb: true } }]);
  });

  it('places files in a subfolder of the volume, and refuses a Redis that writes elsewhere', () => {
    expect((redisRestoreEntries(settings({ dir: '/srv/redis/db' }), '/srv/redis') as RestoreEntry[]).map((e) => e.name)).toEqual(['db', 'db/dump.rdb']);
    expect(redisRestoreEntries(settings({ dir: '/tmp' }), '/data')).toEqual({ error: 'Redis keeps its files in /tmp, which is not on the volume mounted at /data' });
    expect(redisRestoreEntries(settings({ dir: '/database' }), '/data')).toHaveProperty('error');
  });
});

describe('backup planning: the file and its checks', () => {
  it('round-trips the manifest and refuses a damaged one, naming the field', () => {
    expect(parseManifest(renderManifest(manifest()))).toEqual({ ok: true, manifest: manifest() });
    expect(parseManifest('{"format":"depl-backup"')).toEqual({ ok: false, problem: 'manifest.json is not JSON' });
    const bad = parseManifest(JSON.stringify({ ...manifest(), payload: { ...manifest().payload, sha256: 'xyz' } }));
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problem).toMatch(/^manifest\.json: payload\.sha256:/);
    expect(parseManifest(JSON.stringify({ ...manifest(), format: 'tar' })).ok).toBe(false);
  });

  it('refuses a file of another accessory type, warns about another app or name', () => {
    const redis = { app: 'crawler', accessory: 'redis', type: 'redis', volume: { name: 'redis-data', target: '/data' } };
    expect(checkManifestFor(manifest(), redis)).toEqual({ refusals: [], warnings: [] });
    const pg = manifest({ type: 'postgres', accessory: 'db', image: 'postgres:16', payload: { kind: 'volume-tar', file: 'volume.tar', size: 1, sha256: 'b'.repeat(64) }, redis: undefined });
    expect(checkManifestFor(pg, redis).refusals[0]).toMatch(/holds a postgres accessory's data .* redis is a redis accessory/);
    expect(checkManifestFor(manifest(), { ...redis, type: 'postgres', accessory: 'db', volume: { name: 'pg', target: '/data' } }).refusals).toHaveLength(2);
    expect(checkManifestFor(manifest({ app: 'shop', accessory: 'cache' }), redis)).toEqual({
      refusals: [], warnings: ['the file was made from app shop, not crawler', 'the file was made from accessory cache, not redis'],
    });
    // a volume copy goes back under a mount point with the same last element
    const copy = manifest({ payload: { kind: 'volume-tar', file: 'volume.tar', size: 1, sha256: 'c'.repeat(64) }, volume: { name: 'x', target: '/srv/data' } });
    expect(checkManifestFor(copy, redis).refusals).toEqual([]);
    expect(checkManifestFor(copy, { ...redis, volume: { name: 'redis-data', target: '/var/redis' } }).refusals[0]).toMatch(/mounted at \/srv\/data/);
  });

  it('names files by app, accessory and time', () => {
    expect(defaultBackupFileName('crawler', 'redis', new Date('2026-11-30T03:15:00.123Z'))).toBe('crawler-redis-20261130-031500.tar');
  });

  it("writes into .depl/backups/ beside depl.yaml by default (the operator's folder, never a build context), --output against the working folder", () => {
    const at = new Date('2026-11-30T03:15:00.123Z');
    const where = { root: '/home/ana/shop', cwd: '/home/ana/shop/web', app: 'crawler', accessory: 'redis', at };
    expect(backupOutputPath(where)).toBe('/home/ana/shop/.depl/backups/crawler-redis-20261130-031500.tar');
    expect(backupOutputPath({ ...where, output: 'r.tar' })).toBe('/home/ana/shop/web/r.tar');
    expect(backupOutputPath({ ...where, output: '/srv/r.tar' })).toBe('/srv/r.tar');
  });
});

describe('backup planning: users and the helper container', () => {
  it('lists the versions with replicas as users, never the accessories or versions scaled to 0', () => {
    const svc = (name: string, labels: Record<string, string>, replicas = 1) => ({ name, labels, replicas });
    expect(accessoryUsers([
      svc('redis', { 'depl.app': 'c', 'depl.accessory': 'redis' }),
      svc('c-v2-worker', { 'depl.app': 'c', 'depl.version': 'v2' }),
      svc('c-v2-api', { 'depl.app': 'c', 'depl.version': 'v2' }),
      svc('c-v1-api', { 'depl.app': 'c', 'depl.version': 'v1' }, 0),
      svc('c-edge', { 'depl.app': 'c' }),
    ])).toEqual([{ version: 'v2', services: ['c-v2-api', 'c-v2-worker'] }]);
  });

  it('mounts the volume into a root, network-less helper of the accessory image that only empties it when started', () => {
    expect(helperContainerSpec('c', 'db', 'postgres:16', { name: 'pg-data', target: '/var/lib/postgresql/data' })).toEqual({
      Image: 'postgres:16',
      Entrypoint: ['find'],
      Cmd: ['/var/lib/postgresql/data', '-xdev', '-mindepth', '1', '-delete'],
      User: '0',
      Labels: { 'depl.app': 'c', 'depl.accessory': 'db', 'depl.helper': 'backup' },
      NetworkDisabled: true,
      HostConfig: { Mounts: [{ Type: 'volume', Source: 'pg-data', Target: '/var/lib/postgresql/data' }], NetworkMode: 'none' },
    });
  });
});
