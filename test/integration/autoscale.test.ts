import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBaseTarballs } from '../../src/apply/base-images.js';
import { managerEngine, type Engine } from '../../src/apply/docker.js';
import { generateMissingSecrets } from '../../src/apply/secrets-store.js';
import { listServices } from '../../src/apply/swarm.js';
import { GATES_FOLDER } from '../../src/plan/autoscale-gate.js';
import { CONTROLLER_HIDDEN_DIRS, CONTROLLER_RELEASE_DIR, CONTROLLER_STATE_DIR, type ControllerState } from '../../src/plan/autoscale.js';
import { localGateway } from '../../src/plan/local-nodes.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { pollUntil } from '../../src/util/poll.js';
import { runCli } from '../support/cli.js';
import { keepCrawlerBuildCache, seedCrawlerBuildCache } from '../support/build-cache.js';
import { startTestCluster, type TestCluster } from '../support/cluster.js';
import { crawlerDeployment } from '../support/crawler-deployment.js';
import { startSyntheticSite, type SyntheticSite } from '../support/synthetic-site.js';

/**
 * Autoscaling the crawler's workers on queue depth, on one 3-node local cluster with the real crawler deployed:
 * a crawl of a few thousand pages of a slow site takes the workers from min to max, and once the queue is empty
 * back to min after the cooldown; every page is crawled exactly once (none lost when workers stop), and the
 * decisions are in `depl status --json` and the controller's JSON-line log.
 */
const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;
const suffix = randomBytes(2).toString('hex');
const app = `as${suffix}`;
const PAGES = 2500;
const MIN = 1;
const MAX = 4;
let tc: TestCluster;
let engine: Engine;
let site: SyntheticSite;

const cli = (args: string[], timeoutMs = 120_000) => runCli(['--config', tc.configFile, ...args], { cwd: tc.dir, timeoutMs });

beforeAll(async () => {
  const deployment = await crawlerDeployment(app, {
    // the site is served from the cluster's bridge gateway; test subnets are all in 10.213.0.0/16
    allow: { networks: ['10.213.0.0/16'] },
    worker: { concurrency: 4 },
  });
  const services = deployment.services as Record<string, Record<string, unknown>>;
  services.api!.replicas = 1;
  services.worker!.replicas = MIN;
  const [cluster] = await Promise.all([
    startTestCluster({
      nodes: 3,
      app,
      config: {
        ...deployment,
        autoscale: { worker: { min: MIN, max: MAX, targetBacklog: 25, cooldown: '10s', interval: '1s', metrics: { bearer: 'api_token' } } },
      },
      log,
    }),
    ensureBaseTarballs(log),
  ]);
  tc = cluster;
  await seedCrawlerBuildCache(tc, log);
  await generateMissingSecrets(tc.dir, tc.loaded.config.secrets, new Date());
  engine = await managerEngine(tc.cluster);
  site = await startSyntheticSite({ pages: PAGES, branching: 10, pageDelayMs: 150, specials: false, host: localGateway(tc.subnet) });
}, 600_000);

afterAll(async () => {
  await site?.close();
  await engine?.close();
  try {
    if (tc !== undefined) await keepCrawlerBuildCache(tc, log);
  } finally {
    await tc?.stop();
  }
});

const workerReplicas = async () => (await listServices(engine, { 'depl.app': app })).find((s) => s.name === `${app}-v1-worker`)?.replicas;

describe('autoscale: the crawler\'s workers follow the queue', () => {
  it('installs the version with its controller, the workers at min', async () => {
    const installed = await cli(['--json', 'buildinst', '--version', 'v1'], 600_000);
    expect(installed.exitCode, installed.stderr.slice(-3000)).toBe(0);
    expect((JSON.parse(installed.stdout) as { services: string[] }).services).toEqual([`${app}-v1-api`, `${app}-v1-worker`, `${app}-v1-autoscaler-gate`, `${app}-v1-autoscaler`]);
    // the controller has no Docker socket, only its version's engine gate (through which it scales, in the next case)
    const [controller] = (await tc.cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-v1-autoscaler`, '--filter', 'status=running'])).stdout.trim().split('\n');
    const sockets = "const fs=require('fs');console.log(fs.existsSync('/var/run/docker.sock'),fs.existsSync('/run/depl/engine-gate/engine.sock'))";
    await pollUntil(async () => ((await tc.cluster.manager.exec(['docker', 'exec', controller!, 'node', '-e', sockets])).stdout.trim() === 'false true') || undefined, { timeoutMs: 30_000, intervalMs: 500, onTimeout: () => { throw new Error('the controller has a Docker socket, or its engine gate\'s socket never appeared'); } });
    const switched = await cli(['switch', 'v1']);
    expect(switched.exitCode, switched.stderr).toBe(0);
    expect(await workerReplicas()).toBe(MIN);

    // it reads the release document, and nothing of the folders it must not: each holds a probe file on the manager
    const appDir = `/var/lib/depl/${app}`;
    const probe = `probe-${suffix}`;
    const probed = CONTROLLER_HIDDEN_DIRS.map((dir) => `${appDir}/${dir}/${probe}`);
    await tc.cluster.manager.exec(['sh', '-c', 'for f in "$@"; do echo secret > "$f"; done', 'probe', ...probed]);
    try {
      const onManager = (await tc.cluster.manager.exec(['sh', '-c', 'ls "$@"', 'ls', ...probed, `${appDir}/autoscale/${GATES_FOLDER}`])).stdout.split('\n');
      expect(onManager).toEqual(expect.arrayContaining([...probed, 'v1']));
      const look = `const fs=require('fs');const r='${CONTROLLER_RELEASE_DIR}';console.log(JSON.stringify({release:fs.readFileSync(r+'/release.json','utf8').includes('"live"'),`
        + `hidden:Object.fromEntries(${JSON.stringify(CONTROLLER_HIDDEN_DIRS)}.map((d)=>[d,fs.readdirSync(r+'/'+d)])),gates:fs.readdirSync('${CONTROLLER_STATE_DIR}/${GATES_FOLDER}')}))`;
      const seen = JSON.parse((await tc.cluster.manager.exec(['docker', 'exec', controller!, 'node', '-e', look])).stdout) as unknown;
      expect(seen).toEqual({ release: true, hidden: Object.fromEntries(CONTROLLER_HIDDEN_DIRS.map((dir) => [dir, []])), gates: [] });
    } finally {
      await tc.cluster.manager.exec(['rm', '-f', ...probed]);
    }
  }, 600_000);

  it('scales the workers from min to max under a crawl and back to min after the cooldown, losing no page', async () => {
    const seen: number[] = [(await workerReplicas()) ?? -1];
    expect(seen).toEqual([MIN]);
    const submitted = await cli(['--json', 'crawl', 'submit', site.seed, '--depth', '10', '--max-pages', String(PAGES * 2)]);
    expect(submitted.exitCode, submitted.stderr).toBe(0);
    const job = (JSON.parse(submitted.stdout) as { id: string }).id;

    await pollUntil(async () => {
      const replicas = await workerReplicas();
      if (replicas !== undefined && replicas !== seen.at(-1)) seen.push(replicas);
      return replicas === MAX || undefined;
    }, { timeoutMs: 90_000, intervalMs: 500, onTimeout: () => { throw new Error(`the workers never reached ${MAX} replicas (saw ${seen.join(' -> ')})`); } });

    const done = await pollUntil(async () => {
      const status = await cli(['--json', 'crawl', 'status', job]);
      expect(status.exitCode, status.stderr).toBe(0);
      const doc = JSON.parse(status.stdout) as { status: string; counts: Record<string, number> };
      return doc.status === 'running' ? undefined : doc;
    }, { timeoutMs: 150_000, intervalMs: 2_000, onTimeout: () => { throw new Error('the crawl did not finish'); } });
    // every page of the site fetched and counted once: none lost when workers were stopped
    expect(done.status).toBe('done');
    expect(done.counts).toMatchObject({ queued: PAGES, fetched: PAGES, robots: 5, failed: 0, pending: 0, cancelled: 0 });
    for (let i = 0; i < PAGES; i++) expect(site.hits.get(`/p/${i}.html`) ?? 0, `/p/${i}.html`).toBeGreaterThanOrEqual(1);

    await pollUntil(async () => {
      const replicas = await workerReplicas();
      if (replicas !== undefined && replicas !== seen.at(-1)) seen.push(replicas);
      return replicas === MIN || undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, onTimeout: () => { throw new Error(`the workers did not come back to ${MIN} (saw ${seen.join(' -> ')})`); } });
    expect(Math.max(...seen)).toBe(MAX);
    expect(seen.at(-1)).toBe(MIN);

    // the decisions, as depl status shows them
    const status = await cli(['--json', 'status']);
    expect(status.exitCode, status.stderr).toBe(0);
    const autoscale = (JSON.parse(status.stdout) as { autoscale: ControllerState | null }).autoscale;
    expect(autoscale).toMatchObject({ version: 'v1', live: true });
    const worker = autoscale!.services.worker!;
    expect(worker).toMatchObject({ service: 'worker', swarmService: `${app}-v1-worker`, min: MIN, max: MAX, replicas: MIN, backlog: 0 });
    expect(worker.lastChange).toMatchObject({ action: 'down', to: MIN });
    expect(worker.changes.some((c) => c.action === 'up' && c.to === MAX)).toBe(true);
    // a scale-down never came sooner than the cooldown after the change before it
    for (const [before, after] of worker.changes.slice(0, -1).map((c, i) => [c, worker.changes[i + 1]!] as const)) {
      if (after.action === 'down') expect(Date.parse(after.at) - Date.parse(before.at)).toBeGreaterThanOrEqual(10_000);
    }
    const human = await cli(['status']);
    expect(human.stdout).toMatch(new RegExp(`autoscale: controller of v1[^\\n]*\\n  worker: 1 replicas \\(1\\.\\.4\\), backlog 0 read \\d+s ago; last down \\d->1`));

    // and as JSON lines in the controller's log
    const logs = await cli(['logs', 'autoscaler', '--tail', '200']);
    expect(logs.exitCode, logs.stderr).toBe(0);
    const events = logs.stdout.split('\n').map((l) => /\| (\{.*\})$/.exec(l)?.[1]).filter((l): l is string => l !== undefined).map((l) => JSON.parse(l) as { event: string; to?: number });
    expect(events.some((e) => e.event === 'scale' && e.to === MAX)).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: 'scale', to: MIN });
  }, 400_000);

  it('follows a switch: the new live version\'s controller takes its workers over, the old one goes idle', async () => {
    const installed = await cli(['buildinst', '--version', 'v2'], 600_000);
    expect(installed.exitCode, installed.stderr.slice(-3000)).toBe(0);
    expect((await cli(['switch', 'v2'])).exitCode).toBe(0);
    const autoscale = await pollUntil(async () => {
      const status = await cli(['--json', 'status']);
      expect(status.exitCode, status.stderr).toBe(0);
      const state = (JSON.parse(status.stdout) as { autoscale: ControllerState | null }).autoscale;
      return state?.version === 'v2' && state.live && state.services.worker !== undefined ? state : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1_000, onTimeout: () => { throw new Error('the v2 controller never reported as live'); } });
    expect(autoscale.services.worker).toMatchObject({ swarmService: `${app}-v2-worker`, replicas: MIN, backlog: 0 });
    const v1 = await pollUntil(async () => {
      const text = await tc.cluster.manager.readFile(`/var/lib/depl/${app}/autoscale/v1.json`);
      const state = text === null ? null : (JSON.parse(text) as ControllerState);
      return state?.live === false ? state : undefined;
    }, { timeoutMs: 30_000, intervalMs: 1_000, onTimeout: () => { throw new Error('the v1 controller did not go idle'); } });
    expect(v1.version).toBe('v1');
  }, 600_000);
});
