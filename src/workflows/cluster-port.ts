import { hostname, userInfo } from 'node:os';
import type { Readable } from 'node:stream';
import type { AppLeftovers } from '../apply/app-leftovers.js';
import type { Cluster } from '../apply/cluster.js';
import { operatorHooks, type HookRunner } from '../apply/hooks.js';
import { clusterEdgeFiles, clusterEdgeSite, requestThroughEdge, type EdgeSite } from '../apply/edge/site.js';
import type { HeldLock } from '../apply/lock.js';
import type { Remote } from '../apply/remote.js';
import type { LoadedConfig } from '../config/load.js';
import type { DeplConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';
import { checkVersionLabel } from '../names.js';
import { nodeListCommand, parseNodeList } from '../plan/bootstrap.js';
import type { ServiceRestore } from '../plan/install-intent.js';
import { installedVersions, removeServices, restoreServices, scaleServices, serviceReplicas } from '../apply/swarm.js';
import { versionHost } from '../plan/names.js';
import type { InstalledVersion } from '../plan/release-state.js';
import type { EdgeTlsRender } from '../plan/tls/nginx.js';
import type { TlsProject } from './tls/certificates.js';
import { tlsSettings } from '../plan/tls/certificates.js';
import { tlsStoreFor, type TlsStore } from '../apply/tls/store.js';
import type { CertificateIssuer } from '../apply/tls/issuer.js';
import type { ScaleTarget } from '../plan/scale.js';
import type { ImageBuild } from '../plan/images.js';
import type { AppService } from '../plan/backup.js';
import type { AccessoryPlacement } from '../plan/backup-plan.js';
import type { Frame, JobEnd, JobSpec } from '../plan/jobs.js';
import type { BranchDatabaseRecord } from '../plan/branch-database.js';
import type { BranchDatabaseFound } from '../plan/prune.js';
import type { VolumeLocation } from '../plan/volume-move.js';
import type { DumpFile } from '../apply/dump-file.js';
import type { PresentService } from '../plan/install-plan.js';
import type { PresentSpec } from '../plan/inspected-spec.js';
import type { RenewerSettings } from '../plan/tls/renewal.js';
import { serviceUpgradesOn } from './service-upgrades.js';
import { renewerCredentialWanted } from '../plan/tls/renewer-credential.js';
import { swarmCredentialHolderOn } from '../apply/tls/renewer-secret.js';
import type { RenewerCredentialRun } from './tls/renewer-credential.js';
import type { ConfigDocument, SecretDocument, ServiceSpec, SwarmConfigRef, SwarmSecretRef } from '../plan/services.js';
import type { Logger } from '../util/log.js';

/**
 * The cluster port: everything a workflow works on (the edge, the manager holding the release document and
 * the lock, where the installed versions are read from, the swarm's replicas, hooks, certificates, the clock),
 * built once per command. Workflows reach the cluster only through it. Built from a cluster
 * (`clusterPortFor`), by tests from a loopback nginx, or from the fake cluster of the unit tests.
 */
export interface ClusterPort {
  app: string;
  domain: string;
  site: EdgeSite;
  /** The manager: the release document and the lock live there. */
  stateRemote: Remote;
  stateRoot?: string;
  /** Path each version answers 200 on when healthy. */
  healthPath: string;
  log: Logger;
  /** How long to wait for another depl run holding the lock. */
  lockWaitMs?: number;
  /** The installed versions: on a cluster, from the swarm's service labels. */
  installed(): Promise<InstalledVersion[]>;
  /** `user@host` recorded in the history; default this process's user and host. */
  by?: string;
  /** The clock (tests pass a fixed one). */
  now?: () => Date;
  /**
   * Makes the edge's HTTPS settings match the certificate store for these versions, never issuing or renewing
   * (src/workflows/tls/edge-sync.ts syncCertificatesForRelease), called under the lock by every release change
   * (src/workflows/release.ts); returns the new HTTPS settings when they changed, null when they did not.
   * Absent: TLS is not this control's business (tests, the fake cluster).
   */
  certificates?(versions: string[]): Promise<{ render: EdgeTlsRender | undefined } | null>;
  /** `depl tls renew`: the manager's certificate store and the one issuer (src/apply/tls/issuer.ts). Absent: TLS is off or not this port's business. */
  tls?: TlsCertificates;
  /** The swarm's replicas: `depl scale`, and a switch to a version not at the app's scale. Absent: nothing to scale (an edge without a swarm). */
  swarm?: SwarmReplicas;
  /** The operator's hooks (.depl/hooks); absent: none run. */
  hooks?: HookRunner;
  /**
   * The app has no `http: true` service, so there is no edge: nothing routes or reloads, and a release change
   * (a scale) is only applied to the swarm and recorded. Switch and canary refuse such versions (NOT_ROUTABLE).
   */
  noEdge?: boolean;
  /**
   * What `depl prune` removes besides versions' services: image tags on the nodes, jobs `depl run` left,
   * configs and secrets no service uses (src/apply/app-leftovers.ts). Absent: prune removes services only.
   */
  leftovers?: AppLeftovers;
  /** `depl prune`: the branch databases to back up and drop (src/plan/branch-database.ts). Absent: none are dropped. */
  branchDatabases?: BranchDatabasePort;
  /** What buildinst needs beyond the release state: images, swarm services, accessories, configs, secrets. Absent: no install here. */
  install?: InstallTarget;
  /** What `depl backup` and `depl restore` do to an accessory: its task, Redis, its volume. Absent: no accessories here. */
  accessoryData?: AccessoryData;
  /** The swarm's nodes as the manager lists them (depl wake waits until every one is Ready). Absent: not this port's business. */
  nodes?: SwarmNodes;
  /**
   * The app's services as an earlier depl installed them, and installing them again as this depl plans them
   * (src/plan/state-layout.ts, run when the lock is taken). Absent: the state layout's files move, and its
   * services wait for a command that has this.
   */
  upgrades?: ServiceUpgrades;
}

// ---- the state layout's move: services an earlier depl installed ----

export interface ServiceUpgrades {
  /** The app's services' specs as the swarm has them (its `depl.app` label). */
  specs(): Promise<PresentSpec[]>;
  /** Installs the renewal task again from its earlier spec's settings, image and DNS-01 secret, with this depl's code and mounts. */
  renewer(upgrade: { settings: RenewerSettings; image: string; dnsSecret?: SwarmSecretRef }): Promise<void>;
  /** This depl's autoscale controller image on the manager (built once when missing) and the version's folders. */
  controllerImage(version: string): Promise<string>;
  /** Creates the service, or updates it to `spec`. */
  put(spec: ServiceSpec): Promise<void>;
  /** Scales the service to no replicas and returns once none of its tasks runs (its spec stays, to be planned again). */
  stop(service: string): Promise<void>;
}

// ---- depl wake's slice of the port: is the swarm whole? ----

export interface SwarmNodes {
  /** Every node of the swarm with its state (Ready, Down, Unknown...) as the manager reports it now. */
  list(): Promise<Array<{ name: string; state: string }>>;
}

/** The swarm's nodes through the manager's docker CLI (one `docker node ls`). */
export function swarmNodesOn(cluster: Pick<Cluster, 'manager'>): SwarmNodes {
  return {
    async list() {
      const listed = await cluster.manager.exec(nodeListCommand());
      return parseNodeList(listed.stdout).map((row) => ({ name: row.hostname, state: row.status }));
    },
  };
}

// ---- backup and restore's slice of the port (src/workflows/backup.ts runs src/plan/backup-plan.ts and restore-plan.ts through it) ----

export interface AccessoryData {
  /** Where the accessory runs now; null when the swarm has no such service of this app. */
  place(accessory: string): Promise<AccessoryPlacement | null>;
  /** The app's services with their labels and wanted replicas (who uses an accessory). */
  appServices(): Promise<AppService[]>;
  /** redis-cli in the accessory's running container (the password from its secret); an error reply throws. */
  redis(accessory: string, args: readonly string[]): Promise<string>;
  pause(accessory: string): Promise<void>;
  /** Resumes its container (one that is not paused is not an error). */
  resume(accessory: string): Promise<void>;
  /** Scales it to 0 and waits until none of its tasks runs. */
  stop(accessory: string): Promise<void>;
  /** Scales it to 1 and waits until a new task runs and stays up. */
  start(accessory: string, timeoutMs: number): Promise<void>;
  /** One file of the running container (Redis's snapshot), as a stream of its bytes. */
  readFile(accessory: string, path: string): Promise<Readable>;
  /** Runs fn with the accessory's volume reachable through a helper container on `node` (removed afterwards). */
  withVolume<T>(accessory: string, node: string, fn: (volume: VolumeAccess) => Promise<T>): Promise<T>;
}

export interface VolumeAccess {
  /** Docker's archive of the mount point: a tar whose entries start with the mount point's last element. */
  read(): Promise<Readable>;
  /** Removes everything under the mount point (keeps the mount point). */
  empty(): Promise<void>;
  /** Extracts a tar stream at `path` (the mount point, or its parent for an archive of it). */
  write(path: string, archive: Readable): Promise<void>;
}

export interface TlsCertificates {
  /** The certificates, keys and the edge's HTTPS settings on the manager (src/apply/tls/store.ts). */
  store: TlsStore;
  /** The one issuer, writing into `store` (a run holding the lock passes the lock's fenced view of it). */
  issuerFor(store: TlsStore): Promise<CertificateIssuer>;
  /**
   * provider.dns with DNS-01 and no tls.dnsCloud: the renewal task's node-up credential, kept current by `depl tls
   * renew` as by buildinst (src/workflows/tls/renewer-credential.ts keepRenewerCredential): the swarm secrets holding
   * one, and the operator's login. Absent: the task has no such credential.
   */
  renewerCredential?: Pick<RenewerCredentialRun, 'holder' | 'signIn'>;
}

export interface SwarmReplicas {
  /** Sets the services' desired replicas; returns at once (the swarm converges on its own). */
  scale(targets: readonly ScaleTarget[]): Promise<void>;
  /** Running and desired tasks of the services (a service the swarm does not have is left out). */
  tasks(services: readonly string[]): Promise<Record<string, { running: number; desired: number }>>;
  /** Removes the services (those already gone are not an error): what an interrupted buildinst left. */
  remove(services: readonly string[]): Promise<void>;
  /**
   * Puts services back to the specs recorded for them (an interrupted branch redeploy). Absent where nothing can
   * apply a whole spec (a port without a swarm): the repair then reports and waits.
   */
  restore?(services: readonly ServiceRestore[]): Promise<void>;
}

// ---- buildinst's slice of the port (src/workflows/install-apply.ts runs src/plan/install-plan.ts through it) ----

export interface InstallTarget {
  /** The app's services on the swarm now (labels, image). */
  appServices(): Promise<PresentService[]>;
  /** Services of any app with these names (an accessory's name taken by another app). */
  servicesNamed(names: readonly string[]): Promise<PresentService[]>;
  /** The edge services on this swarm not this app's own (other apps' and the cluster's depl_edge), with their published ports. */
  edgesOfOtherApps?(): Promise<(PresentService & { ports?: number[] })[]>;
  /** The specs these services have now, their images pinned (what a failed branch redeploy puts back). */
  earlierSpecs(names: readonly string[]): Promise<ServiceRestore[]>;
  /** A port for repairing an interrupted buildinst before this one reads (the edge may not run yet). */
  repairPort(): Promise<{ port: ClusterPort; edgeRunning: boolean }>;
  /**
   * Starts the edge if needed with HTTPS settings from the store; returns the edge as now running. `cluster`: the
   * cluster's depl_edge, the apps' own edges taken over (src/workflows/cluster-edge.ts), instead of the app's own.
   */
  ensureEdge(edge: { image?: string; https: boolean; cluster: boolean; certificateVersions: readonly string[] }): Promise<EdgeSite>;
  /** Builds on the manager; returns the image id. */
  buildImage(build: ImageBuild): Promise<string>;
  /** Puts the image on the nodes (all, or those named); returns a line saying what it did. */
  distributeImage(image: string, nodes: 'all' | readonly string[], registry?: string): Promise<string>;
  /** A swarm config by its (content-addressed) name: made when missing. Project files carry bytes. */
  ensureConfig(doc: Omit<ConfigDocument, 'data'> & { data: string | Buffer }): Promise<SwarmConfigRef>;
  ensureSecret(doc: SecretDocument): Promise<SwarmSecretRef>;
  /**
   * The autoscale controller's image on the manager (it also carries the controller's engine gate), and the
   * folders of `version`'s controller and gate; returns the image reference.
   */
  ensureAutoscalerImage(nodeImage: string, version: string): Promise<string>;
  createService(spec: ServiceSpec): Promise<void>;
  /** Updates the service of that name in place (rolling). */
  updateService(spec: ServiceSpec): Promise<void>;
  /** Removes it (one already gone is not an error). */
  removeService(name: string): Promise<void>;
  restoreServices(services: readonly ServiceRestore[]): Promise<void>;
  /** The ids of the services' tasks now. */
  taskIds(services: readonly string[]): Promise<Set<string>>;
  /** Until every task of each spec runs and stays up; throws with the failing task's error. */
  awaitServices(specs: readonly ServiceSpec[], options: { timeoutMs: number; ignoreTasks: Set<string> }): Promise<void>;
  /** GET http://<host><path> through the edge until 200 or the timeout. */
  healthy(host: string, path: string, timeoutMs: number): Promise<{ ok: boolean; last: string }>;
  /** The service's last log lines ('' when none). */
  logTail(service: string, lines: number): Promise<string>;
  /**
   * Issues what the routed versions lack (tls: on); `site` is the edge with its new HTTPS settings when they
   * changed (then reloaded with the routing as it is). Never throws a DeplError: what failed is in httpsMissing.
   */
  issueCertificates(versions: readonly string[], host: string): Promise<{ site?: EdgeSite; httpsMissing?: string; tlsWithheld: string[] }>;
  /** The certificate renewal task (src/apply/tls/renewal-task.ts): what was done, or why it could not be. */
  renewalTask(mode: 'ensure' | 'remove', nodeImage: string): Promise<string | undefined>;
  /**
   * Runs a one-off job (the release phase) to its end through the one job runner (src/apply/jobs.ts
   * runJobService), writing its output as it comes, and removes it afterwards whatever happened.
   */
  runJob(spec: JobSpec, options: { timeoutMs: number; write: (frame: Frame) => void; signal?: AbortSignal }): Promise<JobEnd>;
  // -- branch databases (src/plan/branch-database.ts) --
  /** The branch databases' record secrets of the app, read from their labels. */
  branchDatabases(): Promise<BranchDatabaseRecord[]>;
  /** Removes a swarm secret (one already gone is not an error). */
  removeSecret(name: string): Promise<void>;
  // -- a version's own network and the stateful takeover (src/apply/version-network.ts) --
  /** The version's overlay network (made when missing), encrypted as the app's is. */
  ensureNetwork(name: string, labels: Record<string, string>): Promise<void>;
  /** Removes it once no task is attached (one already gone is not an error). */
  removeNetwork(name: string): Promise<void>;
  /** Scales the services to 0 and returns once none of their tasks holds a container (the volume is free). */
  stopServices(services: readonly string[], timeoutMs: number): Promise<void>;
  /** Scales the services back to these replicas (returns at once). */
  startServices(targets: readonly ScaleTarget[]): Promise<void>;
  /** Volumes moved into their app-scoped names (src/plan/volume-move.ts). */
  volumes: VolumeMoveTarget;
}

/** What moving a volume into its app-scoped name needs besides stopping and starting services and running a job. */
export interface VolumeMoveTarget {
  /** Services of any app that mount one of these named volumes. */
  mounting(volumes: readonly string[]): Promise<PresentService[]>;
  /** By volume name: the nodes whose engine has a volume of that name, and the nodes that could not be asked. */
  locate(volumes: readonly string[]): Promise<Record<string, VolumeLocation>>;
  /** Until no container on the node mounts the volume (a stopped task's container may take a moment to let go). */
  awaitFree(node: string, volume: string, timeoutMs: number): Promise<void>;
  /** The services' specs with their mounts of `from` on `to` (src/plan/volume-move.ts repointedSpec); replicas as they are. */
  repoint(services: readonly string[], from: string, to: string): Promise<void>;
  /** Removes the volume on the node (one already gone counts as removed); the engine's reason when it refuses. */
  remove(node: string, volume: string): Promise<{ removed: true } | { removed: false; reason: string }>;
}

/** What `depl prune` needs to back up and drop branch databases. */
export interface BranchDatabasePort {
  /** The app's branch databases (their records), each with its accessory's shared database and swarm spec. */
  found(): Promise<BranchDatabaseFound[]>;
  /** Runs a job to its end (the one job runner), writing its output as it comes, and removes it. */
  runJob(spec: JobSpec, options: { timeoutMs: number; write: (frame: Frame) => void }): Promise<JobEnd>;
  /** Removes a record secret (one already gone is not an error). */
  removeRecord(name: string): Promise<void>;
  /** Where a dump goes while it streams in (src/apply/dump-file.ts). */
  openDump(file: string): Promise<DumpFile>;
  /** The folder the backups go to. */
  backupDir: string;
}

/** The swarm's replicas through the swarm adapter (src/apply/swarm.ts), on the cluster's one Engine connection. */
export function swarmOn(cluster: Pick<Cluster, 'engine'>): SwarmReplicas {
  return {
    async scale(targets) {
      if (targets.length > 0) await scaleServices(await cluster.engine(), targets);
    },
    tasks: async (services) => serviceReplicas(await cluster.engine(), services),
    async remove(services) {
      if (services.length > 0) await removeServices(await cluster.engine(), services);
    },
    restore: async (services) => restoreServices(await cluster.engine(), services),
  };
}

/** The app's versions from the swarm's labels (one Engine API read on the manager's connection). */
export async function installedOnCluster(cluster: Pick<Cluster, 'engine'>, app: string): Promise<InstalledVersion[]> {
  return installedVersions(await cluster.engine(), app);
}

/** How a command uses the port it builds (clusterPortFor). */
export interface PortOptions {
  /** For reading state and logs, which works while the edge container is down: the edge's files only. */
  filesOnly?: boolean;
  /**
   * Release changes sync the edge's HTTPS settings with the certificate store (under the lock, before they
   * change anything; never an ACME order): the port gets `certificates`.
   */
  syncCertificates?: boolean;
  /** The HTTPS settings the caller already knows (saves reading them); a read passes `{ render: undefined }`. */
  tls?: { render: EdgeTlsRender | undefined };
  /**
   * depl.yaml's TLS slice, given only where certificates may be issued (`tls`): the ACME client reads files named
   * relative to depl.yaml's folder (tls.caBundle) and a DNS-01 challenge the provider's credentials.
   */
  issuing?: TlsProject;
}

export async function clusterPortFor(cluster: Cluster, config: DeplConfig, log: Logger, options: PortOptions = {}): Promise<ClusterPort> {
  const { filesOnly = false, tls } = options;
  const http = Object.values(config.services).find((s) => s.http);
  // without an http service buildinst starts no edge: only its (absent) files are looked at
  const noEdge = http === undefined;
  const site = filesOnly || noEdge ? await clusterEdgeFiles(cluster, config.app, tls) : await clusterEdgeSite(cluster, config.app, tls);
  const certificates = options.syncCertificates === true && !filesOnly && !noEdge
    ? async (versions: string[]) => {
      // TLS off, and the edge had no HTTPS settings when it was looked up just now: there is nothing to sync,
      // so the switch skips the round trip (only a run with TLS on writes them)
      if (tlsSettings(config).mode === 'off' && site.render.tls === undefined) return null;
      const { syncCertificatesForRelease } = await import('./tls/edge-sync.js');
      return syncCertificatesForRelease(tlsStoreFor(cluster.manager, config.app), config, log, versions);
    }
    : undefined;
  const tlsConfig = tlsSettings(config);
  const project = options.issuing;
  const tlsPort: TlsCertificates | undefined = project !== undefined && !filesOnly && tlsConfig.mode !== 'off'
    ? {
      store: tlsStoreFor(cluster.manager, config.app),
      async issuerFor(store) {
        if (tlsConfig.mode !== 'acme') throw new UserError('tls: files certificates are not issued by depl', 'Put the renewed files in place and run depl tls renew.', 'TLS_NOT_ACME');
        const { acmeIssuerFor } = await import('./tls/certificates.js');
        const { edgeChallengeCheck } = await import('../apply/tls/responders.js');
        return acmeIssuerFor({ project, store, log, edgeCheck: edgeChallengeCheck(`http://${cluster.managerNode.address}:80`) }, tlsConfig, store);
      },
      ...(renewerCredentialWanted(config) ? {
        renewerCredential: {
          holder: swarmCredentialHolderOn(cluster, config.app),
          // the operator's cloud (the OpenStack clients, undici) loads only when a run has a credential to change
          signIn: async () => (await import('./tls/renewer-credential.js')).operatorDesignate(project),
        },
      } : {}),
    }
    : undefined;
  return {
    ...(certificates !== undefined ? { certificates } : {}),
    ...(tlsPort !== undefined ? { tls: tlsPort } : {}),
    app: config.app,
    domain: config.domain,
    site,
    stateRemote: cluster.manager,
    healthPath: http?.health ?? '/healthz',
    log,
    lockWaitMs: 0,
    installed: () => installedOnCluster(cluster, config.app),
    swarm: swarmOn(cluster),
    upgrades: serviceUpgradesOn(cluster, config, log),
    ...(noEdge ? { noEdge } : {}),
  };
}

/** withClusterPort on the command's depl.yaml, cut for a workflow that opens the port itself (tls renew, the demo's switch). */
export type PortOpener = <T>(log: Logger, fn: (port: ClusterPort) => Promise<T>) => Promise<T>;

/**
 * For commands: opens the cluster from the inventory, runs fn on its edge, closes the connections.
 * `files` (reads: logs, stats): the edge's container is not needed and nothing is renewed. `dry-run`: neither,
 * and the HTTPS settings are those the certificates in the store would render (what a change would apply).
 */
export async function withClusterPort<T>(loaded: LoadedConfig, log: Logger, fn: (control: ClusterPort) => Promise<T>, mode: 'apply' | 'files' | 'dry-run' = 'apply'): Promise<T> {
  const { openCluster } = await import('./cluster.js');
  const cluster = await openCluster(loaded, log);
  try {
    if (mode === 'files') return await fn(await clusterPortFor(cluster, loaded.config, log, { filesOnly: true }));
    if (mode === 'dry-run') {
      // what the certificates in the store would render, without issuing or writing anything
      const { syncEdgeCertificates } = await import('./tls/edge-sync.js');
      const versions = async () => (await installedOnCluster(cluster, loaded.config.app)).filter((v) => v.http !== undefined).map((v) => v.label);
      const { render } = await syncEdgeCertificates(tlsStoreFor(cluster.manager, loaded.config.app), loaded.config, versions, { write: false });
      return await fn(await clusterPortFor(cluster, loaded.config, log, { filesOnly: true, tls: { render } }));
    }
    // every command that touches the edge syncs its HTTPS settings with the certificate store, under its lock (release.ts)
    return await fn({ ...(await clusterPortFor(cluster, loaded.config, log, { syncCertificates: true, issuing: loaded })), hooks: operatorHooks(loaded.root, loaded.config, log) });
  } finally {
    await cluster.close();
  }
}

/**
 * The control as a run holding the cluster lock writes through it: the release document, install intents and
 * the edge's files on the manager are written only while the lease is still this run's (src/apply/fenced-remote.ts).
 * The edge's files are fenced only where they are on the manager that holds the lease.
 */
export function fencedControl(control: ClusterPort, lock: Pick<HeldLock, 'fenced'>): ClusterPort {
  // one fenced view of the manager: a workflow that finds the edge's files on it writes both in one command
  const state = lock.fenced(control.stateRemote);
  const fenceSite = (site: EdgeSite): EdgeSite => (site.remote === control.stateRemote ? { ...site, remote: state } : site);
  const tls = control.tls;
  return {
    ...control,
    stateRemote: state,
    site: fenceSite(control.site),
    // certificates and keys a stale run installs must not replace those of the run that holds the lock now
    ...(tls !== undefined && tls.store.remote === control.stateRemote ? { tls: { ...tls, store: { ...tls.store, remote: lock.fenced(tls.store.remote) } } } : {}),
  };
}

export function assertVersionLabel(version: string): void {
  const check = checkVersionLabel(version);
  if (!check.ok) throw new UserError(`version "${version}" ${check.reason}`, 'Run `depl versions` to list installed versions.', 'BAD_VERSION');
}

export function operator(control: Pick<ClusterPort, 'by'>): string {
  return control.by ?? `${userInfo().username}@${hostname()}`;
}

/** The version must answer its health path with 200 through the edge, at its own hostname. */
export async function requireHealthy(control: ClusterPort, version: string): Promise<void> {
  const host = versionHost(version, control.domain);
  let detail: string;
  try {
    const answer = await requestThroughEdge(control.site, host, control.healthPath, 10_000);
    if (answer.status === 200 && answer.version === version) return;
    detail = `answered ${answer.status}${answer.version !== version ? ` from version ${answer.version ?? 'none'}` : ''}: ${answer.body.slice(0, 200).trim()}`;
  } catch (error) {
    detail = (error as Error).message;
  }
  throw new OperationError(`refusing: version ${version} is not healthy (http://${host}${control.healthPath} through the edge ${detail})`, `Check its services: docker service ps ${control.app}-${version}-<service>.`, 'UNHEALTHY');
}

/** Waits until a fresh request to <domain> is served by `version` (after a reload this is immediate). */
export async function confirmLive(control: ClusterPort, version: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const answer = await requestThroughEdge(control.site, control.domain, control.healthPath).catch((error: Error) => ({ status: 0, version: null, body: error.message }));
    if (answer.status === 200 && answer.version === version) return;
    last = `${answer.status} from ${answer.version ?? 'no version'}`;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new OperationError(`the edge applied the change but ${control.domain} does not answer from ${version} (${last})`, undefined, 'SWITCH_UNCONFIRMED');
}
