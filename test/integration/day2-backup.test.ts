import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { generateMissingSecrets } from '../../src/apply/secrets-store.js';
import { runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { crawlerDeployment } from '../support/crawler-deployment.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

/**
 * depl backup / restore of the Redis accessory as the example deploys it (password from a swarm secret,
 * append-only file on), pinned to the second node of a 2-node local cluster, used by one installed version:
 * what needs a real Redis and real volumes. Keys written, backed up, changed; the dry run plans on what the
 * cluster really has and changes nothing; with --force the restore brings back the same keys and values (and
 * not what was written after the backup). The copy it kept of the replaced data is a volume backup: restored
 * after the version is gone (no --force), it brings that state back. Last, the generic path (backup.kind:
 * volume): the container paused while its whole volume is copied, then resumed. And a Redis on the unscoped
 * volume an earlier depl made is moved into the app-scoped one by the next buildinst (a real copy job on its node).
 *
 * The refusals (bad input: test/unit/day2/restore-command.test.ts; a version using the accessory), the undo of
 * a failed restore and the repair after a killed one are proven on the fake cluster at every step
 * (test/unit/day2/backup-fake.test.ts, test/unit/plan/backup-restore-plan.test.ts).
 */
const images = testImages();
const { suffix, busybox } = images;
let tc: TestCluster;
let app: string;
let prefix: string;

const cli = (args: string[]) => runCli(args, { cwd: tc.dir, timeoutMs: 240_000 });

async function redisContainer(): Promise<string> {
  const ps = await execa('docker', ['exec', `${tc.prefix}-node-2`, 'docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-redis`]);
  const id = ps.stdout.trim();
  expect(id, 'the redis task runs on node-2').not.toBe('');
  return id;
}

/** redis-cli in the accessory's container, with the password from its swarm secret. */
async function redis(...args: string[]): Promise<string> {
  const result = await execa('docker', ['exec', `${tc.prefix}-node-2`, 'docker', 'exec', await redisContainer(), 'sh', '-c',
    'REDISCLI_AUTH=$(cat /run/secrets/redis_password) exec redis-cli "$@"', 'redis-cli', ...args]);
  return result.stdout.trim();
}

/** Every test key with its type and value, read in one call (a Lua script, so a single round trip). */
async function snapshotOfKeys(): Promise<string[]> {
  const script = `local out = {}
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do
  local t = redis.call('TYPE', k).ok
  local v
  if t == 'hash' then v = table.concat(redis.call('HGETALL', k), ',')
  elseif t == 'list' then v = table.concat(redis.call('LRANGE', k, 0, -1), ',')
  else v = redis.call('GET', k) end
  table.insert(out, k .. ' ' .. t .. ' ' .. v)
end
table.sort(out)
return out`;
  const text = await redis('EVAL', script, '0', prefix);
  return text === '' ? [] : text.split('\n');
}

async function tarEntries(file: string): Promise<{ name: string; data: Buffer }[]> {
  const entries: { name: string; data: Buffer }[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => { entries.push({ name: header.name, data: Buffer.concat(chunks) }); next(); });
  });
  const done = new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(await readFile(file));
  await done;
  return entries;
}

beforeAll(async () => {
  prefix = `bk:${suffix}:`;
  const name = `bk${suffix.slice(0, 4)}`;
  const example = await crawlerDeployment(name);
  const redisAccessory = { ...(example.accessories as Record<string, Record<string, unknown>>).redis, node: 'node-2' };
  tc = await startClusterWithImages(images, ['busybox'], {
    nodes: 2,
    app: name,
    config: {
      images: example.images,
      services: { worker: { image: busybox, command: ['sh', '-c', 'exec sleep 1000000'], secrets: ['redis_password'], stopGracePeriod: '1s' } },
      accessories: { redis: redisAccessory },
      secrets: ['redis_password'],
    },
  });
  app = tc.loaded.config.app;
  await generateMissingSecrets(tc.dir, ['redis_password'], new Date());
  const install = await cli(['buildinst', '--version', 'v1']);
  expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

describe('depl backup and restore of the Redis accessory', () => {
  let file: string;
  let written: string[];

  it('backs up a consistent snapshot with a manifest and a checksum', async () => {
    await redis('SET', `${prefix}plain`, 'hello world');
    await redis('HSET', `${prefix}hash`, 'a', '1', 'b', 'two');
    await redis('RPUSH', `${prefix}list`, 'x', 'y', 'z');
    await redis('EVAL', "for i = 1, 200 do redis.call('SET', ARGV[1] .. 'n:' .. i, 'value-' .. i) end", '0', prefix);
    written = await snapshotOfKeys();
    expect(written).toHaveLength(203);
    expect(written).toContain(`${prefix}hash hash a,1,b,two`);

    file = path.join(tc.dir, 'redis.backup.tar');
    const run = await cli(['backup', 'redis', '--output', file, '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(((await stat(file)).mode & 0o777).toString(8)).toBe('600');
    const entries = await tarEntries(file);
    expect(entries.map((e) => e.name)).toEqual(['manifest.json', 'dump.rdb']);
    const manifest = JSON.parse(entries[0]!.data.toString()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(manifest).toMatchObject({ format: 'depl-backup', app, accessory: 'redis', type: 'redis', node: 'node-2', volume: { name: 'redis-data', target: '/data' } });
    expect(manifest.redis).toMatchObject({ aof: true, keys: 203 });
    expect(manifest.payload.sha256).toBe(createHash('sha256').update(entries[1]!.data).digest('hex'));
    expect(entries[1]!.data.subarray(0, 5).toString()).toBe('REDIS');
    expect(JSON.parse(run.stdout)).toMatchObject({ file, manifest: { payload: { sha256: manifest.payload.sha256 } } });
  });

  it('--dry-run plans from what the cluster has (Redis running with AOF, a version using it) and changes nothing', async () => {
    await redis('FLUSHALL');
    await redis('SET', `${prefix}after`, 'written after the backup');
    const container = await redisContainer();
    const dry = await cli(['restore', 'redis', file, '--force', '--dry-run', '--json']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as { notes: string[]; steps: { kind: string; load?: { entries: { name: string }[] } }[] };
    expect(plan.notes).toEqual([`--force: restoring under version(s) v1 (${app}-v1-worker)`]);
    expect(plan.steps.map((s) => s.kind)).toEqual(['record-restore', 'stop-accessory', 'copy-volume', 'replace-volume', 'start-accessory', 'verify-redis', 'clear-record']);
    expect(plan.steps[3]!.load!.entries.map((e) => e.name)).toEqual(['dump.rdb', 'appendonlydir', 'appendonlydir/appendonly.aof.1.base.rdb', 'appendonlydir/appendonly.aof.manifest']);
    expect(await redisContainer()).toBe(container);
    expect(await snapshotOfKeys()).toEqual([`${prefix}after string written after the backup`]);
  });

  let safetyCopy: string;
  it('with --force, restores the same keys and values (and only those), from the append-only file Redis loads', async () => {
    const run = await cli(['restore', 'redis', file, '--force', '--yes', '--json']);
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    const result = JSON.parse(run.stdout) as { restored: boolean; keys: number; safetyCopy: string };
    expect(result).toMatchObject({ restored: true, keys: 203 });
    expect(await snapshotOfKeys()).toEqual(written);
    safetyCopy = result.safetyCopy;
    expect(safetyCopy.startsWith(path.join(tc.dir, '.depl', 'backups'))).toBe(true);
  });

  it('once no version uses Redis, restores without --force: the copy of the replaced data is a volume backup', async () => {
    await tc.cluster.manager.exec(['docker', 'service', 'scale', '--detach', `${app}-v1-worker=0`]);
    const run = await cli(['restore', 'redis', safetyCopy, '--yes']);
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    expect(await snapshotOfKeys()).toEqual([`${prefix}after string written after the backup`]);
    expect(((await stat(safetyCopy)).mode & 0o777).toString(8)).toBe('600');
  });

  it('with backup.kind: volume, pauses the container, copies the whole volume and resumes it', async () => {
    const document = parseDocument(await readFile(tc.configFile, 'utf8'));
    document.setIn(['accessories', 'redis', 'backup'], { kind: 'volume' });
    await writeFile(tc.configFile, document.toString());
    const container = await redisContainer();
    const out = path.join(tc.dir, 'volume.tar');
    const run = await cli(['backup', 'redis', '--output', out]);
    expect(run.exitCode, run.stderr).toBe(0);
    // the volume on the cluster is app-scoped (<app>-redis-data); depl.yaml names it redis-data
    expect(run.stderr).toMatch(new RegExp(`pause redis on node-2 to copy its volume ${app}-redis-data[\\s\\S]*resume redis on node-2`));
    const entries = await tarEntries(out);
    expect(entries.map((e) => e.name)).toEqual(['manifest.json', 'volume.tar']);
    expect(JSON.parse(entries[0]!.data.toString())).toMatchObject({ type: 'redis', payload: { kind: 'volume-tar' } });
    const copy = path.join(tc.dir, 'volume-inner.tar');
    await writeFile(copy, entries[1]!.data);
    const names = (await tarEntries(copy)).map((e) => e.name.replace(/\/$/, ''));
    expect(names).toEqual(expect.arrayContaining(['data', 'data/dump.rdb', 'data/appendonlydir/appendonly.aof.manifest']));
    const paused = await execa('docker', ['exec', `${tc.prefix}-node-2`, 'docker', 'inspect', '-f', '{{.State.Paused}} {{.State.Running}}', container]);
    expect(paused.stdout.trim()).toBe('false true');
    expect(await snapshotOfKeys()).toEqual([`${prefix}after string written after the backup`]);
  });
});

describe('a Redis an earlier depl left on the unscoped volume redis-data', () => {
  it('is moved into <app>-redis-data by the next buildinst: a job on its node copies and checks it, its keys are kept, the old volume goes', async () => {
    const onNode2 = (args: string[]) => execa('docker', ['exec', `${tc.prefix}-node-2`, 'docker', ...args]);
    const before = await snapshotOfKeys();
    expect(before.length).toBeGreaterThan(0);
    // as an earlier depl left it: the accessory's data on redis-data (a copy of the app-scoped one, which then goes;
    // the folder itself keeps its owner and mode, which a copy of its contents does not carry and Redis needs).
    // --mount-add alone replaces the mount at /data: with --mount-rm /data beside it the CLI drops both
    await tc.cluster.manager.exec(['docker', 'service', 'scale', '--detach=false', `${app}-redis=0`]);
    await onNode2(['run', '--rm', '-v', `${app}-redis-data:/from`, '-v', 'redis-data:/to', busybox, 'sh', '-c', 'cp -a /from/. /to/ && chown "$(stat -c %u:%g /from)" /to && chmod "$(stat -c %a /from)" /to']);
    await tc.cluster.manager.exec(['docker', 'service', 'update', '--detach=false', '--mount-add', 'type=volume,source=redis-data,target=/data', '--replicas', '1', `${app}-redis`]);
    await onNode2(['container', 'prune', '-f']);
    await onNode2(['volume', 'rm', `${app}-redis-data`]);
    expect(await snapshotOfKeys()).toEqual(before);

    const install = await cli(['buildinst', '--version', 'v2']);
    expect(install.exitCode, install.stderr.slice(-3000)).toBe(0);
    expect(install.stderr).toMatch(new RegExp(`redis-data -> ${app}-redis-data: copied and verified: \\d+ entries`));
    expect(await snapshotOfKeys()).toEqual(before);
    const mounts = await tc.cluster.manager.exec(['docker', 'service', 'inspect', '-f', '{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Source}} {{end}}', `${app}-redis`]);
    expect(mounts.stdout.trim()).toBe(`${app}-redis-data`);
    const volumes = (await onNode2(['volume', 'ls', '-q'])).stdout.split('\n');
    expect(volumes).toContain(`${app}-redis-data`);
    expect(volumes).not.toContain('redis-data');
  });
});
