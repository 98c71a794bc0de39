import { execa } from 'execa';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { branchDatabaseOf, branchDatabaseScript, quoteMysqlIdentifier, type BranchDatabase, type BranchSeed, type SharedDatabase } from '../../src/plan/branch-database.js';
import { startMariadb, type TestMariadb } from '../support/mariadb-server.js';

/**
 * The shell and SQL lines depl's branch database jobs run for a mysql/mariadb accessory (src/plan/branch-database.ts),
 * against a real MariaDB server on loopback: no container, no cluster. The job would run them with the accessory's
 * image; here they run with Debian's `mariadb` and `mariadb-dump`, the server's port in MYSQL_TCP_PORT (which both
 * clients read), logged in as root with the password file the accessory's MYSQL_ROOT_PASSWORD_FILE names.
 */
let db: TestMariadb;
// a shared database whose name needs quoting (a backtick, a capital, a dash): identifiers are quoted as MariaDB reads them
const SHARED_NAME = 'Shop`s-main';

beforeAll(async () => {
  db = await startMariadb();
  await asRoot(`CREATE DATABASE ${quoteMysqlIdentifier(SHARED_NAME)};`);
  await asRoot("CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL); INSERT INTO users VALUES (1, 'production row');", SHARED_NAME);
}, 120_000);

afterAll(async () => {
  await db?.stop();
});

function shared(): SharedDatabase {
  return { accessory: 'db', engine: 'mysql', database: SHARED_NAME, user: 'shop', passwordSecret: 'db_password', adminUser: 'root', adminPasswordFile: db.passwordFile };
}

const env = () => ({ MYSQL_TCP_PORT: String(db.port), HOME: db.dir });

async function asRoot(sql: string, database?: string): Promise<string> {
  const result = await execa('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-u', 'root', '-N', '-B', ...(database === undefined ? [] : [database]), '-e', sql], { env: { ...env(), MYSQL_PWD: 'root-pw-for-tests' } });
  return result.stdout.trim();
}

async function asUser(branchDb: BranchDatabase, password: string, database: string, sql: string) {
  return execa('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-u', branchDb.user, '-N', '-B', database, '-e', sql], { env: { ...env(), MYSQL_PWD: password }, reject: false });
}

async function branch(label: string, password: string, seed: BranchSeed = 'schema', seedPath?: string) {
  const branchDb = branchDatabaseOf('shop', shared(), label);
  const passwordFile = path.join(db.dir, `${label}.password`);
  await writeFile(passwordFile, password);
  await chmod(passwordFile, 0o644);
  const run = async (action: 'create' | 'drop' | 'dump') => {
    const script = branchDatabaseScript(branchDb, action, { seed, server: { host: '127.0.0.1' }, branchPasswordFile: passwordFile, ...(seedPath !== undefined ? { seedPath } : {}) });
    const result = await execa('sh', ['-c', script], { env: env(), reject: false });
    return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
  return { db: branchDb, run };
}

describe('branch databases on a real MariaDB', () => {
  it('makes, seeds with the schema, isolates, dumps and drops a branch database; every script can run twice', async () => {
    const one = await branch('feature-login', 'aaaa1111');
    // a label longer than MySQL's user names (32) and databases (64) may be: the computed names are the ones the server keeps
    const two = await branch(`long-${'x'.repeat(70)}`, 'bbbb2222');
    expect(two.db.user.length).toBeLessThanOrEqual(32);

    for (const b of [one, two]) {
      const made = await b.run('create');
      expect(made.exitCode, made.stderr).toBe(0);
      // the shared database's name reaches the job's output as it is: quoted in the script, never run by its shell
      expect(made.stdout).toContain(`seeded ${b.db.database} with the schema of ${SHARED_NAME}`);
      // a rerun (after a kill) finishes the same pair: no second seed, no error, and the password still the record's
      const again = await b.run('create');
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.stdout).not.toContain('seeded');
    }
    expect(await asRoot(`SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('${one.db.database}', '${two.db.database}') ORDER BY 1`))
      .toBe([one.db.database, two.db.database].sort().join('\n'));

    // the schema came, the production rows did not; the branch user may change its own database
    const seeded = await asUser(one.db, 'aaaa1111', one.db.database, 'SELECT COUNT(*) FROM users');
    expect(seeded.stdout.trim(), seeded.stderr).toBe('0');
    const changed = await asUser(one.db, 'aaaa1111', one.db.database, "ALTER TABLE users ADD COLUMN email text; INSERT INTO users VALUES (7, 'branch row', 'x@y')");
    expect(changed.exitCode, changed.stderr).toBe(0);
    // each branch sees only its own schema, and the main line's is as it was
    const columns = (database: string) => `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = '${database.replace(/'/g, "''")}' AND table_name = 'users' AND column_name = 'email'`;
    expect(await asRoot(columns(two.db.database))).toBe('0');
    expect(await asRoot(columns(SHARED_NAME))).toBe('0');
    // a branch's user cannot reach another branch's database, nor the main line's
    for (const target of [one.db.database, SHARED_NAME]) {
      const foreign = await asUser(two.db, 'bbbb2222', target, 'SELECT 1');
      expect(foreign.exitCode).not.toBe(0);
      expect(foreign.stderr).toMatch(/Access denied/);
    }
    // a wrong password is refused (the user was made with the record's password, not an empty one)
    expect((await asUser(one.db, 'not-the-password', one.db.database, 'SELECT 1')).exitCode).not.toBe(0);

    const dump = await one.run('dump');
    expect(dump.exitCode, dump.stderr).toBe(0);
    expect(dump.stdout).toContain('CREATE TABLE `users`');
    expect(dump.stdout).toContain('branch row');

    for (const b of [one, two]) {
      expect((await b.run('drop')).exitCode).toBe(0);
      expect((await b.run('drop')).exitCode).toBe(0);
    }
    expect(await asRoot(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name IN ('${one.db.database}', '${two.db.database}')`)).toBe('0');
    expect(await asRoot(`SELECT COUNT(*) FROM mysql.user WHERE user IN ('${one.db.user}', '${two.db.user}')`)).toBe('0');
    // a dump of a database that is gone says so with its own exit code (prune reads it as "nothing to keep")
    expect((await one.run('dump')).exitCode).not.toBe(0);
    expect(await asRoot('SELECT name FROM users', SHARED_NAME)).toBe('production row');
  }, 60_000);

  it('refuses a branch password that is not the hex depl generates, before any SQL runs', async () => {
    const b = await branch('quote-attempt', "x'; DROP DATABASE mysql; --");
    const made = await b.run('create');
    expect(made.exitCode).not.toBe(0);
    expect(made.stderr).toContain('not the hex depl generates');
    expect(await asRoot(`SELECT COUNT(*) FROM mysql.user WHERE user = '${b.db.user}'`)).toBe('0');
  }, 20_000);

  it('seeds a new branch database from a dump file (as prune writes them), only into an empty one', async () => {
    const file = path.join(db.dir, 'shop-db-main.sql');
    const dumped = await execa('mariadb-dump', ['--no-defaults', '-h', '127.0.0.1', '-u', 'root', '--single-transaction', SHARED_NAME], { env: { ...env(), MYSQL_PWD: 'root-pw-for-tests' } });
    await writeFile(file, dumped.stdout);
    await chmod(file, 0o644);
    const b = await branch('from-file', 'cccc3333', { file: '.depl/backups/shop-db-main.sql' }, file);
    const made = await b.run('create');
    expect(made.exitCode, made.stderr).toBe(0);
    expect(made.stdout).toContain(`seeded ${b.db.database} from .depl/backups/shop-db-main.sql`);
    expect((await asUser(b.db, 'cccc3333', b.db.database, 'SELECT name FROM users')).stdout.trim()).toBe('production row');
    expect((await asUser(b.db, 'cccc3333', b.db.database, 'ALTER TABLE users ADD COLUMN note text')).exitCode).toBe(0);
    const again = await b.run('create');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toContain('seeded');
    expect((await b.run('drop')).exitCode).toBe(0);
  }, 20_000);
});
