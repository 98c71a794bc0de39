import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocateRedisSlot, branchKeyPrefix, branchRedisConfig, redisBranchScript, type RedisRecordSlot, type RedisSlot, type SharedRedis } from '../../src/plan/branch-redis.js';
import type { DeplConfig } from '../../src/config/schema.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/**
 * The shell lines depl's Redis branch jobs run (src/plan/branch-redis.ts) against a real redis-server on loopback
 * with a password: no container, no cluster. The job would run them with the accessory's image; here they run
 * with this machine's redis-cli, the server's address in place of the accessory's name.
 */
let redis: TestRedis;
let client: Redis;
let passwordFile: string;
const PASSWORD = 'pw "for" tests';

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
  await client.connect();
  await client.config('SET', 'requirepass', PASSWORD);
  await client.auth(PASSWORD);
  passwordFile = path.join(redis.dir, 'redis_password');
  await writeFile(passwordFile, PASSWORD);
}, 30_000);

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

function shared(mode: SharedRedis['mode']): SharedRedis {
  return { accessory: 'redis', engine: 'redis', mode, hosts: ['redis'], port: redis.port, passwordFile, databases: 32, mainNumbers: [0] };
}

async function run(mode: SharedRedis['mode'], slot: RedisSlot, action: 'create' | 'drop' | 'dump', requireEmpty = false) {
  const script = redisBranchScript({ shared: shared(mode), slot }, action, { requireEmpty, goneExit: 4, server: { host: '127.0.0.1' } });
  const result = await execa('sh', ['-c', script], { reject: false, stripFinalNewline: false });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

async function inDb<T>(db: number, work: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ port: redis.port, host: '127.0.0.1', password: PASSWORD, db, lazyConnect: true });
  await c.connect();
  try {
    return await work(c);
  } finally {
    c.disconnect();
  }
}

describe('Redis branch slots on a real redis-server', () => {
  it('database: checks, dumps to RESTORE lines redis-cli loads back, flushes only its number', async () => {
    await inDb(0, (c) => c.set('main:key', 'production'));
    const three: RedisSlot = { mode: 'database', number: 3 };
    expect(await run('database', three, 'create', true)).toMatchObject({ exitCode: 0 });
    expect(await run('database', three, 'dump')).toMatchObject({ exitCode: 4, stdout: '' });

    const binary = Buffer.from([0, 1, 0x22, 0x5c, 10, 13, 0xff, 0x80, 0x41]);
    await inDb(3, async (c) => {
      await c.set(Buffer.from('bin "key"\nline'), binary);
      await c.rpush('list', 'a', 'b', 'c');
      await c.hset('hash', { f: 'v', g: 'w' });
      await c.set('expiring', 'x', 'EX', 600);
    });
    // keys no record accounts for: a new branch is refused that number, nothing is touched
    const taken = await run('database', three, 'create', true);
    expect(taken.exitCode).toBe(5);
    expect(taken.stderr).toContain('database 3 on redis holds 4 keys that no depl record accounts for');
    expect(await run('database', three, 'create', false)).toMatchObject({ exitCode: 0 });

    // a number the server does not have (16 databases here) is an error, never database 0
    const missing = await run('database', { mode: 'database', number: 20 }, 'drop');
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/DB index is out of range/);
    expect(await inDb(0, (c) => c.get('main:key'))).toBe('production');

    const dump = await run('database', three, 'dump');
    expect(dump.exitCode, dump.stderr).toBe(0);
    expect(dump.stdout.trim().split('\n')).toHaveLength(4);
    expect(dump.stdout).toMatch(/^RESTORE "list" 0 ".*" REPLACE$/m);
    const file = path.join(redis.dir, 'branch.redis');
    await writeFile(file, dump.stdout);
    const loaded = await execa('sh', ['-c', `redis-cli -h 127.0.0.1 -p ${redis.port} -n 7 < "$1"`, 'sh', file], { env: { REDISCLI_AUTH: PASSWORD }, reject: false });
    expect(loaded.exitCode, String(loaded.stderr)).toBe(0);
    await inDb(7, async (c) => {
      expect(await c.getBuffer(Buffer.from('bin "key"\nline'))).toEqual(binary);
      expect(await c.lrange('list', 0, -1)).toEqual(['a', 'b', 'c']);
      expect(await c.hgetall('hash')).toEqual({ f: 'v', g: 'w' });
      expect(await c.ttl('expiring')).toBeGreaterThan(500);
    });

    const dropped = await run('database', three, 'drop');
    expect(dropped.exitCode, dropped.stderr).toBe(0);
    expect(await inDb(3, (c) => c.dbsize())).toBe(0);
    expect(await inDb(0, (c) => c.get('main:key'))).toBe('production');
    expect(await inDb(7, (c) => c.dbsize())).toBe(4);
  }, 20_000);

  it('prefix: only the branch\'s own keys are checked, dumped and deleted', async () => {
    const slot: RedisSlot = { mode: 'prefix', prefix: 'depl-branch:feat-a:' };
    await inDb(0, async (c) => {
      await c.flushdb();
      await c.set('session:1', 'main');
      await c.set('depl-branch:feat-ab:z', 'another branch');
    });
    expect(await run('prefix', slot, 'create', true)).toMatchObject({ exitCode: 0 });
    await inDb(0, async (c) => {
      await c.set('depl-branch:feat-a:x', '1');
      await c.sadd('depl-branch:feat-a:y', 'm1', 'm2');
    });
    expect((await run('prefix', slot, 'create', true)).exitCode).toBe(5);
    const dump = await run('prefix', slot, 'dump');
    expect(dump.exitCode, dump.stderr).toBe(0);
    const lines = dump.stdout.trim().split('\n');
    expect(lines[0]).toBe('SELECT 0');
    expect(lines.slice(1).map((l) => l.split(' ')[1]).sort()).toEqual(['"depl-branch:feat-a:x"', '"depl-branch:feat-a:y"']);
    expect((await run('prefix', slot, 'drop')).exitCode).toBe(0);
    expect((await inDb(0, (c) => c.keys('*'))).sort()).toEqual(['depl-branch:feat-ab:z', 'session:1']);
    expect(await run('prefix', slot, 'dump')).toMatchObject({ exitCode: 4 });
  }, 20_000);

  it('two branches each get their own database number, see only their own keys, and pruning one (after its backup) leaves the other and the main line', async () => {
    await inDb(0, async (c) => {
      await c.flushall();
      await c.set('jobs:1', 'main');
    });
    const redisShared = shared('database');
    // as buildinst allocates them: the lowest number no record holds, recorded before the next branch asks
    const records: RedisRecordSlot[] = [];
    const slots = new Map<string, RedisSlot>();
    for (const branch of ['feat-a', 'feat-b']) {
      const allocated = allocateRedisSlot(redisShared, branch, `secret-${branch}`, records);
      if (!allocated.ok) throw new Error(allocated.message);
      expect(await run('database', allocated.slot, 'create', true)).toMatchObject({ exitCode: 0 });
      records.push({ accessory: 'redis', version: branch, secret: `secret-${branch}`, redis: allocated.slot });
      slots.set(branch, allocated.slot);
    }
    expect([...slots.values()]).toEqual([{ mode: 'database', number: 1 }, { mode: 'database', number: 2 }]);
    // each branch's services connect with the URL its deploy is given (depl.yaml's, rewritten to its number)
    const config = { services: {}, config: { redis: `redis://:${encodeURIComponent(PASSWORD)}@redis:${redis.port}/0` } } as unknown as DeplConfig;
    const urlOf = (branch: string) => (branchRedisConfig(config, [{ shared: redisShared, slot: slots.get(branch)! }]).config as { redis: string }).redis.replace('@redis:', '@127.0.0.1:');
    expect(urlOf('feat-a')).toMatch(/\/1$/);
    const clients = new Map(['feat-a', 'feat-b'].map((b) => [b, new Redis(urlOf(b), { lazyConnect: true })]));
    try {
      for (const [branch, c] of clients) {
        await c.connect();
        await c.set('jobs:1', branch);
        await c.rpush('queue', `${branch}-1`, `${branch}-2`);
      }
      for (const [branch, c] of clients) {
        expect(await c.get('jobs:1')).toBe(branch);
        expect(await c.lrange('queue', 0, -1)).toEqual([`${branch}-1`, `${branch}-2`]);
        expect(await c.dbsize()).toBe(2);
      }
    } finally {
      for (const c of clients.values()) c.disconnect();
    }
    // prune feat-a: its keys dumped first (the backup), then its number flushed
    const backup = await run('database', slots.get('feat-a')!, 'dump');
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.stdout.trim().split('\n')).toHaveLength(2);
    expect(await run('database', slots.get('feat-a')!, 'drop')).toMatchObject({ exitCode: 0 });
    expect(await inDb(1, (c) => c.dbsize())).toBe(0);
    expect(await inDb(2, (c) => c.get('jobs:1'))).toBe('feat-b');
    expect(await inDb(2, (c) => c.lrange('queue', 0, -1))).toEqual(['feat-b-1', 'feat-b-2']);
    expect(await inDb(0, (c) => c.get('jobs:1'))).toBe('main');
    // the backup brings feat-a's keys back
    const file = path.join(redis.dir, 'feat-a.redis');
    await writeFile(file, backup.stdout);
    const loaded = await execa('sh', ['-c', `redis-cli -h 127.0.0.1 -p ${redis.port} -n 1 < "$1"`, 'sh', file], { env: { REDISCLI_AUTH: PASSWORD }, reject: false });
    expect(loaded.exitCode, String(loaded.stderr)).toBe(0);
    expect(await inDb(1, (c) => c.get('jobs:1'))).toBe('feat-a');
  }, 20_000);

  it('two branches by key prefix: each dump holds only its own keys, and pruning one deletes only its keys', async () => {
    await inDb(0, async (c) => {
      await c.flushdb();
      await c.set('jobs:1', 'main');
    });
    const a: RedisSlot = { mode: 'prefix', prefix: branchKeyPrefix('feat-a') };
    const b: RedisSlot = { mode: 'prefix', prefix: branchKeyPrefix('feat-b') };
    for (const slot of [a, b]) expect(await run('prefix', slot, 'create', true)).toMatchObject({ exitCode: 0 });
    await inDb(0, async (c) => {
      for (const slot of [a, b]) if (slot.mode === 'prefix') await c.set(`${slot.prefix}jobs:1`, slot.prefix);
    });
    const dumpA = await run('prefix', a, 'dump');
    const dumpB = await run('prefix', b, 'dump');
    expect(dumpA.stdout.trim().split('\n').slice(1).map((l) => l.split(' ')[1])).toEqual(['"depl-branch:feat-a:jobs:1"']);
    expect(dumpB.stdout.trim().split('\n').slice(1).map((l) => l.split(' ')[1])).toEqual(['"depl-branch:feat-b:jobs:1"']);
    expect(await run('prefix', a, 'drop')).toMatchObject({ exitCode: 0 });
    expect((await inDb(0, (c) => c.keys('*'))).sort()).toEqual(['depl-branch:feat-b:jobs:1', 'jobs:1']);
  }, 20_000);
});
