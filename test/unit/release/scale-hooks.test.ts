import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { localHooks } from '../../../src/apply/hooks.js';
import { forceReleaseLock, lockStatus } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { silentLogger } from '../../../src/util/log.js';
import { promoteCanary, setCanary } from '../../../src/workflows/canary.js';
import type { ClusterPort } from '../../../src/workflows/cluster-port.js';
import { readRelease } from '../../../src/workflows/release.js';
import { rollback } from '../../../src/workflows/rollback.js';
import { scaleServices } from '../../../src/workflows/scale.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/** depl scale and the switch hooks end to end on the fake cluster (test/support/fake-cluster.ts): real hook executables, no Docker. */
let fake: FakeCluster;
let control: ClusterPort;
let project: string;

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2', 'v3'] });
  project = await mkdtemp(path.join(os.tmpdir(), 'depl-hooks-'));
  control = { ...fake.control, hooks: localHooks(project, silentLogger) };
  await switchVersion(control, 'v1');
});
afterEach(async () => {
  await fake.close();
  await rm(project, { recursive: true, force: true });
});

const doc = () => readReleaseDocument(control.stateRemote, fake.app, control.stateRoot);
const replicas = (label: string) => fake.versions.find((v) => v.label === label)!.replicas;
const live = async () => (await fake.get(fake.domain)).version;
const exists = (file: string) => stat(file).then(() => true, () => false);

async function hook(name: string, script: string, mode = 0o755): Promise<void> {
  await mkdir(path.join(project, '.depl', 'hooks'), { recursive: true });
  const file = path.join(project, '.depl', 'hooks', name);
  await writeFile(file, `#!/bin/sh\n${script}\n`);
  await chmod(file, mode);
}

describe('depl scale', () => {
  it('scales the live version and records the app\'s scale; a switch brings the next live version to it', async () => {
    const result = await scaleServices(control, { worker: 4, web: 2 });
    expect(result).toMatchObject({ version: 'v1', recorded: true, scale: { worker: 4, web: 2 } });
    expect(result.services).toEqual([
      { service: 'shop-v1-worker', replicas: 4, from: 1, running: 4 },
      { service: 'shop-v1-web', replicas: 2, from: 1, running: 2 },
    ]);
    expect(replicas('v1')).toEqual({ 'shop-v1-web': 2, 'shop-v1-worker': 4 });
    const recorded = await doc();
    expect(recorded).toMatchObject({ live: 'v1', scale: { worker: 4, web: 2 }, pending: null });
    expect(recorded.history.at(-1)).toMatchObject({ action: 'scale', version: 'v1', note: 'worker=4, web=2', by: 'ops@test' });
    expect(await lockStatus(control.stateRemote, fake.app, control.stateRoot)).toBeNull();

    const switched = await switchVersion(control, 'v2');
    expect(switched.change.changes).toContain('replicas: shop-v2-worker 1 -> 4');
    expect(replicas('v2')).toEqual({ 'shop-v2-web': 2, 'shop-v2-worker': 4 });
    expect(await doc()).toMatchObject({ live: 'v2', scale: { worker: 4, web: 2 } });
    // the old live version keeps its tasks for a quick rollback
    expect(replicas('v1')).toEqual({ 'shop-v1-web': 2, 'shop-v1-worker': 4 });
  });

  it('scales a version that is not live without recording it', async () => {
    await scaleServices(control, { worker: 2 });
    const result = await scaleServices(control, { worker: 0, web: 0 }, { version: 'v3' });
    expect(result).toMatchObject({ version: 'v3', recorded: false, scale: { worker: 2 } });
    expect(replicas('v3')).toEqual({ 'shop-v3-web': 0, 'shop-v3-worker': 0 });
    expect((await doc()).scale).toEqual({ worker: 2 });
    expect((await doc()).history.at(-1)?.note).toMatch(/worker=0, web=0 \(applied only: not the live version/);
  });

  it('refuses what it cannot do with exit 2, changing nothing', async () => {
    const before = { doc: await doc(), versions: structuredClone(fake.versions) };
    await expect(scaleServices(control, { db: 2 })).rejects.toMatchObject({ code: 'NO_SUCH_SERVICE', exitCode: 2 });
    await expect(scaleServices(control, { web: 0 })).rejects.toMatchObject({ code: 'WOULD_STOP_LIVE', exitCode: 2 });
    await expect(scaleServices(control, { worker: 2 }, { version: 'v9' })).rejects.toMatchObject({ code: 'NOT_INSTALLED', exitCode: 2 });
    await expect(scaleServices(control, { worker: 2 }, { version: 'Bad_Label' })).rejects.toMatchObject({ code: 'BAD_VERSION', exitCode: 2 });
    expect({ doc: await doc(), versions: fake.versions }).toEqual(before);
    expect(await lockStatus(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
  });

  it('--dry-run is the plan that then runs: the state change and the replicas; it changes nothing', async () => {
    const before = { doc: await doc(), versions: structuredClone(fake.versions) };
    const dry = await scaleServices(control, { worker: 5 }, { dryRun: true });
    expect(dry.plan.notes).toEqual(['scale: {} -> {"worker":5}', 'replicas: shop-v1-worker 1 -> 5', 'history: + scale v1 (worker=5)']);
    expect(dry.plan.steps.map((s) => s.describe)).toEqual(["set replicas shop-v1-worker 1 -> 5 and record worker=5 as the app's scale", 'wait until shop-v1-worker runs 5']);
    expect(dry.change).toBeUndefined();
    expect({ doc: await doc(), versions: fake.versions }).toEqual(before);
    const ran = await scaleServices(control, { worker: 5 });
    expect(ran.plan).toEqual(dry.plan);
    expect(replicas('v1')?.['shop-v1-worker']).toBe(5);
  });

  it.each([1, 2])('killed after step %i of its plan: the next scale finishes it (only the wait is left)', async (number) => {
    const dying = fake.killable();
    await expect(scaleServices(dying.control, { worker: 3 }, { afterStep: (i) => { if (i === number - 1) dying.kill(); } })).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(control.stateRemote, fake.app, control.stateRoot);
    // the release change completed before the kill: recorded, nothing pending
    expect(await doc()).toMatchObject({ pending: null, scale: { worker: 3 } });
    const next = await scaleServices(fake.freshControl(), { worker: 3 });
    expect(next.plan.steps.map((s) => s.kind)).toEqual(['wait-for-replicas']);
    expect(next.plan.notes).toContain('v1 already runs worker=3: nothing to set');
    expect(next.services).toEqual([{ service: 'shop-v1-worker', replicas: 3, from: 3, running: 3 }]);
    expect((await doc()).history.filter((h) => h.action === 'scale')).toHaveLength(1);
  });

  it('killed after recording its intent: the next command records it as done', async () => {
    await expect(scaleServices(fake.killAt('after-intent'), { worker: 3 })).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(control.stateRemote, fake.app, control.stateRoot);
    expect((await doc()).pending?.command).toBe('depl scale worker=3');
    expect((await readRelease(fake.freshControl())).state.scale).toEqual({ worker: 3 });
    // the next command repairs first (recording the scale), then does its own change
    await scaleServices(fake.freshControl(), { worker: 3 });
    expect(await doc()).toMatchObject({ pending: null, scale: { worker: 3 } });
    expect(replicas('v1')?.['shop-v1-worker']).toBe(3);
  });
});

describe('hooks around a switch', () => {
  it('a failing pre-switch hook stops the switch before anything changed, and the lock is given back', async () => {
    await hook('pre-switch', 'echo "not today" >&2; exit 3');
    const before = { doc: await doc(), routing: await readFile(`${fake.dir}/edge/routing`, 'utf8'), served: fake.served() };
    const error = await switchVersion(control, 'v2').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HOOK_FAILED', exitCode: 1, message: 'the pre-switch hook .depl/hooks/pre-switch exited with 3: depl switch stopped before changing anything' });
    expect({ doc: await doc(), routing: await readFile(`${fake.dir}/edge/routing`, 'utf8'), served: fake.served() }).toEqual(before);
    expect(await live()).toBe('v1');
    expect(await lockStatus(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
  });

  it('post-switch sees the DEPL_* variables; rollback and promote run the switch hooks, saying which they are', async () => {
    const out = path.join(project, 'seen');
    await hook('pre-switch', `echo "pre $DEPL_COMMAND $DEPL_VERSION live=$DEPL_LIVE" >> "${out}"`);
    await hook('post-switch', `env | grep ^DEPL_ | sort >> "${out}"; echo "lock: $(ls -d "${control.stateRoot}/${fake.app}/lease/lock" 2>&1)" >> "${out}"`);
    const result = await switchVersion(control, 'v2');
    expect(result.hookFailures).toBeUndefined();
    const seen = await readFile(out, 'utf8');
    expect(seen.split('\n').filter((l) => /^(pre |DEPL_(APP|BRANCH|COMMAND|DOMAIN|HOOK|LIVE|PERFORMER|PREVIOUS|VERSION)=)/.test(l))).toEqual([
      'pre switch v2 live=v1',
      'DEPL_APP=shop', 'DEPL_BRANCH=', 'DEPL_COMMAND=switch', `DEPL_DOMAIN=${fake.domain}`, 'DEPL_HOOK=post-switch', 'DEPL_LIVE=v2',
      'DEPL_PERFORMER=ops@test', 'DEPL_PREVIOUS=v1', 'DEPL_VERSION=v2',
    ]);
    // the hook ran while depl held the lock
    expect(seen).toMatch(/^lock: \/.*\/lease\/lock$/m);
    await writeFile(out, '');
    await rollback(control);
    await setCanary(control, 'v3', 10);
    await promoteCanary(control);
    expect((await readFile(out, 'utf8')).split('\n').filter((l) => /^pre |^DEPL_COMMAND/.test(l))).toEqual([
      'pre rollback v1 live=v2', 'DEPL_COMMAND=rollback', 'pre promote v3 live=v1', 'DEPL_COMMAND=promote',
    ]);
  });

  it('a pre-switch hook that hangs is stopped after hooks.timeout (TERM ignored: KILL), and the switch is refused', async () => {
    await hook('pre-switch', 'trap "" TERM; while :; do sleep 1; done');
    const before = await doc();
    const hanging = { ...control, hooks: localHooks(project, silentLogger, { timeoutMs: 300, killGraceMs: 200 }) };
    const error = await switchVersion(hanging, 'v2').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HOOK_TIMEOUT', message: 'the pre-switch hook .depl/hooks/pre-switch did not finish within 300ms and was stopped (hooks.timeout in depl.yaml): depl switch stopped before changing anything' });
    expect(await doc()).toEqual(before);
    expect(await live()).toBe('v1');
    expect(await lockStatus(control.stateRemote, fake.app, control.stateRoot)).toBeNull();
  }, 15_000);

  it('a failing post-switch hook is reported and undoes nothing', async () => {
    await hook('post-switch', 'exit 4');
    const result = await switchVersion(control, 'v2');
    expect(result.hookFailures).toEqual(['post-switch exited with 4']);
    expect(await live()).toBe('v2');
    expect((await doc()).live).toBe('v2');
  });

  it('a hook that is not executable is refused with the chmod to run (exit 2), before anything changed', async () => {
    await hook('pre-switch', 'exit 0', 0o644);
    const before = await doc();
    await expect(switchVersion(control, 'v2')).rejects.toMatchObject({ code: 'HOOK_NOT_EXECUTABLE', exitCode: 2, hint: 'chmod +x .depl/hooks/pre-switch' });
    expect(await doc()).toEqual(before);
  });

  it('none runs for a dry run, nor for a switch to what is already live', async () => {
    const marker = path.join(project, 'ran');
    await hook('pre-switch', `touch "${marker}"`);
    await hook('post-switch', `touch "${marker}"`);
    await switchVersion(control, 'v2', { dryRun: true });
    await switchVersion(control, 'v1');
    expect(await exists(marker)).toBe(false);
  });
});

describe('depl scale for an app with no http service (no edge)', () => {
  let edgeless: FakeCluster;
  let workers: ClusterPort;
  beforeEach(async () => {
    edgeless = await startFakeCluster({ app: 'jobs', versions: ['v1', 'v2'] });
    for (const v of edgeless.versions) delete v.http;
    workers = { ...edgeless.control, noEdge: true };
  });
  afterEach(async () => {
    await edgeless.close();
  });
  const edgeFiles = async () => ({ routing: await readFile(`${edgeless.dir}/edge/routing`, 'utf8'), conf: await readFile(`${edgeless.dir}/edge/nginx.conf`, 'utf8'), served: edgeless.served() });

  it('scales a version and records it, never touching an edge', async () => {
    const before = await edgeFiles();
    const result = await scaleServices(workers, { worker: 3 }, { version: 'v2' });
    expect(result).toMatchObject({ version: 'v2', recorded: false });
    expect(edgeless.versions.find((v) => v.label === 'v2')!.replicas).toEqual({ 'jobs-v2-web': 1, 'jobs-v2-worker': 3 });
    const recorded = await readReleaseDocument(workers.stateRemote, 'jobs', workers.stateRoot);
    expect(recorded).toMatchObject({ pending: null, live: null });
    expect(recorded.history.at(-1)).toMatchObject({ action: 'scale', version: 'v2' });
    expect((await scaleServices(workers, { worker: 1 }, { version: 'v2', dryRun: true })).plan.notes).toEqual(['replicas: jobs-v2-worker 3 -> 1', 'history: + scale v2 (worker=1 (applied only: not the live version, so not the app\'s scale))', "v2 is not live: not recorded as the app's scale"]);
    // a consumers-only app: a switch makes v2 the version whose consumers run (src/plan/consumers.ts) and stops
    // v1's, never touching an edge
    await switchVersion(workers, 'v2');
    expect(edgeless.versions.find((v) => v.label === 'v1')!.replicas).toEqual({ 'jobs-v1-web': 0, 'jobs-v1-worker': 0 });
    expect(edgeless.versions.find((v) => v.label === 'v2')!.replicas).toEqual({ 'jobs-v2-web': 1, 'jobs-v2-worker': 3 });
    expect(await readReleaseDocument(workers.stateRemote, 'jobs', workers.stateRoot)).toMatchObject({ live: 'v2', pending: null });
    expect(await edgeFiles()).toEqual(before);
  });

  it('a scale killed after its intent is recorded by the next command, with no edge repair', async () => {
    const before = await edgeFiles();
    const dying = { ...edgeless.killAt('after-intent'), noEdge: true };
    await expect(scaleServices(dying, { worker: 2 }, { version: 'v1' })).rejects.toBeInstanceOf(Killed);
    await forceReleaseLock(workers.stateRemote, 'jobs', workers.stateRoot);
    expect((await readRelease(workers)).interrupted).toBe(true);
    await scaleServices({ ...edgeless.freshControl(), noEdge: true }, { worker: 2 }, { version: 'v1' });
    const recorded = await readReleaseDocument(workers.stateRemote, 'jobs', workers.stateRoot);
    expect(recorded.pending).toBeNull();
    // the killed scale, recorded by the repair (it may have reached the swarm), then the new one
    expect(recorded.history.map((h) => `${h.action}${h.note?.startsWith('rolled') ? ` (${h.note})` : ''}`)).toEqual(['scale', 'repair (rolled-forward depl scale worker=2 --version v1)', 'scale']);
    expect(await edgeFiles()).toEqual(before);
  });
});
