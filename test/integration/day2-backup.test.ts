import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { generateMissingSecrets } from '../../src/apply/secrets-store.js';
import { pollUntil } from '../../src/util/poll.js';
import { cliEntry, runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { crawlerDeployment } from '../support/crawler-deployment.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';

/**
 * depl backup / restore of the Redis accessory as the example deploys it (password from a swarm secret,
 * append-only file on), pinned to the second node of a 2-node local cluster, used by one installed version.
 * Keys written, backed up, flushed: restore is refused while the version uses Redis, refused for a damaged
 * file or one of another accessory type (exit 2, Redis untouched), and with --force brings back the same
 * keys and values (and not what was written after the backup). The copy it kept of the replaced data is a
 * volume backup: restored after the version is gone (no --force), it brings that state back. Last, the
 * generic path (backup.kind: volume): the container paused while its whole volume is copied, then resumed;
 * and a restore killed (SIGKILL) with Redis stopped, which the next backup reports and the next restore finishes.
 */
const images = testImages();
const { suffix, busybox } = images;
let tc: TestCluster;
let app: string;
let prefix: string;

const cli = (args: string[]) => runCli(args, { cwd: tc.dir, timeoutMs: 240_000 });

async function redisContainer(): Promise<string> {
  const ps = await execa('docker', ['exec', `${tc.prefix}-node-2`, 'docker', 'ps', '-q', '--filter', 'label=com.docker.swarm.service.name=redis']);
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

async function packEntries(file: string, entries: { name: string; data: Buffer }[]): Promise<void> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, mode: 0o600 }, e.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  await writeFile(file, Buffer.concat(chunks), { mode: 0o600 });
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

    // an unknown accessory, or an existing output, is a usage error
    expect((await cli(['backup', 'nope'])).exitCode).toBe(2);
    const again = await cli(['backup', 'redis', '--output', file]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('already exists');
  });

  it('refuses a restore while a version uses Redis, a damaged file and another type of file: exit 2, nothing changed', async () => {
    await redis('FLUSHALL');
    await redis('SET', `${prefix}after`, 'written after the backup');
    const container = await redisContainer();

    const inUse = await cli(['restore', 'redis', file, '--yes']);
    expect(inUse.exitCode, inUse.stderr).toBe(2);
    expect(inUse.stderr).toContain(`${app}-v1-worker`);
    expect(inUse.stderr).toMatch(/version v1/);
    expect(inUse.stderr).toContain('--force');

    const damaged = path.join(tc.dir, 'damaged.tar');
    const bytes = await readFile(file);
    const at = bytes.indexOf('REDIS0');
    bytes[at + 40] = bytes[at + 40]! ^ 0xff;
    await writeFile(damaged, bytes);
    const bad = await cli(['restore', 'redis', damaged, '--force', '--yes']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/SHA-256/);

    const truncated = path.join(tc.dir, 'truncated.tar');
    const whole = await readFile(file);
    await writeFile(truncated, whole.subarray(0, whole.length - 1536));
    expect((await cli(['restore', 'redis', truncated, '--force', '--yes'])).exitCode).toBe(2);

    const entries = await tarEntries(file);
    const manifest = JSON.parse(entries[0]!.data.toString()) as Record<string, unknown>;
    const other = path.join(tc.dir, 'postgres.tar');
    await packEntries(other, [{ name: 'manifest.json', data: Buffer.from(JSON.stringify({ ...manifest, type: 'postgres', accessory: 'db', image: 'postgres:16' })) }, entries[1]!]);
    const wrongType = await cli(['restore', 'redis', other, '--force', '--yes']);
    expect(wrongType.exitCode).toBe(2);
    expect(wrongType.stderr).toMatch(/postgres accessory's data/);

    // without --yes and without a terminal it asks for confirmation instead of acting
    const unconfirmed = await cli(['restore', 'redis', file, '--force']);
    expect(unconfirmed.exitCode).toBe(2);
    expect(unconfirmed.stderr).toContain('--yes');

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

  it('a backup Redis cannot load fails the restore, and the data it replaced is put back', async () => {
    const entries = await tarEntries(file);
    const garbage = Buffer.concat([Buffer.from('REDIS0010'), randomBytes(300)]);
    const manifest = JSON.parse(entries[0]!.data.toString()) as { payload: Record<string, unknown> };
    const broken = path.join(tc.dir, 'unloadable.tar');
    await packEntries(broken, [
      { name: 'manifest.json', data: Buffer.from(JSON.stringify({ ...manifest, payload: { ...manifest.payload, size: garbage.length, sha256: createHash('sha256').update(garbage).digest('hex') } })) },
      { name: 'dump.rdb', data: garbage },
    ]);
    const run = await cli(['restore', 'redis', broken, '--yes']);
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(1);
    expect(run.stderr).toMatch(/putting back what redis held/);
    expect(await snapshotOfKeys()).toEqual([`${prefix}after string written after the backup`]);
  });

  it('with backup.kind: volume, pauses the container, copies the whole volume and resumes it', async () => {
    const document = parseDocument(await readFile(tc.configFile, 'utf8'));
    document.setIn(['accessories', 'redis', 'backup'], { kind: 'volume' });
    await writeFile(tc.configFile, document.toString());
    const container = await redisContainer();
    const out = path.join(tc.dir, 'volume.tar');
    const run = await cli(['backup', 'redis', '--output', out]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/pausing redis on node-2 to copy its volume redis-data[\s\S]*redis resumed/);
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

  it('a restore killed midway is reported by the next backup and finished by the next restore', async () => {
    const journal = `/var/lib/depl/${app}/accessories/redis.restore.json`;
    const killed = execa('node', [cliEntry, 'restore', 'redis', file, '--force', '--yes'], { cwd: tc.dir, env: { NO_COLOR: '1' }, reject: false, stdin: 'ignore' });
    await pollUntil(async () => {
      const replicas = await tc.cluster.manager.exec(['docker', 'service', 'inspect', '-f', '{{.Spec.Mode.Replicated.Replicas}}', 'redis']);
      return (await tc.cluster.manager.readFile(journal)) !== null && replicas.stdout.trim() === '0' ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 100, onTimeout: () => { throw new Error('the restore never stopped redis'); } });
    killed.kill('SIGKILL');
    await killed;

    const refused = await cli(['backup', 'redis', '--output', path.join(tc.dir, 'after-kill.tar')]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/a restore of redis \(from .*redis\.backup\.tar.*\) did not finish/);

    const finished = await cli(['restore', 'redis', file, '--force', '--yes']);
    expect(finished.exitCode, finished.stderr.slice(-3000)).toBe(0);
    expect(finished.stderr).toMatch(/an earlier restore of redis did not finish/);
    expect(await snapshotOfKeys()).toEqual(written);
    expect(await tc.cluster.manager.readFile(journal)).toBeNull();
  });
});
