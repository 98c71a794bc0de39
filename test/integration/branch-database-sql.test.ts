import { execa } from 'execa';
import { writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { branchDatabaseOf, branchDatabaseScript, quotePgIdentifier, type BranchDatabase, type BranchSeed, type SharedDatabase } from '../../src/plan/branch-database.js';
import { startPostgres, type TestPostgres } from '../support/postgres-server.js';

/**
 * The SQL and shell lines depl's branch database jobs run (src/plan/branch-database.ts), against a real
 * PostgreSQL server on loopback: no container, no cluster. The job would run them with the accessory's image;
 * here they run with the server's own client programs, the server's address in PGHOST/PGPORT.
 */
let pg: TestPostgres;
// a shared database whose name needs quoting (a double quote, a capital, a dash): the identifiers are quoted as Postgres reads them
const SHARED_NAME = 'Shop "Main"-db';

beforeAll(async () => {
  pg = await startPostgres();
  await psqlAdmin('postgres', `CREATE DATABASE ${quotePgIdentifier(SHARED_NAME)};`);
  await psqlAdmin(SHARED_NAME, "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL); INSERT INTO users VALUES (1, 'production row');");
}, 30_000);

afterAll(async () => {
  await pg?.stop();
});

function shared(): SharedDatabase {
  return { accessory: 'db', engine: 'postgres', database: SHARED_NAME, user: 'admin', passwordSecret: 'db_password', adminUser: 'admin', adminPasswordFile: pg.passwordFile };
}

const env = () => ({ PATH: pg.path, PGPORT: String(pg.port), HOME: pg.dir });

async function psqlAdmin(database: string, sql: string): Promise<string> {
  const result = await execa('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-U', 'admin', '-d', database, '-c', sql], { env: { ...env(), PGPASSWORD: 'admin-pw-for-tests' } });
  return result.stdout.trim();
}

async function psqlAs(db: BranchDatabase, password: string, database: string, sql: string) {
  return execa('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-U', db.user, '-d', database, '-c', sql], { env: { ...env(), PGPASSWORD: password }, reject: false });
}

async function branch(label: string, password: string, seed: BranchSeed = 'schema', seedPath?: string): Promise<{ db: BranchDatabase; passwordFile: string; run: (action: 'create' | 'drop' | 'dump') => Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> }> {
  const db = branchDatabaseOf('shop', shared(), label);
  const passwordFile = path.join(pg.dir, `${label}.password`);
  await writeFile(passwordFile, password);
  await chmod(passwordFile, 0o644);
  const run = async (action: 'create' | 'drop' | 'dump') => {
    const script = branchDatabaseScript(db, action, { seed, server: { host: '127.0.0.1' }, branchPasswordFile: passwordFile, ...(seedPath !== undefined ? { seedPath } : {}) });
    const result = await execa('sh', ['-c', script], { env: env(), reject: false });
    return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
  return { db, passwordFile, run };
}

describe('branch databases on a real PostgreSQL', () => {
  it('makes, seeds with the schema, isolates, dumps and drops a branch database; every script can run twice', async () => {
    const one = await branch('feature-login', 'aaaa1111');
    // a label whose name is longer than Postgres keeps (63 bytes): the computed name is the one the server has
    const two = await branch(`long-${'x'.repeat(60)}`, 'bbbb2222');
    expect(Buffer.byteLength(two.db.database)).toBeLessThanOrEqual(63);

    for (const b of [one, two]) {
      const made = await b.run('create');
      expect(made.stderr).toBe('');
      expect(made.exitCode).toBe(0);
      // the shared database's name reaches the job's output as it is: quoted in the script, never run by its shell
      expect(made.stdout).toContain(`seeded ${b.db.database} with the schema of ${SHARED_NAME}`);
      // a rerun (after a kill) finishes the same pair: no second seed, no error
      const again = await b.run('create');
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.stdout).not.toContain('seeded');
    }
    expect(await psqlAdmin('postgres', `SELECT datname FROM pg_database WHERE datname IN ('${one.db.database}', '${two.db.database}') ORDER BY 1`)).toBe([one.db.database, two.db.database].sort().join('\n'));

    // the schema came, the production rows did not; the branch user owns what it makes
    const seeded = await psqlAs(one.db, 'aaaa1111', one.db.database, 'SELECT count(*) FROM users');
    expect(seeded.stdout.trim(), seeded.stderr).toBe('0');
    expect((await psqlAs(one.db, 'aaaa1111', one.db.database, "ALTER TABLE users ADD COLUMN email text; INSERT INTO users VALUES (7, 'branch row', 'x@y')")).exitCode).toBe(0);
    // each branch sees only its own schema
    expect((await psqlAs(two.db, 'bbbb2222', two.db.database, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'")).stdout.trim()).toBe('0');
    expect(await psqlAdmin(SHARED_NAME, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'")).toBe('0');
    // and cannot log in to another branch's database
    const foreign = await psqlAs(two.db, 'bbbb2222', one.db.database, 'SELECT 1');
    expect(foreign.exitCode).not.toBe(0);
    expect(foreign.stderr).toMatch(/permission denied/);

    const dump = await one.run('dump');
    expect(dump.exitCode, dump.stderr).toBe(0);
    expect(dump.stdout).toContain('CREATE TABLE public.users');
    expect(dump.stdout).toContain('branch row');

    for (const b of [one, two]) {
      expect((await b.run('drop')).exitCode).toBe(0);
      expect((await b.run('drop')).exitCode).toBe(0);
    }
    expect(await psqlAdmin('postgres', `SELECT count(*) FROM pg_database WHERE datname IN ('${one.db.database}', '${two.db.database}')`)).toBe('0');
    expect(await psqlAdmin('postgres', `SELECT count(*) FROM pg_roles WHERE rolname IN ('${one.db.user}', '${two.db.user}')`)).toBe('0');
    // the main line's database is as it was
    expect(await psqlAdmin(SHARED_NAME, 'SELECT name FROM users')).toBe('production row');
  }, 30_000);

  it('seeds a new branch database from a dump file (as prune writes them), as the branch\'s user, only into an empty one', async () => {
    const file = path.join(pg.dir, 'shop-db-main.sql');
    const dumped = await execa('pg_dump', ['--no-owner', '--no-privileges', '-h', '127.0.0.1', '-U', 'admin', '-d', SHARED_NAME], { env: { ...env(), PGPASSWORD: 'admin-pw-for-tests' } });
    await writeFile(file, dumped.stdout);
    await chmod(file, 0o644);
    const b = await branch('from-file', 'cccc3333', { file: '.depl/backups/shop-db-main.sql' }, file);
    const made = await b.run('create');
    expect(made.exitCode, made.stderr).toBe(0);
    expect(made.stdout).toContain(`seeded ${b.db.database} from .depl/backups/shop-db-main.sql`);
    // the rows came with the file, and what it made is the branch user's own
    expect((await psqlAs(b.db, 'cccc3333', b.db.database, 'SELECT name FROM users')).stdout.trim()).toBe('production row');
    expect((await psqlAs(b.db, 'cccc3333', b.db.database, 'ALTER TABLE users ADD COLUMN note text')).exitCode).toBe(0);
    const again = await b.run('create');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toContain('seeded');
    expect((await b.run('drop')).exitCode).toBe(0);
  }, 20_000);
});
