import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forceReleaseLock } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { versionsFromServices } from '../../../src/plan/releases.js';
import { statefulHandover } from '../../../src/plan/stateful-handover.js';
import type { InstalledVersion } from '../../../src/plan/release-state.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { readRelease, syncRelease } from '../../../src/workflows/release.js';
import { rollback } from '../../../src/workflows/rollback.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { KILL_POINTS, Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * A stateful web service (a named volume) is run by one version at a time (src/plan/stateful-handover.ts). An
 * install takes the volume over; a switch or rollback to a version that lost it hands it back stop-first and
 * health-gated. As data, then on the fake cluster: the order, a refusal that puts everything back, and a depl
 * killed at every point of the handover, repaired by the next command.
 */
const notes = (label: string, createdAt: string, running: boolean): InstalledVersion => ({
  label, createdAt, services: [`notes-${label}-web`, `notes-${label}-worker`],
  http: { service: `notes-${label}-web`, port: 8080, health: '/healthz' },
  replicas: { [`notes-${label}-web`]: running ? 1 : 0, [`notes-${label}-worker`]: 2 },
  stateful: { [`notes-${label}-web`]: 'notes-data' },
});

describe('the stateful handover as data', () => {
  it('stops every other version running the target\'s volume, then starts the target\'s; nothing when it already runs', () => {
    const installed = [notes('v1', '2026-12-01', false), notes('v2', '2026-12-02', true)];
    expect(statefulHandover('v1', installed)).toEqual({
      stop: [{ service: 'notes-v2-web', replicas: 0, from: 1 }],
      start: [{ service: 'notes-v1-web', replicas: 1, from: 0 }],
    });
    expect(statefulHandover('v2', installed)).toEqual({ stop: [], start: [] });
    expect(statefulHandover(null, installed)).toEqual({ stop: [], start: [] });
  });

  it('leaves a service the operator scaled to 0, other volumes, and versions without stateful services alone', () => {
    const other = { ...notes('v3', '2026-12-03', true), stateful: { 'notes-v3-web': 'other-data' } };
    const stateless: InstalledVersion = { label: 'v4', createdAt: '2026-12-04', services: ['notes-v4-web'], replicas: { 'notes-v4-web': 1 } };
    const installed = [notes('v1', '2026-12-01', false), notes('v2', '2026-12-02', true), other, stateless];
    expect(statefulHandover('v1', installed, { web: 0 })).toEqual({ stop: [], start: [] });
    expect(statefulHandover('v1', installed).stop.map((t) => t.service)).toEqual(['notes-v2-web']);
    expect(statefulHandover('v4', installed)).toEqual({ stop: [], start: [] });
  });

  it('reads a version\'s stateful services from the swarm\'s depl.volume label', () => {
    const labels = (service: string, extra: Record<string, string>) => ({ 'depl.app': 'notes', 'depl.version': 'v1', 'depl.service': service, ...extra });
    const versions = versionsFromServices('notes', [
      { name: 'notes-v1-web', labels: labels('web', { 'depl.volume': 'notes-data', 'depl.http': 'true', 'depl.port': '8080' }), createdAt: '2026-12-01', replicas: 0 },
      { name: 'notes-v1-worker', labels: labels('worker', {}), createdAt: '2026-12-01', replicas: 2 },
    ]);
    expect(versions[0]).toMatchObject({ stateful: { 'notes-v1-web': 'notes-data' }, replicas: { 'notes-v1-web': 0, 'notes-v1-worker': 2 } });
  });
});

describe('switching a stateful app on the fake cluster', () => {
  let fake: FakeCluster;
  const web = () => Object.fromEntries(fake.versions.map((v) => [v.label, v.replicas?.[`notes-${v.label}-web`]]));
  const doc = () => readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot);
  /** Every scale call, in order, as `service=replicas`. */
  let scaled: string[];
  const watched = (control: ClusterPort): ClusterPort => {
    const swarm = control.swarm!;
    return { ...control, swarm: { ...swarm, async scale(targets) {
      scaled.push(...targets.map((t) => `${t.service}=${t.replicas}`));
      await swarm.scale(targets);
    } } };
  };

  beforeEach(async () => {
    scaled = [];
    fake = await startFakeCluster({ app: 'notes', domain: 'notes.test', versions: [] });
    // as buildinst leaves it: v2 took the volume over from v1 and went live
    fake.versions.push(notes('v1', '2026-12-01T00:00:00Z', true), notes('v2', '2026-12-02T00:00:00Z', false));
    await switchVersion(fake.freshControl(), 'v1');
    await switchVersion(watched(fake.freshControl()), 'v2');
  });
  afterEach(async () => {
    await fake.close();
  });

  it('a switch hands the volume over stop-first, health-gated, and rollback hands it back', async () => {
    expect(scaled).toEqual(['notes-v1-web=0', 'notes-v2-web=1']);
    expect(web()).toEqual({ v1: 0, v2: 1 });
    scaled = [];
    const result = await rollback(watched(fake.freshControl()));
    expect(result).toMatchObject({ live: 'v1' });
    expect(scaled).toEqual(['notes-v2-web=0', 'notes-v1-web=1']);
    expect(web()).toEqual({ v1: 1, v2: 0 });
    expect(await fake.get('notes.test', '/')).toMatchObject({ status: 200, version: 'v1' });
    // the workers are not stateful: never touched
    expect(fake.versions.map((v) => v.replicas?.[`notes-${v.label}-worker`])).toEqual([2, 2]);
  });

  it('a dry run lists the handover and changes nothing', async () => {
    scaled = [];
    const result = await switchVersion(watched(fake.freshControl()), 'v1', { dryRun: true });
    expect(result.change.changes).toContain('stateful: stop notes-v2-web; then start notes-v1-web (stop-first; v1 must then answer its health check)');
    expect(scaled).toEqual([]);
    expect(web()).toEqual({ v1: 0, v2: 1 });
  });

  it('refuses a version that does not answer once it has the volume: the live version gets it back and nothing is recorded', async () => {
    fake.unhealthy.add('v1');
    scaled = [];
    await expect(switchVersion(watched(fake.freshControl()), 'v1', { statefulTimeoutMs: 400 })).rejects.toMatchObject({
      code: 'STATEFUL_HANDOVER_FAILED', message: expect.stringMatching(/version v1 is not healthy.*put back/s),
    });
    expect(scaled).toEqual(['notes-v2-web=0', 'notes-v1-web=1', 'notes-v1-web=0', 'notes-v2-web=1']);
    expect(web()).toEqual({ v1: 0, v2: 1 });
    expect(await doc()).toMatchObject({ live: 'v2', pending: null });
    expect(await fake.get('notes.test', '/')).toMatchObject({ status: 200, version: 'v2' });
  });

  it('a pre-switch hook that refuses after the handover puts the volume back', async () => {
    const control = fake.freshControl();
    const refusing: ClusterPort = { ...control, hooks: { run: async (hook) => { if (hook === 'pre-switch') throw new Error('pre-switch exited with 1'); return null; } } };
    await expect(switchVersion(refusing, 'v1')).rejects.toThrow(/pre-switch exited with 1/);
    expect(web()).toEqual({ v1: 0, v2: 1 });
    expect(await doc()).toMatchObject({ live: 'v2' });
  });

  /** A depl killed right after its n-th call to scale the swarm (the manager dead from then on, the lock held). */
  function killedAfterScale(n: number): ClusterPort {
    const { control, kill } = fake.killable();
    let calls = 0;
    const swarm = control.swarm!;
    return { ...control, swarm: { ...swarm, async scale(targets) {
      await swarm.scale(targets);
      calls += 1;
      if (calls === n) kill();
    } } };
  }

  const deaths: [string, () => ClusterPort][] = [
    ['after the live version\'s stateful service was stopped', () => killedAfterScale(1)],
    ['after the target\'s was started, before its health gate', () => killedAfterScale(2)],
    ...KILL_POINTS.map((point): [string, () => ClusterPort] => [point, () => fake.killAt(point)]),
  ];
  it.each(deaths)('killed %s: the next command gives the volume to the live version alone, and a switch again finishes', async (_what, dying) => {
    await expect(switchVersion(dying(), 'v1')).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    await syncRelease(fake.freshControl());
    const state = (await readRelease(fake.freshControl())).state;
    // whichever way it was decided, only that version runs the volume
    expect(web()).toEqual(state.live === 'v1' ? { v1: 1, v2: 0 } : { v1: 0, v2: 1 });
    expect(await doc()).toMatchObject({ pending: null });
    await switchVersion(fake.freshControl(), 'v1');
    expect(web()).toEqual({ v1: 1, v2: 0 });
    expect(await fake.get('notes.test', '/')).toMatchObject({ status: 200, version: 'v1' });
  });
});
