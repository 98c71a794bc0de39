import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managerEngine } from '../../src/apply/docker.js';
import { readSiteLogs } from '../../src/apply/edge/logs.js';
import { ensureEdgeService } from '../../src/apply/edge/service.js';
import { edgeReport, requestThroughEdge, servedReport } from '../../src/apply/edge/site.js';
import { claimEdgeApp } from '../../src/apply/edge/apps.js';
import { clusterEdgeHostOn } from '../../src/apply/edge/cluster-edge.js';
import { CLUSTER_EDGE_NETWORK, CLUSTER_EDGE_SERVICE } from '../../src/plan/cluster-edge.js';
import { appNetworkName } from '../../src/plan/names.js';
import { ensureClusterEdge } from '../../src/workflows/cluster-edge.js';
import { CONFIG_PROBE_PATH, parseRawHttpAnswer, PROBE_HOST, PROBE_SCRIPT } from '../../src/plan/nginx.js';
import { readReleaseDocument } from '../../src/apply/release-store.js';
import { syncRelease } from '../../src/workflows/release.js';
import { computeStats } from '../../src/plan/stats.js';
import { silentLogger } from '../../src/util/log.js';
import { clusterPortFor, type ClusterPort } from '../../src/workflows/cluster-port.js';
import { switchVersion } from '../../src/workflows/switch.js';
import { startBusyboxVersion } from '../support/busybox-image.js';
import type { TestCluster } from '../support/cluster.js';
import { startClusterWithImages, testImages } from '../support/image-cluster.js';
import { runLoad } from '../support/load.js';
import { expectScenarioHeld, sentBetween, switchRollbackCanaryPromote, type ScenarioMarks } from '../support/switch-scenario.js';
import type { CommandContext } from '../../src/cli/context.js';
import switchCommand from '../../src/cli/commands/switch.js';
import rollbackCommand from '../../src/cli/commands/rollback.js';
import statsCommand from '../../src/cli/commands/stats.js';
import lockCommand from '../../src/cli/commands/lock.js';
import { waitFor } from '../support/wait.js';

/**
 * The edge on a real local swarm: nginx as the `<app>-edge` service on the manager, port 80 in host mode,
 * resolving two versions' dnsrr services (2 tasks each, spread over 3 nodes) through Docker's DNS.
 */
const images = testImages();
const { busybox, nginx } = images;
let tc: TestCluster;
let control: ClusterPort;
let app: string;
let domain: string;

async function withEngine<T>(fn: (engine: Awaited<ReturnType<typeof managerEngine>>) => Promise<T>): Promise<T> {
  const engine = await managerEngine(tc.cluster);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

/** What marks a version's service as the one the edge routes to (buildinst sets them; v3 gets them when it is installed). */
const httpLabels = ['--label', 'depl.http=true', '--label', 'depl.port=8080', '--label', 'depl.health=/healthz'];

async function startVersion(version: string): Promise<void> {
  await startBusyboxVersion(tc.cluster.manager, { app, version, network: tc.cluster.network, image: busybox, replicas: 2, hostname: true, health: true, http: version !== 'v3' });
}

async function waitRunning(service: string, replicas: number): Promise<void> {
  await waitFor(`${service} to get ${replicas} running tasks`, async () => {
    const ps = await tc.cluster.manager.exec(['docker', 'service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.CurrentState}}']);
    return ps.stdout.split('\n').filter((l) => l.startsWith('Running')).length >= replicas ? true : undefined;
  });
}

beforeAll(async () => {
  tc = await startClusterWithImages(images, ['busybox', 'nginx'], { nodes: 3 });
  app = tc.loaded.config.app;
  domain = tc.loaded.config.domain;
  await Promise.all([startVersion('v1'), startVersion('v2'), startVersion('v3')]);
  await Promise.all([waitRunning(`${app}-v1-web`, 2), waitRunning(`${app}-v2-web`, 2), waitRunning(`${app}-v3-web`, 2)]);
  await withEngine((engine) => ensureEdgeService(tc.cluster, engine, { app, image: nginx }));
  control = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
  // v1 and v2 are labelled as installed: the edge serves them once depl brings it to the recorded state
  await syncRelease(control, 'depl buildinst');
});

afterAll(async () => {
  await tc?.stop();
});

describe('the edge on a local swarm', () => {
  it('runs nginx as <app>-edge on the edge node, port 80 published in host mode', async () => {
    const spec = JSON.parse((await tc.cluster.manager.exec(['docker', 'service', 'inspect', `${app}-edge`])).stdout)[0].Spec;
    expect(spec.TaskTemplate.Placement.Constraints).toEqual(['node.labels.depl.edge==true']);
    expect(spec.EndpointSpec.Ports).toEqual([expect.objectContaining({ PublishMode: 'host', PublishedPort: 80, TargetPort: 80 })]);
    // ensureEdgeService is idempotent: a second call changes nothing.
    const routing = await tc.cluster.manager.readFile(`/var/lib/depl/${app}/edge/routing`);
    await withEngine((engine) => ensureEdgeService(tc.cluster, engine, { app, image: nginx }));
    expect(await tc.cluster.manager.readFile(`/var/lib/depl/${app}/edge/routing`)).toBe(routing);
    expect(routing).toMatch(/^version v1 http:\/\/.*-v1-web:8080$/m);
  });

  it('answers its routing probe only inside its own container: this machine on the nodes\' bridge and the node itself get 403', async () => {
    // this machine reaches the edge node over a private Docker bridge, which the probe used to trust
    expect((await requestThroughEdge(control.site, PROBE_HOST, CONFIG_PROBE_PATH)).status).toBe(403);
    // the edge's own node, through the published port (Docker's gateway address arrives at nginx)
    const fromNode = await tc.cluster.manager.exec(['bash', '-c', PROBE_SCRIPT, 'probe', '80', CONFIG_PROBE_PATH, PROBE_HOST], { check: false });
    expect(parseRawHttpAnswer(fromNode.stdout).status).toBe(403);
    // depl asks inside the container's network (nsenter on the manager, over its SSH connection) and gets the generations
    const report = await edgeReport(control.site);
    expect(report.status).toBe(200);
    expect(report.routing).not.toBeNull();
  });

  it('serves each version at <version>.<domain> through the edge node, from tasks on several nodes', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const answer = await requestThroughEdge(control.site, `v1.${domain}`, '/');
      expect(answer).toMatchObject({ status: 200, version: 'v1' });
      seen.add(answer.body.trim());
    }
    expect(seen.size).toBe(2);
    expect(await requestThroughEdge(control.site, `v2.${domain}`, '/healthz')).toMatchObject({ status: 200, version: 'v2' });
    expect((await requestThroughEdge(control.site, `nope.${domain}`, '/')).status).toBe(404);
  });

  it('switches, rolls back, canaries 30%, aborts, promotes and installs v3 under load with no failed request', async () => {
    await switchVersion(control, 'v1');
    let marks: ScenarioMarks | undefined;
    // installing: v3's tasks already run (beforeAll); buildinst then adds the version to the edge like this
    const install = async () => {
      await tc.cluster.manager.exec(['docker', 'service', 'update', '--detach', ...httpLabels.map((a) => (a === '--label' ? '--label-add' : a)), `${app}-v3-web`]);
      await syncRelease(control, 'depl buildinst --version v3');
    };
    const t0 = performance.now();
    const result = await runLoad(
      { url: control.site.url, host: domain, durationSeconds: 24, keepAlive: { connections: 8, rate: 250 }, newConnections: { connections: 4, rate: 80 }, sticky: { clients: 8, rate: 60 } },
      async (load) => {
        marks = await switchRollbackCanaryPromote(control, load, install);
      },
    );
    const m = marks!;
    const lastOld = sentBetween(result, m.switchStart, m.rollbackStart).filter((s) => s.client === 'new-connection' && s.version === 'v1').at(-1);
    const { switchPhases, ...instants } = m;
    console.log(`cluster load: ${result.samples.length} responses, ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx; ` +
      `switch command ${(m.switched - m.switchStart).toFixed(0)} ms (${JSON.stringify(switchPhases)}), last new-connection request to v1 sent ${((lastOld?.sentAt ?? m.switchStart) - m.switchStart).toFixed(0)} ms after its start`);
    console.log(`marks (ms from load start): ${Object.entries(instants as Record<string, number>).map(([k, v]) => `${k} ${(v - t0).toFixed(0)}`).join(', ')}; failures: ${JSON.stringify(result.failures.map((f) => ({ ...f, at: Math.round(f.at - t0) })))}`);
    const canary = expectScenarioHeld(result, m);
    console.log(`canary share ${(canary.canaryShare * 100).toFixed(1)}% of ${canary.canaryRequests}, ${canary.stickyClients} cookie clients each on one side`);
    expect(sentBetween(result, m.promoted, Infinity).length).toBeGreaterThan(100);
    expect(await readReleaseDocument(tc.cluster.manager, app)).toMatchObject({ live: 'v2', previous: 'v1', canary: null });
    expect(await requestThroughEdge(control.site, `v3.${domain}`, '/healthz')).toMatchObject({ status: 200, version: 'v3' });
  });

  it('comes back from an edge restart under load serving the recorded live version from its first answer', async () => {
    const edgeContainer = async () => (await tc.cluster.manager.exec(['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${app}-edge`, '--filter', 'status=running'])).stdout.trim();
    const before = await edgeContainer();
    let restartedAt = 0;
    const result = await runLoad(
      { url: control.site.url, host: domain, durationSeconds: 8, keepAlive: { connections: 4, rate: 150 }, newConnections: { connections: 4, rate: 80 } },
      async (load) => {
        await load.responses(200);
        // swarm replaces the edge's container (stop first: the host port is one container's)
        await tc.cluster.manager.exec(['docker', 'service', 'update', '--detach', '--force', `${app}-edge`], { timeoutMs: 60_000 });
        await waitFor('the new edge container to answer', async () => {
          const now = await edgeContainer();
          return now !== '' && now !== before && (await requestThroughEdge(control.site, domain, '/').catch(() => null)) !== null ? true : undefined;
        }, 60_000);
        restartedAt = performance.now();
        await load.responses(200);
      },
    );
    const after = sentBetween(result, restartedAt, Infinity);
    console.log(`edge restart under load: ${result.samples.length} answers (${after.length} after the new container answered), ${result.errors} connection errors while none listened`);
    expect(await edgeContainer()).not.toBe(before);
    // Requests fail while nothing listens; every request that IS answered comes from the live version.
    expect(result.non2xx).toBe(0);
    expect(after.length).toBeGreaterThan(50);
    expect(new Set(result.samples.map((s) => `${s.status} ${s.version}`))).toEqual(new Set(['200 v2']));
    control = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
  });

  it('loses no request while a version rolls its tasks (retries to another task at the edge)', async () => {
    const result = await runLoad(
      { url: control.site.url, host: domain, durationSeconds: 15, keepAlive: { connections: 6, rate: 150 }, newConnections: { connections: 2, rate: 40 } },
      async (load) => {
        await load.responses(150);
        await tc.cluster.manager.exec(['docker', 'service', 'update', '--detach', '--force', '--update-parallelism', '1', '--update-delay', '2s', `${app}-v2-web`]);
        // until swarm says the rolling update is over (its tasks were replaced one by one, 2 s apart)
        await waitFor('the rolling update to complete', async () => {
          const state = await tc.cluster.manager.exec(['docker', 'service', 'inspect', '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', `${app}-v2-web`]);
          return state.stdout.trim() === 'completed' ? true : undefined;
        });
        await waitRunning(`${app}-v2-web`, 2);
      },
    );
    console.log(`rolling update under load: ${result.samples.length} responses, ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
  });

  it('reads the edge access log from the node for stats', async () => {
    const since = Date.now() - 120_000;
    const report = computeStats(await readSiteLogs(control.site, since), { sinceMs: since, untilMs: Date.now() });
    const v2 = report.versions.find((v) => v.version === 'v2');
    expect(v2?.requests).toBeGreaterThan(1_000);
    expect(v2?.errors).toBe(0);
  });

  it('drives the same through the commands, as another operator would (--json results)', async () => {
    const results: unknown[] = [];
    const ctx: CommandContext = { globals: { config: tc.configFile, json: true }, log: silentLogger, interactive: false, progress: false, result: (data) => results.push(data) };
    await switchCommand(ctx, 'v1');
    expect(results.pop()).toEqual({ live: 'v1', previous: 'v2' });
    await rollbackCommand(ctx);
    expect(results.pop()).toEqual({ live: 'v2', previous: 'v1' });
    await expect(switchCommand(ctx, 'v7')).rejects.toThrow(/version "v7" is not installed \(installed: (v[123], ){2}v[123]\)/);
    await statsCommand(ctx, { since: '10m' });
    const stats = results.pop() as { live: string; versions: { version: string; requests: number }[] };
    expect(stats.live).toBe('v2');
    expect(stats.versions.map((v) => v.version)).toEqual(['v2', 'v1', 'v3']);
    await lockCommand(ctx, 'status');
    expect(results.pop()).toEqual({ locked: false, holder: null });
  });
});

describe("two apps behind the cluster's one edge", () => {
  // last in this file: it takes the app's own edge over, which the cases above run on
  it("a second app's buildinst-like arrival takes app 1's edge over into depl_edge; each app switches its own hosts, the other's answers unchanged", async () => {
    const started = performance.now();
    const manager = tc.cluster.manager;
    const app2 = `${app}-b`;
    const domain2 = `${app2}.localhost`;
    const config2 = { ...tc.loaded.config, app: app2, domain: domain2 };
    // what app 2's buildinst does before its edge step: its hosts claimed, its app network there (node-up makes it)
    await claimEdgeApp(manager, undefined, app2, domain2);
    await manager.exec(['docker', 'network', 'create', '--driver', 'overlay', '--attachable', appNetworkName(app2)]);
    const plan = await ensureClusterEdge(clusterEdgeHostOn(tc.cluster, manager), manager, { image: nginx, https: false, command: 'depl buildinst (app 2)' }, silentLogger);
    expect(plan.steps.map((s) => s.kind)).toEqual(['check-edge-image', 'ensure-edge-network', 'copy-routing', 'claim-hosts', 'remove-legacy-edge', 'create-cluster-edge']);
    const edges = (await manager.exec(['docker', 'service', 'ls', '--format', '{{.Name}}', '--filter', 'label=depl.role=edge'])).stdout.split('\n').filter(Boolean);
    expect(edges).toEqual([CLUSTER_EDGE_SERVICE]);
    // app 2's http services join depl_edge-net, as buildinst makes them
    await Promise.all(['v1', 'v2'].map((version) => startBusyboxVersion(manager, { app: app2, version, network: CLUSTER_EDGE_NETWORK, image: busybox, health: true })));
    await Promise.all([waitRunning(`${app2}-v1-web`, 1), waitRunning(`${app2}-v2-web`, 1)]);
    // app 1's commands find the cluster's edge, and its routing was carried over: its live version is served
    const port1 = await clusterPortFor(tc.cluster, tc.loaded.config, silentLogger);
    expect(port1.site.dir).toBe('/var/lib/depl/_edge');
    const live1 = (await readReleaseDocument(manager, app))!.live!;
    expect(await requestThroughEdge(port1.site, domain, '/healthz')).toMatchObject({ status: 200, version: live1 });
    const port2 = await clusterPortFor(tc.cluster, config2, silentLogger);
    await switchVersion(port2, 'v1');
    const served1 = await servedReport(port1.site);
    expect(await requestThroughEdge(port2.site, domain2, '/')).toMatchObject({ status: 200, version: 'v1' });
    expect(await requestThroughEdge(port2.site, `v2.${domain2}`, '/')).toMatchObject({ status: 200, version: 'v2', body: 'v2\n' });
    // app 2 switches: its own table only; app 1's generation and answers stay as they were
    await switchVersion(port2, 'v2');
    expect(await requestThroughEdge(port2.site, domain2, '/')).toMatchObject({ status: 200, version: 'v2' });
    expect(await servedReport(port1.site)).toEqual(served1);
    expect(await requestThroughEdge(port1.site, domain, '/healthz')).toMatchObject({ status: 200, version: live1 });
    // app 1's v3 is no version of app 2: not routed under app 2's domain
    expect(await requestThroughEdge(port2.site, `v3.${domain2}`, '/')).toMatchObject({ status: 404 });
    // and app 1 switches through its command on the cluster's edge, app 2 unchanged
    const other1 = live1 === 'v1' ? 'v2' : 'v1';
    const results: unknown[] = [];
    const ctx: CommandContext = { globals: { config: tc.configFile, json: true }, log: silentLogger, interactive: false, progress: false, result: (data) => results.push(data) };
    await switchCommand(ctx, other1);
    expect(results.pop()).toEqual({ live: other1, previous: live1 });
    expect(await requestThroughEdge(port1.site, domain, '/healthz')).toMatchObject({ status: 200, version: other1 });
    expect(await requestThroughEdge(port2.site, domain2, '/')).toMatchObject({ status: 200, version: 'v2' });
    console.log(`two apps on the cluster's edge: ${((performance.now() - started) / 1000).toFixed(1)} s (takeover, app 2's versions, three switches)`);
  });
});
