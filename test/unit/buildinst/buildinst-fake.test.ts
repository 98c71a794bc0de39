import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInstallIntent } from '../../../src/apply/install-intent.js';
import { acquireLock } from '../../../src/apply/lock.js';
import { parseConfig, type LoadedConfig } from '../../../src/config/load.js';
import { formatVersions } from '../../../src/plan/versions-table.js';
import { silentLogger, type Logger } from '../../../src/util/log.js';
import { readFile } from 'node:fs/promises';
import { UserError } from '../../../src/errors.js';
import { buildinst as buildinstCommand, install, readAndPlan } from '../../../src/workflows/buildinst.js';
import { readRelease } from '../../../src/workflows/release.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { readReleaseReport } from '../../../src/workflows/versions.js';
import { buildinstInputsFor } from '../../../src/workflows/command-inputs.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/** buildinst's applier on the fake cluster (test/support/fake-cluster.ts): the plan it runs, its undo, and a kill after every step. */
const yaml = `
app: shop
domain: shop.test
images: { node: depl-base/node:20, redis: depl-base/redis:7 }
services:
  web: { build: { context: ., dockerfile: Dockerfile }, port: 8080, http: true, health: /healthz, replicas: 2 }
  worker: { from: web, replicas: 1 }
accessories:
  redis: { image: redis, node: manager, port: 6379, volume: "redis-data:/data" }
`;

let fake: FakeCluster;
beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
});
afterEach(async () => {
  await fake.close();
});

const { loaded, request, port, buildinst } = fakeBuildinst(() => fake, yaml);

const intent = () => readInstallIntent(fake.control.stateRemote, fake.app, fake.control.stateRoot);

describe('buildinst on the fake cluster', () => {
  it('refuses a bad version label or branch before anything is read or built (exit 2)', async () => {
    for (const options of [{ version: 'Bad_Label' }, { branch: '///' }, { version: 'a'.repeat(41) }]) {
      const error = await buildinstCommand(buildinstInputsFor(loaded()), options, silentLogger).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).exitCode).toBe(2);
    }
    expect(fake.swarm.calls).toEqual([]);
  });

  it('runs the plan: the version is created, routed at its host, healthy, recorded; a dry run of the same plan changed nothing', async () => {
    const dry = await readAndPlan(port(), { ...request('v3'), config: loaded().config });
    expect(fake.swarm.calls).toEqual([]);
    const result = await buildinst('v3');
    expect(result.plan.steps).toEqual(dry.steps);
    expect(result.url).toBe('http://v3.shop.test/');
    expect((await fake.get('v3.shop.test', '/healthz')).status).toBe(200);
    expect(fake.versions.find((v) => v.label === 'v3')).toMatchObject({ services: ['shop-v3-web', 'shop-v3-worker'], http: { service: 'shop-v3-web', port: 8080 } });
    expect(fake.swarm.calls).toEqual([
      'ensure-edge', 'build-image shop/web:v3', 'distribute-image shop/web:v3', expect.stringMatching(/^ensure-config shop-config-/), 'create-service shop-redis',
      'ensure-network shop-v3-net', 'create-service shop-v3-web', 'create-service shop-v3-worker', 'await-tasks shop-redis,shop-v3-web,shop-v3-worker',
    ]);
    // the specs the swarm got carry the ids the earlier steps made, not the plan's names
    const web = fake.swarm.specs.get('shop-v3-web') as { TaskTemplate: { ContainerSpec: { Labels: Record<string, string>; Configs: { ConfigID: string }[] } } };
    expect(web.TaskTemplate.ContainerSpec.Configs[0]!.ConfigID).toBe('config-1');
    expect(web.TaskTemplate.ContainerSpec.Labels['depl.image-id']).toBe(fake.swarm.images.get('shop/web:v3'));
    expect(await intent()).toBeNull();
    const state = await readRelease(fake.control);
    expect(state.state.history.at(-1)).toMatchObject({ action: 'install', version: 'v3' });
    // the accessory is kept on the next install
    await buildinst('v4');
    expect(fake.swarm.calls.filter((c) => c === 'create-service shop-redis')).toHaveLength(1);
  }, 60_000);

  it('a version whose tasks fail is removed again and the intent forgotten; the edge never routed it', async () => {
    fake.swarm.failing.add('shop-v3-worker');
    await expect(buildinst('v3')).rejects.toThrow(/task failed/);
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2']);
    expect((await fake.get('v3.shop.test', '/healthz')).status).toBe(404);
    expect(await intent()).toBeNull();
    // accessories stay (their data lives in their volume)
    expect(fake.swarm.accessories.has('shop-redis')).toBe(true);
  });

  it('a version that fails its health check is taken off the edge again, then its services removed', async () => {
    fake.unhealthy.add('v3');
    const nginxConf = () => readFile(`${fake.dir}/edge/nginx.conf`, 'utf8');
    const before = await nginxConf();
    await expect(buildinst('v3')).rejects.toMatchObject({ code: 'HEALTH_CHECK_FAILED', message: expect.stringMatching(/http:\/\/v3\.shop\.test\/healthz did not answer 200 through the edge \(last: 500\)/) });
    expect(await nginxConf()).toEqual(before);
    expect((await fake.get('v2.shop.test', '/healthz')).status).toBe(200);
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2']);
    expect((await fake.get('v3.shop.test', '/healthz')).status).toBe(404);
    const state = await readRelease(fake.control);
    expect(state.state.history.map((h) => h.action)).toEqual(['install', 'prune']);
    expect(await intent()).toBeNull();
  });

  it('a branch redeploy replaces its services in place; a failed one puts the earlier deploy back, which serves on, and records nothing', async () => {
    const label = 'feature-login-48fad0';
    const deploy = (killAfter?: number) => buildinst(label, killAfter, { branch: 'feature/Login' });
    const first = await deploy();
    expect(first.services).toEqual([`shop-${label}-web`, `shop-${label}-worker`]);
    const second = await deploy();
    expect(second.services).toEqual(first.services);
    expect(fake.swarm.calls.filter((c) => c.startsWith('update-service'))).toEqual([`update-service shop-${label}-web`, `update-service shop-${label}-worker`]);
    const earlier = structuredClone(fake.swarm.specs.get(`shop-${label}-web`));
    const history = (await readRelease(fake.control)).state.history;

    // the worker's tasks fail: the redeploy stops, and the branch's services go back to the second deploy's specs
    fake.swarm.failing.add(`shop-${label}-worker`);
    fake.swarm.calls.length = 0;
    await expect(deploy()).rejects.toMatchObject({ code: 'TASKS_FAILED' });
    // undone in reverse, then the earlier deploy's tasks awaited (ignoring the failed ones)
    expect(fake.swarm.calls.slice(-4)).toEqual([
      `await-tasks shop-${label}-web,shop-${label}-worker`, `restore-services shop-${label}-worker`, `restore-services shop-${label}-web`, `await-tasks shop-${label}-web,shop-${label}-worker`,
    ]);
    expect(fake.swarm.specs.get(`shop-${label}-web`)).toEqual(earlier);
    expect(fake.versions.find((v) => v.label === label)?.services).toEqual(first.services);
    expect((await fake.get(`${label}.shop.test`, '/healthz')).status).toBe(200);
    expect((await readRelease(fake.control)).state.history).toEqual(history);
    expect(await intent()).toBeNull();
  });

  it('killed after any step, the next buildinst repairs what was left and installs the version (or, once it is in, refuses naming it)', async () => {
    const steps = (await readAndPlan(port(), { ...request('v3'), config: loaded().config })).steps;
    for (const [index, step] of steps.entries()) {
      await fake.close();
      fake = await startFakeCluster({ versions: ['v1', 'v2'] });
      await expect(buildinst('v3', index), `killed after step ${index + 1} (${step.kind})`).rejects.toBeInstanceOf(Killed);
      const again = await buildinst('v3').then(() => 'installed', (error: { code?: string }) => error.code ?? String(error));
      // past clear-install-intent the version is in: installing it again is refused (it exists)
      const inAlready = steps.findIndex((s) => s.kind === 'clear-install-intent') <= index;
      expect(again, `after a kill after step ${index + 1} (${step.kind})`).toBe(inAlready ? 'VERSION_EXISTS' : 'installed');
      expect(fake.versions.find((v) => v.label === 'v3')?.services, `step ${index + 1}`).toEqual(['shop-v3-web', 'shop-v3-worker']);
      expect((await fake.get('v3.shop.test', '/healthz')).status, `step ${index + 1}`).toBe(200);
      expect(await intent(), `step ${index + 1}`).toBeNull();
      const view = await readRelease(fake.control);
      expect(view.interrupted, `step ${index + 1}`).toBe(false);
    }
  }, 240_000);
});

describe("buildinst's release phase on the fake cluster", () => {
  const releaseYaml = `${yaml}release: { service: web, command: [./migrate, up], timeout: 1m }\n`;
  const releaseLoaded = (): LoadedConfig => ({ config: parseConfig(releaseYaml), root: '/nonexistent', file: 'depl.yaml' } as unknown as LoadedConfig);
  const lines: string[] = [];
  const recording: Logger = { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`), error() {}, step: (m) => lines.push(m) };

  /** As `buildinst` above, with depl.yaml's release: and a logger that keeps what the run said. */
  async function buildinstWithRelease(version: string, killAfter?: number) {
    const control = port({ ...fake.freshControl(), log: recording });
    const lock = await acquireLock(control.stateRemote, fake.app, { command: `depl buildinst --version ${version}`, root: control.stateRoot!, log: silentLogger });
    try {
      return await install(control, lock, { ...request(version), config: releaseLoaded().config }, { tasksTimeoutMs: 1_000, healthTimeoutMs: 1_000 }, {}, (index) => {
        if (index === killAfter) throw new Killed(`after step ${index + 1}`);
      });
    } finally {
      await lock.release();
    }
  }
  const jobCall = () => fake.swarm.calls.find((c) => c.startsWith('run-job '));
  beforeEach(() => {
    lines.length = 0;
  });

  it("runs the command once as a job of the new version before its services start, with the ids the earlier steps made; `depl versions` shows how it ended", async () => {
    fake.swarm.jobOutcome = { exitCode: 0, output: 'migrating\nadded column images.sha256\n' };
    await buildinstWithRelease('v3');
    const calls = fake.swarm.calls;
    expect(jobCall()).toMatch(/^run-job shop-release-web-[0-9a-f]{6}$/);
    expect(calls.indexOf('await-tasks shop-redis')).toBeLessThan(calls.indexOf(jobCall()!));
    expect(calls.indexOf(jobCall()!)).toBeLessThan(calls.indexOf('create-service shop-v3-web'));
    expect(calls.filter((c) => c.startsWith('run-job'))).toHaveLength(1);
    const job = fake.swarm.jobs.get(jobCall()!.slice('run-job '.length)) as { TaskTemplate: { ContainerSpec: { Image: string; Args: string[]; Configs: { ConfigID: string }[] } } };
    expect(job.TaskTemplate.ContainerSpec).toMatchObject({ Image: 'shop/web:v3', Args: ['./migrate', 'up'], Configs: [expect.objectContaining({ ConfigID: 'config-1' })] });
    // its output was shown as it came, line by line
    expect(lines).toEqual(expect.arrayContaining(['  web| migrating', '  web| added column images.sha256']));
    const history = (await readRelease(fake.control)).state.history;
    expect(history.map((h) => `${h.action} ${h.version}`)).toEqual(['release v3', 'install v3']);
    expect(history[0]).toMatchObject({ exitCode: 0, note: expect.stringMatching(/^web: \.\/migrate up -> exit 0 in [\d.]+ s$/) });
    const report = await readReleaseReport(fake.control);
    expect(report.versions.find((v) => v.version === 'v3')?.release).toMatchObject({ exitCode: 0 });
    expect(formatVersions(report.versions)).toMatch(/v3 .*release ok/);
  }, 60_000);

  it('a failing release phase stops the install and shows its output; the live version is untouched and the new one never started', async () => {
    await switchVersion(fake.freshControl(), 'v1');
    const served = fake.served();
    fake.swarm.jobOutcome = { exitCode: 1, output: 'migrating\nERROR: relation "images" does not exist\n' };
    const error = await buildinstWithRelease('v3').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'RELEASE_FAILED', exitCode: 1 });
    expect((error as Error).message).toMatch(/the release phase of version v3 failed with exit 1: `\.\/migrate up`/);
    expect((error as Error).message).toContain('ERROR: relation "images" does not exist');
    expect(fake.swarm.calls.filter((c) => c.startsWith('create-service shop-v3'))).toEqual([]);
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2']);
    expect(await intent()).toBeNull();
    const view = await readRelease(fake.control);
    expect(view.state).toMatchObject({ live: 'v1' });
    expect(view.state.history.at(-1)).toMatchObject({ action: 'release', version: 'v3', exitCode: 1, note: expect.stringMatching(/exit 1 after [\d.]+ s; install stopped/) });
    expect(fake.served()).toBe(served);
    expect(await fake.get('shop.test', '/')).toMatchObject({ status: 200, version: 'v1' });
    expect((await fake.get('v3.shop.test', '/healthz')).status).toBe(404);
    // the accessory stays for the next try, which installs the version once its release phase passes
    expect(fake.swarm.accessories.has('shop-redis')).toBe(true);
    fake.swarm.jobOutcome = { exitCode: 0, output: '' };
    await buildinstWithRelease('v3');
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2', 'v3']);
  }, 60_000);

  it('a release phase still running at its timeout is stopped and stops the install (RELEASE_TIMEOUT)', async () => {
    fake.swarm.jobOutcome = { timedOut: true, output: 'waiting for the database lock\n' };
    await expect(buildinstWithRelease('v3')).rejects.toMatchObject({ code: 'RELEASE_TIMEOUT', message: expect.stringMatching(/did not finish within 1m \(stopped\)[^]*waiting for the database lock/) });
    expect(fake.versions.map((v) => v.label)).toEqual(['v1', 'v2']);
    expect((await readRelease(fake.control)).state.history.at(-1)).toMatchObject({ action: 'release', version: 'v3', exitCode: null });
  });

  it('killed around the release phase, the next buildinst removes what was left and runs the release phase again', async () => {
    const steps = (await readAndPlan(port(), { ...request('v3'), config: releaseLoaded().config })).steps;
    const from = steps.findIndex((s) => s.kind === 'write-install-intent');
    const to = steps.findIndex((s) => s.kind === 'create-service');
    expect(steps.slice(from, to).map((s) => s.kind)).toEqual(['write-install-intent', 'await-tasks', 'release-phase']);
    for (let index = from; index <= to; index += 1) {
      await fake.close();
      fake = await startFakeCluster({ versions: ['v1', 'v2'] });
      await expect(buildinstWithRelease('v3', index)).rejects.toBeInstanceOf(Killed);
      await buildinstWithRelease('v3');
      expect(fake.versions.find((v) => v.label === 'v3')?.services, `after a kill after step ${index + 1}`).toEqual(['shop-v3-web', 'shop-v3-worker']);
      expect(fake.swarm.calls.filter((c) => c.startsWith('run-job')), `step ${index + 1}`).toHaveLength(index >= steps.findIndex((s) => s.kind === 'release-phase') ? 2 : 1);
      expect(await intent(), `step ${index + 1}`).toBeNull();
    }
  }, 120_000);
});
