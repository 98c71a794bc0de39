import type { AccessoryConfig, DeplConfig } from '../config/schema.js';
import { accessoryType, redisPasswordSecret } from './backup.js';
import { quote as shellQuote } from './shell.js';

/**
 * Branch databases on Redis (README: Branch databases): an accessory with `perBranch: database` gives every
 * branch deploy a logical database number of its own (1..databases-1; the main line keeps the number its URLs
 * name, 0 by default), `perBranch: prefix` a key prefix instead. Everything here is data: which number a branch
 * gets (the lowest one no record holds), the shell lines a one-off job runs with the accessory's image (its
 * redis-cli), and how the branch's services are pointed at their number or prefix.
 *
 * Every command goes through EVAL with a SELECT inside the script: redis-cli's `-n N` runs the command on
 * database 0 when N is out of range (it only prints a warning), which for FLUSHDB would flush the main line's.
 */

export type RedisBranchMode = 'database' | 'prefix';

/** Redis, or valkey (the same protocol and redis-cli): by depl.yaml's image or `backup.kind: redis`. */
export function isRedisAccessory(accessory: Pick<AccessoryConfig, 'image' | 'backup'>): boolean {
  const type = accessoryType(accessory);
  return type === 'redis' || type === 'valkey';
}

/** Redis's own default for `databases`. */
export const REDIS_DEFAULT_DATABASES = 16;

/** The server's number of databases as its command sets it (`--databases 64`, also inside an `sh -c` line), else Redis's default. */
export function redisDatabaseCount(command: readonly string[] | undefined): number {
  const match = /(?:^|\s)--databases(?:\s+|=)(\d+)(?:\s|$)/.exec((command ?? []).join(' '));
  return match === null ? REDIS_DEFAULT_DATABASES : Number(match[1]);
}

/** The main line's Redis accessory as a branch sees it. */
export interface SharedRedis {
  accessory: string;
  engine: 'redis';
  mode: RedisBranchMode;
  /** The names the app reaches it by: the accessory's and its aliases (URLs to any of them are rewritten). */
  hosts: string[];
  port: number;
  /** Where the job finds Redis's password (requirepass), null without one. */
  passwordFile: string | null;
  databases: number;
  /** The numbers the main line's URLs name (0 when they name none): never given to a branch, never flushed. */
  mainNumbers: number[];
}

export type SharedRedisCheck = { ok: true; shared: SharedRedis } | { ok: false; message: string };

const REDIS_URL = /^(rediss?:\/\/)([^@/?#]*@)?([^/?#:@]+)(:\d+)?(\/[^?#]*)?(.*)$/i;

/** The values of depl.yaml a service reads (its env and the config: document's strings), with their keys. */
function eachValue(config: Pick<DeplConfig, 'services' | 'config'>, visit: (key: string, value: string) => void): void {
  for (const svc of Object.values(config.services)) for (const [key, value] of Object.entries(svc.env)) visit(key, value);
  const walk = (value: unknown, key: string): void => {
    if (typeof value === 'string') visit(key, value);
    else if (Array.isArray(value)) value.forEach((item) => walk(item, key));
    else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(config.config, '');
}

/** The database number a URL to one of `hosts` names (0 without a path), or null for any other value. */
function urlNumber(value: string, hosts: readonly string[]): number | null {
  const match = REDIS_URL.exec(value);
  if (match === null || !hosts.includes(match[3]!)) return null;
  const path = (match[5] ?? '').replace(/^\//, '');
  return path === '' ? 0 : /^\d+$/.test(path) ? Number(path) : null;
}

export function sharedRedisOf(name: string, accessory: Pick<AccessoryConfig, 'image' | 'backup' | 'aliases' | 'port' | 'command' | 'secrets' | 'secretPaths' | 'perBranch'>, config: Pick<DeplConfig, 'services' | 'config'>): SharedRedisCheck {
  if (!isRedisAccessory(accessory)) return { ok: false, message: `perBranch: prefix needs a redis or valkey image (${accessory.image} is neither)` };
  const mode = accessory.perBranch ?? 'database';
  const hosts = [name, ...accessory.aliases];
  const numbers = new Set<number>();
  eachValue(config, (_key, value) => {
    const n = urlNumber(value, hosts);
    if (n !== null) numbers.add(n);
  });
  const mainNumbers = numbers.size === 0 ? [0] : [...numbers].sort((a, b) => a - b);
  if (mode === 'database' && mainNumbers.length > 1) {
    return { ok: false, message: `perBranch: database gives a branch one database number, but the main line's URLs to ${name} name ${mainNumbers.join(' and ')}; use perBranch: prefix` };
  }
  const databases = redisDatabaseCount(accessory.command);
  if (mode === 'database' && databases < 2) return { ok: false, message: `${name} runs with --databases ${databases}: there is no number left for a branch (use perBranch: prefix)` };
  const secret = redisPasswordSecret(accessory);
  const mounted = secret === null ? null : (accessory.secretPaths[secret] ?? secret);
  return {
    ok: true,
    shared: {
      accessory: name, engine: 'redis', mode, hosts, port: accessory.port ?? 6379, databases, mainNumbers,
      passwordFile: mounted === null ? null : mounted.startsWith('/') ? mounted : `/run/secrets/${mounted}`,
    },
  };
}

/** A branch's part of a Redis accessory: a database number, or a key prefix. */
export type RedisSlot = { mode: 'database'; number: number } | { mode: 'prefix'; prefix: string };

/** How a slot is written in a record's label and shown: `3`, or the prefix itself. */
export function slotText(slot: RedisSlot): string {
  return slot.mode === 'database' ? String(slot.number) : slot.prefix;
}

export function slotFromText(mode: string, text: string): RedisSlot | null {
  if (mode === 'database') return /^\d+$/.test(text) ? { mode, number: Number(text) } : null;
  if (mode === 'prefix') return text.length > 0 ? { mode, prefix: text } : null;
  return null;
}

export function describeSlot(shared: Pick<SharedRedis, 'accessory'>, slot: RedisSlot): string {
  return slot.mode === 'database' ? `database ${slot.number} on ${shared.accessory}` : `keys ${slot.prefix}* on ${shared.accessory}`;
}

/** Every branch key prefix starts with this, so no main-line key (`session:...`) is ever a branch's. */
export const BRANCH_PREFIX_ROOT = 'depl-branch:';

export function branchKeyPrefix(version: string): string {
  return `${BRANCH_PREFIX_ROOT}${version}:`;
}

/**
 * Whether a slot (from a record, whose labels anyone with swarm access can edit) is one depl may flush: a number
 * that is no main-line number and within the server's, or a prefix under BRANCH_PREFIX_ROOT. Null: it may.
 */
export function unsafeSlot(shared: SharedRedis, slot: RedisSlot): string | null {
  if (slot.mode === 'database') {
    if (shared.mainNumbers.includes(slot.number)) return `database ${slot.number} is the main line's`;
    if (slot.number < 1 || slot.number >= shared.databases) return `database ${slot.number} is outside 1..${shared.databases - 1}`;
    return null;
  }
  return slot.prefix.startsWith(BRANCH_PREFIX_ROOT) && slot.prefix.length > BRANCH_PREFIX_ROOT.length ? null : `prefix "${slot.prefix}" is not one depl gives a branch (${BRANCH_PREFIX_ROOT}<label>:)`;
}

/** A branch's slot as recorded on the swarm (src/plan/branch-database.ts: its record secret's labels). */
export interface RedisRecordSlot {
  accessory: string;
  version: string;
  secret: string;
  redis: RedisSlot;
}

export type RedisAllocation = { ok: true; slot: RedisSlot; recorded: boolean } | { ok: false; message: string; hint: string };

/**
 * The branch's slot: the one its record holds (a redeploy, or a run killed after recording it), else a prefix
 * from its label, or the lowest database number that is neither the main line's nor another branch's record.
 * The choice depends only on the records, so a rerun makes the same one; the record is what makes it taken.
 */
export function allocateRedisSlot(shared: SharedRedis, version: string, secret: string, records: readonly RedisRecordSlot[]): RedisAllocation {
  const own = records.find((r) => r.secret === secret && r.accessory === shared.accessory && r.redis.mode === shared.mode);
  if (own !== undefined) return { ok: true, slot: own.redis, recorded: true };
  if (shared.mode === 'prefix') return { ok: true, slot: { mode: 'prefix', prefix: branchKeyPrefix(version) }, recorded: false };
  const taken = new Set([...shared.mainNumbers, ...records.filter((r) => r.accessory === shared.accessory && r.redis.mode === 'database').map((r) => (r.redis as { number: number }).number)]);
  for (let n = 1; n < shared.databases; n++) if (!taken.has(n)) return { ok: true, slot: { mode: 'database', number: n }, recorded: false };
  const holders = records.filter((r) => r.accessory === shared.accessory && r.redis.mode === 'database').map((r) => `${r.version} (${slotText(r.redis)})`);
  return {
    ok: false,
    message: `${shared.accessory} has no free database number for branch ${version}: its ${shared.databases} databases are the main line's (${shared.mainNumbers.join(', ')}) and the branches' ${holders.join(', ')}`,
    hint: `Remove deploys of deleted branches (depl prune --branches <the branches that exist>), raise the server's count (--databases ${shared.databases * 2} in ${shared.accessory}'s command), or use perBranch: prefix.`,
  };
}

// ---- the job's shell lines ----

/** The create job's exit code when the slot already holds keys no record accounts for. */
export const REDIS_NOT_EMPTY_EXIT = 5;

/** Escapes a SCAN MATCH glob's special characters, so a prefix matches only itself. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Lua run by EVAL (Redis 5+). ARGV[1]: the database; each script SELECTs it first, so a number the server does
 * not have is an error, never database 0. SCAN in batches keeps each call short (no KEYS, no long block).
 */
const LUA = {
  size: "redis.call('SELECT', ARGV[1]) return redis.call('DBSIZE')",
  /** ARGV[2] cursor, ARGV[3] pattern: {next cursor, number of keys matched in this batch}. */
  count: "redis.call('SELECT', ARGV[1]) local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', 1000) return {r[1], #r[2]}",
  flush: "redis.call('SELECT', ARGV[1]) redis.call('FLUSHDB') return 'flushed'",
  /** ARGV[2] cursor, ARGV[3] pattern: the next cursor, then the batch's keys deleted. */
  unlink: "redis.call('SELECT', ARGV[1]) local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', 500) for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end return r[1]",
  /**
   * ARGV[2] cursor, ARGV[3] pattern: the next cursor, then one line per key that redis-cli reads back as a
   * command: `RESTORE "<key>" <ttl ms> "<DUMP payload>" REPLACE`, every byte outside printable ASCII (and `"`,
   * `\`) written as \xNN, which redis-cli's quoted strings understand.
   */
  dump: [
    "redis.call('SELECT', ARGV[1])",
    "local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', 500)",
    'local out = { r[1] }',
    "local function q(s) return '\"' .. (string.gsub(s, '[%z%c\"\\\\\\128-\\255]', function(c) return string.format('\\\\x%02x', string.byte(c)) end)) .. '\"' end",
    'for _, k in ipairs(r[2]) do',
    "  local d = redis.call('DUMP', k)",
    "  if d then local t = redis.call('PTTL', k) if t < 0 then t = 0 end out[#out + 1] = 'RESTORE ' .. q(k) .. ' ' .. t .. ' ' .. q(d) .. ' REPLACE' end",
    'end',
    'return out',
  ].join('\n'),
} as const;

export type RedisBranchAction = 'create' | 'drop' | 'dump';

/**
 * The shell script a job runs with the accessory's image: `create` (waits for the server, checks that the slot
 * exists and, with `requireEmpty`, that it holds no keys), `drop` (FLUSHDB of the number, or every key under the
 * prefix), `dump` (every key of the slot as RESTORE lines on stdout, prune's backup; exits DATABASE_GONE_EXIT
 * when there is none). `goneExit`: that code (src/plan/branch-database.ts).
 */
export function redisBranchScript(
  branch: { shared: SharedRedis; slot: RedisSlot }, action: RedisBranchAction,
  options: { requireEmpty?: boolean; goneExit: number; server?: { host: string; port?: number } },
): string {
  const { shared, slot } = branch;
  const unsafe = unsafeSlot(shared, slot);
  if (unsafe !== null) throw new Error(`redisBranchScript: ${unsafe}`);
  const host = options.server?.host ?? shared.accessory;
  const port = options.server?.port ?? shared.port;
  // prefix: the branch's keys are in the databases the main line's URLs name (its services keep those URLs)
  const dbs = slot.mode === 'database' ? [slot.number] : shared.mainNumbers;
  const pattern = slot.mode === 'database' ? '*' : `${globEscape(slot.prefix)}*`;
  const what = describeSlot(shared, slot);
  const lines = ['set -eu'];
  if (shared.passwordFile !== null) lines.push(`REDISCLI_AUTH="$(cat ${shellQuote(shared.passwordFile)})"`, 'export REDISCLI_AUTH');
  lines.push(
    `cli() { redis-cli -h ${shellQuote(host)} -p ${port} --raw "$@"; }`,
    // redis-cli exits 0 on an error reply: every answer is checked for the shape it must have
    'fail() { printf \'%s\\n\' "$1" >&2; exit 1; }',
    'numeric() { case "$1" in ""|*[!0-9]*) return 1;; esac; }',
  );
  if (action === 'create') {
    // the accessory's task may run before it takes connections (a first start, an append-only file loading)
    lines.push('i=0; until [ "$(cli PING 2>/dev/null)" = PONG ]; do i=$((i+1)); [ "$i" -lt 60 ] || break; sleep 1; done');
    if (slot.mode === 'database') {
      lines.push(
        `size="$(cli EVAL ${shellQuote(LUA.size)} 0 ${slot.number} 2>&1)" || true`,
        `numeric "$size" || fail "${what} cannot be used: $size (the server may have fewer than ${slot.number + 1} databases: raise --databases in its command)"`,
      );
      if (options.requireEmpty) {
        lines.push(`[ "$size" = 0 ] || { echo "${what} holds $size keys that no depl record accounts for: empty it (FLUSHDB in database ${slot.number}) if nothing uses it, then run buildinst again" >&2; exit ${REDIS_NOT_EMPTY_EXIT}; }`);
      }
    } else if (options.requireEmpty) {
      lines.push(
        `for db in ${dbs.join(' ')}; do`,
        '  cursor=0',
        '  while :; do',
        `    out="$(cli EVAL ${shellQuote(LUA.count)} 0 "$db" "$cursor" ${shellQuote(pattern)} 2>&1)" || true`,
        '    cursor="$(printf \'%s\\n\' "$out" | sed -n 1p)"; found="$(printf \'%s\\n\' "$out" | sed -n 2p)"',
        '    numeric "$cursor" && numeric "$found" || fail "scanning database $db failed: $out"',
        `    [ "$found" = 0 ] || { echo "${what} already holds keys (in database $db) that no depl record accounts for: delete them if nothing uses them, then run buildinst again" >&2; exit ${REDIS_NOT_EMPTY_EXIT}; }`,
        '    [ "$cursor" != 0 ] || break',
        '  done',
        'done',
      );
    }
    lines.push(`echo "${what} is ready"`);
  } else if (action === 'drop') {
    if (slot.mode === 'database') {
      lines.push(`out="$(cli EVAL ${shellQuote(LUA.flush)} 0 ${slot.number} 2>&1)" || true`, `[ "$out" = flushed ] || fail "FLUSHDB of ${what} failed: $out"`);
    } else {
      lines.push(
        `for db in ${dbs.join(' ')}; do`,
        '  cursor=0',
        '  while :; do',
        `    cursor="$(cli EVAL ${shellQuote(LUA.unlink)} 0 "$db" "$cursor" ${shellQuote(pattern)} 2>&1)" || true`,
        '    numeric "$cursor" || fail "deleting the keys in database $db failed: $cursor"',
        '    [ "$cursor" != 0 ] || break',
        '  done',
        'done',
      );
    }
    lines.push(`echo "emptied ${what}" >&2`);
  } else {
    lines.push(
      'any=0',
      `for db in ${dbs.join(' ')}; do`,
      '  cursor=0; selected=0',
      '  while :; do',
      `    cli EVAL ${shellQuote(LUA.dump)} 0 "$db" "$cursor" ${shellQuote(pattern)} > /tmp/depl-batch 2>&1 || true`,
      '    cursor="$(sed -n 1p /tmp/depl-batch)"',
      '    numeric "$cursor" || fail "dumping database $db failed: $(cat /tmp/depl-batch)"',
      '    if [ "$(wc -l < /tmp/depl-batch)" -gt 1 ]; then',
      // a prefix's keys may be in several databases: the file says which (a database's own file is restored with -n)
      ...(slot.mode === 'prefix' ? ['      [ "$selected" = 1 ] || { echo "SELECT $db"; selected=1; }'] : []),
      '      sed 1d /tmp/depl-batch; any=1',
      '    fi',
      '    [ "$cursor" != 0 ] || break',
      '  done',
      'done',
      `[ "$any" = 1 ] || exit ${options.goneExit}`,
    );
  }
  return lines.join('\n') + '\n';
}

// ---- the branch's services see their own slot ----

/** The env variable a branch's services find their key prefix in (perBranch: prefix): `DEPL_<ACCESSORY>_KEY_PREFIX`. */
export function keyPrefixEnv(accessory: string): string {
  return `DEPL_${accessory.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_KEY_PREFIX`;
}

/** A key under which a value is a key prefix the app puts before its keys (`keyPrefix`, `REDIS_KEY_PREFIX`). */
const NAMES_KEY_PREFIX = /key_?prefix$/i;

/**
 * depl.yaml as a branch deploy's services see it: `database`: every URL to the accessory (`redis://redis:6379`,
 * `redis://:x@redis:6379/0`) names the branch's number; `prefix`: every service has DEPL_<ACCESSORY>_KEY_PREFIX,
 * and a value under a key-prefix key (`keyPrefix: "crawler:"`) gets the branch's prefix before it.
 */
export function branchRedisConfig(config: DeplConfig, branches: readonly { shared: SharedRedis; slot: RedisSlot }[]): DeplConfig {
  if (branches.length === 0) return config;
  const rewrite = (key: string, value: string): string => {
    for (const { shared, slot } of branches) {
      if (slot.mode === 'database') {
        const match = REDIS_URL.exec(value);
        if (match !== null && shared.hosts.includes(match[3]!) && urlNumber(value, shared.hosts) !== null) {
          const [, scheme, userinfo, host, port, , rest] = match;
          return `${scheme}${userinfo ?? ''}${host}${port ?? ''}/${slot.number}${rest ?? ''}`;
        }
      }
    }
    const prefixes = branches.flatMap((b) => (b.slot.mode === 'prefix' ? [b.slot.prefix] : []));
    return prefixes.length > 0 && NAMES_KEY_PREFIX.test(key) && !prefixes.some((p) => value.startsWith(p)) ? `${prefixes.join('')}${value}` : value;
  };
  const walk = (value: unknown, key: string): unknown => {
    if (typeof value === 'string') return rewrite(key, value);
    if (Array.isArray(value)) return value.map((item) => walk(item, key));
    if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  const added = Object.fromEntries(branches.flatMap((b) => (b.slot.mode === 'prefix' ? [[keyPrefixEnv(b.shared.accessory), b.slot.prefix]] : [])));
  const services = Object.fromEntries(Object.entries(config.services).map(([name, svc]) => [name, {
    ...svc, env: { ...Object.fromEntries(Object.entries(svc.env).map(([key, value]) => [key, rewrite(key, value)])), ...added },
  }]));
  return { ...config, services, config: walk(config.config, '') as Record<string, unknown> };
}
