import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { pollUntil } from '../../src/util/poll.js';
import { runCli } from '../support/cli.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';
import { buildPostgresImage, loadIntoNode } from '../support/postgres-image.js';

/**
 * A queue-consumer app (no http service) with Redis and a release phase, on a real one-node swarm, through the
 * built CLI and real buildinst runs (busybox consumers, Redis from depl's offline base image, nothing built):
 * - the release phase runs once per install as a job of the new version, on its network (it reaches Redis by
 *   name), before the version's consumers start; a failing one stops the install and prints its output, and the
 *   live version keeps consuming;
 * - a second version is installed with its consumers stopped; `depl switch` starts them and stops the first's,
 *   so the queue is consumed by one version at a time and every job exactly once (counted).
 * - the same app with a PostgreSQL accessory (`perBranch: database`, made offline: test/support/postgres-image.ts)
 *   and a release phase that migrates it with psql: the main line's migration runs on the shared database; two
 *   branch deploys each get a database of their own, seeded with the shared schema, which their own migration
 *   changes and only they see (checked from inside each branch's service with `depl run`); a branch redeploy
 *   whose migration fails prints Postgres's error and keeps the branch's database; `depl prune --branches`
 *   writes a branch's dump under .depl/backups/ and then drops its database and user on the server.
 * Ordering, undo and a depl killed at every step are proved on the fake cluster (test/unit/buildinst/
 * buildinst-fake.test.ts, test/unit/release/consumers.test.ts, test/unit/buildinst/branch-database-fake.test.ts).
 */
const images = testImages();
const { suffix, busybox } = images;
let tc: TestCluster;
let app: string;
let postgres: string;
/** PostgreSQL's image on the node: loaded while the first case runs (copying a few hundred MB is most of its cost). */
let postgresLoaded: Promise<void>;

/** Moves jobs from `jobs` to `done:<TAG>` (each move atomic in Redis), five per connection, then pauses; exits on SIGTERM. */
const consume = 'trap "exit 0" TERM; while :; do for i in 1 2 3 4 5; do printf "RPOPLPUSH jobs done:$TAG\\r\\n"; done | nc -w 1 redis 6379 >/dev/null; sleep 1 & wait $!; done';

/** The PostgreSQL admin's (and the main line's) password: a secret from the environment, as an operator's CI passes it. */
const dbPassword = `pw-${suffix}`;
const cli = (...args: string[]) => runCli(args, { cwd: tc.dir, timeoutMs: 400_000, env: { DEPL_SECRET_DB_PASSWORD: dbPassword } });

/** depl.yaml for the next install: the consumers' tag (which version did a job) and the release command. */
async function nextVersion(tag: string, release: string): Promise<void> {
  const document = parse(await readFile(tc.configFile, 'utf8')) as { services: { consumer: Record<string, unknown> } } & Record<string, unknown>;
  document.services.consumer = { ...document.services.consumer, env: { TAG: tag } };
  await writeFile(tc.configFile, stringify({ ...document, release: { service: 'consumer', command: ['sh', '-c', release], timeout: '2m' } }));
}

/** redis-cli in the Redis accessory's container on the manager. */
async function redis(...args: string[]): Promise<string> {
  const id = (await tc.cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-redis`])).stdout.trim().split('\n')[0]!;
  return (await tc.cluster.manager.exec(['docker', 'exec', id, 'redis-cli', ...args])).stdout.trim();
}

let pushed = 0;
async function push(n: number): Promise<void> {
  const jobs = Array.from({ length: n }, (_, i) => `job-${pushed + i}`);
  await redis('LPUSH', 'jobs', ...jobs);
  pushed += n;
}
const done = async (tag: string) => Number(await redis('LLEN', `done:${tag}`));
async function untilConsumed(expected: Record<string, number>): Promise<void> {
  await pollUntil(async () => {
    const counts = Object.fromEntries(await Promise.all(Object.keys(expected).map(async (tag) => [tag, await done(tag)] as const)));
    return Object.entries(expected).every(([tag, n]) => counts[tag] === n) && Number(await redis('LLEN', 'jobs')) === 0 ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500, onTimeout: async () => {
    throw new Error(`not consumed as expected ${JSON.stringify(expected)}: ${JSON.stringify({ v1: await done('v1'), v2: await done('v2'), queued: await redis('LLEN', 'jobs') })}`);
  } });
}

/** `<running>/<desired>` of a version's consumer service. */
async function tasksOf(version: string): Promise<string> {
  const listed = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--filter', `name=${app}-${version}-consumer`, '--format', '{{.Name}} {{.Replicas}}']);
  return listed.stdout.split('\n').find((l) => l.startsWith(`${app}-${version}-consumer `))?.split(' ')[1] ?? '(none)';
}

/** The app's job services still on the swarm (release jobs are removed once they end). */
async function jobsLeft(): Promise<string[]> {
  const out = await tc.cluster.manager.exec(['docker', 'service', 'ls', '--format', '{{.Name}}', '--filter', `label=depl.app=${app}`, '--filter', 'label=depl.job']);
  return out.stdout.split('\n').filter((l) => l.trim().length > 0);
}

/** psql as the app's service runs it: the URL and the password file it is given (a branch's are its own). */
const psql = 'PGPASSWORD="$(cat /run/secrets/db_password)" psql -X -q -v ON_ERROR_STOP=1';

/**
 * depl.yaml for the next install: a PostgreSQL accessory whose branch deploys get a database each (seeded with
 * the shared schema), a `migrate` service with psql that reads DATABASE_URL and the password file as the
 * main line's, and a release phase that runs `sql` as that service.
 */
async function nextMigration(sql: string): Promise<void> {
  const document = parse(await readFile(tc.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  await writeFile(tc.configFile, stringify({
    ...document,
    images: { ...document.images, 'postgres:16': postgres },
    secrets: ['db_password'],
    accessories: {
      ...document.accessories,
      db: {
        image: 'postgres:16', env: { POSTGRES_USER: 'shop', POSTGRES_DB: 'shop', POSTGRES_PASSWORD_FILE: '/run/secrets/db_password' }, secrets: ['db_password'],
        health: { command: ['pg_isready', '-q', '-h', '127.0.0.1', '-U', 'shop'], interval: '1s', retries: 30 }, perBranch: 'database', seed: 'schema',
      },
    },
    services: {
      ...document.services,
      migrate: {
        image: 'postgres:16', entrypoint: ['sh', '-c'], command: ['trap "exit 0" TERM; while :; do sleep 1; done'], stopGracePeriod: '5s',
        env: { DATABASE_URL: 'postgres://shop@db:5432/shop' }, secrets: ['db_password'],
      },
    },
    release: { service: 'migrate', command: [`echo "migrating $DATABASE_URL"; ${psql} "$DATABASE_URL" -c "${sql}"`], timeout: '2m' },
  }));
}

/** SQL as the server's admin, in the accessory's container: what the server holds, seen from outside the app. */
async function adminSql(sql: string): Promise<string> {
  const id = (await tc.cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-db`])).stdout.trim().split('\n')[0]!;
  return (await tc.cluster.manager.exec(['docker', 'exec', '-e', `PGPASSWORD=${dbPassword}`, id, 'psql', '-X', '-At', '-h', '127.0.0.1', '-U', 'shop', '-d', 'shop', '-c', sql])).stdout.trim();
}

beforeAll(async () => {
  // the PostgreSQL image is built once per machine (cached by its recipe's hash) while the node boots
  const [cluster, pgImage] = await Promise.allSettled([startClusterWithImages(images, ['busybox'], {
    nodes: 1,
    app: `rp${suffix.slice(0, 4)}`,
    config: {
      images: { node: busybox, consumer: busybox },
      services: { consumer: { image: 'consumer', command: ['sh', '-c', consume], env: { TAG: 'v1' }, replicas: 1, stopGracePeriod: '5s' } },
      accessories: { redis: { image: 'redis', command: ['redis-server', '--save', ''], port: 6379 } },
    },
  }), buildPostgresImage()]);
  if (cluster.status === 'fulfilled') tc = cluster.value;
  for (const made of [cluster, pgImage]) if (made.status === 'rejected') throw made.reason;
  postgres = (pgImage as PromiseFulfilledResult<string>).value;
  app = tc.loaded.config.app;
  postgresLoaded = loadIntoNode(postgres, `${tc.prefix}-node-1`);
  // awaited by the case that needs it; until then a failure must not end the run as an unhandled rejection
  postgresLoaded.catch(() => {});
}, 600_000);

afterAll(async () => {
  await tc?.stop();
});

describe('a queue-consumer app with a release phase', () => {
  it("runs the release phase before the consumers start; switch moves consumption to the new version, every job once; a failing release phase prints its output and leaves live consuming", async () => {
    await nextVersion('v1', 'echo "migrating to v1"; printf "SET schema v1\\r\\n" | nc -w 2 redis 6379');
    const dry = await cli('buildinst', '--version', 'v1', '--dry-run');
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`release phase: run \`sh -c .*\` once as job ${app}-release-consumer-[0-9a-f]{6}`));
    const v1 = await cli('buildinst', '--version', 'v1');
    expect(v1.exitCode, v1.stderr).toBe(0);
    // its output, streamed: it reached Redis by name on the app's network
    expect(v1.stderr).toContain('consumer| migrating to v1');
    expect(v1.stderr).toMatch(/release phase: exit 0 in [\d.]+ s/);
    expect(await redis('GET', 'schema')).toBe('v1');
    expect(await jobsLeft()).toEqual([]);
    const live1 = await cli('switch', 'v1');
    expect(live1.exitCode, live1.stderr).toBe(0);
    await push(30);
    await untilConsumed({ v1: 30 });

    // v2 is installed beside v1 with its consumers stopped: v1 alone keeps consuming
    await nextVersion('v2', 'echo "migrating to v2"; printf "SET schema v2\\r\\n" | nc -w 2 redis 6379');
    const v2 = await cli('buildinst', '--version', 'v2');
    expect(v2.exitCode, v2.stderr).toBe(0);
    expect(v2.stderr).toMatch(/v2's consumers are created stopped while v1 is installed/);
    expect(await tasksOf('v2')).toBe('0/0');
    await push(10);
    await untilConsumed({ v1: 40, v2: 0 });

    const switched = await cli('switch', 'v2');
    expect(switched.exitCode, switched.stderr).toBe(0);
    expect(switched.stderr).toMatch(new RegExp(`v2's consumers run; stopped ${app}-v1-consumer`));
    expect(await tasksOf('v1')).toBe('0/0');
    expect(await tasksOf('v2')).toBe('1/1');
    await push(10);
    await untilConsumed({ v1: 40, v2: 10 });
    const status = await cli('status');
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stdout).toContain("consumers: v2's run");

    // v3's release phase fails: nothing of v3 is created, v2 keeps consuming
    await nextVersion('v3', 'echo "applying 0002_add_column"; echo "ERROR: column sha256 already exists" >&2; exit 3');
    const v3 = await cli('buildinst', '--version', 'v3');
    expect(v3.exitCode, v3.stderr).toBe(1);
    expect(v3.stderr).toMatch(/the release phase of version v3 failed with exit 3/);
    expect(v3.stderr).toContain('ERROR: column sha256 already exists');
    expect(v3.stderr).toContain('applying 0002_add_column');
    expect(await tasksOf('v3')).toBe('(none)');
    expect(await jobsLeft()).toEqual([]);
    await push(5);
    await untilConsumed({ v1: 40, v2: 15 });
    // every job exactly once: 55 pushed, 55 done, none twice
    const all = [...(await redis('LRANGE', 'done:v1', '0', '-1')).split('\n'), ...(await redis('LRANGE', 'done:v2', '0', '-1')).split('\n')];
    expect(all).toHaveLength(pushed);
    expect(new Set(all).size).toBe(pushed);

    const doc = await readReleaseDocument(tc.cluster.manager, app);
    expect(doc).toMatchObject({ live: 'v2', previous: 'v1', pending: null });
    expect(doc.history.filter((h) => h.action === 'release').map((h) => [h.version, h.exitCode])).toEqual([['v1', 0], ['v2', 0], ['v3', 3]]);
    const versions = await cli('versions');
    expect(versions.exitCode, versions.stderr).toBe(0);
    expect(versions.stdout).toMatch(/^v1 .*previous.*release ok, consumers stopped/m);
    expect(versions.stdout).toMatch(/^v2 .*live.*release ok, consumers running/m);
    expect(versions.stdout).not.toMatch(/^v3 /m);
  }, 1_200_000);

  it('gives each branch a database of its own that its release phase migrates; a failed migration prints Postgres\'s error and keeps it; prune --branches backs it up, then drops it', async () => {
    await postgresLoaded;
    // the main line: its release phase makes the table in the shared database, once, before v4's services exist
    await nextMigration("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items VALUES (1, 'production row')");
    const v4 = await cli('buildinst', '--version', 'v4');
    expect(v4.exitCode, v4.stderr).toBe(0);
    expect(v4.stderr).toContain('migrate| migrating postgres://shop@db:5432/shop');
    expect(v4.stderr.match(/release phase: exit 0/g)).toHaveLength(1);

    const deployBranch = async (branch: string, sql: string) => {
      await nextMigration(sql);
      const run = await cli('buildinst', '--branch', branch, '--json');
      expect(run.exitCode, run.stderr).toBe(0);
      const { version } = JSON.parse(run.stdout) as { version: string };
      // <shared>_<label>, lower case with `_` for other characters (README: Branch databases)
      const database = `shop_${version.replace(/-/g, '_')}`;
      // made (from the shared schema) before the release phase, which migrated the branch's own database
      expect(run.stderr).toMatch(new RegExp(`${database}[^\n]*seeded with shop's schema`));
      expect(run.stderr).toContain(`migrate| migrating postgres://${database}@db:5432/${database}`);
      return { version, database };
    };
    const a = await deployBranch('feature/a', "ALTER TABLE items ADD COLUMN colour text; INSERT INTO items VALUES (2, 'row of feature/a', 'red')");
    const b = await deployBranch('feature/b', "ALTER TABLE items ADD COLUMN size int; INSERT INTO items VALUES (3, 'row of feature/b', 42)");

    // feature/a again, with a migration that cannot run twice: Postgres's own error, and its earlier deploy and database stay
    await nextMigration('ALTER TABLE items ADD COLUMN colour text');
    const failed = await cli('buildinst', '--branch', 'feature/a');
    expect(failed.exitCode, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(new RegExp(`the release phase of version ${a.version} failed with exit \\d+`));
    expect(failed.stderr).toContain('ERROR:  column "colour" of relation "items" already exists');

    // from inside each branch's service, as its app sees it: its own database, schema and rows; not the other's, not the shared one's
    const inside = async (label: string, other: string) => {
      const seen = await cli('run', 'migrate', '--version', label, '--', [
        `${psql} -At "$DATABASE_URL" -c "SELECT current_database() || ' ' || current_user" -c "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'items'" -c "SELECT string_agg(name, ',' ORDER BY id) FROM items"`,
        `${psql} "\${DATABASE_URL%/*}/${other}" -c "SELECT 1" 2>&1 || true`,
        `${psql} "\${DATABASE_URL%/*}/shop" -c "SELECT count(*) FROM items" 2>&1 || true`,
      ].join('; '));
      expect(seen.exitCode, seen.stderr).toBe(0);
      return seen.stdout;
    };
    const seenByA = await inside(a.version, b.database);
    expect(seenByA).toContain(`${a.database} ${a.database}\nid,name,colour\nrow of feature/a\n`);
    expect(seenByA).toContain(`permission denied for database "${b.database}"`);
    expect(seenByA).toContain('permission denied for table items');
    const seenByB = await inside(b.version, a.database);
    expect(seenByB).toContain(`${b.database} ${b.database}\nid,name,size\nrow of feature/b\n`);
    expect(seenByB).toContain(`permission denied for database "${a.database}"`);
    // the main line's schema and rows are untouched by either branch
    expect(await adminSql("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'items'")).toBe('id,name');
    expect(await adminSql('SELECT string_agg(name, \',\' ORDER BY id) FROM items')).toBe('production row');

    // feature/a's branch is deleted: its deploy goes, its database is dumped beside depl.yaml, then dropped
    const pruned = await cli('prune', '--branches', 'feature/b');
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain(`Removed ${a.version}`);
    const backups = path.join(tc.dir, '.depl', 'backups');
    const dumps = (await readdir(backups)).filter((f) => f.startsWith(`${app}-db-${a.version}-`));
    expect(dumps).toEqual([expect.stringMatching(/\.sql$/)]);
    const dump = await readFile(path.join(backups, dumps[0]!), 'utf8');
    expect(dump).toMatch(/CREATE TABLE public\.items \([^;]*colour text/);
    expect(dump).toContain('row of feature/a\tred');
    expect((await stat(path.join(backups, dumps[0]!))).mode & 0o777).toBe(0o600);
    const databases = async () => (await adminSql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'shop%'")).split(',');
    const users = async () => (await adminSql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'shop%'")).split(',');
    expect(await databases()).toEqual(['shop', b.database]);
    expect(await users()).toEqual(['shop', b.database]);
    expect(await tasksOf(a.version)).toBe('(none)');
  }, 1_200_000);
});
