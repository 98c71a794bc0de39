import { createHash } from 'node:crypto';
import type { ErrorCode } from '../error-codes.js';
import { AUTOSCALER_SERVICE, type DeplConfig } from '../config/schema.js';
import { AUTOSCALER_GATE_SERVICE } from '../names.js';
import type { ChangePlan } from './change-plan.js';
import { planAutoscaler, planControllerGate } from './autoscale.js';
import { parseDuration } from './duration.js';
import {
  branchConfig, branchDatabaseJob, branchDatabaseOf, branchDatabaseScript, branchDatabaseSecretLabels, branchRecordSecret, DATABASE_GONE_EXIT, describeSeed, isRedisRecord,
  redisRecordLabels, seedFileOnManager, sharedDatabaseOf, type BranchDatabase, type BranchDatabaseRecord, type BranchSeed,
} from './branch-database.js';
import { allocateRedisSlot, branchRedisConfig, describeSlot, isRedisAccessory, keyPrefixEnv, redisBranchScript, sharedRedisOf, slotText, type RedisSlot, type SharedRedis } from './branch-redis.js';
import { claimEdgeHosts, type EdgeApp } from './edge-apps.js';
import { CLUSTER_EDGE_NETWORK, CLUSTER_EDGE_SERVICE } from './cluster-edge.js';
import { nodeImageOf, planImages, type ImageBuild } from './images.js';
import { planRunJob, type JobSpec } from './jobs.js';
import type { ServiceRestore } from './install-intent.js';
import { accessoryServiceName, serviceName, versionHost, versionNetworkName, volumeNameOf } from './names.js';
import { volumeNames } from './volume-names.js';
import { legacyAccessoryOf } from './accessory-rename.js';
import type { ServiceSummary } from './releases.js';
import { planRelease, type InstalledVersion, type ReleaseRequest, type ReleaseState } from './release-state.js';
import {
  accessorySecretsLabel, accessoryStartOrder, configDocument, LABELS, parseVolume, RELEASE_ENV, planAccessory, planVersionServices, projectFileDocument, type ProjectFile, type ProjectFileRef,
  type ConfigDocument, type ServiceSpec, type SwarmSecretRef,
} from './services.js';

/**
 * `depl buildinst` as data: from depl.yaml, the version and what the cluster has now (read first), every step
 * the install takes, in order, with the undo of those that have one. `--dry-run` prints this plan; the applier
 * (src/workflows/install-apply.ts) runs exactly it.
 *
 * Swarm objects made by earlier steps are named in the plan, not yet known by id: a spec's config and secret
 * mounts carry the swarm name and an empty id, and a service that runs a built image is labelled with that
 * image's id once it is built. `resolveSpec` fills them in from what the earlier steps returned.
 */

export type HookName = 'pre-build' | 'pre-install' | 'post-install';

export type InstallStep =
  /**
   * The app's hosts on the cluster's edge (src/plan/edge-apps.ts), claimed before any other step: written by
   * compare-and-set (planned again on a fresh read when another app's command wrote the list meanwhile, so a host
   * another app claimed in between is refused then, nothing else done). `before`: the domain claimed until now
   * (null: none), what the undo puts back.
   */
  | { kind: 'claim-edge-hosts'; app: string; domain: string; before: string | null; describe: string; undo: string }
  /** An operator hook (.depl/hooks); post-install's failure is reported, never undone. */
  | { kind: 'hook'; hook: HookName; describe: string }
  /**
   * The edge service (idempotent), its HTTPS settings from the store, then the release state read under the lock.
   * `cluster`: the cluster's one edge `depl_edge` (src/plan/cluster-edge.ts, taking over earlier apps' own edges),
   * once another app's edge or depl_edge is on the swarm; else the app's own `<app>-edge`, which alone carries HTTPS.
   */
  | { kind: 'ensure-edge'; image?: string; https: boolean; cluster: boolean; certificateVersions: string[]; describe: string }
  | ({ kind: 'build-image'; describe: string } & ImageBuild)
  /** `nodes`: node names that must have the image; with a registry it is pushed once and they pull it. */
  | { kind: 'distribute-image'; image: string; nodes: 'all' | string[]; registry?: string; describe: string }
  | { kind: 'ensure-config'; document: ConfigDocument; describe: string }
  /** One project file (depl.yaml's `files:`) as a swarm config named after its content; the bytes as base64. */
  | { kind: 'ensure-file-config'; name: string; labels: Record<string, string>; base64: string; describe: string }
  /** The value is never in the plan: the applier takes it from the resolved secrets by `secret`. */
  | { kind: 'ensure-secret'; secret: string; name: string; describe: string }
  /**
   * An accessory still under its pre-app-scoped name (the accessory's name alone): its tasks are stopped first
   * (one instance at a time holds the volume), then the service is removed; its volume keeps its name and data,
   * and create-accessory makes it again as `<app>-<accessory>`. Forward only: no undo (the new name is kept).
   */
  | { kind: 'stop-legacy-accessory'; accessory: string; name: string; describe: string }
  | { kind: 'remove-legacy-accessory'; accessory: string; name: string; describe: string }
  | { kind: 'create-accessory'; spec: ServiceSpec; describe: string }
  /** Its secrets were rotated: updated in place (a restart), keeping the image it runs. */
  | { kind: 'update-accessory'; spec: ServiceSpec; describe: string }
  | { kind: 'ensure-autoscaler-image'; nodeImage: string; version: string; describe: string }
  /**
   * depl.yaml's release phase: `command` as a one-off job (src/plan/jobs.ts) with the new version's spec of
   * `service` (image, config, secrets, env, network; its config and secret ids filled in as a service's are),
   * once, before any of the version's services runs. A non-zero exit, `timeoutMs` running out or a job no node
   * starts stops the install (what the install made is undone); the outcome goes into the history.
   */
  | { kind: 'release-phase'; service: string; command: string[]; timeout: string; timeoutMs: number; job: JobSpec; describe: string }
  /**
   * A branch deploy's own database on a `perBranch: database` accessory (src/plan/branch-database.ts): its record
   * secret (the branch user's generated password; the value is made by the applier, never in the plan) is
   * ensured, then `job` makes the user and database (and seeds them) or brings a half-made pair to the same end.
   * `create`: a new branch deploy; a failure of this job, or of a later step, runs `dropJob` and removes the
   * record, so nothing half-made is left. A redeploy keeps its database (no undo).
   */
  | {
    kind: 'branch-database'; accessory: string; engine: BranchDatabase['shared']['engine']; database: string; user: string;
    secret: string; secretLabels: Record<string, string>; create: boolean; seed?: BranchSeed;
    /** `seed: { file }`: the project's file (absolute, on this machine) copied to `to` on the manager before `job`, removed after it. */
    seedUpload?: { from: string; to: string };
    job: JobSpec; dropJob: JobSpec; describe: string; undo?: string;
  }
  /**
   * A branch deploy's own part of a Redis accessory (src/plan/branch-redis.ts): `job` checks that the slot (a
   * database number, or a key prefix) exists and, unless `recorded` earlier, that it holds no keys; only then is
   * its record secret (`secretLabels`: which number or prefix) made, which is what makes the number taken. Its
   * undo (a new branch, or a slot checked empty by this run) runs `dropJob` (FLUSHDB, or the prefix's keys) and
   * removes the record.
   */
  | {
    kind: 'branch-redis'; accessory: string; mode: RedisSlot['mode']; slot: string; secret: string; secretLabels: Record<string, string>;
    recorded: boolean; job: JobSpec; dropJob: JobSpec; describe: string; undo?: string;
  }
  /**
   * The version's own overlay network, where its services answer to their depl.yaml names. `undo`: only for a
   * new version (a branch redeploy keeps the network its earlier deploy made).
   */
  | { kind: 'ensure-network'; name: string; labels: Record<string, string>; describe: string; undo?: string }
  /**
   * What the next command repairs if this one dies before the version is in (src/plan/install-intent.ts).
   * `stopped`: the other versions' stateful services this install stops, started again by a repair.
   */
  | { kind: 'write-install-intent'; services: string[]; redeploy: boolean; replaced?: ServiceRestore[]; stopped?: StoppedService[]; describe: string; undo: string }
  /** The takeover of a stateful service's volume: the version running it is scaled to 0 first (stop-first); undone by scaling it back. */
  | { kind: 'stop-stateful'; services: StoppedService[]; describe: string; undo: string }
  /** `builtImage`: the tag whose image id labels the tasks; `autoscalerImage`: the image comes from ensure-autoscaler-image. */
  | { kind: 'create-service'; spec: ServiceSpec; builtImage?: string; autoscalerImage?: boolean; describe: string; undo: string }
  /** A branch redeploy: updated in place (rolling); undone by putting `earlier` back. */
  | { kind: 'update-service'; spec: ServiceSpec; builtImage?: string; autoscalerImage?: boolean; earlier: ServiceRestore; describe: string; undo: string }
  /** Every task of these services (accessories changed by this run included) runs, and stays up; `ignoreTasksOf`: tasks there before. */
  | { kind: 'await-tasks'; services: string[]; ignoreTasksOf: string[]; describe: string }
  /**
   * The routing change: the version's host added at the edge (or, for a redeploy whose http service moved,
   * routed to the new one). `healthFirst`: the edge already routes there, so the health gate runs before the
   * change is recorded. `undoTo`: for a redeploy, the routing it had.
   */
  | { kind: 'route-version'; request: Extract<ReleaseRequest, { kind: 'install' }>; healthFirst: boolean; undoTo?: Extract<ReleaseRequest, { kind: 'install' }>; describe: string; undo: string }
  | { kind: 'health-gate'; service: string; host: string; path: string; describe: string }
  /** The takeover stopped the live version's stateful service: this version goes live once healthy; undone by switching back. */
  | { kind: 'take-live'; version: string; from: string; describe: string; undo: string }
  /** A service of the branch's earlier deploy that depl.yaml no longer has (a failure to remove it is reported). */
  | { kind: 'remove-service'; name: string; describe: string }
  | { kind: 'clear-install-intent'; describe: string }
  /** tls: the version host's certificate; one that cannot be issued leaves the version on plain HTTP (reported). */
  | { kind: 'issue-certificates'; host: string; describe: string }
  /** tls: acme keeps the renewal task on the cluster; any other mode removes it (reported, never fatal). */
  /** The task runs on the node image the plan's config names (the offline base image where the manager lacks it). */
  | { kind: 'renewal-task'; mode: 'ensure' | 'remove'; nodeImage: string; describe: string };

export type InstallPlan = ChangePlan<InstallStep> & {
  version: string;
  branch?: string;
  /** Where the version answers once in; null without an http service. */
  url: string | null;
  services: string[];
};

/** A service on the swarm now, as the plan needs it. */
export interface PresentService extends ServiceSummary {
  /** The image its spec runs. */
  image: string;
  /** The named volumes its spec mounts (which volume names the app already uses: src/plan/volume-names.ts). */
  volumes?: readonly string[];
}

export interface InstallFacts {
  /** depl.yaml, with offline base images put in where the manager lacks the named ones (local provider). */
  config: DeplConfig;
  version: string;
  branch?: string;
  command: string;
  /** The app's services on the swarm now. */
  present: readonly PresentService[];
  /** Services of other apps (or none) named like one of depl.yaml's accessories. */
  foreign: readonly PresentService[];
  /** The cluster edge's app list as read (src/plan/edge-apps.ts): which app answers which hosts. */
  edgeApps?: readonly EdgeApp[];
  /**
   * The edge services on this swarm that are not this app's own: other apps' `<app>-edge` (an earlier depl's, or one
   * alone on its cluster) and the cluster's `depl_edge` (no app label); `ports` as published.
   */
  otherEdges?: readonly (PresentService & { ports?: readonly number[] })[];
  /** The release state as recorded. */
  state: ReleaseState;
  installed: readonly InstalledVersion[];
  /** A branch redeploy: the specs its services have now, images pinned (read first). */
  earlierSpecs: readonly ServiceRestore[];
  /** The swarm secrets the resolved values map to (src/plan/services.ts planSecrets), without the values. */
  secrets: readonly { secret: string; name: string }[];
  /** depl.yaml's `files:` as read from the project: mounted as swarm configs. */
  files?: readonly ProjectFile[];
  /** The branch databases on the swarm (their record secrets), when the app has a `perBranch` accessory. */
  branchDatabases?: readonly BranchDatabaseRecord[];
  /** `seed: { file }` of the perBranch accessories, checked and resolved on this machine (src/apply/seed-file.ts): accessory -> absolute path. */
  seedFiles?: Readonly<Record<string, string>>;
  /** The manager's state folder (seed files are copied under it). */
  stateRoot?: string;
  cluster: { network: string; nodes: readonly string[]; manager: string };
  tls: 'off' | 'files' | 'acme';
  at: string;
  by: string;
}

export type Refusal = { message: string; hint?: string; code: ErrorCode };

/** A stateful service of another version that an install stops, with the replicas it ran (what a repair or undo restores). */
export interface StoppedService {
  name: string;
  version: string;
  replicas: number;
}

/**
 * The takeover (README: Stateful web apps): a stateful service's named volume is held by one version at a time, so the
 * other versions' services holding the same volume that still run are stopped before this version's starts.
 */
export function statefulTakeover(config: DeplConfig, version: string, present: readonly PresentService[]): StoppedService[] {
  const names = volumeNames(config);
  const volumes = new Set(Object.values(config.services).flatMap((s) => (s.volume !== undefined ? [volumeNameOf(config.app, parseVolume(s.volume).source, names)] : [])));
  return present
    .filter((s) => s.labels[LABELS.volume] !== undefined && volumes.has(s.labels[LABELS.volume]!) && s.labels[LABELS.version] !== version && s.replicas > 0)
    .map((s) => ({ name: s.name, version: s.labels[LABELS.version]!, replicas: s.replicas }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The services a version is made of: depl.yaml's, and the autoscale controller and its engine gate when depl.yaml has autoscale:. */
export function versionServiceNames(config: DeplConfig): string[] {
  return [...Object.keys(config.services), ...(Object.keys(config.autoscale).length > 0 ? [AUTOSCALER_GATE_SERVICE, AUTOSCALER_SERVICE] : [])];
}

/** The release change that installs the version: its services and its http service as the edge reaches it. */
export function installRequest(config: DeplConfig, version: string, branch?: string): Extract<ReleaseRequest, { kind: 'install' }> {
  const services = versionServiceNames(config).map((s) => serviceName(config.app, version, s)).sort();
  const entry = Object.entries(config.services).find(([, s]) => s.http && s.port !== undefined);
  const http = entry === undefined ? undefined : {
    service: serviceName(config.app, version, entry[0]), port: entry[1].port!, ...(entry[1].health !== undefined ? { health: entry[1].health } : {}),
  };
  return { kind: 'install', version, ...(branch !== undefined ? { branch } : {}), services, ...(http !== undefined ? { http } : {}) };
}

/** The swarm name as the plan refers to an object an earlier step makes: its id is filled in by resolveSpec. */
const named = (name: string): SwarmSecretRef => ({ id: '', name });

export function planInstall(facts: InstallFacts): { ok: true; plan: InstallPlan } | { ok: false; refusal: Refusal } {
  const { config, version, branch } = facts;
  const app = config.app;
  // depl.yaml's volumes on the cluster, app-scoped (one under the unscoped name was moved before: src/plan/volume-move.ts)
  const volumes = volumeNames(config);
  const request = installRequest(config, version, branch);
  // refusals first (a version that exists, a live branch), before anything changes
  const release = planRelease(facts.state, request, { installed: [...facts.installed], at: facts.at, by: facts.by });
  if (!release.ok) return { ok: false, refusal: release.refusal };
  const stateful = Object.entries(config.services).filter(([, s]) => s.volume !== undefined).map(([name]) => name);
  if (branch !== undefined && stateful.length > 0) {
    return {
      ok: false,
      refusal: {
        message: `a branch deploy of app ${app} would take the volume of ${stateful.join(', ')} over from the version running it (the live one): one version at a time holds a stateful service's data`,
        hint: 'Deploy branches of a stateful app to a cluster (or an app name) of their own, or install the branch as a version when it is meant to take over.',
        code: 'STATEFUL_BRANCH',
      },
    };
  }
  // the hosts first: two apps answering one host is a conflict of names, whatever runs the edge
  const claim = request.http !== undefined ? claimEdgeHosts(facts.edgeApps ?? [], app, config.domain) : null;
  if (claim !== null && !claim.ok) return { ok: false, refusal: claim.refusal };
  const edge = request.http !== undefined ? edgeFor(app, facts.tls !== 'off', facts.otherEdges ?? []) : null;
  if (edge !== null && !edge.ok) return { ok: false, refusal: edge.refusal };
  for (const name of Object.keys(config.accessories)) {
    const service = accessoryServiceName(app, name);
    const other = [...facts.present, ...facts.foreign].find((s) => s.name === service && !isAccessoryOf(s, app, name));
    if (other !== undefined) {
      return {
        ok: false,
        refusal: {
          message: `accessory ${name} runs as the service ${service}, but a service of that name already runs on this cluster and is not app ${app}'s accessory ${name} (labels: ${JSON.stringify(other.labels)})`,
          hint: 'Rename the accessory in depl.yaml, or remove that service.',
          code: 'ACCESSORY_TAKEN',
        },
      };
    }
  }

  const perBranch = branchDatabasesFor(config, version, branch, facts.branchDatabases ?? []);
  if (!perBranch.ok) return { ok: false, refusal: perBranch.refusal };
  const branchDbs = perBranch.dbs;
  const branchRedis = perBranch.redis;
  // a branch's services read their own database under the names the app already uses (src/plan/branch-database.ts, branch-redis.ts)
  const serviceConfig = branchRedisConfig(branchConfig(config, branchDbs), branchRedis);

  const notes: string[] = [];
  const steps: InstallStep[] = [];
  const host = versionHost(version, config.domain);
  const earlier = facts.installed.find((v) => v.label === version);
  const previousOfLabel = facts.present.filter((s) => s.labels[LABELS.version] === version);
  notes.push(earlier === undefined
    ? `version ${version}${branch !== undefined ? ` (branch ${branch})` : ''}: a new version`
    : `version ${version}: branch ${branch}'s earlier deploy is redeployed in place; a failure puts it back`);

  if (claim?.ok === true && claim.changed) {
    const before = facts.edgeApps?.find((a) => a.app === app)?.domain ?? null;
    steps.push({
      kind: 'claim-edge-hosts', app, domain: config.domain, before,
      describe: `claim ${config.domain} and its version hosts for app ${app} in the edge's app list${before !== null ? ` (was ${before})` : ''}`,
      undo: before !== null ? `claim ${before} again for app ${app}` : `take app ${app}'s claim off the edge's app list`,
    });
  }
  steps.push({ kind: 'hook', hook: 'pre-build', describe: 'run the pre-build hook (when .depl/hooks has one)' });
  const https = facts.tls !== 'off';
  if (request.http !== undefined) {
    const routedHttp = facts.present.filter((s) => s.labels[LABELS.http] === 'true').map((s) => s.labels[LABELS.version]).filter((l): l is string => l !== undefined);
    const cluster = edge?.ok === true && edge.cluster;
    steps.push({
      kind: 'ensure-edge', ...(config.images.nginx !== undefined ? { image: config.images.nginx } : {}), https, cluster,
      certificateVersions: https ? [...new Set([...routedHttp, version])] : [],
      describe: cluster
        ? `ensure the cluster's edge ${CLUSTER_EDGE_SERVICE} runs (${config.images.nginx ?? "depl's edge image"}; the apps' own edges taken over, their routing kept) and read the release state under the lock`
        : `ensure the edge runs (${config.images.nginx ?? "depl's edge image"}${https ? ', HTTPS from the certificate store' : ''}) and read the release state under the lock`,
    });
    if (cluster) notes.push(`app ${app} is routed by the cluster's edge ${CLUSTER_EDGE_SERVICE} (another app's http services are on this cluster): its http services join ${CLUSTER_EDGE_NETWORK}, and its routing is its own file there`);
  } else {
    notes.push('no service has http: true: no edge; the version is not routed');
  }

  const images = planImages(config, version);
  for (const build of images.builds) steps.push({ kind: 'build-image', ...build, describe: `build ${build.tag} (${build.context}, ${build.dockerfile}) on ${facts.cluster.manager}` });
  const registry = config.registry?.url;
  for (const build of images.builds) {
    steps.push({
      kind: 'distribute-image', image: build.tag, nodes: 'all', ...(registry !== undefined ? { registry } : {}),
      describe: registry !== undefined ? `push ${build.tag} to ${registry} (the nodes pull it)` : `copy ${build.tag} to every node that lacks it (docker save | docker load)`,
    });
  }
  for (const [name, accessory] of Object.entries(config.accessories)) {
    if (accessory.node === 'manager' || accessory.node === facts.cluster.manager) continue;
    const image = images.accessories[name]!;
    steps.push({ kind: 'distribute-image', image, nodes: [accessory.node], ...(registry !== undefined ? { registry } : {}), describe: `put ${image} on ${accessory.node} (accessory ${name})` });
  }

  steps.push({ kind: 'hook', hook: 'pre-install', describe: 'run the pre-install hook (when .depl/hooks has one)' });
  const document = configDocument(serviceConfig);
  steps.push({ kind: 'ensure-config', document, describe: `ensure swarm config ${document.name} (depl.yaml's config:)` });
  const secretRefs: Record<string, SwarmSecretRef> = {};
  for (const { secret, name } of facts.secrets) {
    secretRefs[secret] = named(name);
    steps.push({ kind: 'ensure-secret', secret, name, describe: `ensure swarm secret ${name} (secret ${secret})` });
  }
  const fileRefs: ProjectFileRef[] = [];
  for (const file of facts.files ?? []) {
    const doc = projectFileDocument(app, file);
    fileRefs.push({ ...named(doc.name), owner: file.owner, target: file.target });
    if (steps.some((s) => s.kind === 'ensure-file-config' && s.name === doc.name)) continue;
    steps.push({ kind: 'ensure-file-config', name: doc.name, labels: doc.labels, base64: file.data.toString('base64'), describe: `ensure swarm config ${doc.name} (${file.owner}: ${file.target}, ${file.data.length} bytes)` });
  }

  // compose's depends_on between accessories: the ones depended on are created first
  for (const name of accessoryStartOrder(config.accessories)) {
    const accessory = config.accessories[name]!;
    const spec = planAccessory(app, name, accessory, images.accessories[name]!, facts.cluster.network, secretRefs, fileRefs, volumes);
    const volume = accessory.volume !== undefined ? volumeNameOf(app, parseVolume(accessory.volume).source, volumes) : undefined;
    const legacy = legacyAccessoryOf(facts.present, app, name);
    if (legacy !== undefined) {
      const kept = volume !== undefined ? `; its volume ${volume} keeps its name and data` : '';
      notes.push(`accessory ${name} still runs as the service ${legacy.name} (its name before names were app-scoped): it is stopped, made again as ${spec.Name}, then removed${kept}; it answers to ${name} on the app's network as before, and is down for the moments between`);
      if (legacy.replicas > 0) steps.push({ kind: 'stop-legacy-accessory', accessory: name, name: legacy.name, describe: `stop accessory ${name}'s service ${legacy.name} (its old name) and wait until its tasks have let go of its volume` });
    }
    // removed only once the new service is there: until then the stopped one still says which volume holds the data
    const removeLegacy = () => {
      if (legacy !== undefined) steps.push({ kind: 'remove-legacy-accessory', accessory: name, name: legacy.name, describe: `remove the service ${legacy.name} (accessory ${name} under its old name); its volume stays` });
    };
    const current = facts.present.find((s) => s.name === spec.Name && isAccessoryOf(s, app, name));
    if (current === undefined) {
      const on = volume !== undefined ? `, its data on volume ${volume}` : '';
      steps.push({ kind: 'create-accessory', spec, describe: `create accessory ${name} (${images.accessories[name]}), pinned to ${accessory.node}${on}; kept across versions` });
      removeLegacy();
      continue;
    }
    removeLegacy();
    const wanted = spec.Labels[LABELS.secrets] ?? accessorySecretsLabel([]);
    if ((current.labels[LABELS.secrets] ?? '') === wanted) continue;
    // a secret rotation restarts the accessory with the new secret, not with another image
    const kept: ServiceSpec = {
      ...spec, Labels: { ...current.labels, ...spec.Labels },
      TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...spec.TaskTemplate.ContainerSpec, Image: current.image || spec.TaskTemplate.ContainerSpec.Image } },
    };
    steps.push({
      kind: 'update-accessory', spec: kept,
      describe: `update accessory ${name}: its secrets changed (${accessory.secrets.join(', ')}), a restart; versions installed before this one keep the old value: redeploy or prune them`,
    });
  }

  const scale = release.state.scale;
  for (const [name, svc] of Object.entries(config.services)) {
    const n = scale[name];
    if (n !== undefined && n !== svc.replicas) notes.push(`${name}: ${n} replicas, the app's scale set with depl scale (depl.yaml says ${svc.replicas}; depl scale ${name}=<n> changes it)`);
  }
  const versionNetwork = versionNetworkName(app, version);
  // the branch's password secret under the file name of the shared one: the app reads it where it always does
  const serviceSecretRefs = { ...secretRefs, ...Object.fromEntries(branchDbs.map((db) => [db.shared.passwordSecret, named(db.secret)])) };
  const specs = planVersionServices({
    config: serviceConfig, version, images: images.services, network: facts.cluster.network, versionNetwork, configRef: named(document.name), secrets: serviceSecretRefs, files: fileRefs,
    ...(edge?.ok === true && edge.cluster ? { edgeNetwork: CLUSTER_EDGE_NETWORK } : {}),
    nodes: facts.cluster.nodes.length, ...(branch !== undefined ? { branch } : {}), scale, volumeNames: volumes,
  });
  const builtImage = (service: string) => images.builds.find((b) => b.usedBy.includes(service))?.tag;
  const serviceOf = (spec: ServiceSpec) => spec.Labels[LABELS.service] ?? '';
  const nodeImage = nodeImageOf(config);
  // the autoscale controller's image is made on the manager; its spec takes it from that step
  const autoscaler = Object.keys(config.autoscale).length === 0 ? null : planAutoscaler({ config, version, image: '', network: facts.cluster.network, secrets: secretRefs, ...(branch !== undefined ? { branch } : {}) });
  // the Docker socket is its engine gate's (the same image), which passes on only the replicas of the version's autoscaled services
  const autoscalerGate = autoscaler === null ? null : planControllerGate({ config, version, image: '', ...(branch !== undefined ? { branch } : {}) });
  if (autoscaler !== null && autoscalerGate !== null) {
    specs.push(autoscalerGate, autoscaler);
    steps.push({ kind: 'ensure-autoscaler-image', nodeImage, version, describe: `ensure the autoscale controller's image on ${facts.cluster.manager} (from ${nodeImage}), its record folder and its engine gate's socket folder` });
  }

  if (request.http === undefined) stopWhileOthersRun(specs, version, facts, notes);
  const names = specs.map((s) => s.Name);
  const replaced = facts.earlierSpecs.filter((r) => names.includes(r.name));
  const redeploy = earlier !== undefined;
  const changedAccessories = steps.filter((s): s is Extract<InstallStep, { kind: 'create-accessory' | 'update-accessory' }> => s.kind === 'create-accessory' || s.kind === 'update-accessory').map((s) => s.spec.Name);
  const releaseJob = releasePhase(config, version, specs, facts);
  steps.push({
    kind: 'ensure-network', name: versionNetwork, labels: { [LABELS.app]: app, [LABELS.version]: version },
    describe: `ensure overlay network ${versionNetwork}: the version's services reach each other there by their names (${Object.keys(config.services).join(', ')})`,
    ...(redeploy ? {} : { undo: `remove network ${versionNetwork}` }),
  });
  // made after the accessories run and before the release phase (a branch's migrations run against its own database);
  // their jobs are named in the install record, so a killed run's job is removed by the repair
  const branchSteps: Extract<InstallStep, { kind: 'branch-database' }>[] = [];
  for (const db of branchDbs) {
    const accessory = config.accessories[db.shared.accessory]!;
    const accessorySpec = planAccessory(app, db.shared.accessory, accessory, images.accessories[db.shared.accessory]!, facts.cluster.network, secretRefs, fileRefs, volumes);
    const recorded = (facts.branchDatabases ?? []).some((r) => r.secret === db.secret);
    const create = !redeploy;
    const seed = accessory.seed;
    let seedUpload: { from: string; to: string } | undefined;
    if (seed !== undefined && seed !== 'schema') {
      const from = facts.seedFiles?.[db.shared.accessory];
      if (from === undefined) throw new Error(`planInstall: the seed file of ${db.shared.accessory} was not read (facts.seedFiles)`);
      seedUpload = { from, to: seedFileOnManager(app, db.secret, facts.stateRoot) };
    }
    const job = (action: 'create' | 'drop') => branchDatabaseJob({
      app, db, accessorySpec, action, by: facts.by, at: facts.at, secretRef: named(db.secret),
      script: branchDatabaseScript(db, action, seed !== undefined && action === 'create' ? { seed } : {}),
      ...(seedUpload !== undefined && action === 'create' ? { seedFile: { source: seedUpload.to, node: facts.cluster.manager } } : {}),
    });
    const seeded = seed !== undefined ? ` ${describeSeed(seed, db.shared)}` : '';
    branchSteps.push({
      kind: 'branch-database', accessory: db.shared.accessory, engine: db.shared.engine, database: db.database, user: db.user,
      secret: db.secret, secretLabels: branchDatabaseSecretLabels(app, db, branch), create, ...(seed !== undefined ? { seed } : {}),
      ...(seedUpload !== undefined ? { seedUpload } : {}),
      job: job('create'), dropJob: job('drop'),
      describe: create
        ? `make branch database ${db.database} and user ${db.user} on ${db.shared.accessory}${seeded} (password: swarm secret ${db.secret})${recorded ? '; a killed earlier run made part of it: finished, not made again' : ''}`
        : `ensure branch database ${db.database} and user ${db.user} on ${db.shared.accessory} (kept from the branch's earlier deploy)`,
      ...(create ? { undo: `drop ${db.database} and ${db.user} on ${db.shared.accessory}, remove secret ${db.secret}` } : {}),
    });
  }
  const redisSteps: Extract<InstallStep, { kind: 'branch-redis' }>[] = [];
  for (const { shared, slot, secret, recorded } of branchRedis) {
    const accessorySpec = planAccessory(app, shared.accessory, config.accessories[shared.accessory]!, images.accessories[shared.accessory]!, facts.cluster.network, secretRefs, fileRefs, volumes);
    const what = describeSlot(shared, slot);
    const db = { version, secret, database: slotText(slot), shared: { accessory: shared.accessory } };
    const job = (action: 'create' | 'drop') => branchDatabaseJob({
      app, db, accessorySpec, action, by: facts.by, at: facts.at, redis: slot.mode,
      script: redisBranchScript({ shared, slot }, action, { requireEmpty: !recorded, goneExit: DATABASE_GONE_EXIT }),
    });
    // a slot this run checked empty, or a new branch's, is this install's to empty again when it fails
    const undoable = !redeploy || !recorded;
    redisSteps.push({
      kind: 'branch-redis', accessory: shared.accessory, mode: slot.mode, slot: slotText(slot), secret, recorded,
      secretLabels: redisRecordLabels(app, { accessory: shared.accessory, version, secret, redis: slot }, branch),
      job: job('create'), dropJob: job('drop'),
      describe: recorded
        ? `ensure ${what} for ${version} (recorded in swarm secret ${secret}${redeploy ? ', kept from the branch\'s earlier deploy' : ' by a killed earlier run'})`
        : `check that ${what} is empty, then record it as ${version}'s (swarm secret ${secret})`,
      ...(undoable ? { undo: `empty ${what} again and remove secret ${secret}` } : {}),
    });
  }
  const stopped = statefulTakeover(config, version, facts.present);
  steps.push({
    // a release job a killed buildinst left is named in the record, so the next command removes it with the rest
    kind: 'write-install-intent', services: [...names, ...(releaseJob === null ? [] : [releaseJob.job.Name]), ...[...branchSteps, ...redisSteps].flatMap((b) => [b.job.Name, b.dropJob.Name])], redeploy, ...(redeploy ? { replaced } : {}), ...(stopped.length > 0 ? { stopped } : {}),
    describe: `record on the manager what is being installed (${redeploy ? 'to be put back' : 'to be removed'} by the next command if this one dies)`,
    undo: 'forget that record once everything above is undone',
  });
  // the accessories run before the branch databases are made in them and the release command uses them
  const accessoriesFirst = releaseJob !== null || branchDbs.length > 0 || branchRedis.length > 0;
  if (accessoriesFirst && changedAccessories.length > 0) {
    steps.push({ kind: 'await-tasks', services: changedAccessories, ignoreTasksOf: [], describe: `wait until every task of ${changedAccessories.join(', ')} runs (${releaseJob !== null ? 'the release command needs them' : 'the branch databases are made in them'})` });
  }
  steps.push(...branchSteps, ...redisSteps);
  if (branchRedis.length > 0) {
    notes.push(`branch ${branch}: ${branchRedis.map(({ shared, slot }) => slot.mode === 'database'
      ? `${describeSlot(shared, slot)} (its URLs to ${shared.accessory} name /${slot.number})`
      : `${describeSlot(shared, slot)} (its services find the prefix in ${keyPrefixEnv(shared.accessory)})`).join(', ')}`);
  }
  if (branchDbs.length > 0) {
    notes.push(`branch ${branch}: its own database${branchDbs.length === 1 ? '' : 's'} ${branchDbs.map((db) => `${db.database} on ${db.shared.accessory}`).join(', ')}; its services read ${branchDbs.length === 1 ? 'it' : 'them'} under the names the main line's read (URLs to the accessory, database and user names, the password file)`);
  }
  // the release phase runs before a stateful takeover stops anything: a failed migration leaves every version as it was
  if (releaseJob !== null) {
    notes.push(`release phase: \`${releaseJob.command.join(' ')}\` runs once as job ${releaseJob.job.Name} with ${version}'s ${releaseJob.service} before its services start; what it changes (a migration) is not undone if a later step fails`);
    steps.push(releaseJob);
  }
  if (stopped.length > 0) {
    const live = stopped.find((s) => s.version === release.state.live);
    notes.push(`stateful ${stateful.join(', ')}: one version at a time holds ${stateful.length === 1 ? 'its volume' : 'their volumes'}; this install stops ${stopped.map((s) => s.name).join(', ')} first (stop-first takeover), so ` +
      (live !== undefined
        ? `the live domain ${config.domain} fails from that stop until version ${version} passes its health check and goes live (no zero downtime for a stateful service: two versions cannot share its data files)`
        : `version${stopped.length === 1 ? '' : 's'} ${[...new Set(stopped.map((s) => s.version))].join(', ')} stop${stopped.length === 1 ? 's' : ''} answering`));
    steps.push({
      kind: 'stop-stateful', services: stopped,
      describe: `stop ${stopped.map((s) => `${s.name} (version ${s.version})`).join(', ')}: the volume is taken over stop-first`,
      undo: `start ${stopped.map((s) => s.name).join(', ')} again`,
    });
  }
  for (const spec of specs) {
    const built = builtImage(serviceOf(spec));
    const fromAutoscaler = spec === autoscaler || spec === autoscalerGate ? { autoscalerImage: true } : {};
    const before = redeploy ? replaced.find((r) => r.name === spec.Name) : undefined;
    if (before !== undefined) {
      steps.push({
        kind: 'update-service', spec, ...(built !== undefined ? { builtImage: built } : {}), ...fromAutoscaler, earlier: before,
        describe: `update ${spec.Name} (rolling, ${spec.UpdateConfig.Order})`, undo: `put ${spec.Name}'s earlier spec back`,
      });
    } else {
      steps.push({
        kind: 'create-service', spec, ...(built !== undefined ? { builtImage: built } : {}), ...fromAutoscaler,
        describe: `create ${spec.Name} (${spec.Mode.Replicated.Replicas} replicas)`, undo: `remove ${spec.Name}`,
      });
    }
  }
  const awaited = accessoriesFirst ? names : [...changedAccessories, ...names];
  steps.push({
    kind: 'await-tasks', services: awaited, ignoreTasksOf: previousOfLabel.map((s) => s.name),
    describe: `wait until every task of ${awaited.join(', ')} runs`,
  });

  const http = specs.find((s) => s.Labels[LABELS.http] === 'true');
  if (http !== undefined && request.http !== undefined) {
    const path = http.Labels[LABELS.health] ?? '/healthz';
    const sameUpstream = earlier !== undefined && earlier.http?.service === request.http.service && earlier.http?.port === request.http.port;
    const undoTo = earlier === undefined ? undefined : {
      kind: 'install' as const, version, ...(branch !== undefined ? { branch } : {}), services: earlier.services, ...(earlier.http !== undefined ? { http: earlier.http } : {}),
    };
    const health: InstallStep = { kind: 'health-gate', service: http.Name, host, path, describe: `health check: GET http://${host}${path} answers 200 through the edge` };
    if (sameUpstream) {
      // the edge already routes the version to this service: the health gate decides before anything is recorded
      steps.push({
        kind: 'route-version', request, healthFirst: true, ...(undoTo !== undefined ? { undoTo } : {}),
        describe: `check http://${host}${path} answers 200 through the edge, then record the redeploy (the edge already routes ${host} to ${http.Name})`,
        undo: `route ${host} as before the redeploy`,
      });
    } else {
      steps.push({
        kind: 'route-version', request, healthFirst: false, ...(undoTo !== undefined ? { undoTo } : {}),
        describe: `route ${host} to ${request.http.service}:${request.http.port} at the edge and record the version`,
        undo: undoTo !== undefined ? `route ${host} as before the redeploy` : `take ${host} off the edge again`,
      });
      steps.push(health);
    }
    const liveStopped = statefulTakeover(config, version, facts.present).find((s) => s.version === release.state.live);
    if (liveStopped !== undefined) {
      steps.push({
        kind: 'take-live', version, from: liveStopped.version,
        describe: `make version ${version} live: the takeover stopped the live version ${liveStopped.version}'s ${liveStopped.name}`,
        undo: `make version ${liveStopped.version} live again`,
      });
    }
  }
  for (const gone of previousOfLabel.filter((s) => !names.includes(s.name))) {
    steps.push({ kind: 'remove-service', name: gone.name, describe: `remove ${gone.name} (no longer in depl.yaml)` });
  }
  steps.push({ kind: 'clear-install-intent', describe: 'forget the install record: the version is in' });
  if (request.http !== undefined && https) steps.push({ kind: 'issue-certificates', host, describe: `certificates for ${host} (one that cannot be issued leaves it on plain HTTP)` });
  if (request.http !== undefined) {
    const mode = facts.tls === 'acme' ? 'ensure' : 'remove';
    steps.push({ kind: 'renewal-task', mode, nodeImage, describe: mode === 'ensure' ? 'ensure the certificate renewal task runs on the cluster' : 'remove the certificate renewal task, if there is one (tls is not acme)' });
  }
  steps.push({ kind: 'hook', hook: 'post-install', describe: 'run the post-install hook (when .depl/hooks has one; its failure is reported)' });

  return {
    ok: true,
    plan: {
      command: facts.command, notes, steps, version, ...(branch !== undefined ? { branch } : {}),
      url: request.http === undefined ? null : `${https ? 'https' : 'http'}://${host}/`,
      services: names,
    },
  };
}

/**
 * The branch databases a deploy gets: one per `perBranch: database` accessory for a branch deploy, none for the
 * main line. An accessory whose settings do not say where its database is refuses every install (nothing changed).
 */
function branchDatabasesFor(config: DeplConfig, version: string, branch: string | undefined, records: readonly BranchDatabaseRecord[]):
  { ok: true; dbs: BranchDatabase[]; redis: { shared: SharedRedis; slot: RedisSlot; secret: string; recorded: boolean }[] } | { ok: false; refusal: Refusal } {
  const dbs: BranchDatabase[] = [];
  const redis: { shared: SharedRedis; slot: RedisSlot; secret: string; recorded: boolean }[] = [];
  for (const [name, accessory] of Object.entries(config.accessories)) {
    if (accessory.perBranch === undefined) continue;
    if (isRedisAccessory(accessory) || accessory.perBranch === 'prefix') {
      const shared = sharedRedisOf(name, accessory, config);
      if (!shared.ok) {
        return { ok: false, refusal: { message: `accessories.${name}.perBranch: ${shared.message}`, hint: 'See the README\'s Branch databases (Redis).', code: 'BRANCH_DATABASE_CONFIG' } };
      }
      if (accessory.seed !== undefined) {
        return { ok: false, refusal: { message: `accessories.${name}.seed: a Redis branch starts empty (seed is for postgres and mysql)`, hint: `Remove seed: from ${name}.`, code: 'BRANCH_DATABASE_CONFIG' } };
      }
      if (branch === undefined) continue;
      const secret = branchRecordSecret(config.app, name, version);
      const slot = allocateRedisSlot(shared.shared, version, secret, records.filter(isRedisRecord));
      if (!slot.ok) return { ok: false, refusal: { message: slot.message, hint: slot.hint, code: 'BRANCH_REDIS_EXHAUSTED' } };
      redis.push({ shared: shared.shared, slot: slot.slot, secret, recorded: slot.recorded });
      continue;
    }
    const shared = sharedDatabaseOf(name, accessory);
    if (!shared.ok) {
      return { ok: false, refusal: { message: `accessories.${name}.perBranch: ${shared.message}`, hint: 'See the README\'s Branch databases: the accessory\'s env names its database, user and password files.', code: 'BRANCH_DATABASE_CONFIG' } };
    }
    if (branch !== undefined) dbs.push(branchDatabaseOf(config.app, shared.shared, version));
  }
  return { ok: true, dbs, redis };
}

/**
 * An app made of queue consumers only (src/plan/consumers.ts): every service carries the replicas it runs with
 * while its version is live (`depl.replicas`), and while another version is installed the new one's consumers
 * are created stopped, so two versions never take work at once; `depl switch` starts them.
 */
function stopWhileOthersRun(specs: ServiceSpec[], version: string, facts: InstallFacts, notes: string[]): void {
  const others = facts.installed.filter((v) => v.label !== version).map((v) => v.label);
  for (const spec of specs) {
    spec.Labels = { ...spec.Labels, [LABELS.replicas]: String(spec.Mode.Replicated.Replicas) };
    if (others.length > 0) spec.Mode = { Replicated: { Replicas: 0 } };
  }
  if (others.length > 0) {
    notes.push(`every service consumes queues (none has http: true): ${version}'s consumers are created stopped while ${others.join(', ')} ${others.length === 1 ? 'is' : 'are'} installed; \`depl switch ${version}\` starts them, then stops the live version's`);
  }
}

/**
 * depl.yaml's `release:` as the plan's step: the job is made from the spec the version's service is about to be
 * created with (so it runs the image just built, with the version's config and secrets), named after the version
 * (the same plan for a dry run and the run; a job left by a killed run is removed by the install record's repair).
 */
function releasePhase(config: DeplConfig, version: string, specs: readonly ServiceSpec[], facts: InstallFacts): Extract<InstallStep, { kind: 'release-phase' }> | null {
  const release = config.release;
  if (release === undefined) return null;
  const spec = specs.find((s) => s.Labels[LABELS.service] === release.service);
  if (spec === undefined) throw new Error(`release.service ${release.service} is not one of the version's services`);
  const job = planRunJob({
    app: config.app, version, service: release.service, command: release.command, spec, purpose: 'release',
    id: createHash('sha256').update(`${config.app}\0${version}`).digest('hex').slice(0, 6), by: facts.by, startedAt: facts.at,
  });
  return {
    kind: 'release-phase', service: release.service, command: [...release.command], timeout: release.timeout, timeoutMs: parseDuration(release.timeout, 'release.timeout'), job,
    describe: `release phase: run \`${release.command.join(' ')}\` once as job ${job.Name} (${version}'s ${release.service}: its image, config, secrets, network), within ${release.timeout}; a failure stops the install`,
  };
}

/** The spec as the swarm takes it: config and secret ids from the steps that ensured them, the built image's id. */
export function resolveSpec(
  spec: ServiceSpec,
  made: { configs: Record<string, string>; secrets: Record<string, string>; imageIds: Record<string, string>; autoscalerImage?: string },
  step: { builtImage?: string; autoscalerImage?: boolean },
): ServiceSpec {
  const container = spec.TaskTemplate.ContainerSpec;
  const imageId = step.builtImage === undefined ? undefined : made.imageIds[step.builtImage];
  if (step.builtImage !== undefined && imageId === undefined) throw new Error(`${spec.Name}: image ${step.builtImage} was not built by an earlier step`);
  if (step.autoscalerImage && made.autoscalerImage === undefined) throw new Error(`${spec.Name}: the autoscale controller's image was not made by an earlier step`);
  return {
    ...spec,
    TaskTemplate: {
      ...spec.TaskTemplate,
      ContainerSpec: {
        ...resolveMounts(spec.Name, container, made),
        ...(step.autoscalerImage ? { Image: made.autoscalerImage! } : {}),
        ...(imageId !== undefined ? {
          Labels: { ...container.Labels, [LABELS.imageId]: imageId },
          Env: [...(container.Env ?? []).filter((e) => !e.startsWith(`${RELEASE_ENV.imageId}=`)), `${RELEASE_ENV.imageId}=${imageId}`],
        } : {}),
      },
    },
  };
}

/** The release phase's job as the swarm takes it: its config and secret mounts with the ids the earlier steps made. */
export function resolveJob(job: JobSpec, made: { configs: Record<string, string>; secrets: Record<string, string> }): JobSpec {
  const container = job.TaskTemplate.ContainerSpec as JobSpec['TaskTemplate']['ContainerSpec'] & Pick<ServiceSpec['TaskTemplate']['ContainerSpec'], 'Configs' | 'Secrets'>;
  return { ...job, TaskTemplate: { ...job.TaskTemplate, ContainerSpec: resolveMounts(job.Name, container, made) } };
}

/** A container spec whose config and secret mounts named by the plan (an empty id) get the ids the earlier steps made. */
function resolveMounts<C extends Pick<ServiceSpec['TaskTemplate']['ContainerSpec'], 'Configs' | 'Secrets'>>(name: string, container: C, made: { configs: Record<string, string>; secrets: Record<string, string> }): C {
  const id = (kind: string, ids: Record<string, string>, object: string) => {
    const found = ids[object];
    if (found === undefined) throw new Error(`${name}: swarm ${kind} ${object} was not made by an earlier step`);
    return found;
  };
  return {
    ...container,
    ...(container.Configs !== undefined ? { Configs: container.Configs.map((c) => (c.ConfigID === '' ? { ...c, ConfigID: id('config', made.configs, c.ConfigName) } : c)) } : {}),
    ...(container.Secrets !== undefined ? { Secrets: container.Secrets.map((s) => (s.SecretID === '' ? { ...s, SecretID: id('secret', made.secrets, s.SecretName) } : s)) } : {}),
  };
}

/** Whether the swarm lists this service as app `app`'s accessory `accessory` (its labels, whatever its name). */
function isAccessoryOf(service: Pick<PresentService, 'labels'>, app: string, accessory: string): boolean {
  return service.labels[LABELS.app] === app && service.labels[LABELS.accessory] === accessory;
}

/**
 * Which edge routes app `app`'s http services: its own `<app>-edge` while no other edge is on the swarm (HTTPS is
 * served by an app's own edge only, so far), the cluster's `depl_edge` once another app's edge or depl_edge is there
 * (src/plan/cluster-edge.ts takes the apps' own edges over). Refused (EDGE_TAKEN) where HTTPS would be lost: this
 * app has TLS on, or another app's own edge serves HTTPS (it publishes 443), and the edges would have to be one.
 */
export function edgeFor(app: string, https: boolean, otherEdges: readonly (PresentService & { ports?: readonly number[] })[]): { ok: true; cluster: boolean } | { ok: false; refusal: Refusal } {
  if (otherEdges.length === 0) return { ok: true, cluster: false };
  const secure = otherEdges.find((e) => e.name !== CLUSTER_EDGE_SERVICE && (e.ports ?? []).includes(443));
  if (https || secure !== undefined) {
    const holder = secure ?? otherEdges[0]!;
    const whose = holder.name === CLUSTER_EDGE_SERVICE ? "the cluster's edge" : `app ${holder.labels[LABELS.app] ?? '?'}'s edge`;
    return {
      ok: false,
      refusal: {
        message: secure !== undefined
          ? `${whose} (${holder.name}) serves HTTPS on this cluster's edge nodes, and the cluster's one edge that would route app ${app} beside it carries no HTTPS yet: app ${app} (it has an http service) cannot be routed here without taking that away`
          : `app ${app} has TLS on, and ${whose} (${holder.name}) already holds ports 80 and 443 of this cluster's edge nodes: several apps share the cluster's one edge, which carries no HTTPS yet`,
        hint: `Give app ${app} a cluster of its own, or run both apps with tls: off here (the cluster's edge routes several apps over HTTP), or app ${app} without http: true services.`,
        code: 'EDGE_TAKEN',
      },
    };
  }
  return { ok: true, cluster: true };
}
