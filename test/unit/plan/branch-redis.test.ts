import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { recordFromLabels, redisRecordLabels } from '../../../src/plan/branch-database.js';
import {
  allocateRedisSlot, branchRedisConfig, globEscape, keyPrefixEnv, redisBranchScript, redisDatabaseCount, sharedRedisOf, unsafeSlot, type RedisRecordSlot, type SharedRedis,
} from '../../../src/plan/branch-redis.js';
import { quote } from '../../../src/plan/shell.js';

/** Redis branch slots as data (src/plan/branch-redis.ts): which number a branch gets, what its services see, what its jobs run. */
const yaml = (accessory: string, extra = '') => `
app: shop
domain: shop.test
services:
  api: { image: "shop:1", env: { REDIS_URL: "redis://redis:6379" ${extra} }, secrets: [redis_password] }
accessories:
  redis:
    image: redis:7
    secrets: [redis_password]
    ${accessory}
config:
  cache: { url: "redis://app@redis:6379/0?timeout=5" }
  keyPrefix: "crawler:"
  other: "redis://elsewhere:6379"
secrets: [redis_password]
`;
const shared = (accessory = 'perBranch: database', extra = ''): SharedRedis => {
  const config = parseConfig(yaml(accessory, extra));
  const checked = sharedRedisOf('redis', config.accessories.redis!, config);
  if (!checked.ok) throw new Error(checked.message);
  return checked.shared;
};
const record = (version: string, n: number, accessory = 'redis'): RedisRecordSlot => ({ accessory, version, secret: `shop-${accessory}-db-${version}`, redis: { mode: 'database', number: n } });

describe('a Redis accessory shared by branches', () => {
  it('reads the server from depl.yaml: its port, password file, database count and the main line\'s number', () => {
    expect(shared()).toEqual({ accessory: 'redis', engine: 'redis', mode: 'database', hosts: ['redis'], port: 6379, passwordFile: '/run/secrets/redis_password', databases: 16, mainNumbers: [0] });
    expect(redisDatabaseCount(['sh', '-c', 'exec redis-server - --appendonly yes --databases 64 <<EOF'])).toBe(64);
    expect(redisDatabaseCount(['redis-server', '--databases=4'])).toBe(4);
    expect(redisDatabaseCount(['redis-server', '--databases-x', '4'])).toBe(16);
    // the main line on /2 keeps 2 (and a branch never gets it)
    const config = parseConfig(yaml('perBranch: database').replace('redis://redis:6379"', 'redis://redis:6379/2"').replace("@redis:6379/0", "@redis:6379/2"));
    expect(sharedRedisOf('redis', config.accessories.redis!, config)).toMatchObject({ ok: true, shared: { mainNumbers: [2] } });
  });

  it('refuses a main line on two numbers (one per branch cannot stand for both), and a server with one database', () => {
    const config = parseConfig(yaml('perBranch: database').replace('redis://redis:6379"', 'redis://redis:6379/1"'));
    expect(sharedRedisOf('redis', config.accessories.redis!, config)).toEqual({ ok: false, message: expect.stringContaining('name 0 and 1; use perBranch: prefix') });
    const one = parseConfig(yaml('perBranch: database\n    command: [redis-server, --databases, "1"]'));
    expect(sharedRedisOf('redis', one.accessories.redis!, one)).toMatchObject({ ok: false, message: expect.stringContaining('no number left') });
  });

  it('gives a branch the lowest number no record holds, the same one again to its own record, and never the main line\'s', () => {
    const s = shared();
    expect(allocateRedisSlot(s, 'feat-a', 'sec-a', [])).toEqual({ ok: true, slot: { mode: 'database', number: 1 }, recorded: false });
    const records = [record('feat-b', 1), record('feat-c', 3), record('elsewhere', 2, 'cache')];
    expect(allocateRedisSlot(s, 'feat-a', 'sec-a', records)).toEqual({ ok: true, slot: { mode: 'database', number: 2 }, recorded: false });
    expect(allocateRedisSlot(s, 'feat-c', 'shop-redis-db-feat-c', records)).toEqual({ ok: true, slot: { mode: 'database', number: 3 }, recorded: true });
    expect(allocateRedisSlot({ ...s, mainNumbers: [1] }, 'feat-a', 'sec-a', [])).toMatchObject({ slot: { number: 2 } });
  });

  it('refuses a branch when every number is taken, saying which branches hold them and how to free one', () => {
    const s = { ...shared(), databases: 3 };
    const result = allocateRedisSlot(s, 'feat-z', 'sec-z', [record('feat-b', 1), record('feat-c', 2)]);
    expect(result).toEqual({
      ok: false,
      message: 'redis has no free database number for branch feat-z: its 3 databases are the main line\'s (0) and the branches\' feat-b (1), feat-c (2)',
      hint: expect.stringContaining('depl prune --branches'),
    });
  });

  it('a prefix branch gets depl-branch:<label>: whatever the records', () => {
    expect(allocateRedisSlot(shared('perBranch: prefix'), 'feat-a', 'sec-a', [record('feat-b', 1)])).toEqual({ ok: true, slot: { mode: 'prefix', prefix: 'depl-branch:feat-a:' }, recorded: false });
  });

  it('records the slot in labels and reads it back; labels naming no slot are no record', () => {
    const slot: RedisRecordSlot = { accessory: 'redis', version: 'feat-a', secret: 'shop-redis-db-1', redis: { mode: 'database', number: 4 } };
    const labels = redisRecordLabels('shop', slot, 'feat/a');
    expect(labels).toMatchObject({ 'depl.branch': 'feat/a', 'depl.branch-database': 'redis', 'depl.branch-database.redis': 'database', 'depl.branch-database.name': '4' });
    expect(recordFromLabels('shop-redis-db-1', labels)).toEqual(slot);
    expect(recordFromLabels('x', { ...labels, 'depl.branch-database.name': 'four' })).toBeNull();
    const prefix: RedisRecordSlot = { ...slot, redis: { mode: 'prefix', prefix: 'depl-branch:feat-a:' } };
    expect(recordFromLabels('shop-redis-db-1', redisRecordLabels('shop', prefix))).toEqual(prefix);
  });
});

describe('what a Redis branch\'s services see', () => {
  it('database: every URL to the accessory names the branch\'s number, its password and options kept; other hosts untouched', () => {
    const config = parseConfig(yaml('perBranch: database'));
    const out = branchRedisConfig(config, [{ shared: shared(), slot: { mode: 'database', number: 5 } }]);
    expect(out.services.api!.env).toEqual({ REDIS_URL: 'redis://redis:6379/5' });
    expect(out.config).toEqual({ cache: { url: 'redis://app@redis:6379/5?timeout=5' }, keyPrefix: 'crawler:', other: 'redis://elsewhere:6379' });
  });

  it('prefix: DEPL_<ACCESSORY>_KEY_PREFIX in every service, and a key-prefix value gets the branch\'s prefix before it', () => {
    const config = parseConfig(yaml('perBranch: prefix', ', REDIS_KEY_PREFIX: "app:"'));
    const out = branchRedisConfig(config, [{ shared: shared('perBranch: prefix'), slot: { mode: 'prefix', prefix: 'depl-branch:feat-a:' } }]);
    expect(keyPrefixEnv('my-cache')).toBe('DEPL_MY_CACHE_KEY_PREFIX');
    expect(out.services.api!.env).toEqual({ REDIS_URL: 'redis://redis:6379', REDIS_KEY_PREFIX: 'depl-branch:feat-a:app:', DEPL_REDIS_KEY_PREFIX: 'depl-branch:feat-a:' });
    expect(out.config).toMatchObject({ keyPrefix: 'depl-branch:feat-a:crawler:', cache: { url: 'redis://app@redis:6379/0?timeout=5' } });
  });
});

describe('the Redis branch jobs\' shell lines', () => {
  const s = shared();
  it('select the number inside every script (redis-cli -n would fall back to database 0) and check each answer', () => {
    const create = redisBranchScript({ shared: s, slot: { mode: 'database', number: 3 } }, 'create', { requireEmpty: true, goneExit: 4 });
    expect(create).toContain('REDISCLI_AUTH="$(cat /run/secrets/redis_password)"');
    expect(create).not.toMatch(/ -n /);
    expect(create).toContain(quote("redis.call('SELECT', ARGV[1]) return redis.call('DBSIZE')"));
    expect(create).toContain('no depl record accounts for');
    expect(redisBranchScript({ shared: s, slot: { mode: 'database', number: 3 } }, 'create', { goneExit: 4 })).not.toContain('no depl record accounts for');
    expect(redisBranchScript({ shared: s, slot: { mode: 'database', number: 3 } }, 'drop', { goneExit: 4 })).toContain(quote("redis.call('SELECT', ARGV[1]) redis.call('FLUSHDB') return 'flushed'"));
    expect(redisBranchScript({ shared: s, slot: { mode: 'database', number: 3 } }, 'dump', { goneExit: 4 })).toContain('exit 4');
  });

  it('never builds a script for the main line\'s number, one outside the server\'s, or a prefix depl does not give', () => {
    expect(unsafeSlot(s, { mode: 'database', number: 0 })).toBe('database 0 is the main line\'s');
    expect(unsafeSlot(s, { mode: 'database', number: 16 })).toBe('database 16 is outside 1..15');
    expect(unsafeSlot(s, { mode: 'prefix', prefix: '' })).toContain('not one depl gives');
    expect(unsafeSlot(s, { mode: 'prefix', prefix: 'depl-branch:' })).toContain('not one depl gives');
    expect(() => redisBranchScript({ shared: s, slot: { mode: 'database', number: 0 } }, 'drop', { goneExit: 4 })).toThrow(/main line/);
  });

  it('a prefix matches only itself in SCAN MATCH', () => {
    expect(globEscape('depl-branch:a*b?[c]\\:')).toBe('depl-branch:a\\*b\\?\\[c\\]\\\\:');
    expect(redisBranchScript({ shared: { ...s, mode: 'prefix' }, slot: { mode: 'prefix', prefix: 'depl-branch:feat-a:' } }, 'drop', { goneExit: 4 })).toContain("'depl-branch:feat-a:*'");
  });
});
