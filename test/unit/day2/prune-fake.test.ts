import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forceReleaseLock, lockStatus } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { UserError } from '../../../src/errors.js';
import { autoscaleStateDir } from '../../../src/plan/autoscale.js';
import { pruneVersions } from '../../../src/workflows/prune.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * depl prune on the fake cluster: the dry run is the plan that then runs, and a prune killed after any step of
 * its plan is finished by the next one (what the cluster has is read again, so nothing it left stays behind).
 */
let fake: FakeCluster;

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2', 'v3', 'v4', 'v5'] });
  await switchVersion(fake.control, 'v4');
  await switchVersion(fake.control, 'v5');
  fake.leftovers.images = { 'node-1': ['shop/web:v1', 'shop/web:v2', 'shop/web:v3', 'shop/web:v4', 'shop/web:v5'], 'node-2': ['shop/web:v2', 'shop/web:v5'] };
  fake.leftovers.jobs = [
    { name: 'shop-job-web-a1', labels: {}, progress: { kind: 'exited', exitCode: 0 } },
    { name: 'shop-job-web-b2', labels: {}, progress: { kind: 'running' } },
  ];
  fake.leftovers.objects = [
    { kind: 'config', name: 'shop-v1-web-1', usedBy: ['shop-v1-web'] },
    { kind: 'config', name: 'shop-v5-web-1', usedBy: ['shop-v5-web'] },
    { kind: 'secret', name: 'shop-token-1', usedBy: ['shop-v2-web', 'shop-v5-web'] },
    { kind: 'secret', name: 'shop-token-0', usedBy: ['shop-v1-worker'] },
  ];
  await mkdir(autoscaleDir(), { recursive: true });
  for (const label of ['v1', 'v5']) await writeFile(`${autoscaleDir()}/${label}.json`, '{}');
});
afterEach(async () => {
  await fake.close();
});

const STEP_KINDS = ['release-change', 'remove-autoscale-state', 'remove-services', 'remove-services', 'remove-jobs', 'remove-unused', 'remove-image-tags', 'remove-image-tags'];

const autoscaleDir = () => autoscaleStateDir(fake.app, fake.control.stateRoot);

/** Everything prune touches, as the next command would read it. */
async function snapshot() {
  const doc = await readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot);
  return {
    versions: fake.versions.map((v) => `${v.label}: ${v.services.join(' ')}`),
    images: structuredClone(fake.leftovers.images),
    jobs: fake.leftovers.jobs.map((j) => j.name),
    objects: fake.leftovers.objects.map((o) => o.name),
    autoscale: (await readdir(autoscaleDir())).sort(),
    live: doc.live,
    previous: doc.previous,
    pending: doc.pending,
    served: fake.served(),
    hosts: await Promise.all(['v1', 'v2', 'v3', 'v5'].map(async (v) => (await fake.get(`${v}.${fake.domain}`)).status)),
  };
}

const pruned = {
  versions: ['v3: shop-v3-web shop-v3-worker', 'v4: shop-v4-web shop-v4-worker', 'v5: shop-v5-web shop-v5-worker'],
  images: { 'node-1': ['shop/web:v3', 'shop/web:v4', 'shop/web:v5'], 'node-2': ['shop/web:v5'] },
  jobs: ['shop-job-web-b2'],
  objects: ['shop-v5-web-1', 'shop-token-1'],
  autoscale: ['v5.json'],
  live: 'v5',
  previous: 'v4',
  pending: null,
  hosts: [404, 404, 200, 200],
};

describe('depl prune on the fake cluster', () => {
  it('--dry-run is the plan the applier then runs, and changes nothing', async () => {
    const before = await snapshot();
    const dry = await pruneVersions(fake.control, { keep: 1 }, { dryRun: true });
    expect(dry.dryRun).toBe(true);
    // the edge's routing table loses the pruned versions, shown as the diff the change would write
    expect(dry.edgeDiff).toMatch(/^-version v1 /m);
    expect(dry.edgeDiff).toMatch(/^-version v2 /m);
    expect(dry.edgeDiff).not.toMatch(/^[-+](version|live) v[345]/m);
    expect(await snapshot()).toEqual(before);
    const ran = await pruneVersions(fake.control, { keep: 1 });
    expect(ran.plan).toEqual(dry.plan);
    expect(ran).toMatchObject({ removed: ['v1', 'v2'], kept: [{ version: 'v3', why: 'recent' }, { version: 'v4', why: 'previous' }, { version: 'v5', why: 'live' }] });
    expect(await snapshot()).toMatchObject(pruned);
    // and a second run finds nothing left to do
    expect((await pruneVersions(fake.control, { keep: 1 })).plan.steps).toEqual([]);
  });

  it('refuses a bad --keep with exit 2, changing nothing', async () => {
    const before = await snapshot();
    const refused = await pruneVersions(fake.control, { keep: -1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UserError);
    expect(refused).toMatchObject({ code: 'BAD_KEEP' });
    expect(await snapshot()).toEqual(before);
  });

  it('plans eight steps here: the release change, autoscale state, the services of v1 and v2, a job, configs and secrets, tags on two nodes', async () => {
    const { plan } = await pruneVersions(fake.control, { keep: 1 }, { dryRun: true });
    expect(plan.steps.map((s) => s.kind)).toEqual(STEP_KINDS);
  });

  it.each(STEP_KINDS.map((kind, index) => [index + 1, kind] as const))('killed after step %i (%s), the next prune finishes the job', async (number, kind) => {
    const dying = fake.killable();
    const killed = await pruneVersions(dying.control, { keep: 1 }, { afterStep: (i) => { if (i === number - 1) dying.kill(); } }).catch((error: unknown) => error);
    expect(killed).toBeInstanceOf(Killed);
    // the dead process never gave the lock back; its lease runs out (here broken by hand)
    expect(await lockStatus(fake.control.stateRemote, fake.app, fake.control.stateRoot)).not.toBeNull();
    await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    const next = await pruneVersions(fake.freshControl(), { keep: 1 });
    // what the dead run finished is not planned again: the next run reads what is left. A version whose services
    // are still there is still installed, so its removal is decided and recorded again.
    const expected = number === 1 ? { removed: ['v1', 'v2'], steps: 8 }
      : number === 2 ? { removed: ['v1', 'v2'], steps: 7 }
        : number === 3 ? { removed: ['v2'], steps: 6 }
          : { removed: [], steps: STEP_KINDS.length - number };
    expect({ kind, removed: next.removed, steps: next.plan.steps.length }).toEqual({ kind, ...expected });
    expect(await snapshot()).toMatchObject(pruned);
  }, 60_000);
});

