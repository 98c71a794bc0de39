import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import { planInstall, resolveJob, resolveSpec, type InstallFacts, type InstallStep, type PresentService } from '../../../src/plan/install-plan.js';
import { emptyReleaseState } from '../../../src/plan/release-state.js';
import { versionsFromServices } from '../../../src/plan/releases.js';
import { crawlerYaml } from '../release/fixtures.js';

/** The install plan as data (src/plan/install-plan.ts): what `depl buildinst` does, step by step, for several depl.yamls. */
const facts = (yaml: string, over: Partial<InstallFacts> = {}): InstallFacts => {
  const config = parseConfig(yaml);
  const present = over.present ?? [];
  return {
    config, version: 'v3', command: 'depl buildinst --version v3', present, foreign: [], state: emptyReleaseState(config.app),
    installed: versionsFromServices(config.app, [...present]), earlierSpecs: [], secrets: [],
    cluster: { network: 'crawler-net', nodes: ['m1', 'w1', 'w2'], manager: 'm1' }, tls: 'off', at: '2026-12-06T10:00:00Z', by: 'ops@test',
    // the app's hosts are claimed on the cluster's edge already (its first install did it): most plans have no claim step
    edgeApps: [{ app: config.app, domain: config.domain }], ...over,
  };
};
const planned = (f: InstallFacts) => {
  const result = planInstall(f);
  if (!result.ok) throw new Error(result.refusal.message);
  return result.plan;
};
const kinds = (steps: InstallStep[]) => steps.map((s) => (s.kind === 'hook' ? `hook ${s.hook}` : 'spec' in s ? `${s.kind} ${s.spec.Name}` : s.kind));
const service = (name: string, labels: Record<string, string>, image = ''): PresentService => ({ name, labels, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image });
const redisPresent = service('crawler-redis', { 'depl.app': 'crawler', 'depl.accessory': 'redis' }, 'depl-base/redis:7');

describe('the install plan', () => {
  it("claims the app's hosts on the cluster's edge before any other step, undone by taking the claim back; another app's host is refused", () => {
    const first = planned(facts(crawlerYaml, { edgeApps: [{ app: 'blog', domain: 'blog.example' }] }));
    expect(first.steps[0]).toEqual({
      kind: 'claim-edge-hosts', app: 'crawler', domain: 'crawler.localhost', before: null,
      describe: "claim crawler.localhost and its version hosts for app crawler in the edge's app list", undo: "take app crawler's claim off the edge's app list",
    });
    expect(kinds(first.steps).slice(0, 3)).toEqual(['claim-edge-hosts', 'hook pre-build', 'ensure-edge']);
    // a changed domain: the earlier claim is what the undo puts back
    expect(planned(facts(crawlerYaml, { edgeApps: [{ app: 'crawler', domain: 'old.example' }] })).steps[0]).toMatchObject({ before: 'old.example', undo: 'claim old.example again for app crawler' });
    // claimed already: no step
    expect(kinds(planned(facts(crawlerYaml)).steps)[0]).toBe('hook pre-build');
    // another app answers the version host v1.crawler.localhost's parent: refused, naming both apps and the host
    const refused = planInstall(facts(crawlerYaml, { edgeApps: [{ app: 'blog', domain: 'v1.crawler.localhost' }] }));
    expect(refused).toEqual({ ok: false, refusal: expect.objectContaining({ code: 'HOST_TAKEN', message: expect.stringMatching(/host v1\.crawler\.localhost .*app blog .*app crawler/) }) });
    // no http service: nothing to route, nothing claimed
    const workers = crawlerYaml.replace(/ {4}http: true\n/g, '');
    expect(kinds(planned(facts(workers, { edgeApps: [] })).steps)).not.toContain('claim-edge-hosts');
  });

  it('an http app with an accessory: build, distribute, config, accessory, intent, services, tasks, edge, health, record, in that order', () => {
    const plan = planned(facts(crawlerYaml));
    expect(kinds(plan.steps)).toEqual([
      'hook pre-build', 'ensure-edge', 'build-image', 'distribute-image', 'hook pre-install', 'ensure-config', 'create-accessory crawler-redis',
      'ensure-network', 'write-install-intent', 'create-service crawler-v3-api', 'create-service crawler-v3-worker', 'await-tasks', 'route-version', 'health-gate',
      'clear-install-intent', 'renewal-task', 'hook post-install',
    ]);
    expect(plan.url).toBe('http://v3.crawler.localhost/');
    expect(plan.services).toEqual(['crawler-v3-api', 'crawler-v3-worker']);
    const build = plan.steps.find((s) => s.kind === 'build-image');
    expect(build).toMatchObject({ tag: 'crawler/api:v3', usedBy: ['api', 'worker'], args: { EXTRA: '1', NODE_IMAGE: 'depl-base/node:20' } });
    expect(plan.steps.find((s) => s.kind === 'distribute-image')).toMatchObject({ image: 'crawler/api:v3', nodes: 'all' });
    expect(plan.steps.find((s) => s.kind === 'route-version')).toMatchObject({
      request: { kind: 'install', version: 'v3', http: { service: 'crawler-v3-api', port: 8000, health: '/healthz' } }, healthFirst: false, undo: 'take v3.crawler.localhost off the edge again',
    });
    expect(plan.steps.find((s) => s.kind === 'health-gate')).toMatchObject({ host: 'v3.crawler.localhost', path: '/healthz', service: 'crawler-v3-api' });
    // only what can be undone says how: the services and the routing, and the intent last
    expect(plan.steps.filter((s) => 'undo' in s).map((s) => s.kind)).toEqual(['ensure-network', 'write-install-intent', 'create-service', 'create-service', 'route-version']);
    expect(renderPlanText(plan)).toContain('undo: remove crawler-v3-api');
  });

  it('keeps an accessory that runs, and updates one whose secrets were rotated; secrets are named, never their values', () => {
    const yaml = `${crawlerYaml.replace('    port: 6379\n', '    port: 6379\n    secrets: [redis_password]\n')}secrets: [redis_password, api_token]\n`;
    const withSecrets = yaml.replace('    health: /healthz\n', '    health: /healthz\n    secrets: [api_token]\n');
    const secrets = [{ secret: 'api_token', name: 'crawler-api_token-abc' }, { secret: 'redis_password', name: 'crawler-redis_password-def' }];
    const kept = planned(facts(withSecrets, { present: [{ ...redisPresent, labels: { ...redisPresent.labels, 'depl.secrets': 'crawler-redis_password-def' } }], secrets }));
    expect(kinds(kept.steps).filter((k) => k.includes('accessory'))).toEqual([]);
    expect(kept.steps.filter((s) => s.kind === 'ensure-secret').map((s) => s.describe)).toEqual([
      'ensure swarm secret crawler-api_token-abc (secret api_token)', 'ensure swarm secret crawler-redis_password-def (secret redis_password)',
    ]);
    const api = kept.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-api')!;
    expect(api.spec.TaskTemplate.ContainerSpec.Secrets).toEqual([expect.objectContaining({ SecretName: 'crawler-api_token-abc', SecretID: '' })]);
    expect(JSON.stringify(kept)).not.toMatch(/reveal|password=/);

    const rotated = planned(facts(withSecrets, { present: [{ ...redisPresent, labels: { ...redisPresent.labels, 'depl.secrets': 'crawler-redis_password-old' } }], secrets }));
    const update = rotated.steps.find((s) => s.kind === 'update-accessory');
    expect(update).toMatchObject({ spec: { Name: 'crawler-redis', Labels: { 'depl.secrets': 'crawler-redis_password-def' }, TaskTemplate: { ContainerSpec: { Image: 'depl-base/redis:7' } } } });
    expect(update?.describe).toMatch(/secrets changed \(redis_password\)/);
    expect(kinds(rotated.steps).indexOf('update-accessory crawler-redis')).toBeLessThan(kinds(rotated.steps).indexOf('write-install-intent'));
  });

  it("names every app's volumes after the app, whatever another app has (one under the unscoped name is moved before the install is planned)", () => {
    const created = (plan: ReturnType<typeof planned>) =>
      (plan.steps.find((s) => s.kind === 'create-accessory') as Extract<InstallStep, { kind: 'create-accessory' }>).spec.TaskTemplate.ContainerSpec.Mounts;
    expect(created(planned(facts(crawlerYaml)))).toEqual([expect.objectContaining({ Type: 'volume', Source: 'crawler-redis-data', Target: '/data' })]);
    // another app's redis on the unscoped redis-data is not this app's data: this app still gets its own volume
    const otherApps = [{ ...service('redis', { 'depl.app': 'shop', 'depl.accessory': 'redis' }), volumes: ['redis-data'] }];
    expect(created(planned(facts(crawlerYaml, { present: otherApps })))).toEqual([expect.objectContaining({ Source: 'crawler-redis-data' })]);
    // this app's accessory still on redis-data (a dry run reads it before buildinst moves it, src/plan/volume-move.ts): the install is the one after the move
    const yaml = `${crawlerYaml.replace('    port: 6379\n', '    port: 6379\n    secrets: [redis_password]\n')}secrets: [redis_password]\n`;
    const onOld: PresentService = { ...redisPresent, labels: { ...redisPresent.labels, 'depl.secrets': 'crawler-redis_password-old' }, volumes: ['redis-data'] };
    const rotated = planned(facts(yaml, { present: [onOld], secrets: [{ secret: 'redis_password', name: 'crawler-redis_password-def' }] }));
    const update = rotated.steps.find((s) => s.kind === 'update-accessory') as Extract<InstallStep, { kind: 'update-accessory' }>;
    expect(update.spec.TaskTemplate.ContainerSpec.Mounts).toEqual([expect.objectContaining({ Source: 'crawler-redis-data', Target: '/data' })]);
  });

  it('with a registry, images are pushed once; without, copied to the nodes; an accessory off the manager gets its image there', () => {
    const onWorker = crawlerYaml.replace('    node: manager\n', '    node: w1\n');
    const viaRegistry = planned(facts(`${onWorker}registry: { url: "http://registry.local:5000" }\n`));
    expect(viaRegistry.steps.filter((s) => s.kind === 'distribute-image')).toEqual([
      expect.objectContaining({ image: 'registry.local:5000/crawler/api:v3', nodes: 'all', registry: 'http://registry.local:5000', describe: expect.stringContaining('push') }),
      expect.objectContaining({ image: 'depl-base/redis:7', nodes: ['w1'] }),
    ]);
    const saveLoad = planned(facts(onWorker));
    expect(saveLoad.steps.filter((s) => s.kind === 'distribute-image').map((s) => s.describe)).toEqual([
      'copy crawler/api:v3 to every node that lacks it (docker save | docker load)', 'put depl-base/redis:7 on w1 (accessory redis)',
    ]);
  });

  it('a branch redeploy updates the branch\'s services in place, checks health before recording, removes what depl.yaml dropped, and undoes to the earlier specs', () => {
    const branchLabels = (svc: string, extra: Record<string, string> = {}) => ({ 'depl.app': 'crawler', 'depl.version': 'br-feature-x', 'depl.service': svc, 'depl.branch': 'feature/x', ...extra });
    const present = [
      redisPresent,
      service('crawler-br-feature-x-api', branchLabels('api', { 'depl.http': 'true', 'depl.port': '8000', 'depl.health': '/healthz' })),
      service('crawler-br-feature-x-worker', branchLabels('worker', { 'depl.http': 'false' })),
      service('crawler-br-feature-x-old', branchLabels('old', { 'depl.http': 'false' })),
    ];
    const earlierSpecs = [{ name: 'crawler-br-feature-x-api', spec: { Name: 'crawler-br-feature-x-api', marker: 'earlier' } }, { name: 'crawler-br-feature-x-worker', spec: { Name: 'crawler-br-feature-x-worker' } }];
    const plan = planned(facts(crawlerYaml, { version: 'br-feature-x', branch: 'feature/x', command: 'depl buildinst --branch feature/x', present, earlierSpecs }));
    expect(kinds(plan.steps).slice(6)).toEqual([
      'ensure-network', 'write-install-intent', 'update-service crawler-br-feature-x-api', 'update-service crawler-br-feature-x-worker', 'await-tasks', 'route-version',
      'remove-service', 'clear-install-intent', 'renewal-task', 'hook post-install',
    ]);
    expect(plan.steps.find((s) => s.kind === 'write-install-intent')).toMatchObject({ redeploy: true, replaced: earlierSpecs });
    // the branch's network was made by its first deploy and stays when this one fails
    expect(plan.steps.find((s) => s.kind === 'ensure-network')).toEqual(expect.not.objectContaining({ undo: expect.anything() }));
    expect(plan.steps.find((s) => s.kind === 'update-service')).toMatchObject({ earlier: earlierSpecs[0], undo: "put crawler-br-feature-x-api's earlier spec back" });
    expect(plan.steps.find((s) => s.kind === 'route-version')).toMatchObject({ healthFirst: true });
    expect(plan.steps.find((s) => s.kind === 'remove-service')).toMatchObject({ name: 'crawler-br-feature-x-old' });
    expect(plan.steps.find((s) => s.kind === 'await-tasks')).toMatchObject({ ignoreTasksOf: ['crawler-br-feature-x-api', 'crawler-br-feature-x-worker', 'crawler-br-feature-x-old'] });
  });

  it('an app without an http service has no edge step, no routing and no URL; autoscale: adds its controller, whose image is made first', () => {
    const noHttp = crawlerYaml.replace('    http: true\n', '');
    const plan = planned(facts(noHttp));
    expect(plan.url).toBeNull();
    expect(kinds(plan.steps).filter((k) => /edge|route|health|renewal/.test(k))).toEqual([]);
    expect(plan.notes).toContain('no service has http: true: no edge; the version is not routed');
    const scaled = planned(facts(`${crawlerYaml}autoscale:\n  worker: { min: 1, max: 4, targetBacklog: 10 }\n`));
    const order = kinds(scaled.steps);
    expect(order.indexOf('ensure-autoscaler-image')).toBeLessThan(order.indexOf('create-service crawler-v3-autoscaler'));
    expect(scaled.steps.find((s) => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-autoscaler')).toMatchObject({ autoscalerImage: true });
    // and its engine gate, from the same image, before it: the one of the two with the Docker socket
    expect(order.indexOf('create-service crawler-v3-autoscaler-gate')).toBeLessThan(order.indexOf('create-service crawler-v3-autoscaler'));
    expect(scaled.steps.find((s) => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-autoscaler-gate')).toMatchObject({ autoscalerImage: true });
    expect(scaled.steps.find((s) => s.kind === 'ensure-autoscaler-image')).toMatchObject({ version: 'v3' });
    const sockets = scaled.steps.flatMap((s) => (s.kind === 'create-service' ? [[s.spec.Name, JSON.stringify(s.spec).includes('docker.sock')] as const] : []));
    expect(sockets.filter(([, socket]) => socket).map(([name]) => name)).toEqual(['crawler-v3-autoscaler-gate']);
  });

  it('tls: acme adds the certificates after the version is in and keeps the renewal task; the recorded scale wins over depl.yaml and is said', () => {
    const plan = planned(facts(crawlerYaml, { tls: 'acme', state: { ...emptyReleaseState('crawler'), scale: { worker: 5 } } }));
    expect(kinds(plan.steps).slice(-4)).toEqual(['clear-install-intent', 'issue-certificates', 'renewal-task', 'hook post-install']);
    // the image the cluster has (the offline base image in the facts' config), not depl.yaml's name for it
    expect(plan.steps.find((s) => s.kind === 'renewal-task')).toMatchObject({ mode: 'ensure', nodeImage: 'depl-base/node:20' });
    expect(plan.url).toBe('https://v3.crawler.localhost/');
    expect(plan.notes).toContain("worker: 5 replicas, the app's scale set with depl scale (depl.yaml says 3; depl scale worker=<n> changes it)");
    expect(plan.steps.find((s) => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-worker')).toMatchObject({ spec: { Mode: { Replicated: { Replicas: 5 } } } });
  });

  it('refuses an installed version and an accessory name another app runs, before any step', () => {
    const present = [service('crawler-v3-api', { 'depl.app': 'crawler', 'depl.version': 'v3', 'depl.service': 'api', 'depl.http': 'true', 'depl.port': '8000' })];
    const taken = planInstall(facts(crawlerYaml, { present }));
    expect(taken).toMatchObject({ ok: false, refusal: { message: expect.stringContaining('v3') } });
    const foreign = planInstall(facts(crawlerYaml, { foreign: [service('crawler-redis', { 'depl.app': 'other' })] }));
    expect(foreign).toMatchObject({ ok: false, refusal: { code: 'ACCESSORY_TAKEN' } });
  });

  it('an accessory under its old name (the accessory alone) is stopped, made again app-scoped on the volume it had, then removed', () => {
    // as the swarm lists it: made before names were app-scoped; its volume already moved into the app-scoped one (src/plan/volume-move.ts)
    const legacy: PresentService = { ...service('redis', { 'depl.app': 'crawler', 'depl.accessory': 'redis' }, 'depl-base/redis:7'), volumes: ['crawler-redis-data'] };
    const plan = planned(facts(crawlerYaml, { present: [legacy] }));
    const accessorySteps = plan.steps.filter((s) => s.kind.includes('accessory'));
    expect(accessorySteps.map((s) => ('spec' in s ? `${s.kind} ${s.spec.Name}` : `${s.kind} ${'name' in s ? s.name : ''}`))).toEqual([
      'stop-legacy-accessory redis', 'create-accessory crawler-redis', 'remove-legacy-accessory redis',
    ]);
    const created = accessorySteps.find((s) => s.kind === 'create-accessory') as Extract<InstallStep, { kind: 'create-accessory' }>;
    expect(created.spec.TaskTemplate.ContainerSpec.Mounts).toEqual([expect.objectContaining({ Type: 'volume', Source: 'crawler-redis-data', Target: '/data' })]);
    expect(created.spec.TaskTemplate.Networks).toEqual([{ Target: 'crawler-net', Aliases: ['redis'] }]);
    // none can be undone: the move goes forward only (the accessory is kept under its new name whatever fails later)
    expect(accessorySteps.every((s) => !('undo' in s))).toBe(true);
    expect(plan.notes.join('\n')).toMatch(/accessory redis still runs as the service redis .* its volume crawler-redis-data keeps its name and data/);
    // killed after the stop: the next plan creates (on the same volume: the stopped service still names it) and removes;
    // after the create: it only removes; after the removal: nothing is left to move
    const stopped = planned(facts(crawlerYaml, { present: [{ ...legacy, replicas: 0 }] }));
    expect(kinds(stopped.steps).filter((k) => k.includes('accessory'))).toEqual(['create-accessory crawler-redis', 'remove-legacy-accessory']);
    const again = stopped.steps.find((s) => s.kind === 'create-accessory') as Extract<InstallStep, { kind: 'create-accessory' }>;
    expect(again.spec.TaskTemplate.ContainerSpec.Mounts).toEqual([expect.objectContaining({ Source: 'crawler-redis-data' })]);
    const made: PresentService = { ...redisPresent, volumes: ['crawler-redis-data'] };
    expect(kinds(planned(facts(crawlerYaml, { present: [{ ...legacy, replicas: 0 }, made] })).steps).filter((k) => k.includes('accessory'))).toEqual(['remove-legacy-accessory']);
    expect(kinds(planned(facts(crawlerYaml, { present: [made] })).steps).filter((k) => k.includes('accessory'))).toEqual([]);
    expect(kinds(planned(facts(crawlerYaml)).steps).filter((k) => k.includes('accessory'))).toEqual(['create-accessory crawler-redis']);
    expect(kinds(planned(facts(crawlerYaml, { present: [redisPresent] })).steps).filter((k) => k.includes('accessory'))).toEqual([]);
  });

  it("another app's accessories are neither moved nor a conflict: only this app's name (<app>-<accessory>) is looked at", () => {
    // app shop's redis under the old name, and shop's app-scoped one: both other app's, on the same swarm
    const foreign = [service('redis', { 'depl.app': 'shop', 'depl.accessory': 'redis' }), service('shop-redis', { 'depl.app': 'shop', 'depl.accessory': 'redis' })];
    const plan = planned(facts(crawlerYaml, { foreign }));
    expect(kinds(plan.steps).filter((k) => k.includes('accessory'))).toEqual(['create-accessory crawler-redis']);
    // a service of this app under the accessory's app-scoped name that is not that accessory: refused, not replaced
    const clash = planInstall(facts(crawlerYaml, { present: [service('crawler-redis', { 'depl.app': 'crawler', 'depl.accessory': 'cache' })] }));
    expect(clash).toMatchObject({ ok: false, refusal: { code: 'ACCESSORY_TAKEN', message: expect.stringContaining('crawler-redis') } });
  });

  it('resolveSpec fills in the ids the earlier steps made, and refuses a spec whose objects were never made', () => {
    const plan = planned(facts(crawlerYaml));
    const api = plan.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-api')!;
    const config = api.spec.TaskTemplate.ContainerSpec.Configs![0]!.ConfigName;
    const resolved = resolveSpec(api.spec, { configs: { [config]: 'cfg1' }, secrets: {}, imageIds: { 'crawler/api:v3': 'sha256:abc' } }, api);
    expect(resolved.TaskTemplate.ContainerSpec.Configs![0]).toMatchObject({ ConfigID: 'cfg1', ConfigName: config });
    expect(resolved.TaskTemplate.ContainerSpec.Labels).toMatchObject({ 'depl.image-id': 'sha256:abc' });
    // the task learns the image it runs (the crawler records it as provenance), once, beside its release
    expect(resolved.TaskTemplate.ContainerSpec.Env).toEqual([...api.spec.TaskTemplate.ContainerSpec.Env!, 'DEPL_IMAGE_ID=sha256:abc']);
    expect(resolved.TaskTemplate.ContainerSpec.Env).toContain('DEPL_VERSION=v3');
    expect(api.spec.TaskTemplate.ContainerSpec.Configs![0]!.ConfigID).toBe('');
    expect(() => resolveSpec(api.spec, { configs: {}, secrets: {}, imageIds: { 'crawler/api:v3': 'x' } }, api)).toThrow(/was not made/);
  });
  it('a release phase runs once as a job of the new version, after the accessories run and before its first service; the install record names the job', () => {
    const yaml = `${crawlerYaml.replace('    env: { LOG_LEVEL: info }\n', '    env: { LOG_LEVEL: info }\n    secrets: [db_password]\n')}secrets: [db_password]\nrelease: { service: api, command: [node, dist/migrate.js, up], timeout: 2m }\n`;
    const plan = planned(facts(yaml, { secrets: [{ secret: 'db_password', name: 'crawler-db_password-abc' }] }));
    expect(kinds(plan.steps)).toEqual([
      'hook pre-build', 'ensure-edge', 'build-image', 'distribute-image', 'hook pre-install', 'ensure-config', 'ensure-secret', 'create-accessory crawler-redis',
      'ensure-network', 'write-install-intent', 'await-tasks', 'release-phase', 'create-service crawler-v3-api', 'create-service crawler-v3-worker', 'await-tasks', 'route-version', 'health-gate',
      'clear-install-intent', 'renewal-task', 'hook post-install',
    ]);
    const awaits = plan.steps.filter((s): s is Extract<InstallStep, { kind: 'await-tasks' }> => s.kind === 'await-tasks');
    // the accessories first (the release command needs them), the version's services after it
    expect(awaits.map((s) => s.services)).toEqual([['crawler-redis'], ['crawler-v3-api', 'crawler-v3-worker']]);
    const release = plan.steps.find((s): s is Extract<InstallStep, { kind: 'release-phase' }> => s.kind === 'release-phase')!;
    const api = plan.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-api')!;
    expect(release).toMatchObject({ service: 'api', command: ['node', 'dist/migrate.js', 'up'], timeout: '2m', timeoutMs: 120_000 });
    expect(release.job.Name).toMatch(/^crawler-release-api-[0-9a-f]{6}$/);
    // the new version's image, env, config, secrets and network; its own command; once, never restarted, no health check
    const container = release.job.TaskTemplate.ContainerSpec;
    expect(container).toMatchObject({ Image: 'crawler/api:v3', Args: ['node', 'dist/migrate.js', 'up'], Env: api.spec.TaskTemplate.ContainerSpec.Env });
    expect(container.Configs).toEqual(api.spec.TaskTemplate.ContainerSpec.Configs);
    expect(container.Secrets).toEqual(api.spec.TaskTemplate.ContainerSpec.Secrets);
    expect(container).not.toHaveProperty('HealthCheck');
    // both of the version's networks, answering to no service's name: `api` there stays the version's api
    expect(release.job.TaskTemplate.Networks).toEqual([{ Target: 'crawler-net' }, { Target: 'crawler-v3-net' }]);
    expect(release.job.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });
    expect(release.job.TaskTemplate.RestartPolicy.Condition).toBe('none');
    expect(release.job.Labels).toMatchObject({ 'depl.app': 'crawler', 'depl.job': 'release', 'depl.job.version': 'v3', 'depl.job.service': 'api' });
    // not a version's service: the swarm's listing never counts it as one
    expect(release.job.Labels).not.toHaveProperty('depl.version');
    expect(plan.steps.find((s) => s.kind === 'write-install-intent')).toMatchObject({ services: ['crawler-v3-api', 'crawler-v3-worker', release.job.Name] });
    expect(plan.notes.join('\n')).toMatch(/release phase: `node dist\/migrate.js up` runs once as job crawler-release-api-\w+ with v3's api before its services start; what it changes \(a migration\) is not undone/);
    expect(renderPlanText(plan)).toMatch(/\d+\. release phase: run `node dist\/migrate.js up` once as job crawler-release-api-\w+ \(v3's api: its image, config, secrets, network\), within 2m; a failure stops the install/);
    // the same facts make the same plan (a dry run shows what runs)
    expect(planned(facts(yaml, { secrets: [{ secret: 'db_password', name: 'crawler-db_password-abc' }] }))).toEqual(plan);
    const configName = api.spec.TaskTemplate.ContainerSpec.Configs![0]!.ConfigName;
    const resolved = resolveJob(release.job, { configs: { [configName]: 'cfg1' }, secrets: { 'crawler-db_password-abc': 'sec1' } });
    expect(resolved.TaskTemplate.ContainerSpec).toMatchObject({ Configs: [expect.objectContaining({ ConfigID: 'cfg1' })], Secrets: [expect.objectContaining({ SecretID: 'sec1' })] });
    expect(() => resolveJob(release.job, { configs: {}, secrets: {} })).toThrow(/was not made by an earlier step/);
  });

  it('a release phase with the accessories already running waits for none of them first; without release: there is no such step', () => {
    const yaml = `${crawlerYaml}release: { service: worker, command: [node, migrate.js] }\n`;
    const plan = planned(facts(yaml, { present: [redisPresent] }));
    expect(kinds(plan.steps).slice(kinds(plan.steps).indexOf('write-install-intent'), kinds(plan.steps).indexOf('write-install-intent') + 3)).toEqual(['write-install-intent', 'release-phase', 'create-service crawler-v3-api']);
    expect(plan.steps.find((s) => s.kind === 'release-phase')).toMatchObject({ timeout: '10m', timeoutMs: 600_000, job: { TaskTemplate: { ContainerSpec: { Image: 'crawler/api:v3' } } } });
    expect(kinds(planned(facts(crawlerYaml)).steps)).not.toContain('release-phase');
  });

  it("mounts depl.yaml's files: as content-addressed swarm configs made before the services, and creates accessories in depends_on order", () => {
    const yaml = crawlerYaml
      .replace('    env: { LOG_LEVEL: info }\n', '    env: { LOG_LEVEL: info }\n    files: { /etc/app/settings.json: settings.json }\n')
      .replace('accessories:\n', 'accessories:\n  cache:\n    image: redis\n    node: manager\n    dependsOn: [redis]\n    files: { /etc/cache.conf: cache.conf }\n');
    const data = Buffer.from('{"a":1}\n');
    const files = [{ owner: 'api', target: '/etc/app/settings.json', data }, { owner: 'cache', target: '/etc/cache.conf', data }];
    const plan = planned(facts(yaml, { files }));
    const fileSteps = plan.steps.filter((s): s is Extract<InstallStep, { kind: 'ensure-file-config' }> => s.kind === 'ensure-file-config');
    // the same bytes twice are one config
    expect(fileSteps).toHaveLength(1);
    expect(Buffer.from(fileSteps[0]!.base64, 'base64').equals(data)).toBe(true);
    expect(fileSteps[0]!.name).toMatch(/^crawler-file-[0-9a-f]{16}$/);
    expect(kinds(plan.steps).filter((k) => k.startsWith('create-accessory'))).toEqual(['create-accessory crawler-redis', 'create-accessory crawler-cache']);
    const at = (kind: string) => kinds(plan.steps).findIndex((k) => k.startsWith(kind));
    expect(at('ensure-file-config')).toBeLessThan(at('create-accessory'));
    const api = plan.steps.find((s): s is Extract<InstallStep, { kind: 'create-service' }> => s.kind === 'create-service' && s.spec.Name === 'crawler-v3-api')!;
    expect(api.spec.TaskTemplate.ContainerSpec.Configs).toContainEqual(expect.objectContaining({ ConfigName: fileSteps[0]!.name, ConfigID: '', File: expect.objectContaining({ Name: '/etc/app/settings.json' }) }));
    const resolved = resolveSpec(api.spec, { configs: { [fileSteps[0]!.name]: 'cfg-file', [plan.steps.find((s) => s.kind === 'ensure-config')!.document.name]: 'cfg-doc' }, secrets: {}, imageIds: { 'crawler/api:v3': 'sha256:abc' } }, api);
    expect(resolved.TaskTemplate.ContainerSpec.Configs).toContainEqual(expect.objectContaining({ ConfigID: 'cfg-file', File: expect.objectContaining({ Name: '/etc/app/settings.json' }) }));
  });
});
