import type { Engine } from '../apply/docker.js';
import type { Cluster } from '../apply/cluster.js';
import { ensureBaseImages } from '../apply/base-images.js';
import { readEdgeApps } from '../apply/edge/apps.js';
import { readInstallIntent } from '../apply/install-intent.js';
import type { HeldLock } from '../apply/lock.js';
import { intentToActOn, readReleaseFiles } from '../apply/release-files.js';
import { readReleaseDocument } from '../apply/release-store.js';
import type { DeplConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { HookFacts } from '../plan/hooks.js';
import { planInstall, versionServiceNames, type InstallFacts, type InstallPlan } from '../plan/install-plan.js';
import { accessoryServiceName, serviceName } from '../plan/names.js';
import { stateOf } from '../plan/release-state.js';
import { versionsFromServices } from '../plan/releases.js';
import { LABELS, planSecrets, type ProjectFile, type SecretDocument } from '../plan/services.js';
import { tlsSettings } from '../plan/tls/certificates.js';
import type { Logger } from '../util/log.js';
import type { ApplyPlanOptions } from './apply-plan.js';
import { fencedControl, operator, type ClusterPort, type InstallTarget } from './cluster-port.js';
import { applyInstallPlan } from './install-apply.js';
import { repairInterruptedInstall } from './install-repair.js';
import { withPortLock } from './lock-session.js';
import { openRelease } from './release.js';
import type { BuildinstInputs } from './command-inputs.js';
import { releaseTarget } from './release-target.js';
import { moveLegacyVolumes, planVolumeMove } from './volume-move.js';

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
  /** Read and plan only: the plan is returned (and printed), nothing is built or changed. */
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
  /** The plan this run applied (for a dry run, all that happened). */
  plan: InstallPlan;
  /** Post-hooks that failed (`post-install exited with 3`): reported, nothing undone. */
  hookFailures?: string[];
}

/**
 * depl buildinst: read what the cluster has -> plan the install as data (src/plan/install-plan.ts) -> apply
 * exactly that plan (src/workflows/install-apply.ts): build -> distribute -> accessories -> version services ->
 * all tasks running -> the edge serves <version>.<domain> -> /healthz answers 200 through the edge. A failure
 * after the first service was created removes the version's services and puts the edge back as it was; the
 * live version is never touched. A failed branch redeploy puts the branch's services back to their earlier
 * specs instead, so the branch's earlier deploy keeps serving.
 */
export async function buildinst(inputs: BuildinstInputs, options: BuildinstOptions, log: Logger): Promise<BuildinstResult> {
  const { config, project } = inputs;
  const target = releaseTarget(config.app, versionServiceNames(config), options, options.now ?? new Date());
  // refused before anything is read on the cluster: secrets in the build context (exit 2), a missing secret
  const builds = await project.buildInputs();
  const secrets = planSecrets(config.app, await project.secrets(options.env));
  const files = await project.files();
  // a branch database's seed file is checked before the cluster is reached (exit 2, nothing changed)
  const seedFiles = target.branch !== undefined ? await project.seedFiles() : {};
  const cluster = options.cluster ?? (await inputs.cluster.open(log));
  try {
    const opened = await cluster.engine();
    const command = `depl buildinst ${target.branch !== undefined ? `--branch ${target.branch}` : `--version ${target.version}`}`;
    // the edge's site is the running edge's once the plan's ensure-edge step has run (it may not run yet)
    const port = {
      ...(await inputs.cluster.portOn(cluster, log, { filesOnly: true })),
      lockWaitMs: options.lockWaitMs ?? 0,
      ...inputs.installOn(cluster, opened, builds, log),
    };
    const request = { config, version: target.version, ...(target.branch !== undefined ? { branch: target.branch } : {}), command, secrets, files, seedFiles, cluster: clusterFacts(cluster) };
    if (options.dryRun) {
      const baseImages = await missingBaseImages(config, opened);
      // volumes under their unscoped names are moved first; the install is planned with the app-scoped ones
      const moves = await planVolumeMove(port, config, command);
      const plan = await readAndPlan(port, {
        ...request,
        notes: [
          ...(baseImages.length > 0 ? [`images ${baseImages.join(', ')} are not on the manager: depl makes its offline ones first`] : []),
          ...moves.notes, ...moves.steps.map((step, index) => `volume move, before the install: ${index + 1}. ${step.describe}`),
        ],
      });
      return { version: plan.version, url: plan.url, services: plan.services, plan, timings: { build: 0, distribute: 0, install: 0, total: 0 } };
    }
    return await withPortLock(port, command, (lock) => install(port, lock, request, options, {
      // tls: files that would be refused later (expired, a key others may read) stop the build now, exit 2
      beforeChanges: () => project.checkCertificateFiles(),
      finalConfig: () => withBaseImages(config, opened, log),
    }));
  } finally {
    if (!options.cluster) await cluster.close();
  }
}

export interface InstallRequest {
  /** depl.yaml's content; readAndPlan plans from the final one (the offline base images put in). */
  config: DeplConfig;
  version: string;
  branch?: string;
  command: string;
  secrets: readonly SecretDocument[];
  /** depl.yaml's `files:` read from the project (src/apply/project-files.ts), before the cluster is reached. */
  files: readonly ProjectFile[];
  /** `seed: { file }` of perBranch accessories, checked (src/apply/seed-file.ts): accessory -> absolute path. */
  seedFiles?: Readonly<Record<string, string>>;
  cluster: InstallFacts['cluster'];
}

const clusterFacts = (cluster: Cluster): InstallFacts['cluster'] => ({ network: cluster.network, nodes: cluster.nodes.map((n) => n.name), manager: cluster.managerNode.name });

/**
 * Under the lock: an interrupted earlier install is repaired first, then the cluster is read, the plan made
 * (refusals before anything changes), and applied. `prepare` runs the checks and preparations that come after
 * the refusals and before the plan's first step (the certificate files; the offline base images).
 */
export async function install(
  port: ClusterPort & { install: InstallTarget }, lock: Pick<HeldLock, 'fenced'>, request: InstallRequest, options: Pick<BuildinstOptions, 'tasksTimeoutMs' | 'healthTimeoutMs'>,
  prepare: { beforeChanges?: () => Promise<void>; finalConfig?: () => Promise<DeplConfig> } = {}, afterStep?: ApplyPlanOptions['afterStep'],
): Promise<BuildinstResult> {
  const started = Date.now();
  await repairEarlierInstall(port, lock, request.command);
  const { config } = request;
  // refusals first (a version that exists, a live branch, a taken accessory name), before anything changes
  await readAndPlan(port, { ...request, config });
  await prepare.beforeChanges?.();
  // volumes an earlier depl made under depl.yaml's names alone go into their app-scoped names before the install is planned
  await moveLegacyVolumes(port, lock, config, request.command, { ...(options.tasksTimeoutMs !== undefined ? { tasksTimeoutMs: options.tasksTimeoutMs } : {}) });
  const plan = await readAndPlan(port, { ...request, config: (await prepare.finalConfig?.()) ?? config });
  const recorded = stateOf(await readReleaseDocument(port.stateRemote, port.app, port.stateRoot));
  const hookFacts: HookFacts = {
    app: port.app, domain: port.domain, command: 'buildinst', version: plan.version, previous: recorded.live, live: recorded.live, performer: operator(port),
    ...(plan.branch !== undefined ? { branch: plan.branch } : {}),
  };
  // what the plan decided (a redeploy, services created at the app's recorded scale...) is said before its steps
  for (const note of plan.notes) port.log.step(note);
  const outcome = await applyInstallPlan({
    port, lock, plan, secrets: request.secrets, hookFacts,
    ...(options.tasksTimeoutMs !== undefined ? { tasksTimeoutMs: options.tasksTimeoutMs } : {}),
    ...(options.healthTimeoutMs !== undefined ? { healthTimeoutMs: options.healthTimeoutMs } : {}),
    ...(afterStep !== undefined ? { afterStep } : {}),
  });
  port.log.info(`Version ${plan.version} is successfully installed`);
  // no http service: the version is not served at any URL (there is no edge)
  const url = plan.url === null ? null : outcome.httpsMissing !== undefined ? plan.url.replace(/^https:/, 'http:') : plan.url;
  return {
    ...(outcome.hookFailures !== undefined ? { hookFailures: outcome.hookFailures } : {}),
    version: plan.version,
    url,
    ...(outcome.httpsMissing !== undefined ? { httpsMissing: outcome.httpsMissing } : {}),
    ...(outcome.tlsWithheld.length > 0 ? { tlsWithheld: outcome.tlsWithheld } : {}),
    ...(outcome.renewer !== undefined ? { renewer: outcome.renewer } : {}),
    services: plan.services,
    ...(plan.branch !== undefined ? { branch: plan.branch } : {}),
    plan,
    timings: { ...outcome.timings, total: Date.now() - started },
  };
}

/** Reads what the plan is made from (the app's services, the release state, a redeploy's earlier specs) and plans; a refusal is a UserError. */
export async function readAndPlan(port: ClusterPort & { install: InstallTarget }, request: InstallRequest & { notes?: string[] }): Promise<InstallPlan> {
  const { config, version } = request;
  const perBranch = request.branch !== undefined && Object.values(config.accessories).some((a) => a.perBranch !== undefined);
  const [present, { doc, intent }, branchDatabases] = await Promise.all([
    port.install.appServices(),
    readReleaseFiles(port.stateRemote, port.app, port.stateRoot).then((read) => ({ doc: read.doc, intent: intentToActOn(read.intent) })),
    perBranch ? port.install.branchDatabases() : [],
  ]);
  const installed = versionsFromServices(config.app, present);
  // another app's (or no app's) service under the name one of this app's accessories takes
  const accessoryNames = Object.keys(config.accessories).map((name) => accessoryServiceName(config.app, name));
  const foreign = await port.install.servicesNamed(accessoryNames.filter((name) => !present.some((s) => s.name === name)));
  // the edge's app list only for an app the edge routes: one without an http service claims nothing there
  const routed = Object.values(config.services).some((s) => s.http);
  const [otherEdges, edgeApps] = await Promise.all([port.install.edgesOfOtherApps?.() ?? [], routed ? readEdgeApps(port.stateRemote, port.stateRoot) : { apps: [] }]);
  const earlierNames = installed.some((v) => v.label === version)
    ? present.filter((s) => s.labels[LABELS.version] === version && versionServiceNames(config).some((name) => serviceName(config.app, version, name) === s.name)).map((s) => s.name)
    : [];
  const planned = planInstall({
    config, version, ...(request.branch !== undefined ? { branch: request.branch } : {}), command: request.command,
    present, foreign: foreign.filter((s) => s.labels[LABELS.app] !== config.app), otherEdges, edgeApps: edgeApps.apps, state: stateOf(doc), installed,
    earlierSpecs: earlierNames.length > 0 ? await port.install.earlierSpecs(earlierNames) : [],
    secrets: request.secrets.map((s) => ({ secret: s.secret, name: s.name })),
    files: request.files, branchDatabases, ...(request.seedFiles !== undefined ? { seedFiles: request.seedFiles } : {}), ...(port.stateRoot !== undefined ? { stateRoot: port.stateRoot } : {}),
    cluster: request.cluster, tls: tlsSettings(config).mode, at: (port.now?.() ?? new Date()).toISOString(), by: operator(port),
  });
  if (!planned.ok) throw new UserError(planned.refusal.message, planned.refusal.hint, planned.refusal.code);
  const notes = [...(request.notes ?? []), ...(intent !== null ? [`an interrupted \`${intent.command}\` left version ${intent.version} half-installed: it is repaired first`] : [])];
  return { ...planned.plan, notes: [...notes, ...planned.plan.notes] };
}

/**
 * A buildinst killed before its version was in left an install intent: that half-made version goes first (taken
 * off the edge too when the app has one), so that it can be installed again and never lingers as installed.
 */
async function repairEarlierInstall(port: ClusterPort & { install: InstallTarget }, lock: Pick<HeldLock, 'fenced'>, command: string): Promise<void> {
  const intent = await readInstallIntent(port.stateRemote, port.app, port.stateRoot);
  if (intent === null) return;
  const repair = await port.install.repairPort();
  // opening the release state repairs the edge and then the interrupted install (src/workflows/release.ts)
  if (repair.edgeRunning) await openRelease(fencedControl(repair.port, lock), command);
  // the edge is not running: its services are removed without it (the next release change re-renders its routing)
  else await repairInterruptedInstall(fencedControl(repair.port, lock), intent);
}

/** The base images depl.yaml names that the manager lacks (local provider: depl makes offline ones instead). */
async function missingBaseImages(config: DeplConfig, engine: Engine): Promise<[string, string][]> {
  if (config.provider.type !== 'local') return [];
  const images = config.images;
  // (no nginx default here: without images.nginx the edge runs depl's own edge image, see ensureEdgeImage)
  const wanted: Record<string, string> = { node: images.node ?? 'node:20-bookworm-slim', redis: images.redis ?? 'redis:7' };
  if (images.nginx !== undefined) wanted.nginx = images.nginx;
  const missing: [string, string][] = [];
  for (const [key, named] of Object.entries(wanted)) if (!(await engine.imageId(named))) missing.push([key, named]);
  return missing;
}

/**
 * For the local provider the nodes cannot pull: the base images named in depl.yaml that the manager does not
 * have are replaced by the offline ones depl makes (node, nginx, redis).
 */
async function withBaseImages(config: DeplConfig, engine: Engine, log: Logger): Promise<DeplConfig> {
  const missing = await missingBaseImages(config, engine);
  if (missing.length === 0) return config;
  const images = { ...config.images };
  const offline = await ensureBaseImages(engine, log);
  for (const [key, named] of missing) {
    const ref = offline[key as keyof typeof offline];
    log.debug(`images.${key}: ${named} is not on the manager; using the offline ${ref}`);
    images[key] = ref;
    // an image named as pulled (`image: redis:7`, as a Compose file names it) gets the same offline image
    images[named] = ref;
  }
  return { ...config, images };
}
