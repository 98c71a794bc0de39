import { createHash } from 'node:crypto';
import type { AccessoryConfig, DeplConfig } from '../config/schema.js';
import { planRunJob, type InspectedServiceSpec, type JobSpec } from './jobs.js';
import { quote as shellQuote } from './shell.js';
import { LABELS, type SwarmSecretRef } from './services.js';
import { slotFromText, slotText, type RedisRecordSlot } from './branch-redis.js';

/**
 * Branch databases (README: Branch databases): an accessory with `perBranch: database` gives every branch deploy
 * (`buildinst --branch`) a database and a user of its own on the same server, so a branch's migrations never
 * touch the main line's schema. Everything here is data: the names (from the shared database's and the branch's
 * label, within the server's length limits), the SQL with its identifiers quoted by the server's rules, the shell
 * lines a one-off job runs with the accessory's own image (its client matches the server), and how the branch's
 * services are pointed at their database under the names the app already reads.
 */

export type DatabaseEngine = 'postgres' | 'mysql';

/** The database server an accessory's image is: by its repository name (`postgres:16`, `library/mariadb:11`). */
export function databaseEngine(image: string): DatabaseEngine | null {
  const withoutTag = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  const repository = withoutTag.slice(withoutTag.lastIndexOf('/') + 1);
  if (/^(postgres|postgresql|postgis)$/.test(repository)) return 'postgres';
  if (/^(mysql|mariadb|percona|percona-server)$/.test(repository)) return 'mysql';
  return null;
}

/** The main line's database on the accessory, as its image's environment contract names it. */
export interface SharedDatabase {
  accessory: string;
  engine: DatabaseEngine;
  database: string;
  /** The app's user (the one its services log in as). */
  user: string;
  /** The depl.yaml secret holding the app user's password: a branch's services get the branch's password under its file name. */
  passwordSecret: string;
  /** Who creates and drops branch databases: postgres's POSTGRES_USER (a superuser), MySQL's root. */
  adminUser: string;
  /** Where the admin's password is in a container of the accessory (a mounted secret). */
  adminPasswordFile: string;
}

export type SharedDatabaseCheck = { ok: true; shared: SharedDatabase } | { ok: false; message: string };

/** Where a secret of the accessory is mounted: its `secretPaths` entry (a file name under /run/secrets, or absolute), else /run/secrets/<name>. */
function mountedAt(accessory: Pick<AccessoryConfig, 'secretPaths'>, secret: string): string {
  const path = accessory.secretPaths[secret] ?? secret;
  return path.startsWith('/') ? path : `/run/secrets/${path}`;
}

/**
 * The shared database from the accessory's environment, the contract of the official images: postgres's
 * POSTGRES_USER (default postgres), POSTGRES_DB (default the user) and POSTGRES_PASSWORD_FILE; MySQL's and
 * MariaDB's MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD_FILE and MYSQL_ROOT_PASSWORD_FILE (or their MARIADB_
 * names). The password files must be the accessory's mounted secrets: depl never sees a password in depl.yaml.
 */
export function sharedDatabaseOf(name: string, accessory: Pick<AccessoryConfig, 'image' | 'env' | 'secrets' | 'secretPaths'>): SharedDatabaseCheck {
  const engine = databaseEngine(accessory.image);
  if (engine === null) return { ok: false, message: `perBranch: database needs a postgres, mysql or mariadb image (${accessory.image} is none of them)` };
  const env = accessory.env;
  const secretAt = (file: string | undefined, variable: string): { ok: true; secret: string } | { ok: false; message: string } => {
    if (file === undefined) return { ok: false, message: `perBranch: database needs ${variable} in the accessory's env, pointing at one of its secrets (like /run/secrets/db_password)` };
    const secret = accessory.secrets.find((s) => mountedAt(accessory, s) === file);
    return secret === undefined
      ? { ok: false, message: `${variable} is ${file}, which is none of the accessory's mounted secrets (have: ${accessory.secrets.map((s) => mountedAt(accessory, s)).join(', ') || 'none'})` }
      : { ok: true, secret };
  };
  if (engine === 'postgres') {
    const user = env.POSTGRES_USER ?? 'postgres';
    const password = secretAt(env.POSTGRES_PASSWORD_FILE, 'POSTGRES_PASSWORD_FILE');
    if (!password.ok) return password;
    return { ok: true, shared: { accessory: name, engine, database: env.POSTGRES_DB ?? user, user, passwordSecret: password.secret, adminUser: user, adminPasswordFile: env.POSTGRES_PASSWORD_FILE! } };
  }
  const pick = (key: string) => env[`MYSQL_${key}`] ?? env[`MARIADB_${key}`];
  const database = pick('DATABASE');
  const user = pick('USER');
  if (database === undefined || user === undefined) return { ok: false, message: 'perBranch: database needs MYSQL_DATABASE and MYSQL_USER (or MARIADB_DATABASE and MARIADB_USER) in the accessory\'s env: the app\'s database and user' };
  const password = secretAt(pick('PASSWORD_FILE'), 'MYSQL_PASSWORD_FILE');
  if (!password.ok) return password;
  const rootFile = pick('ROOT_PASSWORD_FILE');
  const root = secretAt(rootFile, 'MYSQL_ROOT_PASSWORD_FILE');
  if (!root.ok) return root;
  return { ok: true, shared: { accessory: name, engine, database, user, passwordSecret: password.secret, adminUser: 'root', adminPasswordFile: rootFile! } };
}

/**
 * Identifier length limits: PostgreSQL's NAMEDATALEN-1 (63 bytes) for databases and roles; MySQL's 64 characters
 * for a database and 32 for a user name (MySQL 5.7+, MariaDB 10+).
 */
export const NAME_LIMITS: Record<DatabaseEngine, { database: number; user: number }> = {
  postgres: { database: 63, user: 63 },
  mysql: { database: 64, user: 32 },
};

/**
 * `<shared>_<branch label>`, lower case, letters, digits and `_` only (so a name needs no quoting in any client
 * and means the same on every server), within `limit` bytes: a longer one keeps its start and ends in `_` and 8
 * hex characters of the whole, so two long branch names never share a database.
 */
export function branchName(shared: string, label: string, limit: number): string {
  const full = `${shared}_${label}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (full.length <= limit) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, limit - hash.length - 1)}_${hash}`;
}

/** One branch's database on one accessory. */
export interface BranchDatabase {
  shared: SharedDatabase;
  /** The branch deploy's version label (its services' `depl.version`). */
  version: string;
  database: string;
  user: string;
  /** The swarm secret with the branch user's generated password; it is also the record that the database exists. */
  secret: string;
}

/** The record secret of a branch's database on an accessory (SQL and Redis alike). */
export function branchRecordSecret(app: string, accessory: string, version: string): string {
  const hash = createHash('sha256').update(`${app}\0${accessory}\0${version}`).digest('hex').slice(0, 10);
  // app (<= 20) + accessory (<= 20) + 16: within the swarm's 64 characters for an object name
  return `${app}-${accessory}-db-${hash}`;
}

export function branchDatabaseOf(app: string, shared: SharedDatabase, version: string): BranchDatabase {
  const limits = NAME_LIMITS[shared.engine];
  return {
    shared, version,
    database: branchName(shared.database, version, limits.database),
    user: branchName(shared.user, version, limits.user),
    secret: branchRecordSecret(app, shared.accessory, version),
  };
}

/** Labels of the record secret: what prune reads to find (and drop) the branch databases. */
export const BRANCH_DATABASE_LABELS = {
  accessory: 'depl.branch-database',
  database: 'depl.branch-database.name',
  user: 'depl.branch-database.user',
  /** On a job: what it does to the branch database (BranchDatabaseAction). */
  action: 'depl.branch-database.action',
  /** On a Redis branch's record and jobs: `database` or `prefix` (the name label holds the number or the prefix). */
  redis: 'depl.branch-database.redis',
} as const;

export function branchDatabaseSecretLabels(app: string, db: BranchDatabase, branch?: string): Record<string, string> {
  return {
    [LABELS.app]: app, [LABELS.version]: db.version, ...(branch !== undefined ? { [LABELS.branch]: branch } : {}),
    [BRANCH_DATABASE_LABELS.accessory]: db.shared.accessory, [BRANCH_DATABASE_LABELS.database]: db.database, [BRANCH_DATABASE_LABELS.user]: db.user,
  };
}

/** The labels of a Redis branch's record secret (src/plan/branch-redis.ts): its number or prefix. */
export function redisRecordLabels(app: string, record: RedisRecordSlot, branch?: string): Record<string, string> {
  return {
    [LABELS.app]: app, [LABELS.version]: record.version, ...(branch !== undefined ? { [LABELS.branch]: branch } : {}),
    [BRANCH_DATABASE_LABELS.accessory]: record.accessory, [BRANCH_DATABASE_LABELS.redis]: record.redis.mode, [BRANCH_DATABASE_LABELS.database]: slotText(record.redis),
  };
}

/** A SQL branch database as read from its record secret's labels. */
export interface SqlDatabaseRecord {
  secret: string;
  accessory: string;
  version: string;
  database: string;
  user: string;
}

/** A branch's record: a SQL database and user, or a Redis number or prefix. */
export type BranchDatabaseRecord = SqlDatabaseRecord | RedisRecordSlot;

export function isRedisRecord(record: BranchDatabaseRecord): record is RedisRecordSlot {
  return 'redis' in record;
}

/** What a record names, for messages: `shop_feature_login`, `redis database 3`, `redis keys depl-branch:x:*`. */
export function recordName(record: BranchDatabaseRecord): string {
  if (!isRedisRecord(record)) return record.database;
  return record.redis.mode === 'database' ? `${record.accessory} database ${record.redis.number}` : `${record.accessory} keys ${record.redis.prefix}*`;
}

export function recordFromLabels(secret: string, labels: Record<string, string>): BranchDatabaseRecord | null {
  const accessory = labels[BRANCH_DATABASE_LABELS.accessory];
  const version = labels[LABELS.version];
  const database = labels[BRANCH_DATABASE_LABELS.database];
  const user = labels[BRANCH_DATABASE_LABELS.user];
  const redis = labels[BRANCH_DATABASE_LABELS.redis];
  if (accessory === undefined || version === undefined || database === undefined) return null;
  if (redis !== undefined) {
    const slot = slotFromText(redis, database);
    return slot === null ? null : { secret, accessory, version, redis: slot };
  }
  if (user === undefined) return null;
  return { secret, accessory, version, database, user };
}

// ---- quoting ----

/** A PostgreSQL (and SQL-standard) delimited identifier: in double quotes, a double quote doubled. */
export function quotePgIdentifier(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A PostgreSQL string literal (standard_conforming_strings on, the default since 9.1): a single quote doubled. */
export function quotePgLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a string cannot contain NUL');
  return `'${value.replace(/'/g, "''")}'`;
}

/** A MySQL identifier: in backticks, a backtick doubled. */
export function quoteMysqlIdentifier(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain NUL');
  return `\`${name.replace(/`/g, '``')}\``;
}

/**
 * A MySQL string literal that means the same with and without NO_BACKSLASH_ESCAPES: a single quote doubled, and a
 * backslash refused (there is no spelling of it that both modes read alike). Branch names never have one.
 */
export function quoteMysqlLiteral(value: string): string {
  if (value.includes('\\') || value.includes('\0')) throw new Error(`a MySQL string depl writes cannot contain a backslash or NUL: ${JSON.stringify(value)}`);
  return `'${value.replace(/'/g, "''")}'`;
}

// ---- SQL ----

/** Where the job finds the branch user's password: the record secret, mounted under this file name. */
export const BRANCH_PASSWORD_MOUNT = '/run/secrets/depl-branch-password';
/** The placeholder the MySQL script puts the (hex-checked) password in for: MySQL's client has no variables. */
const MYSQL_PASSWORD_PLACEHOLDER = '@BRANCH_PASSWORD@';

/**
 * Makes the branch's user and database, or brings a half-made pair to the same end (a rerun after a kill): the
 * user is made when missing and its password set to the record's, the database made when missing and owned
 * by (granted to) the user. Postgres: `CREATE DATABASE` cannot run in a transaction or a DO block, so each
 * statement is chosen by a query and run with psql's \gexec; the password is psql's `:'branch_password'`
 * variable (quoted by psql), never in the text.
 */
export function createSql(db: BranchDatabase): string {
  const { database, user } = db;
  if (db.shared.engine === 'postgres') {
    const [role, name] = [quotePgIdentifier(user), quotePgIdentifier(database)];
    return [
      `SELECT ${quotePgLiteral(`CREATE ROLE ${role} LOGIN`)} WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quotePgLiteral(user)})`,
      '\\gexec',
      `ALTER ROLE ${role} WITH LOGIN PASSWORD :'branch_password';`,
      `SELECT ${quotePgLiteral(`CREATE DATABASE ${name} OWNER ${role}`)} WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = ${quotePgLiteral(database)})`,
      '\\gexec',
      `ALTER DATABASE ${name} OWNER TO ${role};`,
      `REVOKE ALL ON DATABASE ${name} FROM PUBLIC;`,
      '',
    ].join('\n');
  }
  const account = `${quoteMysqlLiteral(user)}@'%'`;
  const password = quoteMysqlLiteral(MYSQL_PASSWORD_PLACEHOLDER);
  return [
    `CREATE DATABASE IF NOT EXISTS ${quoteMysqlIdentifier(database)};`,
    `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ${password};`,
    `ALTER USER ${account} IDENTIFIED BY ${password};`,
    `GRANT ALL PRIVILEGES ON ${quoteMysqlIdentifier(database)}.* TO ${account};`,
    '',
  ].join('\n');
}

/** Drops the branch's database (its connections ended: its services are gone by now) and its user; either may be gone already. */
export function dropSql(db: Pick<BranchDatabase, 'database' | 'user'> & { shared: Pick<SharedDatabase, 'engine'> }): string {
  if (db.shared.engine === 'postgres') {
    return [`DROP DATABASE IF EXISTS ${quotePgIdentifier(db.database)} WITH (FORCE);`, `DROP ROLE IF EXISTS ${quotePgIdentifier(db.user)};`, ''].join('\n');
  }
  return [`DROP DATABASE IF EXISTS ${quoteMysqlIdentifier(db.database)};`, `DROP USER IF EXISTS ${quoteMysqlLiteral(db.user)}@'%';`, ''].join('\n');
}

/** Counts the branch database's own tables: a seed goes only into an empty one (a rerun never seeds twice). */
function tablesSql(db: Pick<BranchDatabase, 'database'> & { shared: Pick<SharedDatabase, 'engine'> }): string {
  return db.shared.engine === 'postgres'
    ? "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
    : `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ${quoteMysqlLiteral(db.database)}`;
}

// ---- the job's shell lines ----

export type BranchDatabaseAction = 'create' | 'drop' | 'dump';

/** What a new branch database starts with (depl.yaml's `seed:`): the shared database's schema, or a dump file of the project. */
export type BranchSeed = 'schema' | { file: string };

/** Where the create job finds a seed file: the manager's copy of it, bind-mounted read-only (the job runs on the manager). */
export const SEED_MOUNT = '/run/depl-seed.dump';

/** Where the seed file is copied on the manager for the job (0644 in a 0700 folder: only the job's container reads it). */
export function seedFileOnManager(app: string, secret: string, root = '/var/lib/depl'): string {
  return `${root}/${app}/seeds/${secret}.dump`;
}

/** `seeded with shop's schema`, `seeded from .depl/backups/x.sql`. */
export function describeSeed(seed: BranchSeed, shared: Pick<SharedDatabase, 'database'>): string {
  return seed === 'schema' ? `seeded with ${shared.database}'s schema` : `seeded from ${seed.file}`;
}

/** The dump job's exit code when the database is not there (a prune killed after its drop): nothing to back up. */
export const DATABASE_GONE_EXIT = 4;

/** Where the job reaches the server: the accessory's name on the app's network (tests: a local server's address). */
export interface ServerAddress {
  host: string;
}

/**
 * The shell script a job runs with the accessory's image: `create` (and `seed: schema`: the shared database's
 * schema, only into an empty branch database, in one transaction), `drop`, or `dump` (the branch database as SQL
 * on stdout: prune's backup). The admin logs in with its password file; passwords never appear in the script.
 */
export function branchDatabaseScript(
  db: BranchDatabase | (Pick<BranchDatabase, 'database' | 'user'> & { shared: SharedDatabase }), action: BranchDatabaseAction,
  options: { seed?: BranchSeed; server?: ServerAddress; branchPasswordFile?: string; seedPath?: string } = {},
): string {
  const { shared } = db;
  const passwordFile = options.branchPasswordFile ?? BRANCH_PASSWORD_MOUNT;
  const seedPath = shellQuote(options.seedPath ?? SEED_MOUNT);
  const seedName = options.seed !== undefined && options.seed !== 'schema' ? options.seed.file : '';
  const host = shellQuote(options.server?.host ?? shared.accessory);
  const lines = ['set -eu'];
  if (shared.engine === 'postgres') {
    lines.push(`PGPASSWORD="$(cat ${shellQuote(shared.adminPasswordFile)})"`, `PGHOST=${host}`, `PGUSER=${shellQuote(shared.adminUser)}`, 'export PGPASSWORD PGHOST PGUSER');
    const psql = 'psql -X -q -v ON_ERROR_STOP=1';
    // the accessory's task may run before its server takes connections (a first start's initdb)
    if (action === 'create') lines.push('i=0; until pg_isready -q; do i=$((i+1)); [ "$i" -lt 60 ] || break; sleep 1; done');
    if (action === 'dump') {
      lines.push(
        `exists="$(psql -X -At -v ON_ERROR_STOP=1 -d ${shellQuote(shared.database)} -c ${shellQuote(`SELECT count(*) FROM pg_catalog.pg_database WHERE datname = ${quotePgLiteral(db.database)}`)})"`,
        `[ "$exists" = 1 ] || exit ${DATABASE_GONE_EXIT}`,
        `exec pg_dump --no-owner --no-privileges -d ${shellQuote(db.database)}`,
      );
    } else if (action === 'drop') {
      // one -c each: several statements in one -c are one transaction, which DROP DATABASE refuses
      const statements = dropSql(db).split('\n').filter((l) => l !== '');
      lines.push(`${psql} -d ${shellQuote(shared.database)} ${statements.map((sql) => `-c ${shellQuote(sql)}`).join(' ')}`);
    } else {
      lines.push(
        `${psql} -d ${shellQuote(shared.database)} -v branch_password="$(cat ${shellQuote(passwordFile)})" <<'DEPL_SQL'`,
        createSql(db as BranchDatabase).trimEnd(),
        'DEPL_SQL',
      );
      if (options.seed === 'schema') {
        lines.push(
          `tables="$(psql -X -At -v ON_ERROR_STOP=1 -d ${shellQuote(db.database)} -c ${shellQuote(tablesSql(db))})"`,
          'if [ "$tables" = 0 ]; then',
          `  pg_dump --schema-only --no-owner --no-privileges -d ${shellQuote(shared.database)} > /tmp/depl-schema.sql`,
          // as the branch's user, so what the schema makes is the branch's own
          `  PGPASSWORD="$(cat ${shellQuote(passwordFile)})" PGUSER=${shellQuote(db.user)} ${psql} --single-transaction -d ${shellQuote(db.database)} -f /tmp/depl-schema.sql`,
          `  echo ${shellQuote(`seeded ${db.database} with the schema of ${shared.database}`)}`,
          'fi',
        );
      } else if (options.seed !== undefined) {
        // as the branch's user, so what the dump makes is the branch's own; pg_dump's custom format (PGDMP) goes through pg_restore
        const asBranch = `PGPASSWORD="$(cat ${shellQuote(passwordFile)})" PGUSER=${shellQuote(db.user)}`;
        lines.push(
          `tables="$(psql -X -At -v ON_ERROR_STOP=1 -d ${shellQuote(db.database)} -c ${shellQuote(tablesSql(db))})"`,
          'if [ "$tables" = 0 ]; then',
          `  if [ "$(head -c 5 ${seedPath})" = PGDMP ]; then`,
          `    ${asBranch} pg_restore --no-owner --no-privileges --single-transaction --exit-on-error -d ${shellQuote(db.database)} ${seedPath}`,
          '  else',
          `    ${asBranch} ${psql} --single-transaction -d ${shellQuote(db.database)} -f ${seedPath}`,
          '  fi',
          `  echo ${shellQuote(`seeded ${db.database} from ${seedName}`)}`,
          'fi',
        );
      }
    }
    return lines.join('\n') + '\n';
  }
  // MariaDB 11's images have only `mariadb` and `mariadb-dump`; MySQL's only `mysql` and `mysqldump`
  lines.push(
    `MYSQL_PWD="$(cat ${shellQuote(shared.adminPasswordFile)})"`, 'export MYSQL_PWD',
    'client="$(command -v mariadb || command -v mysql)"', 'dumper="$(command -v mariadb-dump || command -v mysqldump)"',
  );
  const client = `"$client" -h ${host} -u ${shellQuote(shared.adminUser)}`;
  if (action === 'create') lines.push(`i=0; until ${client} -e 'SELECT 1' >/dev/null 2>&1; do i=$((i+1)); [ "$i" -lt 60 ] || break; sleep 1; done`);
  if (action === 'dump') {
    lines.push(
      `exists="$(${client} -N -B -e ${shellQuote(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${quoteMysqlLiteral(db.database)}`)})"`,
      `[ "$exists" = 1 ] || exit ${DATABASE_GONE_EXIT}`,
      `exec "$dumper" -h ${host} -u ${shellQuote(shared.adminUser)} --single-transaction --routines ${shellQuote(db.database)}`,
    );
  } else if (action === 'drop') {
    lines.push(`${client} -e ${shellQuote(dropSql(db))}`);
  } else {
    lines.push(
      // generated by depl as hex; checked, since it goes into the SQL text (MySQL's client has no variables)
      `password="$(cat ${shellQuote(passwordFile)})"`,
      'case "$password" in ""|*[!0-9a-f]*) echo "the branch password is not the hex depl generates" >&2; exit 3;; esac',
      `printf '%s' ${shellQuote(createSql(db as BranchDatabase))} | sed "s/${MYSQL_PASSWORD_PLACEHOLDER}/$password/g" | ${client}`,
    );
    if (options.seed === 'schema') {
      lines.push(
        `tables="$(${client} -N -B -e ${shellQuote(tablesSql(db))})"`,
        'if [ "$tables" = 0 ]; then',
        `  "$dumper" -h ${host} -u ${shellQuote(shared.adminUser)} --no-data --routines ${shellQuote(shared.database)} > /tmp/depl-schema.sql`,
        `  ${client} ${shellQuote(db.database)} < /tmp/depl-schema.sql`,
        `  echo ${shellQuote(`seeded ${db.database} with the schema of ${shared.database}`)}`,
        'fi',
      );
    } else if (options.seed !== undefined) {
      lines.push(
        `tables="$(${client} -N -B -e ${shellQuote(tablesSql(db))})"`,
        'if [ "$tables" = 0 ]; then',
        `  ${client} ${shellQuote(db.database)} < ${seedPath}`,
        `  echo ${shellQuote(`seeded ${db.database} from ${seedName}`)}`,
        'fi',
      );
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * The one-off job that runs a script: the accessory's own spec (its image, env, secrets, network, placement)
 * without its volume (the job talks to the server over the network, never to its files) and without its
 * health check, with the record secret mounted where the scripts read the branch password. `id`: a few hex
 * characters naming the job (plan/ makes no random ones).
 */
export function branchDatabaseJob(input: {
  app: string; db: Pick<BranchDatabase, 'version' | 'secret' | 'database'> & { shared: Pick<SharedDatabase, 'accessory'> }; accessorySpec: InspectedServiceSpec;
  script: string; action: BranchDatabaseAction; by: string; at: string; secretRef?: SwarmSecretRef;
  /** A seed file's copy on `node` (the manager), mounted read-only at SEED_MOUNT: the job runs there. */
  seedFile?: { source: string; node: string };
  /** Redis jobs say which kind of slot they act on (src/plan/branch-redis.ts). */
  redis?: string;
}): JobSpec {
  const { db } = input;
  const template = input.accessorySpec.TaskTemplate ?? {};
  const { Mounts: _mounts, ...container } = (template.ContainerSpec ?? {}) as Record<string, unknown>;
  const seed = input.seedFile;
  const spec: InspectedServiceSpec = {
    ...input.accessorySpec,
    TaskTemplate: {
      ...template,
      ContainerSpec: seed === undefined ? container : { ...container, Mounts: [{ Type: 'bind', Source: seed.source, Target: SEED_MOUNT, ReadOnly: true }] },
      ...(seed === undefined ? {} : { Placement: { Constraints: [`node.hostname==${seed.node}`] } }),
    },
  };
  const job = planRunJob({
    app: input.app, version: db.version, service: db.shared.accessory, spec, command: ['-c', input.script], entrypoint: 'sh',
    id: createHash('sha256').update(`${input.app}\0${db.secret}\0${input.action}`).digest('hex').slice(0, 6), purpose: 'database', by: input.by, startedAt: input.at,
  });
  const labels = {
    ...job.Labels, [BRANCH_DATABASE_LABELS.action]: input.action, [BRANCH_DATABASE_LABELS.database]: db.database,
    ...(input.redis !== undefined ? { [BRANCH_DATABASE_LABELS.redis]: input.redis } : {}),
  };
  const labelled: JobSpec = { ...job, Labels: labels, TaskTemplate: { ...job.TaskTemplate, ContainerSpec: { ...job.TaskTemplate.ContainerSpec, Labels: labels } } };
  if (input.secretRef === undefined) return labelled;
  const secrets = ((job.TaskTemplate.ContainerSpec.Secrets as unknown[] | undefined) ?? []).concat([{
    File: { Name: BRANCH_PASSWORD_MOUNT, UID: '0', GID: '0', Mode: 0o444 }, SecretID: input.secretRef.id, SecretName: input.secretRef.name,
  }]);
  return { ...labelled, TaskTemplate: { ...labelled.TaskTemplate, ContainerSpec: { ...labelled.TaskTemplate.ContainerSpec, Secrets: secrets } } };
}

// ---- the branch's services see their own database ----

/**
 * depl.yaml as a branch deploy's services see it: every URL to the accessory (`postgres://app@db:5432/app` in a
 * service's env or in config:) names the branch's user and database, and every env value or config: string
 * equal to the shared database's (or user's) name, under a key that names a database (or user), is the
 * branch's. Passwords are files: the caller mounts the branch's password secret under the shared one's file
 * name (`secretRefs`), so an app reads its database settings exactly as on the main line.
 */
export function branchConfig(config: DeplConfig, dbs: readonly BranchDatabase[]): DeplConfig {
  if (dbs.length === 0) return config;
  const services = Object.fromEntries(Object.entries(config.services).map(([name, svc]) => [name, {
    ...svc, env: Object.fromEntries(Object.entries(svc.env).map(([key, value]) => [key, rewriteValue(key, value, dbs)])),
  }]));
  return { ...config, services, config: rewriteDocument(config.config, '', dbs) as Record<string, unknown> };
}

function rewriteDocument(value: unknown, key: string, dbs: readonly BranchDatabase[]): unknown {
  if (typeof value === 'string') return rewriteValue(key, value, dbs);
  if (Array.isArray(value)) return value.map((item) => rewriteDocument(item, key, dbs));
  // the key is the path (`database.name`): a name's meaning may be in its parent's key
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteDocument(v, key === '' ? k : `${key}.${k}`, dbs)]));
  return value;
}

const NAMES_DATABASE = /(^|[^a-z])(db|database|dbname|schema)($|[^a-z])|database/i;
const NAMES_USER = /user/i;

function rewriteValue(key: string, value: string, dbs: readonly BranchDatabase[]): string {
  for (const db of dbs) {
    const url = rewriteUrl(value, db);
    if (url !== null) return url;
  }
  const last = key.slice(key.lastIndexOf('.') + 1);
  for (const db of dbs) {
    if (value === db.shared.user && NAMES_USER.test(last)) return db.user;
    if (value === db.shared.database && NAMES_DATABASE.test(key) && !NAMES_USER.test(last)) return db.database;
  }
  return value;
}

/** `scheme://[user[:x]@]<accessory>[:port]/<shared database>[?...]` -> the branch's user and database; null for any other value. */
function rewriteUrl(value: string, db: BranchDatabase): string | null {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(?:([^@/?#:]*)(:[^@/?#]*)?@)?([^/?#:]+)(:\d+)?(\/[^?#]*)?(.*)$/i.exec(value);
  if (match === null) return null;
  const [, scheme, user, password, host, port, path, rest] = match;
  if (host !== db.shared.accessory) return null;
  const database = path === undefined || path === '/' ? path : decodeURIComponent(path.slice(1)) === db.shared.database ? `/${db.database}` : path;
  const userinfo = user === undefined ? '' : `${decodeURIComponent(user) === db.shared.user ? db.user : user}${password ?? ''}@`;
  return `${scheme}${userinfo}${host}${port ?? ''}${database ?? ''}${rest ?? ''}`;
}
