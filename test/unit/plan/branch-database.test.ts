import { describe, expect, it } from 'vitest';
import { quote as shellQuote } from '../../../src/plan/shell.js';
import { parseConfig } from '../../../src/config/load.js';
import {
  branchConfig, branchDatabaseJob, branchDatabaseOf, branchDatabaseScript, branchName, createSql, databaseEngine, dropSql, quoteMysqlIdentifier, quoteMysqlLiteral,
  quotePgIdentifier, quotePgLiteral, recordFromLabels, branchDatabaseSecretLabels, sharedDatabaseOf, type SharedDatabase,
} from '../../../src/plan/branch-database.js';

/** Branch databases as data (src/plan/branch-database.ts): names, quoting, SQL, the job, and what a branch's services see. */
const pg: SharedDatabase = { accessory: 'db', engine: 'postgres', database: 'shop', user: 'shop', passwordSecret: 'db_password', adminUser: 'shop', adminPasswordFile: '/run/secrets/db_password' };
const my: SharedDatabase = { accessory: 'mysql', engine: 'mysql', database: 'shop', user: 'shop', passwordSecret: 'db_password', adminUser: 'root', adminPasswordFile: '/run/secrets/db_root' };

describe('branch database names and quoting', () => {
  it('knows the server by the image repository', () => {
    expect(['postgres:16', 'library/postgres', 'registry:5000/postgis/postgis:16-3.4', 'mysql:8', 'mariadb:11@sha256:ab'].map(databaseEngine)).toEqual(['postgres', 'postgres', 'postgres', 'mysql', 'mysql']);
    expect(databaseEngine('redis:7')).toBeNull();
    expect(databaseEngine('my-postgres-exporter:1')).toBeNull();
  });

  it('reads the shared database from the image contract, and says what is missing', () => {
    const accessory = { image: 'postgres:16', env: { POSTGRES_USER: 'app', POSTGRES_DB: 'appdb', POSTGRES_PASSWORD_FILE: '/run/secrets/pw' }, secrets: ['db_password'], secretPaths: { db_password: 'pw' } };
    expect(sharedDatabaseOf('db', accessory)).toEqual({ ok: true, shared: { accessory: 'db', engine: 'postgres', database: 'appdb', user: 'app', passwordSecret: 'db_password', adminUser: 'app', adminPasswordFile: '/run/secrets/pw' } });
    expect(sharedDatabaseOf('db', { ...accessory, env: { POSTGRES_PASSWORD_FILE: '/run/secrets/db_password' }, secretPaths: {} })).toMatchObject({ ok: true, shared: { database: 'postgres', user: 'postgres' } });
    expect(sharedDatabaseOf('db', { ...accessory, env: {} })).toMatchObject({ ok: false, message: expect.stringContaining('POSTGRES_PASSWORD_FILE') });
    expect(sharedDatabaseOf('db', { ...accessory, env: { POSTGRES_PASSWORD_FILE: '/etc/pw' } })).toMatchObject({ ok: false, message: expect.stringContaining('none of the accessory\'s mounted secrets') });
    const maria = { image: 'mariadb:11', env: { MARIADB_DATABASE: 'shop', MARIADB_USER: 'shop', MARIADB_PASSWORD_FILE: '/run/secrets/db_password', MARIADB_ROOT_PASSWORD_FILE: '/run/secrets/db_root' }, secrets: ['db_password', 'db_root'], secretPaths: {} };
    expect(sharedDatabaseOf('mysql', maria)).toEqual({ ok: true, shared: my });
    expect(sharedDatabaseOf('mysql', { ...maria, env: { MARIADB_DATABASE: 'shop' } })).toMatchObject({ ok: false });
    expect(sharedDatabaseOf('cache', { image: 'redis:7', env: {}, secrets: [], secretPaths: {} })).toMatchObject({ ok: false, message: expect.stringContaining('postgres, mysql or mariadb') });
  });

  it('derives names from the shared name and the branch label, within each server\'s limits, distinct when cut', () => {
    expect(branchName('shop', 'feature-login', 63)).toBe('shop_feature_login');
    expect(branchName('Shop "Main"-db', 'x', 63)).toBe('shop__main__db_x');
    const long = `feature-${'a'.repeat(60)}`;
    const a = branchName('shop', long, 63);
    const b = branchName('shop', `${long}b`, 63);
    expect([a.length, b.length]).toEqual([63, 63]);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^shop_feature_a+_[0-9a-f]{8}$/);
    const db = branchDatabaseOf('shop', my, long);
    expect([db.database.length, db.user.length]).toEqual([64, 32]);
    expect(branchDatabaseOf('shop', pg, 'feature-login')).toEqual({ shared: pg, version: 'feature-login', database: 'shop_feature_login', user: 'shop_feature_login', secret: expect.stringMatching(/^shop-db-db-[0-9a-f]{10}$/) });
  });

  it('quotes identifiers and strings by each server\'s rules', () => {
    expect(quotePgIdentifier('we"ird')).toBe('"we""ird"');
    expect(quotePgLiteral("it's")).toBe("'it''s'");
    expect(quoteMysqlIdentifier('we`ird')).toBe('`we``ird`');
    expect(quoteMysqlLiteral("it's")).toBe("'it''s'");
    expect(() => quoteMysqlLiteral('a\\b')).toThrow(/backslash/);
    expect(() => quotePgIdentifier('a\0')).toThrow(/NUL/);
  });

  it('the record secret\'s labels read back as the record', () => {
    const db = branchDatabaseOf('shop', pg, 'feature-login');
    expect(recordFromLabels(db.secret, branchDatabaseSecretLabels('shop', db, 'feature/login'))).toEqual({ secret: db.secret, accessory: 'db', version: 'feature-login', database: 'shop_feature_login', user: 'shop_feature_login' });
    expect(recordFromLabels('x', { 'depl.app': 'shop' })).toBeNull();
  });
});

describe('branch database SQL and jobs', () => {
  it('postgres: made when missing, password from a psql variable, owned by the branch user; dropped with its connections', () => {
    const db = branchDatabaseOf('shop', pg, 'feature-login');
    expect(createSql(db)).toBe([
      `SELECT 'CREATE ROLE "shop_feature_login" LOGIN' WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'shop_feature_login')`,
      '\\gexec',
      `ALTER ROLE "shop_feature_login" WITH LOGIN PASSWORD :'branch_password';`,
      `SELECT 'CREATE DATABASE "shop_feature_login" OWNER "shop_feature_login"' WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'shop_feature_login')`,
      '\\gexec',
      'ALTER DATABASE "shop_feature_login" OWNER TO "shop_feature_login";',
      'REVOKE ALL ON DATABASE "shop_feature_login" FROM PUBLIC;',
      '',
    ].join('\n'));
    expect(dropSql(db)).toBe('DROP DATABASE IF EXISTS "shop_feature_login" WITH (FORCE);\nDROP ROLE IF EXISTS "shop_feature_login";\n');
    const script = branchDatabaseScript(db, 'create', { seed: 'schema' });
    expect(script).toContain('PGPASSWORD="$(cat /run/secrets/db_password)"');
    expect(script).toContain('-v branch_password="$(cat /run/secrets/depl-branch-password)"');
    expect(script).toContain('pg_dump --schema-only --no-owner --no-privileges -d shop > /tmp/depl-schema.sql');
    expect(script).not.toMatch(/PASSWORD '/);
  });

  it('mysql: the password goes in only as depl-generated hex; the user is granted the one database', () => {
    const db = branchDatabaseOf('shop', my, 'feature-login');
    expect(createSql(db)).toBe([
      'CREATE DATABASE IF NOT EXISTS `shop_feature_login`;',
      "CREATE USER IF NOT EXISTS 'shop_feature_login'@'%' IDENTIFIED BY '@BRANCH_PASSWORD@';",
      "ALTER USER 'shop_feature_login'@'%' IDENTIFIED BY '@BRANCH_PASSWORD@';",
      "GRANT ALL PRIVILEGES ON `shop_feature_login`.* TO 'shop_feature_login'@'%';",
      '',
    ].join('\n'));
    expect(dropSql(db)).toBe("DROP DATABASE IF EXISTS `shop_feature_login`;\nDROP USER IF EXISTS 'shop_feature_login'@'%';\n");
    expect(branchDatabaseScript(db, 'create')).toContain('*[!0-9a-f]*) echo "the branch password is not the hex depl generates" >&2; exit 3');
  });

  it('mysql: hostile names from the accessory\'s environment reach the SQL only as [a-z0-9_] and the shell only quoted', async () => {
    const hostile = "shop`$(touch /tmp/pwned)`'; DROP DATABASE mysql; -- \"x\"";
    const shared: SharedDatabase = { ...my, database: hostile, user: hostile, adminUser: `root'$(id)` };
    const db = branchDatabaseOf('shop', shared, 'feature-login');
    expect([db.database, db.user]).toEqual([expect.stringMatching(/^[a-z0-9_]+$/), expect.stringMatching(/^[a-z0-9_]+$/)]);
    const sql = createSql(db) + dropSql(db);
    expect(sql).not.toContain('DROP DATABASE mysql');
    expect(sql.match(/`[^`]*`/g)!.every((identifier) => /^`[a-z0-9_]+`$/.test(identifier))).toBe(true);
    const { execa } = await import('execa');
    for (const action of ['create', 'drop', 'dump'] as const) {
      const script = branchDatabaseScript(db, action, action === 'create' ? { seed: 'schema' } : {});
      // the raw name (it has a single quote) can only be in the script inside a quoted word, never as it is
      expect(script).not.toContain(hostile);
      expect(script).not.toContain("root'$(id)");
      // and the shell reads the whole script as valid syntax (nothing is run: -n)
      expect((await execa('sh', ['-n', '-c', script], { reject: false })).exitCode).toBe(0);
    }
    expect(branchDatabaseScript(db, 'create', { seed: 'schema' })).toContain(shellQuote(hostile));
  });

  it('the job runs the script with the accessory\'s spec, without its volume or health check, the branch password mounted', () => {
    const db = branchDatabaseOf('shop', pg, 'feature-login');
    const accessorySpec = {
      Name: 'db', Labels: { 'depl.app': 'shop', 'depl.accessory': 'db' },
      TaskTemplate: {
        ContainerSpec: {
          Image: 'postgres:16', Env: ['POSTGRES_PASSWORD_FILE=/run/secrets/db_password'], HealthCheck: { Test: ['CMD', 'pg_isready'] },
          Mounts: [{ Type: 'volume', Source: 'pg-data', Target: '/var/lib/postgresql/data' }], Secrets: [{ File: { Name: 'db_password' }, SecretID: 's1', SecretName: 'shop-db_password-1' }],
        },
        Networks: [{ Target: 'shop-net' }], Placement: { Constraints: ['node.role==manager'] },
      },
    };
    const job = branchDatabaseJob({ app: 'shop', db, accessorySpec, script: 'echo hi', action: 'create', by: 'ops@test', at: '2026-12-06T10:00:00Z', secretRef: { id: '', name: db.secret } });
    const container = job.TaskTemplate.ContainerSpec;
    expect(job.Name).toMatch(/^shop-database-db-[0-9a-f]{6}$/);
    expect(container).toMatchObject({ Image: 'postgres:16', Command: ['sh'], Args: ['-c', 'echo hi'], Env: ['POSTGRES_PASSWORD_FILE=/run/secrets/db_password'] });
    expect(container.Mounts).toBeUndefined();
    expect(container.HealthCheck).toBeUndefined();
    expect(container.Secrets).toEqual([
      { File: { Name: 'db_password' }, SecretID: 's1', SecretName: 'shop-db_password-1' },
      { File: { Name: '/run/secrets/depl-branch-password', UID: '0', GID: '0', Mode: 0o444 }, SecretID: '', SecretName: db.secret },
    ]);
    expect(job.Labels).toMatchObject({ 'depl.job': 'database', 'depl.branch-database.action': 'create', 'depl.branch-database.name': 'shop_feature_login' });
    expect(job.TaskTemplate).toMatchObject({ Networks: [{ Target: 'shop-net' }], Placement: { Constraints: ['node.role==manager'] }, RestartPolicy: { Condition: 'none' } });
  });
});

describe("what a branch's services see", () => {
  const config = parseConfig(`
app: shop
domain: shop.test
services:
  api:
    image: "shop:1"
    env: { DATABASE_URL: "postgres://shop@db:5432/shop?sslmode=disable", PGDATABASE: shop, PGUSER: shop, APP_NAME: shop, CACHE_URL: "redis://cache:6379/0" }
    secrets: [db_password]
accessories:
  db: { image: "postgres:16", env: { POSTGRES_USER: shop, POSTGRES_PASSWORD_FILE: /run/secrets/db_password }, secrets: [db_password], perBranch: database }
secrets: [db_password]
config: { database: { url: "postgresql://shop@db/shop", name: shop, user: shop }, shopTitle: shop }
`);
  it('URLs to the accessory, and database and user names under keys that say so, become the branch\'s; nothing else changes', () => {
    const db = branchDatabaseOf('shop', pg, 'feature-login');
    const seen = branchConfig(config, [db]);
    expect(seen.services.api!.env).toEqual({
      DATABASE_URL: 'postgres://shop_feature_login@db:5432/shop_feature_login?sslmode=disable', PGDATABASE: 'shop_feature_login', PGUSER: 'shop_feature_login', APP_NAME: 'shop', CACHE_URL: 'redis://cache:6379/0',
    });
    expect(seen.config).toEqual({ database: { url: 'postgresql://shop_feature_login@db/shop_feature_login', name: 'shop_feature_login', user: 'shop_feature_login' }, shopTitle: 'shop' });
    // the main line sees the shared database
    expect(branchConfig(config, [])).toBe(config);
  });
});
