import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInstallIntent } from '../../../src/apply/install-intent.js';
import { recordName } from '../../../src/plan/branch-database.js';
import { parseConfig } from '../../../src/config/load.js';
import type { SecretDocument } from '../../../src/plan/services.js';
import { Secret } from '../../../src/util/secret.js';
import { pruneVersions } from '../../../src/workflows/prune.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { fakeBranchDatabases, Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * Branch databases on the fake cluster (src/plan/branch-database.ts): a branch deploy gets its database before its
 * release phase, a failure leaves nothing half-made, a killed buildinst is finished by the next, and prune backs
 * the database up before it drops it, also when killed after any of its steps.
 */
const yaml = `
app: shop
domain: shop.test
services:
  worker: { image: "shop:1", env: { DATABASE_URL: "postgres://shop@db:5432/shop" }, secrets: [db_password] }
accessories:
  db:
    image: "postgres:16"
    env: { POSTGRES_USER: shop, POSTGRES_PASSWORD_FILE: /run/secrets/db_password }
    secrets: [db_password]
    volume: "pg-data:/var/lib/postgresql/data"
    perBranch: database
    seed: schema
secrets: [db_password]
release: { service: worker, command: [migrate, up] }
`;
const BRANCH = { branch: 'feature/login' };
const LABEL = 'feature-login';
const DB = 'shop_feature_login';

let fake: FakeCluster;
let backups: string;
beforeEach(async () => {
  fake = await startFakeCluster({ versions: [] });
  backups = await mkdtemp(path.join(tmpdir(), 'depl-branch-backups-'));
});
afterEach(async () => {
  await fake.close();
  await rm(backups, { recursive: true, force: true });
});

const secrets: SecretDocument[] = [{ secret: 'db_password', name: 'shop-db_password-1', data: new Secret('main-pw'), labels: { 'depl.app': 'shop' } }];
const { buildinst } = fakeBuildinst(() => fake, yaml);
const branchDeploy = (killAfter?: number) => buildinst(LABEL, killAfter, { ...BRANCH, secrets });
const records = () => fake.freshControl().install!.branchDatabases();
const prune = (afterStep?: (index: number) => void) => pruneVersions({ ...fake.freshControl(), branchDatabases: fakeBranchDatabases(fake, parseConfig(yaml), backups) }, { branches: ['main'] }, afterStep ? { afterStep } : {});

describe('branch databases on the fake cluster', () => {
  it('a branch deploy makes its database (seeded) before its release phase, whose job reads it; the main line makes none', async () => {
    await buildinst('v1', undefined, { secrets });
    expect(fake.swarm.databases.size).toBe(0);
    fake.swarm.calls.length = 0;
    await branchDeploy();
    const calls = fake.swarm.calls;
    const record = (await records())[0]!;
    expect(await records()).toEqual([{ secret: record.secret, accessory: 'db', version: LABEL, database: DB, user: DB }]);
    const made = calls.findIndex((c) => c.startsWith('run-job shop-database-db-'));
    expect(calls.indexOf(`ensure-secret ${record.secret}`)).toBeLessThan(made);
    expect(made).toBeLessThan(calls.findIndex((c) => c.startsWith('run-job shop-release-worker-')));
    expect(made).toBeLessThan(calls.indexOf(`create-service shop-${LABEL}-worker`));
    expect(fake.swarm.databases.get(DB)).toEqual({ seeded: true });
    const release = [...fake.swarm.jobs.values()].find((j) => (j.Name as string).startsWith('shop-release-') && (j.Labels as Record<string, string>)['depl.job.version'] === LABEL) as { TaskTemplate: { ContainerSpec: { Env: string[]; Secrets: { SecretName: string; SecretID: string; File: { Name: string } }[] } } };
    expect(release.TaskTemplate.ContainerSpec.Env).toContain(`DATABASE_URL=postgres://${DB}@db:5432/${DB}`);
    expect(release.TaskTemplate.ContainerSpec.Secrets).toEqual([expect.objectContaining({ SecretName: record.secret, SecretID: expect.stringMatching(/^secret-/), File: expect.objectContaining({ Name: 'db_password' }) })]);
  });

  it('seed: { file } streams the project\'s dump to the manager for the create job, and removes the copy after it', async () => {
    const dump = path.join(backups, 'shop-db-main.sql');
    await writeFile(dump, 'CREATE TABLE users (id int);\n');
    const seeded = fakeBuildinst(() => fake, yaml.replace('seed: schema', 'seed: { file: .depl/backups/shop-db-main.sql }'));
    await seeded.buildinst(LABEL, undefined, { ...BRANCH, secrets, seedFiles: { db: dump } });
    expect(fake.swarm.databases.get(DB)).toEqual({ seeded: true, seedFile: 'CREATE TABLE users (id int);\n' });
    const record = (await records())[0]!;
    expect(await readdir(path.join(fake.control.stateRoot!, 'shop', 'seeds'))).toEqual([]);
    expect(record.secret).toMatch(/^shop-db-db-/);
  });

  it('a create that fails leaves nothing half-made: no database, no record, no version, the job\'s error shown', async () => {
    fake.swarm.failDatabaseJobs.add('create');
    await expect(branchDeploy()).rejects.toMatchObject({ code: 'BRANCH_DATABASE_FAILED', message: expect.stringContaining('relation "users" already exists') });
    expect(fake.swarm.databases.size).toBe(0);
    expect(await records()).toEqual([]);
    expect(fake.versions).toEqual([]);
    expect(await readInstallIntent(fake.control.stateRemote, fake.app, fake.control.stateRoot)).toBeNull();
  });

  it('a release phase that fails after the database was made drops it again (the new branch is not installed)', async () => {
    fake.swarm.jobOutcome = { exitCode: 1, output: 'migration 7 failed\n' };
    await expect(branchDeploy()).rejects.toMatchObject({ code: 'RELEASE_FAILED' });
    expect(fake.swarm.databases.size).toBe(0);
    expect(await records()).toEqual([]);
  });

  it('killed after any step, the next buildinst finishes: one database, one record, the branch installed', async () => {
    for (let step = 0; ; step++) {
      await fake.close();
      fake = await startFakeCluster({ versions: [] });
      const killed = await branchDeploy(step).then(() => false, (error: unknown) => {
        if (!(error instanceof Killed)) throw error;
        return true;
      });
      if (!killed) break;
      await branchDeploy();
      expect([...fake.swarm.databases.keys()], `killed after step ${step + 1}`).toEqual([DB]);
      expect((await records()).map((r) => recordName(r)), `killed after step ${step + 1}`).toEqual([DB]);
      expect(fake.versions.map((v) => v.label)).toEqual([LABEL]);
    }
  }, 120_000);

  it('prune --branches backs the database up, then drops it and forgets its record; a failed backup drops nothing', async () => {
    await branchDeploy();
    fake.swarm.failDatabaseJobs.add('dump');
    await expect(prune()).rejects.toMatchObject({ code: 'BRANCH_DATABASE_BACKUP' });
    expect([...fake.swarm.databases.keys()]).toEqual([DB]);
    expect(await readdir(backups)).toEqual([]);
    fake.swarm.failDatabaseJobs.clear();
    fake.swarm.calls.length = 0;
    const result = await prune();
    expect(result.plan.steps.map((s) => s.kind).filter((k) => k.includes('branch-database'))).toEqual(['backup-branch-database', 'drop-branch-database', 'forget-branch-database']);
    expect(fake.swarm.databases.size).toBe(0);
    expect(await records()).toEqual([]);
    const files = await readdir(backups);
    expect(files).toEqual([expect.stringMatching(/^shop-db-feature-login-\d{8}-\d{6}\.sql$/)]);
    expect(await readFile(path.join(backups, files[0]!), 'utf8')).toBe(`-- dump of ${DB}\n`);
  });

  it('prune killed after any step: the next prune finishes, and the database was backed up before it was dropped', async () => {
    for (let step = 0; ; step++) {
      await fake.close();
      fake = await startFakeCluster({ versions: [] });
      await rm(backups, { recursive: true, force: true });
      await branchDeploy();
      const killed = await prune((index) => {
        if (index === step) throw new Killed(`after step ${index + 1}`);
      }).then(() => false, (error: unknown) => {
        if (!(error instanceof Killed)) throw error;
        return true;
      });
      if (!killed) break;
      await prune();
      expect(fake.swarm.databases.size, `killed after step ${step + 1}`).toBe(0);
      expect(await records()).toEqual([]);
      expect(fake.versions).toEqual([]);
      const files = await readdir(backups).catch(() => []);
      expect(files.filter((f) => f.endsWith('.sql')).length, `killed after step ${step + 1}: a whole backup`).toBeGreaterThanOrEqual(1);
    }
  }, 120_000);
});
