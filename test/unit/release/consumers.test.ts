import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forceReleaseLock } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { parseConfig } from '../../../src/config/load.js';
import { canaryReplicas, consumerHandover, consumersOnly } from '../../../src/plan/consumers.js';
import { planInstall, type InstallFacts } from '../../../src/plan/install-plan.js';
import { emptyReleaseState, planRelease, type InstalledVersion, type ReleaseState } from '../../../src/plan/release-state.js';
import { formatVersions } from '../../../src/plan/versions-table.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { abortCanary, promoteCanary, runCanary, setCanary } from '../../../src/workflows/canary.js';
import { readRelease, syncRelease } from '../../../src/workflows/release.js';
import { rollback } from '../../../src/workflows/rollback.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { readReleaseReport } from '../../../src/workflows/versions.js';
import { KILL_POINTS, Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * Apps whose services all consume queues (src/plan/consumers.ts): live is the version whose consumers run. As
 * data (the handover, the switch's plan, the install's stopped consumers), then on the fake cluster: switch,
 * rollback, the health gate, and a depl killed at every step of a switch, repaired by the next command.
 */
const consumer = (label: string, createdAt: string, running: boolean): InstalledVersion => ({
  label, createdAt, services: [`egf-${label}-pusher`, `egf-${label}-sync`],
  replicas: { [`egf-${label}-pusher`]: running ? 1 : 0, [`egf-${label}-sync`]: running ? 2 : 0 },
  wanted: { [`egf-${label}-pusher`]: 1, [`egf-${label}-sync`]: 2 },
});
const facts = (installed: InstalledVersion[]) => ({ installed, at: '2026-12-06T12:00:00Z', by: 'ops@test' });
const live = (label: string | null): ReleaseState => ({ ...emptyReleaseState('egf'), live: label });

describe('consumers-only apps as data', () => {
  it('the handover starts the live version\'s stopped consumers at their wanted replicas (the app\'s scale first) and stops every other version\'s', () => {
    const installed = [consumer('v1', '2026-12-01', true), consumer('v2', '2026-12-02', false)];
    expect(consumersOnly(installed)).toBe(true);
    expect(consumerHandover('v2', installed, { sync: 4 })).toEqual({
      start: [{ service: 'egf-v2-pusher', replicas: 1, from: 0 }, { service: 'egf-v2-sync', replicas: 4, from: 0 }],
      stop: [{ service: 'egf-v1-pusher', replicas: 0, from: 1 }, { service: 'egf-v1-sync', replicas: 0, from: 2 }],
    });
    // the live version's running consumers keep their replicas (depl scale, an autoscaler); nothing live: nothing
    expect(consumerHandover('v1', installed, {})).toEqual({ start: [], stop: [] });
    expect(consumerHandover(null, installed, {})).toEqual({ start: [], stop: [] });
    // an app with a web service is routed: its consumers follow the web switch, no handover
    const web = { ...consumer('v3', '2026-12-03', true), http: { service: 'egf-v3-pusher', port: 80 } };
    expect(consumersOnly([...installed, web])).toBe(false);
    expect(consumerHandover('v2', [...installed, web], {})).toEqual({ start: [], stop: [] });
  });

  it('a switch of a consumers-only app is planned with its handover; a web app keeps NOT_ROUTABLE for a version without http; a consumers canary is refused', () => {
    const installed = [consumer('v1', '2026-12-01', true), consumer('v2', '2026-12-02', false)];
    const planned = planRelease(live('v1'), { kind: 'switch', version: 'v2' }, facts(installed));
    expect(planned).toMatchObject({ ok: true, state: { live: 'v2', previous: 'v1' }, consumers: { start: [{ service: 'egf-v2-pusher' }, { service: 'egf-v2-sync' }], stop: [{ service: 'egf-v1-pusher' }, { service: 'egf-v1-sync' }] } });
    if (!planned.ok) throw new Error('refused');
    expect(planned.scale?.map((t) => `${t.service}=${t.replicas}`)).toEqual(['egf-v2-pusher=1', 'egf-v2-sync=2', 'egf-v1-pusher=0', 'egf-v1-sync=0']);
    expect(planned.installed.find((v) => v.label === 'v1')?.replicas).toEqual({ 'egf-v1-pusher': 0, 'egf-v1-sync': 0 });
    const mixed = [...installed, { ...consumer('v3', '2026-12-03', true), http: { service: 'egf-v3-pusher', port: 80 } }];
    expect(planRelease(live('v3'), { kind: 'switch', version: 'v2' }, facts(mixed))).toMatchObject({ ok: false, refusal: { code: 'NOT_ROUTABLE' } });
  });

  it('a canary of a consumers-only app is its weight of each service\'s replicas (at least one of each version); promote and abort bring one version back to full', () => {
    const scaled = (planned: ReturnType<typeof planRelease>) => (planned.ok ? (planned.scale ?? []).map((t) => `${t.service}=${t.replicas}`) : planned.refusal.code);
    const wide = (label: string, createdAt: string, running: boolean): InstalledVersion => ({
      ...consumer(label, createdAt, running), replicas: { [`egf-${label}-pusher`]: running ? 1 : 0, [`egf-${label}-sync`]: running ? 4 : 0 }, wanted: { [`egf-${label}-pusher`]: 1, [`egf-${label}-sync`]: 4 },
    });
    const installed = [wide('v1', '2026-12-01', true), wide('v2', '2026-12-02', false)];
    expect(canaryReplicas(4, 25)).toEqual({ canary: 1, live: 3 });
    expect(canaryReplicas(1, 10)).toEqual({ canary: 1, live: 1 });
    expect(canaryReplicas(4, 100)).toEqual({ canary: 4, live: 0 });
    const canary = planRelease(live('v1'), { kind: 'canary', version: 'v2', weight: 25 }, facts(installed));
    expect(canary).toMatchObject({ ok: true, state: { live: 'v1', canary: { version: 'v2', weight: 25 } } });
    // started first (and awaited), then live scaled down to the rest
    expect(scaled(canary)).toEqual(['egf-v2-pusher=1', 'egf-v2-sync=1', 'egf-v1-sync=3']);
    if (!canary.ok) throw new Error('refused');
    const during = { ...live('v1'), canary: { version: 'v2', weight: 25 } };
    expect(scaled(planRelease(during, { kind: 'promote' }, facts(canary.installed)))).toEqual(['egf-v2-sync=4', 'egf-v1-pusher=0', 'egf-v1-sync=0']);
    expect(scaled(planRelease(during, { kind: 'abort' }, facts(canary.installed)))).toEqual(['egf-v1-sync=4', 'egf-v2-pusher=0', 'egf-v2-sync=0']);
    // the app's scale counts: sync=8 at 25% is 2 and 6
    expect(consumerHandover('v1', installed, { sync: 8 }, { version: 'v2', weight: 25 }).start.map((t) => `${t.service}=${t.replicas}`)).toEqual(['egf-v1-sync=6', 'egf-v2-pusher=1', 'egf-v2-sync=2']);
  });

  it('buildinst creates a new version\'s consumers stopped while another version is installed, each labelled with its wanted replicas', () => {
    const config = parseConfig(`
app: egf
domain: egf.test
services:
  sync: { image: egf/sync:1, replicas: 2 }
  pusher: { image: egf/pusher:1 }
`);
    const base: InstallFacts = {
      config, version: 'v2', command: 'depl buildinst --version v2', present: [], foreign: [], state: live('v1'), installed: [consumer('v1', '2026-12-01', true)],
      earlierSpecs: [], secrets: [], cluster: { network: 'egf-net', nodes: ['m1'], manager: 'm1' }, tls: 'off', at: '2026-12-06T10:00:00Z', by: 'ops@test',
    };
    const plan = planInstall(base);
    if (!plan.ok) throw new Error(plan.refusal.message);
    const created = plan.plan.steps.flatMap((s) => (s.kind === 'create-service' ? [[s.spec.Name, s.spec.Mode.Replicated.Replicas, s.spec.Labels['depl.replicas']]] : []));
    expect(created).toEqual([['egf-v2-sync', 0, '2'], ['egf-v2-pusher', 0, '1']]);
    expect(plan.plan.notes.join('\n')).toMatch(/v2's consumers are created stopped while v1 is installed; `depl switch v2` starts them/);
    // the first version of the app runs at once
    const first = planInstall({ ...base, state: live(null), installed: [] });
    if (!first.ok) throw new Error(first.refusal.message);
    expect(first.plan.steps.flatMap((s) => (s.kind === 'create-service' ? [s.spec.Mode.Replicated.Replicas] : []))).toEqual([2, 1]);
  });
});

describe('consumers-only apps on the fake cluster', () => {
  let fake: FakeCluster;
  const consumers = (control: ClusterPort): ClusterPort => ({ ...control, noEdge: true });
  const replicas = () => Object.fromEntries(fake.versions.map((v) => [v.label, Object.values(v.replicas ?? {}).join('+')]));
  const doc = () => readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot);

  beforeEach(async () => {
    fake = await startFakeCluster({ app: 'egf', domain: 'egf.test', versions: [] });
    fake.versions.push(consumer('v1', '2026-12-01T00:00:00Z', true), consumer('v2', '2026-12-02T00:00:00Z', false));
  });
  afterEach(async () => {
    await fake.close();
  });

  it('switch starts the new version\'s consumers, then stops the old one\'s; rollback does the same back; versions and status show whose run', async () => {
    await switchVersion(consumers(fake.freshControl()), 'v1');
    expect(replicas()).toEqual({ v1: '1+2', v2: '0+0' });
    const result = await switchVersion(consumers(fake.freshControl()), 'v2');
    expect(result).toMatchObject({ live: 'v2', previous: 'v1' });
    expect(replicas()).toEqual({ v1: '0+0', v2: '1+2' });
    const report = await readReleaseReport(consumers(fake.freshControl()));
    expect(report.versions.map((v) => [v.version, v.consumers])).toEqual([['v1', 'stopped'], ['v2', 'running']]);
    expect(formatVersions(report.versions)).toMatch(/v2 .*live, consumers running/);
    await rollback(consumers(fake.freshControl()));
    expect(replicas()).toEqual({ v1: '1+2', v2: '0+0' });
    expect((await doc()).history.map((h) => `${h.action} ${h.version}`)).toEqual(['switch v1', 'switch v2', 'rollback v1']);
  });

  it('a canary runs a share of the new version\'s consumers beside the live ones; abort stops them, promote makes the canary live at full replicas', async () => {
    await switchVersion(consumers(fake.freshControl()), 'v1');
    await setCanary(consumers(fake.freshControl()), 'v2', 50);
    expect(replicas()).toEqual({ v1: '1+1', v2: '1+1' });
    expect(await doc()).toMatchObject({ live: 'v1', canary: { version: 'v2', weight: 50 }, pending: null });
    await abortCanary(consumers(fake.freshControl()));
    expect(replicas()).toEqual({ v1: '1+2', v2: '0+0' });
    await setCanary(consumers(fake.freshControl()), 'v2', 10);
    expect(replicas()).toEqual({ v1: '1+1', v2: '1+1' });
    await promoteCanary(consumers(fake.freshControl()));
    expect(replicas()).toEqual({ v1: '0+0', v2: '1+2' });
    expect(await doc()).toMatchObject({ live: 'v2', canary: null });
    expect((await doc()).history.map((h) => `${h.action} ${h.version}`)).toEqual(['switch v1', 'canary v2', 'abort v2', 'canary v2', 'promote v2']);
    // an automatic canary judges HTTP answers, which a consumers-only app has none of
    await expect(runCanary(consumers(fake.freshControl()), 'v1', { steps: [10], intervalMs: 0, thresholds: { maxErrorRate: 0.01, maxP95Ms: 500, minRequests: 1 } })).rejects.toMatchObject({ code: 'NOT_ROUTABLE' });
  });

  it('a canary killed after starting its consumers is finished or undone by the next command, as the state says', async () => {
    await switchVersion(consumers(fake.freshControl()), 'v1');
    await expect(setCanary(killedAfterScale(1), 'v2', 50)).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    await syncRelease(consumers(fake.freshControl()));
    const state = (await readRelease(consumers(fake.freshControl()))).state;
    expect(replicas()).toEqual(state.canary === null ? { v1: '1+2', v2: '0+0' } : { v1: '1+1', v2: '1+1' });
    expect(await doc()).toMatchObject({ pending: null });
  });

  it('refuses a version whose consumers do not run, stopping them again: the live version\'s keep running and nothing is recorded', async () => {
    await switchVersion(consumers(fake.freshControl()), 'v1');
    fake.swarm.failing.add('egf-v2-sync');
    await expect(switchVersion(consumers(fake.freshControl()), 'v2', { consumersTimeoutMs: 300 })).rejects.toMatchObject({ code: 'CONSUMERS_NOT_RUNNING', message: expect.stringMatching(/egf-v2-sync 0\/2/) });
    expect(replicas()).toEqual({ v1: '1+2', v2: '0+0' });
    expect(await doc()).toMatchObject({ live: 'v1', pending: null });
  });

  /** A depl killed right after its n-th call to scale the swarm (the manager dead from then on, the lock held). */
  function killedAfterScale(n: number): ClusterPort {
    const { control, kill } = fake.killable();
    let calls = 0;
    const swarm = control.swarm!;
    return consumers({ ...control, swarm: { ...swarm, async scale(targets) {
      await swarm.scale(targets);
      calls += 1;
      if (calls === n) kill();
    } } });
  }

  const deaths: [string, () => ClusterPort][] = [
    ['after the new consumers started, before anything was recorded', () => killedAfterScale(1)],
    ['after the old consumers were told to stop, before the commit', () => killedAfterScale(2)],
    // (after-config-written is a point of the edge's routing file, which an app without an edge never writes)
    ...KILL_POINTS.filter((p) => p !== 'after-config-written').map((point): [string, () => ClusterPort] => [point, () => consumers(fake.killAt(point))]),
  ];
  it.each(deaths)('killed %s: the next command leaves only the live version\'s consumers running, and a switch again finishes', async (_what, dying) => {
    await switchVersion(consumers(fake.freshControl()), 'v1');
    await expect(switchVersion(dying(), 'v2')).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    await syncRelease(consumers(fake.freshControl()));
    const state = (await readRelease(consumers(fake.freshControl()))).state;
    // whichever way it was decided, only that version's consumers run
    expect(replicas()).toEqual(state.live === 'v1' ? { v1: '1+2', v2: '0+0' } : { v1: '0+0', v2: '1+2' });
    expect(await doc()).toMatchObject({ pending: null });
    await switchVersion(consumers(fake.freshControl()), 'v2');
    expect(replicas()).toEqual({ v1: '0+0', v2: '1+2' });
    expect(await doc()).toMatchObject({ live: 'v2', pending: null });
  });
});
