import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { planInstall, type InstallFacts, type InstallStep } from '../../../src/plan/install-plan.js';
import { emptyReleaseState } from '../../../src/plan/release-state.js';

/** A branch deploy's install plan with a perBranch: database accessory, as data (src/plan/install-plan.ts, src/plan/branch-database.ts). */
const yaml = `
app: shop
domain: shop.test
services:
  api:
    image: "shop:1"
    port: 3000
    http: true
    env: { DATABASE_URL: "postgres://shop@db:5432/shop" }
    secrets: [db_password]
accessories:
  db:
    image: "postgres:16"
    env: { POSTGRES_USER: shop, POSTGRES_PASSWORD_FILE: /run/secrets/db_password }
    secrets: [db_password]
    volume: "pg-data:/var/lib/postgresql/data"
    perBranch: database
    seed: schema
secrets: [db_password]
release: { service: api, command: [migrate, up] }
`;
const facts = (over: Partial<InstallFacts> = {}, text = yaml): InstallFacts => {
  const config = parseConfig(text);
  return {
    config, version: 'feature-login', branch: 'feature/login', command: 'depl buildinst --branch feature/login', present: [], foreign: [], state: emptyReleaseState(config.app),
    installed: [], earlierSpecs: [], secrets: [{ secret: 'db_password', name: 'shop-db_password-1' }],
    cluster: { network: 'shop-net', nodes: ['m1'], manager: 'm1' }, tls: 'off', at: '2026-12-06T10:00:00Z', by: 'ops@test', ...over,
  };
};
const plan = (f: InstallFacts) => {
  const result = planInstall(f);
  if (!result.ok) throw new Error(result.refusal.message);
  return result.plan;
};
const kinds = (steps: InstallStep[]) => steps.map((s) => ('spec' in s ? `${s.kind} ${s.spec.Name}` : s.kind));

describe('a branch deploy with a perBranch database', () => {
  it('makes the branch database after the accessory runs and before the release phase; the services and the release job see it', () => {
    const p = plan(facts());
    const k = kinds(p.steps);
    expect(k.slice(k.indexOf('write-install-intent'), k.indexOf('create-service shop-feature-login-api') + 1)).toEqual([
      'write-install-intent', 'await-tasks', 'branch-database', 'release-phase', 'create-service shop-feature-login-api',
    ]);
    const step = p.steps.find((s): s is Extract<InstallStep, { kind: 'branch-database' }> => s.kind === 'branch-database')!;
    expect(step).toMatchObject({
      accessory: 'db', engine: 'postgres', database: 'shop_feature_login', user: 'shop_feature_login', create: true, seed: 'schema',
      secretLabels: { 'depl.app': 'shop', 'depl.version': 'feature-login', 'depl.branch': 'feature/login', 'depl.branch-database': 'db' },
      undo: expect.stringContaining('drop shop_feature_login'),
    });
    expect(step.job.TaskTemplate.ContainerSpec.Args[1]).toContain('pg_dump --schema-only');
    expect(step.dropJob.TaskTemplate.ContainerSpec.Args[1]).toContain('DROP DATABASE IF EXISTS');
    // a job a killed run left is named in the install record, so the repair removes it
    expect(p.steps.find((s) => s.kind === 'write-install-intent')).toMatchObject({ services: expect.arrayContaining([step.job.Name, step.dropJob.Name]) });
    const api = p.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service')!;
    expect(api.spec.TaskTemplate.ContainerSpec.Env).toContain('DATABASE_URL=postgres://shop_feature_login@db:5432/shop_feature_login');
    // the branch's password under the file name the app reads
    expect(api.spec.TaskTemplate.ContainerSpec.Secrets).toEqual([expect.objectContaining({ File: expect.objectContaining({ Name: 'db_password' }), SecretName: step.secret })]);
    const release = p.steps.find((s): s is Extract<InstallStep, { kind: 'release-phase' }> => s.kind === 'release-phase')!;
    expect(release.job.TaskTemplate.ContainerSpec.Env).toContain('DATABASE_URL=postgres://shop_feature_login@db:5432/shop_feature_login');
    expect(release.job.TaskTemplate.ContainerSpec.Secrets).toEqual([expect.objectContaining({ SecretName: step.secret })]);
  });

  it('a redeploy keeps its database (no undo); a record a killed run left is finished, not made again', () => {
    const present = [{ name: 'shop-feature-login-api', labels: { 'depl.app': 'shop', 'depl.version': 'feature-login', 'depl.service': 'api', 'depl.branch': 'feature/login' }, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image: 'shop:1' }];
    const redeploy = plan(facts({ present, installed: [{ label: 'feature-login', branch: 'feature/login', services: ['shop-feature-login-api'], createdAt: '2026-12-01T00:00:00Z' }] }));
    const step = redeploy.steps.find((s) => s.kind === 'branch-database')!;
    expect(step).toMatchObject({ create: false });
    expect('undo' in step && step.undo).toBeFalsy();
    const first = plan(facts()).steps.find((s) => s.kind === 'branch-database')!;
    const left = plan(facts({ branchDatabases: [{ secret: (first as { secret: string }).secret, accessory: 'db', version: 'feature-login', database: 'shop_feature_login', user: 'shop_feature_login' }] }));
    expect(left.steps.find((s) => s.kind === 'branch-database')!.describe).toContain('a killed earlier run made part of it');
  });

  it('seed: { file } copies the project\'s dump to the manager and mounts it read-only in the create job, pinned there', () => {
    const text = yaml.replace('seed: schema', 'seed: { file: .depl/backups/shop-db-main.sql }');
    const p = plan(facts({ seedFiles: { db: '/project/.depl/backups/shop-db-main.sql' }, stateRoot: '/srv/depl' }, text));
    const step = p.steps.find((s): s is Extract<InstallStep, { kind: 'branch-database' }> => s.kind === 'branch-database')!;
    const to = `/srv/depl/shop/seeds/${step.secret}.dump`;
    expect(step).toMatchObject({ seed: { file: '.depl/backups/shop-db-main.sql' }, seedUpload: { from: '/project/.depl/backups/shop-db-main.sql', to } });
    expect(step.describe).toContain('seeded from .depl/backups/shop-db-main.sql');
    const create = step.job.TaskTemplate as { ContainerSpec: { Mounts?: unknown[]; Args: string[] }; Placement?: { Constraints?: string[] } };
    expect(create.ContainerSpec.Mounts).toEqual([{ Type: 'bind', Source: to, Target: '/run/depl-seed.dump', ReadOnly: true }]);
    expect(create.Placement?.Constraints).toEqual(['node.hostname==m1']);
    expect(create.ContainerSpec.Args[1]).toContain('-f /run/depl-seed.dump');
    expect(create.ContainerSpec.Args[1]).not.toContain('pg_dump --schema-only');
    // the drop job needs no file
    expect((step.dropJob.TaskTemplate.ContainerSpec as { Mounts?: unknown[] }).Mounts).toBeUndefined();
  });

  it('the main line keeps the shared database: no branch step, the env as written', () => {
    const p = plan(facts({ version: 'v3', command: 'depl buildinst --version v3', branch: undefined } as Partial<InstallFacts>));
    expect(kinds(p.steps)).not.toContain('branch-database');
    const api = p.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service')!;
    expect(api.spec.TaskTemplate.ContainerSpec.Env).toContain('DATABASE_URL=postgres://shop@db:5432/shop');
  });

  it('an accessory whose env does not say where its password is refuses the install before anything changes', () => {
    const result = planInstall(facts({}, yaml.replace('POSTGRES_PASSWORD_FILE: /run/secrets/db_password', 'POSTGRES_DB: shop')));
    expect(result).toMatchObject({ ok: false, refusal: { code: 'BRANCH_DATABASE_CONFIG', message: expect.stringContaining('POSTGRES_PASSWORD_FILE') } });
  });
});
