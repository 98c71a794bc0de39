import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { planInstall, type InstallFacts, type InstallStep } from '../../../src/plan/install-plan.js';
import { emptyReleaseState } from '../../../src/plan/release-state.js';

/** A branch deploy's install plan with a perBranch redis accessory, as data (src/plan/install-plan.ts, src/plan/branch-redis.ts). */
const yaml = (mode = 'database') => `
app: shop
domain: shop.test
services:
  api: { image: "shop:1", port: 3000, http: true, env: { REDIS_URL: "redis://redis:6379" }, secrets: [redis_password] }
accessories:
  redis: { image: "redis:7", secrets: [redis_password], perBranch: ${mode} }
secrets: [redis_password]
release: { service: api, command: [migrate, up] }
`;
const facts = (over: Partial<InstallFacts> = {}, text = yaml()): InstallFacts => {
  const config = parseConfig(text);
  return {
    config, version: 'feature-login', branch: 'feature/login', command: 'depl buildinst --branch feature/login', present: [], foreign: [], state: emptyReleaseState(config.app),
    installed: [], earlierSpecs: [], secrets: [{ secret: 'redis_password', name: 'shop-redis_password-1' }],
    cluster: { network: 'shop-net', nodes: ['m1'], manager: 'm1' }, tls: 'off', at: '2026-12-06T10:00:00Z', by: 'ops@test', ...over,
  };
};
const redisStep = (steps: InstallStep[]) => steps.find((s): s is Extract<InstallStep, { kind: 'branch-redis' }> => s.kind === 'branch-redis')!;

describe('a branch deploy with a perBranch redis accessory', () => {
  it('checks and records its number after the accessory runs and before the release phase; its services and release job use it', () => {
    const result = planInstall(facts());
    if (!result.ok) throw new Error(result.refusal.message);
    const kinds = result.plan.steps.map((s) => s.kind);
    expect(kinds.slice(kinds.indexOf('write-install-intent'), kinds.indexOf('release-phase') + 1)).toEqual(['write-install-intent', 'await-tasks', 'branch-redis', 'release-phase']);
    const step = redisStep(result.plan.steps);
    expect(step).toMatchObject({
      accessory: 'redis', mode: 'database', slot: '1', recorded: false, undo: expect.stringContaining('empty database 1 on redis'),
      secretLabels: { 'depl.branch-database': 'redis', 'depl.branch-database.redis': 'database', 'depl.branch-database.name': '1', 'depl.version': 'feature-login' },
    });
    expect(step.job.TaskTemplate.ContainerSpec.Args[1]).toContain('no depl record accounts for');
    expect(result.plan.steps.find((s) => s.kind === 'write-install-intent')).toMatchObject({ services: expect.arrayContaining([step.job.Name, step.dropJob.Name]) });
    const api = result.plan.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service')!;
    expect(api.spec.TaskTemplate.ContainerSpec.Env).toContain('REDIS_URL=redis://redis:6379/1');
    const release = result.plan.steps.find((s): s is Extract<InstallStep, { kind: 'release-phase' }> => s.kind === 'release-phase')!;
    expect(release.job.TaskTemplate.ContainerSpec.Env).toContain('REDIS_URL=redis://redis:6379/1');
  });

  it('a redeploy keeps its recorded number with no emptiness check and no undo; the main line has no step', () => {
    const record = { accessory: 'redis', version: 'feature-login', secret: '', redis: { mode: 'database' as const, number: 4 } };
    const first = planInstall(facts());
    if (!first.ok) throw new Error('refused');
    record.secret = redisStep(first.plan.steps).secret;
    const present = [{ name: 'shop-feature-login-api', labels: { 'depl.app': 'shop', 'depl.version': 'feature-login', 'depl.service': 'api', 'depl.branch': 'feature/login' }, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image: 'shop:1' }];
    const again = planInstall(facts({ present, installed: [{ label: 'feature-login', branch: 'feature/login', services: ['shop-feature-login-api'], createdAt: '2026-12-01T00:00:00Z' }], branchDatabases: [record] }));
    if (!again.ok) throw new Error('refused');
    const step = redisStep(again.plan.steps);
    expect(step).toMatchObject({ slot: '4', recorded: true });
    expect(step.undo).toBeUndefined();
    expect(step.job.TaskTemplate.ContainerSpec.Args[1]).not.toContain('no depl record accounts for');
    const main = planInstall(facts({ version: 'v3', branch: undefined } as Partial<InstallFacts>));
    expect(main.ok && main.plan.steps.some((s) => s.kind === 'branch-redis')).toBe(false);
  });

  it('prefix: the branch\'s services get DEPL_REDIS_KEY_PREFIX, their URLs unchanged', () => {
    const result = planInstall(facts({}, yaml('prefix')));
    if (!result.ok) throw new Error(result.refusal.message);
    expect(redisStep(result.plan.steps)).toMatchObject({ mode: 'prefix', slot: 'depl-branch:feature-login:' });
    const api = result.plan.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service')!;
    expect(api.spec.TaskTemplate.ContainerSpec.Env).toEqual(expect.arrayContaining(['REDIS_URL=redis://redis:6379', 'DEPL_REDIS_KEY_PREFIX=depl-branch:feature-login:']));
  });

  it('refuses a seed on redis, and a prefix on postgres, before anything changes', () => {
    expect(() => parseConfig(yaml('prefix').replace('perBranch: prefix', 'perBranch: prefix, seed: schema'))).toThrow(/a key prefix \(perBranch: prefix\) has nothing to seed/);
    expect(planInstall(facts({}, yaml().replace('perBranch: database', 'perBranch: database, seed: schema')))).toMatchObject({ ok: false, refusal: { code: 'BRANCH_DATABASE_CONFIG' } });
    expect(planInstall(facts({}, yaml('prefix').replace('image: "redis:7"', 'image: "postgres:16"')))).toMatchObject({ ok: false, refusal: { code: 'BRANCH_DATABASE_CONFIG', message: expect.stringContaining('redis or valkey image') } });
  });
});
