import { describe, expect, it } from 'vitest';
import { imageTagsCommand } from '../../../src/apply/app-leftovers.js';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import { planPruneChange, tagVersion, type PruneRead } from '../../../src/plan/prune.js';
import { emptyReleaseState, type InstalledVersion } from '../../../src/plan/release-state.js';

const version = (label: string, day: number, branch?: string): InstalledVersion => ({
  label, createdAt: `2026-11-${String(day).padStart(2, '0')}T00:00:00Z`, services: [`shop-${label}-web`, `shop-${label}-worker`],
  ...(branch !== undefined ? { branch } : {}),
});

/** v1..v5 installed, v5 live and v4 previous; what the cluster has besides: tags, jobs, configs, autoscale state. */
function read(overrides: Partial<PruneRead> = {}): PruneRead {
  return {
    app: 'shop',
    selection: { keep: 1 },
    state: { ...emptyReleaseState('shop'), live: 'v5', previous: 'v4' },
    installed: [version('v1', 1), version('v2', 2), version('v3', 3), version('v4', 4), version('v5', 5)],
    imageTags: { 'node-1': ['shop/web:v1', 'shop/web:v2', 'shop/web:v5'], 'node-2': ['shop/web:v5', 'shop/web:v0'] },
    jobs: [
      { name: 'shop-job-web-a1', labels: {}, progress: { kind: 'exited', exitCode: 0 } },
      { name: 'shop-job-web-b2', labels: {}, progress: { kind: 'running' } },
    ],
    configs: [
      { kind: 'config', name: 'shop-v1-web-1', usedBy: ['shop-v1-web'] },
      { kind: 'config', name: 'shop-v5-web-1', usedBy: ['shop-v5-web'] },
      { kind: 'secret', name: 'shop-token-1', usedBy: ['shop-v2-web', 'shop-v5-web'] },
      { kind: 'secret', name: 'shop-token-0', usedBy: [] },
    ],
    autoscaleStates: ['v1', 'v5'],
    stateRoot: '/var/lib/depl',
    certificates: true,
    ...overrides,
  };
}

describe('the prune plan', () => {
  it('--keep: keeps live, previous and the newest others, removes the rest and what only they used, in this order', () => {
    const planned = planPruneChange(read());
    if (!planned.ok) throw new Error(planned.message);
    const { plan } = planned;
    expect(plan.command).toBe('depl prune --keep 1');
    expect(plan.removed).toEqual(['v1', 'v2']);
    expect(plan.kept).toEqual([{ version: 'v3', why: 'recent' }, { version: 'v4', why: 'previous' }, { version: 'v5', why: 'live' }]);
    expect(plan.notes).toEqual([
      'keep v3: among the 1 newest others (--keep)',
      'keep v4: previous (what a rollback goes back to)',
      'keep v5: live',
      'remove v1: older than the 1 newest not live, canary or previous',
      'remove v2: older than the 1 newest not live, canary or previous',
    ]);
    expect(plan.steps).toEqual([
      { kind: 'release-change', request: { kind: 'prune', keep: 1 }, describe: 'take v1, v2 off the edge and record the prune' },
      { kind: 'sync-certificates', describe: 'drop the certificates no remaining version needs from the edge' },
      { kind: 'remove-autoscale-state', files: ['/var/lib/depl/shop/autoscale/v1.json', '/var/lib/depl/shop/autoscale/gates/v1'], describe: 'remove the autoscale state and engine gate folder of v1' },
      { kind: 'remove-services', version: 'v1', services: ['shop-v1-web', 'shop-v1-worker'], describe: "remove version v1's services (shop-v1-web, shop-v1-worker)" },
      { kind: 'remove-services', version: 'v2', services: ['shop-v2-web', 'shop-v2-worker'], describe: "remove version v2's services (shop-v2-web, shop-v2-worker)" },
      { kind: 'remove-jobs', jobs: ['shop-job-web-a1'], describe: 'remove the finished jobs a killed depl run left (shop-job-web-a1)' },
      // the token is still used by v5: only what no remaining service uses goes
      { kind: 'remove-unused', configs: ['shop-v1-web-1'], secrets: ['shop-token-0'], describe: 'remove the configs shop-v1-web-1 and secrets shop-token-0 no remaining service uses' },
      { kind: 'remove-image-tags', node: 'node-1', tags: ['shop/web:v1', 'shop/web:v2'], describe: 'untag shop/web:v1, shop/web:v2 on node-1' },
      // a tag of a version no longer installed (an earlier prune killed before its last step) goes too
      { kind: 'remove-image-tags', node: 'node-2', tags: ['shop/web:v0'], describe: 'untag shop/web:v0 on node-2' },
    ]);
    const text = renderPlanText(plan);
    expect(text).toMatch(/^Plan for depl prune --keep 1:\n {2}keep v3: among the 1 newest others/);
    expect(text).toContain("  4. remove version v1's services (shop-v1-web, shop-v1-worker)\n");
  });

  it('removes the pruned versions\' own networks with their services, and one an interrupted install left; never a remaining version\'s', () => {
    const networks = [
      { kind: 'network' as const, name: 'shop-v1-net', usedBy: ['shop-v1-web', 'shop-v1-worker'] },
      { kind: 'network' as const, name: 'shop-v3-net', usedBy: ['shop-v3-web', 'shop-v3-worker'] },
      { kind: 'network' as const, name: 'shop-v9-net', usedBy: [] },
    ];
    const planned = planPruneChange(read({ configs: networks }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps.find((s) => s.kind === 'remove-unused')).toEqual({
      kind: 'remove-unused', configs: [], secrets: [], networks: ['shop-v1-net', 'shop-v9-net'], describe: 'remove the networks shop-v1-net, shop-v9-net no remaining service uses',
    });
  });

  it('--branches: removes the deploys of deleted branches, one recorded removal each; never live, previous or canary', () => {
    const installed = [version('v1', 1), version('main-1', 2, 'main'), version('feat-a-1', 3, 'feat/a'), version('feat-b-1', 4, 'feat/b')];
    const state = { ...emptyReleaseState('shop'), live: 'main-1', canary: { version: 'feat-b-1', weight: 10 } };
    const planned = planPruneChange(read({ selection: { branches: ['main'] }, state, installed, imageTags: {}, jobs: [], configs: [], autoscaleStates: [], certificates: false }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.command).toBe('depl prune --branches main');
    expect(planned.plan.kept).toEqual([{ version: 'v1', why: 'not a branch deploy' }, { version: 'main-1', why: 'live' }, { version: 'feat-b-1', why: 'canary' }]);
    expect(planned.plan.notes).toContain('remove feat-a-1: its branch feat/a is not among main');
    expect(planned.plan.steps.map((s) => s.kind)).toEqual(['release-change', 'remove-services']);
    expect(planned.plan.steps[0]).toMatchObject({ request: { kind: 'remove', version: 'feat-a-1', note: 'branch gone' } });
  });

  it('nothing to remove: no release change; what a killed run left (tags, state of gone versions) is still cleaned up', () => {
    const planned = planPruneChange(read({ selection: { keep: 5 }, imageTags: { 'node-1': ['shop/web:v0', 'shop/web:v5'] }, jobs: [], configs: [], autoscaleStates: ['v0'] }));
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.removed).toEqual([]);
    expect(planned.plan.notes).toContain('no version to remove');
    expect(planned.plan.steps.map((s) => s.kind)).toEqual(['remove-autoscale-state', 'remove-image-tags']);
    const clean = planPruneChange(read({ selection: { keep: 5 }, imageTags: {}, jobs: [], configs: [], autoscaleStates: [] }));
    if (!clean.ok) throw new Error(clean.message);
    expect(renderPlanText(clean.plan)).toMatch(/ {2}no version to remove\n {2}nothing to do\n$/);
  });

  it('refuses a --keep that is not a whole number of at least 0, as the release transition does', () => {
    expect(planPruneChange(read({ selection: { keep: -1 } }))).toMatchObject({ ok: false, code: 'BAD_KEEP', message: '--keep -1 is not a whole number of at least 0' });
  });

  it('reads the version from a tag, registry host and port included', () => {
    expect(tagVersion('shop/web:v1')).toBe('v1');
    expect(tagVersion('registry.local:5000/shop/web:main-3')).toBe('main-3');
    expect(tagVersion('registry.local:5000/shop/web')).toBeNull();
  });
});

describe("prune's image listing on a node", () => {
  it('lists the tags of the app\'s build repositories only, one reference filter each', () => {
    expect(imageTagsCommand(['shop/web', 'registry.local:5000/shop/api'])).toEqual([
      'docker', 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'reference=shop/web', '--filter', 'reference=registry.local:5000/shop/api',
    ]);
  });
});

describe('prune and branch databases', () => {
  const shared = { accessory: 'db', engine: 'postgres' as const, database: 'shop', user: 'shop', passwordSecret: 'db_password', adminUser: 'shop', adminPasswordFile: '/run/secrets/db_password' };
  const accessorySpec = { Name: 'db', TaskTemplate: { ContainerSpec: { Image: 'postgres:16' }, Networks: [{ Target: 'shop-net' }] } };
  const found = (label: string, over: { shared?: null } = {}) => ({
    record: { secret: `shop-db-db-${label}`, accessory: 'db', version: label, database: `shop_${label.replace(/-/g, '_')}`, user: `shop_${label.replace(/-/g, '_')}` },
    shared: over.shared === null ? null : shared, accessorySpec,
  });
  it('backs up, drops and forgets the database of each removed branch (and of one whose version is already gone), after its services; never a kept one\'s, and never its record as an unused secret', () => {
    const installed = [version('main-1', 2, 'main'), version('feat-a-1', 3, 'feat/a')];
    const state = { ...emptyReleaseState('shop'), live: 'main-1' };
    const planned = planPruneChange({
      app: 'shop', selection: { branches: ['main'] }, state, installed, imageTags: {}, jobs: [], autoscaleStates: [], stateRoot: '/var/lib/depl', certificates: false,
      configs: [{ kind: 'secret', name: 'shop-db-db-feat-a-1', usedBy: ['shop-feat-a-1-web'] }, { kind: 'secret', name: 'shop-db-db-old-9', usedBy: [] }],
      branchDatabases: [found('main-1'), found('feat-a-1'), found('old-9'), found('gone-2', { shared: null })],
      backups: { dir: '/home/ops/shop/.depl/backups', at: '2026-12-06T10:00:00.123Z' }, by: 'ops@test',
    });
    if (!planned.ok) throw new Error(planned.message);
    const steps = planned.plan.steps;
    expect(steps.map((s) => s.kind)).toEqual([
      'release-change', 'remove-services',
      'backup-branch-database', 'drop-branch-database', 'forget-branch-database',
      'backup-branch-database', 'drop-branch-database', 'forget-branch-database',
    ]);
    expect(steps[2]).toMatchObject({ database: 'shop_feat_a_1', file: '/home/ops/shop/.depl/backups/shop-db-feat-a-1-20261206-100000.sql' });
    expect((steps[2] as { job: { TaskTemplate: { ContainerSpec: { Args: string[] } } } }).job.TaskTemplate.ContainerSpec.Args[1]).toContain('exec pg_dump --no-owner --no-privileges -d shop_feat_a_1');
    expect((steps[3] as { job: { TaskTemplate: { ContainerSpec: { Args: string[] } } } }).job.TaskTemplate.ContainerSpec.Args[1]).toContain('DROP DATABASE IF EXISTS "shop_feat_a_1" WITH (FORCE);');
    expect(steps[4]).toMatchObject({ kind: 'forget-branch-database', secret: 'shop-db-db-feat-a-1' });
    expect(steps[5]).toMatchObject({ database: 'shop_old_9' });
    expect(planned.plan.notes).toContainEqual(expect.stringContaining('branch database shop_gone_2 (version gone-2) is not dropped: accessory db is no longer perBranch: database'));
  });

  it('Redis: dumps the number\'s keys to a .redis file, flushes it and frees it; a record naming the main line\'s number (or none of depl\'s prefixes) is reported, never flushed', () => {
    const redis = { accessory: 'redis', engine: 'redis' as const, mode: 'database' as const, hosts: ['redis'], port: 6379, passwordFile: null, databases: 16, mainNumbers: [0] };
    const spec = { Name: 'redis', TaskTemplate: { ContainerSpec: { Image: 'redis:7' }, Networks: [{ Target: 'shop-net' }] } };
    const slot = (label: string, number: number) => ({ record: { secret: `shop-redis-db-${label}`, accessory: 'redis', version: label, redis: { mode: 'database' as const, number } }, shared: redis, accessorySpec: spec });
    const planned = planPruneChange({
      app: 'shop', selection: { branches: ['main'] }, state: { ...emptyReleaseState('shop'), live: 'main-1' }, installed: [version('main-1', 2, 'main'), version('feat-a-1', 3, 'feat/a')],
      imageTags: {}, jobs: [], autoscaleStates: [], stateRoot: '/var/lib/depl', certificates: false, configs: [],
      branchDatabases: [slot('feat-a-1', 3), slot('edited-1', 0), { ...slot('p-1', 0), record: { secret: 's', accessory: 'redis', version: 'p-1', redis: { mode: 'prefix' as const, prefix: 'session:' } } }],
      backups: { dir: '/ops/.depl/backups', at: '2026-12-06T10:00:00.123Z' }, by: 'ops@test',
    });
    if (!planned.ok) throw new Error(planned.message);
    const steps = planned.plan.steps.filter((s) => s.kind.includes('branch-database'));
    expect(steps).toEqual([
      expect.objectContaining({ kind: 'backup-branch-database', database: 'redis database 3', file: '/ops/.depl/backups/shop-redis-feat-a-1-20261206-100000.redis' }),
      expect.objectContaining({ kind: 'drop-branch-database', database: 'redis database 3', describe: 'empty redis database 3 (FLUSHDB)' }),
      expect.objectContaining({ kind: 'forget-branch-database', secret: 'shop-redis-db-feat-a-1', describe: expect.stringContaining('frees it for another branch') }),
    ]);
    expect((steps[1] as { job: { TaskTemplate: { ContainerSpec: { Args: string[] } } } }).job.TaskTemplate.ContainerSpec.Args[1]).toContain("FLUSHDB");
    expect(planned.plan.notes).toContainEqual(expect.stringContaining('redis database 0 (version edited-1) is not dropped: database 0 is the main line\'s'));
    expect(planned.plan.notes).toContainEqual(expect.stringContaining('redis keys session:* (version p-1) is not dropped'));
  });
});
