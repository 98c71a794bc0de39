import { ensureAutoscalerImage } from '../apply/autoscaler-image.js';
import { ensureBaseImages } from '../apply/base-images.js';
import type { Cluster } from '../apply/cluster.js';
import { distributeImage } from '../apply/distribute.js';
import { managerEngine, type Engine } from '../apply/docker.js';
import { ensureEdgeImage } from '../apply/edge-image.js';
import { ensureEdgeService } from '../apply/edge/service.js';
import { waitForHealthy } from '../apply/health.js';
import { operatorHooks, type HookRunner } from '../apply/hooks.js';
import { clearInstallIntent, readInstallIntent, writeInstallIntent } from '../apply/install-intent.js';
import { describeHolder, withLock, type HeldLock } from '../apply/lock.js';
import { readReleaseDocument } from '../apply/release-store.js';
import { resolveSecrets, type ResolvedSecret } from '../apply/secrets-store.js';
import {
  createService, ensureSwarmConfig, ensureSwarmSecret, inspectServiceSpec, listServices, pinnedImageReference, removeService, restoreServices, serviceLogTail, serviceTasks, updateService,
  waitForServices, type AwaitedService, type InstalledService,
} from '../apply/swarm.js';
import type { LoadedConfig } from '../config/load.js';
import type { DeplConfig } from '../config/schema.js';
import { isDeplError, OperationError, UserError } from '../errors.js';
import { autoscalerFoldersLine, planAutoscaler } from '../plan/autoscale.js';
import { planImages } from '../plan/images.js';
import { AUTOSCALER_SERVICE } from '../config/schema.js';
import { serviceName, versionHost } from '../plan/names.js';
import type { HookFacts } from '../plan/hooks.js';
import { planRelease, stateOf, type InstalledVersion, type ReleaseState } from '../plan/release-state.js';
import { versionsFromServices } from '../plan/releases.js';
import { certificateCovers, describeWithheld, directoryUrl, tlsSettings } from '../plan/tls/certificates.js';
import { renewalTimes, type RenewerSettings } from '../plan/tls/renewal.js';
import { ensureRenewalTask, removeRenewalTask } from '../apply/tls/renewal-task.js';
import { tlsStoreFor } from '../apply/tls/store.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { applyEdgeConfig } from '../apply/edge/config.js';
import { clusterEdgeSite } from '../apply/edge/site.js';
import { issueEdgeCertificates, readCertificateFiles, syncEdgeCertificates } from './tls/certificates.js';
import type { ServiceRestore } from '../plan/install-intent.js';
import { accessorySecretsLabel, configDocument, LABELS, pinnedSpec, planAccessory, planSecrets, planVersionServices, specImageId, type ServiceSpec, type SwarmSecretRef } from '../plan/services.js';
import { onInterrupt } from '../util/interrupt.js';
import type { Logger } from '../util/log.js';
import { openCluster } from './cluster.js';
import { clusterPortFor, fencedControl, operator, type ClusterPort } from './cluster-port.js';
import { repairInterruptedInstall } from './install-repair.js';
import { openRelease, withRelease, type ReleaseChange, type ReleaseSession } from './release.js';
import { releaseTarget, resolveBuildInputs, type BuildInput } from './release-target.js';

export interface BuildinstOptions {
  version?: string;
  branch?: string;
  now?: Date;
  /** How long to wait for another depl run holding the cluster lock; 0 (default) fails at once naming it. */
  lockWaitMs?: number;
  tasksTimeoutMs?: number;
  healthTimeoutMs?: number;
  /** An already open cluster (tests); otherwise opened from the inventory and closed at the end. */
  cluster?: Cluster;
  /** Where DEPL_SECRET_<NAME> overrides come from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Check and plan only: print the release state change and the edge diff, build and change nothing. */
  dryRun?: boolean;
}

export interface BuildinstResult {
  version: string;
  /** Where the version answers; null without an http service (no edge serves it). */
  url: string | null;
  services: string[];
  branch?: string;
  /** Milliseconds per phase, for the operator and the README's figures. */
  timings: { build: number; distribute: number; install: number; total: number };
  /** Why the version is served over plain HTTP although tls: is on (its certificate could not be issued). */
  httpsMissing?: string;
  /** Certificates in the store the edge does not serve (expired, not yet valid): which hosts, since or until when. */
  tlsWithheld?: string[];
  /** The certificate renewal task on the cluster (tls: acme): what this run did to it, or why it could not. */
  renewer?: string;
  /** The release state change (for a dry run, all that happened). */
  change?: ReleaseChange;
  /** Post-hooks that failed (`post-install exited with 3`): reported, nothing undone. */
  hookFailures?: string[];
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * depl buildinst: lock -> build -> distribute -> accessories -> version services -> all tasks running ->
 * edge serves <version>.<domain> -> /healthz answers 200 through the edge. A failure after the first
 * service was created removes the version's services and puts the edge back as it was; the live version
 * is never touched. A failed branch redeploy puts the branch's services back to their earlier specs instead,
 * so the branch's earlier deploy keeps serving.
 */
export async function buildinst(loaded: LoadedConfig, options: BuildinstOptions, log: Logger): Promise<BuildinstResult> {
  const started = Date.now();
  const { config } = loaded;
  const target = releaseTarget(config.app, versionServiceNames(config), options, options.now ?? new Date());
  const inputs = await resolveBuildInputs(loaded);
  // a missing secret stops the run here, before anything on the cluster changed
  const secrets = await resolveSecrets(loaded, options.env);
  const cluster = options.cluster ?? (await openCluster(loaded, log));
  let engine: Engine | undefined;
  try {
    engine = await managerEngine(loaded, cluster);
    const opened = engine;
    const command = `depl buildinst ${target.branch !== undefined ? `--branch ${target.branch}` : `--version ${target.version}`}`;
    const http = httpVersion(config, target.version);
    if (options.dryRun) {
      // Nothing is built or created: the edge's files are read as they are.
      const control = await clusterPortFor(cluster, config, log, true);
      return await withRelease(control, command, { dryRun: true }, async (session) => {
        const change = await session.change({ kind: 'install', version: target.version, ...(target.branch !== undefined ? { branch: target.branch } : {}), ...http });
        return { version: target.version, url: http.http !== undefined ? `http://${versionHost(target.version, config.domain)}/` : null, services: Object.keys(config.services).map((s) => serviceName(config.app, target.version, s)), timings: { build: 0, distribute: 0, install: 0, total: Date.now() - started }, change };
      });
    }
    return await withLock(cluster.manager, config.app, {
      command,
      waitMs: options.lockWaitMs ?? 0,
      log,
      onWait: (holder) => log.info(`waiting for the cluster lock, held by ${describeHolder(holder)}`),
    }, (lock) => install({ loaded, cluster, lock, engine: opened, inputs, secrets, version: target.version, branch: target.branch, options, log, started, command, hooks: operatorHooks(loaded, log) }));
  } finally {
    await engine?.close();
    if (!options.cluster) await cluster.close();
  }
}

/** The services a version is made of: depl.yaml's, and the autoscale controller when depl.yaml has autoscale:. */
function versionServiceNames(config: DeplConfig): string[] {
  return [...Object.keys(config.services), ...(Object.keys(config.autoscale).length > 0 ? [AUTOSCALER_SERVICE] : [])];
}

/** The version's http service as the edge will reach it, from depl.yaml alone. */
function httpVersion(config: DeplConfig, version: string): { services: string[]; http?: InstalledVersion['http'] } {
  const services = versionServiceNames(config).map((s) => serviceName(config.app, version, s)).sort();
  const entry = Object.entries(config.services).find(([, s]) => s.http && s.port !== undefined);
  if (entry === undefined) return { services };
  const [name, svc] = entry;
  return { services, http: { service: serviceName(config.app, version, name), port: svc.port!, ...(svc.health !== undefined ? { health: svc.health } : {}) } };
}

interface InstallContext {
  loaded: LoadedConfig;
  cluster: Cluster;
  /** The cluster lock this buildinst holds: what it writes on the manager goes through lock.fenced. */
  lock: HeldLock;
  engine: Engine;
  inputs: BuildInput[];
  secrets: ResolvedSecret[];
  version: string;
  branch?: string;
  options: BuildinstOptions;
  log: Logger;
  started: number;
  command: string;
  hooks: HookRunner;
}

async function install(ctx: InstallContext): Promise<BuildinstResult> {
  const { cluster, engine, version, log } = ctx;
  const app = ctx.loaded.config.app;
  await repairEarlierInstall(ctx);
  const existing = await listServices(engine, { [LABELS.app]: app });
  const previousOfLabel = existing.filter((s) => s.labels[LABELS.version] === version);
  // a branch redeploy (the release transition below refuses any other install over an installed version)
  const earlier = versionsFromServices(app, existing).find((v) => v.label === version);
  const request = { kind: 'install' as const, version, ...(ctx.branch !== undefined ? { branch: ctx.branch } : {}), ...httpVersion(ctx.loaded.config, version) };
  // Refusals first (a version that exists, a live branch), then the pre-build hook: both before anything changes.
  const recorded = stateOf(await readReleaseDocument(cluster.manager, app));
  const early = planRelease(recorded, request, { installed: versionsFromServices(app, existing), at: new Date().toISOString(), by: operator({}) });
  if (!early.ok) throw new UserError(early.refusal.message, early.refusal.hint, early.refusal.code);
  // tls: files that would be refused later (expired, a key others may read) stop the build now, exit 2
  await readCertificateFiles(ctx.loaded);
  const hookFacts: HookFacts = {
    app, domain: ctx.loaded.config.domain, command: 'buildinst', version, previous: recorded.live, live: recorded.live, performer: operator({}),
    ...(ctx.branch !== undefined ? { branch: ctx.branch } : {}),
  };
  await ctx.hooks.run('pre-build', hookFacts);
  // The edge first (it serves every version; idempotent), so that the release state can be read and repaired.
  const config = await withBaseImages(ctx);
  let session: ReleaseSession | undefined;
  const https = tlsSettings(config).mode !== 'off';
  if (request.http !== undefined) {
    const edgeImage = config.images.nginx ?? (await ensureEdgeImage(engine, config.provider.type === 'local', log));
    await ensureEdgeService(cluster, engine, { app, image: edgeImage, https });
    // the edge answers ACME challenges before any order is placed: HTTPS settings as the store has them
    if (https) {
      const labels = existing.filter((s) => s.labels[LABELS.http] === 'true').map((s) => s.labels[LABELS.version]).filter((l): l is string => l !== undefined);
      await syncEdgeCertificates(tlsStoreFor(cluster.manager, app), ctx.loaded, [...new Set([...labels, version])]);
    }
    session = await openRelease(fencedControl(await clusterPortFor(cluster, ctx.loaded.config, log), ctx.lock), ctx.command);
    session.check(request);
  }
  await checkAccessoryNames(ctx, existing);

  const images = planImages(config, version);

  const buildStarted = Date.now();
  const imageIds: Record<string, string> = {};
  for (const build of images.builds) {
    const input = ctx.inputs.find((i) => i.service === build.service)!;
    log.step(`building ${build.tag} on ${engine.name}`);
    const buildStep = Date.now();
    const id = await engine.build({
      context: input.context,
      dockerfile: input.dockerfile,
      tag: build.tag,
      args: build.args,
      // no version label: an unchanged tree then builds the same image id, which nodes already have
      labels: { [LABELS.app]: app },
    }, log);
    for (const service of build.usedBy) imageIds[service] = id;
    log.step(`built ${build.tag} in ${seconds(Date.now() - buildStep)}`);
  }
  const distributeStarted = Date.now();
  for (const build of images.builds) {
    const result = await distributeImage(cluster, engine, build.tag, cluster.nodes, log, config.registry?.url);
    log.step(`${build.tag}: ${result.pushed ? 'pushed to the registry' : `loaded on ${result.loaded.length}, tagged on ${result.tagged.length}, already on ${result.skipped.length} node(s)`}`);
  }
  for (const [name, accessory] of Object.entries(config.accessories)) {
    const node = accessory.node === 'manager' ? undefined : cluster.nodes.find((n) => n.name === accessory.node);
    if (node && node.name !== cluster.managerNode.name) await distributeImage(cluster, engine, images.accessories[name]!, [node], log, config.registry?.url);
  }

  const distributed = Date.now();
  if (images.builds.length > 0) log.step(`images on every node in ${seconds(distributed - distributeStarted)}`);
  await ctx.hooks.run('pre-install', hookFacts);
  const installStarted = Date.now();
  const configRef = await ensureSwarmConfig(engine, configDocument(config));
  const secretRefs: Record<string, SwarmSecretRef> = {};
  for (const doc of planSecrets(app, ctx.secrets)) secretRefs[doc.secret] = await ensureSwarmSecret(engine, doc);
  const accessories = await ensureAccessories(ctx, config, images.accessories, existing, secretRefs);
  const scale = (session?.state ?? recorded).scale;
  logScale(ctx, scale);
  const specs = planVersionServices({
    config, version, images: images.services, imageIds, network: cluster.network, configRef, secrets: secretRefs, nodes: cluster.nodes.length,
    ...(ctx.branch !== undefined ? { branch: ctx.branch } : {}), scale,
  });
  const autoscaler = await autoscalerSpec(ctx, config, secretRefs);
  if (autoscaler !== null) specs.push(autoscaler);

  // A redeploy updates the branch's services in place: what each was is kept, to be put back if it fails.
  const redeploy = earlier === undefined ? undefined : {
    earlier,
    replaced: await earlierSpecs(ctx, previousOfLabel.filter((s) => specs.some((spec) => spec.Name === s.name))),
    created: specs.map((s) => s.Name).filter((name) => !previousOfLabel.some((s) => s.name === name)),
    // services depl.yaml no longer has go once the new deploy is in, so that a failure finds them still there
    stale: previousOfLabel.filter((s) => !specs.some((spec) => spec.Name === s.name)),
  };
  // what the next command removes (or, for a redeploy, puts back) if this process dies before the version is in
  await writeInstallIntent(ctx.lock.fenced(cluster.manager), {
    schema: 1, app, version, command: ctx.command, by: operator({}), at: new Date().toISOString(), pid: process.pid,
    services: specs.map((s) => s.Name), redeploy: redeploy !== undefined, ...(redeploy !== undefined ? { replaced: redeploy.replaced } : {}),
  });
  let added = false;
  // Ctrl-C (or SIGTERM) from here until the version is in: its services are removed (a redeploy's put back)
  // before depl exits, as after a failure, so no half-made version is left behind for `depl versions` to list.
  const creating = { stopped: false, step: Promise.resolve() as Promise<unknown>, undone: undefined as Promise<void> | undefined };
  // one undo, whether the failure or the interrupt comes first (both may, the workflow runs on meanwhile)
  const undoOnce = (why: string) => (creating.undone ??= redeploy !== undefined
    ? undoRedeploy(ctx, redeploy, added ? session : undefined, why)
    : undo(ctx, specs, added ? session : undefined, why));
  const unregister = onInterrupt(async () => {
    creating.stopped = true;
    await creating.step.catch(() => undefined);
    await undoOnce('was interrupted');
  }, redeploy !== undefined ? `putting back the earlier deploy of branch ${ctx.branch}` : `removing the half-installed version ${version}`);
  try {
    const earlierTasks = await tasksOf(ctx, previousOfLabel.map((s) => s.id));
    creating.step = applyServices(ctx, specs, previousOfLabel, () => creating.stopped);
    await creating.step;
    await waitForServices(engine, [...accessories, ...specs.map(awaitedService)], {
      timeoutMs: ctx.options.tasksTimeoutMs ?? 180_000,
      ignoreTasks: earlierTasks,
    }, log);

    const http = specs.find((s) => s.Labels[LABELS.http] === 'true');
    if (http && session !== undefined) {
      if (redeploy !== undefined && sameUpstream(redeploy.earlier.http, request.http)) {
        // the edge already routes the version to this service: the health gate decides before anything is recorded
        await session.change(request, { precheck: () => healthGate(ctx, config, http) });
      } else {
        await session.change(request);
        added = true;
        await healthGate(ctx, config, http);
      }
    }
  } catch (error) {
    unregister();
    await undoOnce('failed');
    throw error;
  }
  unregister();
  for (const gone of redeploy?.stale ?? []) {
    log.step(`removing ${gone.name} (no longer in depl.yaml)`);
    await removeService(engine, gone.id).catch((error: Error) => log.warn(`could not remove ${gone.name}: ${error.message}`));
  }
  await clearInstallIntent(ctx.lock.fenced(cluster.manager), app);

  // Certificates come after the version is in: one that cannot be issued leaves the version on plain HTTP.
  let httpsMissing: string | undefined;
  let tlsWithheld: string[] = [];
  const host = versionHost(version, config.domain);
  if (https && session !== undefined) {
    try {
      const routing = session.routing();
      const certs = await issueEdgeCertificates(cluster, ctx.loaded, log, routing.versions.map((v) => v.label));
      // the routing stays; the settings (certificates) changed: the edge reloads them gracefully
      if (certs.renderChanged) {
        const site = await clusterEdgeSite(cluster, app);
        await applyEdgeConfig({ ...site, remote: ctx.lock.fenced(site.remote) }, routing);
      }
      tlsWithheld = certs.withheld.map(describeWithheld);
      const withheld = certs.withheld.find((w) => certificateCovers(w.names, host));
      httpsMissing = certs.failed.find((f) => f.names.some((name) => certificateCovers([name], host)))?.reason;
      if (httpsMissing === undefined && withheld !== undefined) httpsMissing = describeWithheld(withheld);
      if (httpsMissing === undefined && !certs.installed.some((c) => certificateCovers(c.names, host))) httpsMissing = 'no certificate covers this host';
    } catch (error) {
      if (!isDeplError(error)) throw error;
      httpsMissing = error.message;
    }
    if (httpsMissing !== undefined) log.warn(`HTTPS is missing for ${host}, which is served over plain HTTP: ${httpsMissing}`);
  }
  const renewer = request.http !== undefined ? await installRenewalTaskFor(ctx, config) : undefined;

  const done = Date.now();
  // no http service: the version is not served at any URL (there is no edge)
  const url = request.http === undefined ? null : `${https && httpsMissing === undefined ? 'https' : 'http'}://${host}/`;
  log.info(`Version ${version} is successfully installed`);
  const post = await ctx.hooks.run('post-install', hookFacts);
  return {
    ...(post?.failure !== undefined ? { hookFailures: [post.failure] } : {}),
    version,
    url,
    ...(httpsMissing !== undefined ? { httpsMissing } : {}),
    ...(tlsWithheld.length > 0 ? { tlsWithheld } : {}),
    ...(renewer !== undefined ? { renewer } : {}),
    services: specs.map((s) => s.Name),
    ...(ctx.branch !== undefined ? { branch: ctx.branch } : {}),
    timings: { build: distributeStarted - buildStarted, distribute: distributed - distributeStarted, install: done - installStarted, total: done - ctx.started },
  };
}

/** Services created at the app's recorded scale rather than depl.yaml's replicas say so (it outlives edits to depl.yaml). */
function logScale(ctx: InstallContext, scale: ReleaseState['scale']): void {
  for (const [name, svc] of Object.entries(ctx.loaded.config.services)) {
    const n = scale[name];
    if (n !== undefined && n !== svc.replicas) ctx.log.step(`${name}: ${n} replicas, the app's scale set with depl scale (depl.yaml says ${svc.replicas}; depl scale ${name}=<n> changes it)`);
  }
}

/**
 * tls: acme keeps a renewal task on the cluster (src/tls-renewer/main.ts) so certificates are renewed without an
 * operator; any other mode removes it. A task that cannot be installed is reported, not fatal: the version is in.
 */
async function installRenewalTaskFor(ctx: InstallContext, config: DeplConfig): Promise<string | undefined> {
  const { cluster, engine, log } = ctx;
  const tls = tlsSettings(config);
  try {
    if (tls.mode !== 'acme') return (await removeRenewalTask(engine, config.app)) ? 'removed' : undefined;
    const caBundle = tls.caBundle === undefined ? undefined : await readFile(path.resolve(ctx.loaded.root, tls.caBundle), 'utf8');
    const settings: RenewerSettings = {
      app: config.app,
      domain: config.domain,
      directory: directoryUrl(tls.directory),
      ...(tls.email !== undefined ? { email: tls.email } : {}),
      ...(caBundle !== undefined ? { caBundle } : {}),
      challenge: tls.challenge,
      ...(tls.hstsMaxAge !== undefined ? { hstsMaxAge: tls.hstsMaxAge } : {}),
      ...renewalTimes(tls),
      edgeUrl: `http://${cluster.managerNode.address}:80`,
    };
    return await ensureRenewalTask(cluster.manager, engine, { settings, image: config.images.node ?? 'node:20-bookworm-slim', log });
  } catch (error) {
    if (!isDeplError(error)) throw error;
    log.warn(`the certificate renewal task is not installed: ${error.message}; certificates are renewed by depl commands only`);
    return `not installed: ${error.message}`;
  }
}

/**
 * The version's autoscale controller (src/plan/autoscale.ts), when depl.yaml has autoscale:: its image is made
 * on the manager, and the folder it records its decisions in, beside the release document.
 */
async function autoscalerSpec(ctx: InstallContext, config: DeplConfig, secrets: Record<string, SwarmSecretRef>): Promise<ServiceSpec | null> {
  if (Object.keys(config.autoscale).length === 0) return null;
  const image = await ensureAutoscalerImage(ctx.engine, config.images.node ?? 'node:20-bookworm-slim', ctx.log);
  await ctx.cluster.manager.shell(autoscalerFoldersLine(config.app));
  return planAutoscaler({ config, version: ctx.version, image, network: ctx.cluster.network, secrets, ...(ctx.branch !== undefined ? { branch: ctx.branch } : {}) });
}

/**
 * For the local provider the nodes cannot pull: the base images named in depl.yaml that the manager does not
 * have are replaced by the offline ones depl makes (node, nginx, redis).
 */
async function withBaseImages(ctx: InstallContext): Promise<DeplConfig> {
  const { config } = ctx.loaded;
  if (config.provider.type !== 'local') return config;
  const images = { ...config.images };
  // (no nginx default here: without images.nginx the edge runs depl's own edge image, see ensureEdgeImage)
  const wanted: Record<string, string> = { node: images.node ?? 'node:20-bookworm-slim', redis: images.redis ?? 'redis:7' };
  if (images.nginx !== undefined) wanted.nginx = images.nginx;
  const missing: [string, string][] = [];
  for (const [key, named] of Object.entries(wanted)) if (!(await ctx.engine.imageId(named))) missing.push([key, named]);
  if (missing.length === 0) return config;
  const offline = await ensureBaseImages(ctx.engine, ctx.log);
  for (const [key, named] of missing) {
    const ref = offline[key as keyof typeof offline];
    ctx.log.debug(`images.${key}: ${named} is not on the manager; using the offline ${ref}`);
    images[key] = ref;
    // an image named as pulled (`image: redis:7`, as a Compose file names it) gets the same offline image
    images[named] = ref;
  }
  return { ...config, images };
}

async function checkAccessoryNames(ctx: InstallContext, mine: InstalledService[]): Promise<void> {
  for (const name of Object.keys(ctx.loaded.config.accessories)) {
    if (mine.some((s) => s.name === name)) continue;
    const other = (await listServices(ctx.engine, {})).find((s) => s.name === name);
    if (other) {
      throw new UserError(
        `a service named "${name}" already runs on this cluster and is not app ${ctx.loaded.config.app}'s accessory (labels: ${JSON.stringify(other.labels)})`,
        `Rename the accessory in depl.yaml, or remove that service.`,
        'ACCESSORY_TAKEN',
      );
    }
  }
}

/**
 * Accessories are created once and then kept across versions (their data lives in their volume). One whose
 * secrets were rotated (depl secrets set) is updated to mount the new swarm secrets: Redis restarts with the
 * new password, and versions installed before it must be redeployed to reach it.
 */
async function ensureAccessories(
  ctx: InstallContext, config: DeplConfig, images: Record<string, string>, existing: InstalledService[], secrets: Record<string, SwarmSecretRef>,
): Promise<{ name: string; replicas: number }[]> {
  const changed: { name: string; replicas: number }[] = [];
  for (const [name, accessory] of Object.entries(config.accessories)) {
    const spec = planAccessory(config.app, name, accessory, images[name]!, ctx.cluster.network, secrets);
    const current = existing.find((s) => s.name === name && s.labels[LABELS.accessory] === name);
    if (current) {
      const wanted = spec.Labels[LABELS.secrets] ?? accessorySecretsLabel([]);
      if ((current.labels[LABELS.secrets] ?? '') === wanted) continue;
      ctx.log.warn(`accessory ${name}: its secrets changed (${accessory.secrets.join(', ')}); updating it (restart). Versions installed before this one keep the old value: redeploy or prune them.`);
      await updateService(ctx.engine, current, { ...spec, Labels: { ...current.labels, ...spec.Labels }, ...keepImage(current, spec) });
      changed.push({ name, replicas: 1 });
      continue;
    }
    ctx.log.step(`creating accessory ${name} (${images[name]}), pinned to ${accessory.node}`);
    await createService(ctx.engine, spec);
    changed.push({ name, replicas: 1 });
  }
  return changed;
}

/** A secret rotation restarts an accessory with the new secret, not with another image. */
function keepImage(current: InstalledService, spec: ServiceSpec): Pick<ServiceSpec, 'TaskTemplate'> {
  return { TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...spec.TaskTemplate.ContainerSpec, Image: current.image || spec.TaskTemplate.ContainerSpec.Image } } };
}

/** A new version's services are created; a branch redeploy updates that branch's services in place. */
async function applyServices(ctx: InstallContext, specs: ServiceSpec[], previous: InstalledService[], interrupted: () => boolean): Promise<void> {
  for (const spec of specs) {
    if (interrupted()) return;
    const current = previous.find((s) => s.name === spec.Name);
    if (current) {
      ctx.log.step(`updating ${spec.Name} (rolling, ${spec.UpdateConfig.Order})`);
      await updateService(ctx.engine, current, spec);
    } else {
      ctx.log.step(`creating ${spec.Name} (${spec.Mode.Replicated.Replicas} replicas)`);
      await createService(ctx.engine, spec);
    }
  }
}

/** Only the tasks of this spec count as the service's (a service updated in place still runs old tasks for a while). */
function awaitedService(spec: ServiceSpec): AwaitedService {
  const container = spec.TaskTemplate.ContainerSpec;
  return {
    name: spec.Name,
    replicas: spec.Mode.Replicated.Replicas,
    spec: { image: container.Image, configs: (container.Configs ?? []).map((c) => c.ConfigName), labels: container.Labels ?? {} },
  };
}

/** The ids of the services' tasks now: their failures are not the new spec's. */
async function tasksOf(ctx: InstallContext, services: readonly string[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const service of services) for (const task of await serviceTasks(ctx.engine, service)) ids.add(task.id);
  return ids;
}

/** Whether the edge routes a version to the same place before and after (its routing names service and port only). */
function sameUpstream(before: InstalledVersion['http'], after: InstalledVersion['http']): boolean {
  return before?.service === after?.service && before?.port === after?.port;
}

/**
 * The specs the branch's services have now, each with its image pinned to the image its tasks run (the branch's
 * tag moves to the new build): what a failed redeploy puts back.
 */
async function earlierSpecs(ctx: InstallContext, services: InstalledService[]): Promise<ServiceRestore[]> {
  const registry = ctx.loaded.config.registry?.url;
  const restores: ServiceRestore[] = [];
  for (const svc of services) {
    const found = await inspectServiceSpec(ctx.engine, svc.id);
    if (found === null) throw new OperationError(`service ${svc.name} went away while branch ${ctx.branch} was being redeployed`, 'Run the command again.', 'SERVICE_GONE');
    const id = specImageId(found.spec);
    const image = id === undefined ? undefined : await pinnedImageReference(ctx.engine, id, registry);
    if (id !== undefined && image === undefined) {
      ctx.log.warn(`${svc.name}: the manager no longer has the image it runs (${id}); if this redeploy fails, its earlier spec comes back with the branch's image tag, which then names the new build`);
    }
    restores.push({ name: svc.name, spec: pinnedSpec(found.spec, () => image) });
  }
  return restores;
}

async function healthGate(ctx: InstallContext, config: DeplConfig, http: ServiceSpec): Promise<void> {
  const path = http.Labels[LABELS.health] ?? '/healthz';
  const host = versionHost(ctx.version, config.domain);
  const edgeUrl = `http://${ctx.cluster.managerNode.address}:80`;
  ctx.log.step(`health check: GET http://${host}${path} through the edge at ${ctx.cluster.managerNode.address}`);
  const result = await waitForHealthy(edgeUrl, host, path, ctx.options.healthTimeoutMs ?? 60_000);
  if (!result.ok) {
    const logs = await serviceLogTail(ctx.engine, http.Name, 15);
    throw new OperationError(
      `version ${ctx.version} is not healthy: http://${host}${path} did not answer 200 through the edge (last: ${result.last})` +
        (logs ? `\n--- last log lines of ${http.Name} ---\n${logs}` : ''),
      `Check the service with \`docker service logs ${http.Name}\` on the manager.`,
      'HEALTH_CHECK_FAILED',
    );
  }
}

/** Removes what this run installed and takes it off the edge again; the live version and accessories stay. */
async function undo(ctx: InstallContext, specs: ServiceSpec[], session: ReleaseSession | undefined, why: string): Promise<void> {
  ctx.log.warn(`version ${ctx.version} ${why}; removing its services`);
  if (session !== undefined) {
    await session.change({ kind: 'remove', version: ctx.version, note: 'install failed' }).catch((error: Error) => ctx.log.warn(`could not restore the edge configuration: ${error.message}`));
  }
  let removed = true;
  for (const spec of specs) {
    await removeService(ctx.engine, spec.Name).catch((error: Error) => {
      removed = false;
      ctx.log.warn(`could not remove ${spec.Name}: ${error.message}`);
    });
  }
  // a service left behind stays named by the intent, so the next command removes it
  if (removed) await clearInstallIntent(ctx.lock.fenced(ctx.cluster.manager), ctx.loaded.config.app).catch(() => undefined);
}

/**
 * A failed (or interrupted) branch redeploy: the services it updated go back to their earlier specs, those it
 * created go, and the edge routes the version as before (it was only changed when the version's http service
 * or port changed, and is then changed back). Only a failure waits for the earlier deploy to run again; an
 * interrupt leaves the swarm to it. A service that could not be put back stays named by the intent, so the
 * next command does it.
 */
async function undoRedeploy(
  ctx: InstallContext, redeploy: { earlier: InstalledVersion; replaced: ServiceRestore[]; created: string[] }, session: ReleaseSession | undefined, why: string,
): Promise<void> {
  const { engine, log } = ctx;
  log.warn(`the redeploy of branch ${ctx.branch} (version ${ctx.version}) ${why}; putting its earlier deploy back`);
  let restored = true;
  const failedTasks = await tasksOf(ctx, redeploy.replaced.map((r) => r.name)).catch(() => new Set<string>());
  await restoreServices(engine, redeploy.replaced).catch((error: Error) => {
    restored = false;
    log.warn(error.message);
  });
  for (const name of redeploy.created) {
    await removeService(engine, name).catch((error: Error) => {
      restored = false;
      log.warn(`could not remove ${name}: ${error.message}`);
    });
  }
  if (session !== undefined) {
    const { earlier } = redeploy;
    await session.change({
      kind: 'install', version: ctx.version, branch: ctx.branch!, services: earlier.services, ...(earlier.http !== undefined ? { http: earlier.http } : {}),
      note: `branch ${ctx.branch}: redeploy ${why}, earlier deploy put back`,
    }).catch((error: Error) => log.warn(`could not restore the edge configuration: ${error.message}`));
  }
  if (!restored) return;
  if (why === 'failed') {
    await waitForServices(engine, redeploy.replaced.map((r) => awaitedService(r.spec as unknown as ServiceSpec)), { timeoutMs: ctx.options.tasksTimeoutMs ?? 180_000, ignoreTasks: failedTasks }, log)
      .then(() => log.info(`the earlier deploy of branch ${ctx.branch} runs again`))
      .catch((error: Error) => log.warn(`the earlier deploy of branch ${ctx.branch} is put back but not all its tasks run yet: ${error.message}`));
  }
  await clearInstallIntent(ctx.lock.fenced(ctx.cluster.manager), ctx.loaded.config.app).catch(() => undefined);
}

/**
 * A buildinst killed before its version was in left an install intent: that half-made version goes first (taken
 * off the edge too when the app has one), so that it can be installed again and never lingers as installed.
 */
async function repairEarlierInstall(ctx: InstallContext): Promise<void> {
  const { cluster, log } = ctx;
  const config = ctx.loaded.config;
  const intent = await readInstallIntent(cluster.manager, config.app);
  if (intent === null) return;
  // this run has the Engine API, which can put an interrupted redeploy's services back to their recorded specs
  const withRestore = (control: ClusterPort): ClusterPort => ({ ...control, swarm: { ...control.swarm!, restore: (services) => restoreServices(ctx.engine, services) } });
  const control = await clusterPortFor(cluster, config, log).catch(() => undefined);
  // opening the release state repairs the edge and then the interrupted install (src/workflows/release.ts)
  if (control !== undefined) await openRelease(withRestore(fencedControl(control, ctx.lock)), ctx.command);
  // the edge is not running: its services are removed without it (the next release change re-renders its routing)
  else await repairInterruptedInstall(withRestore(fencedControl(await clusterPortFor(cluster, config, log, true), ctx.lock)), intent);
}
