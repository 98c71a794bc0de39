import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import type { EdgeSite } from '../../src/apply/edge/site.js';
import { SpawnerRemote } from './spawner-remote.js';
import type { ExecOptions, ExecResult, Remote } from '../../src/apply/remote.js';
import type { CertificateIssuer } from '../../src/apply/tls/issuer.js';
import { installCertificate, type TlsStore } from '../../src/apply/tls/store.js';
import { planRenewerService, renewerCodeDir, tlsStateDir } from '../../src/plan/tls/renewal.js';
import { OperationError } from '../../src/errors.js';
import { renderRoutingTable } from '../../src/plan/edge-routing.js';
import { CANARY_COOKIE, CONFIG_PROBE_PATH, PROBE_HOST, VERSION_HEADER, renderNginxConfig, type NginxRenderOptions } from '../../src/plan/nginx.js';
import { emptyReleaseState, routingFor, type InstalledVersion } from '../../src/plan/release-state.js';
import type { Argv } from '../../src/plan/shell.js';
import { silentLogger } from '../../src/util/log.js';
import type { AccessoryData, BranchDatabasePort, ClusterPort, InstallTarget } from '../../src/workflows/cluster-port.js';
import type { Frame, InspectedServiceSpec, JobEnd, JobListing, JobSpec } from '../../src/plan/jobs.js';
import { BRANCH_DATABASE_LABELS, DATABASE_GONE_EXIT, recordFromLabels, SEED_MOUNT } from '../../src/plan/branch-database.js';
import { branchSharedOf } from '../../src/plan/branch-shared.js';
import { openDumpFile } from '../../src/apply/dump-file.js';
import type { DeplConfig } from '../../src/config/schema.js';
import type { SwarmObject } from '../../src/plan/prune.js';
import type { PresentService } from '../../src/plan/install-plan.js';
import type { ServiceSpec } from '../../src/plan/services.js';
import { accessoryServiceName, edgeServiceName } from '../../src/plan/names.js';
import { EDGE_ROLE_LABEL } from '../../src/plan/edge-service.js';
import { ensureClusterEdge } from '../../src/workflows/cluster-edge.js';
import { fakeClusterEdgeHost, fakeEdgeSwarm } from './fake-cluster-edge.js';
import { COPY_EXIT, repointedSpec, VOLUME_MOVE_LABELS } from '../../src/plan/volume-move.js';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/**
 * A cluster without Docker, SSH or nginx, for unit tests of the release workflows (seconds, not minutes):
 * the manager is this machine confined to a temporary folder (state, lock and edge files are real files,
 * the lock's shell lines run in a real `sh`); the edge is an in-process HTTP server standing in for nginx
 * and its Lua router: it loads nginx.conf's settings on a "reload" and reads the routing table depl wrote
 * (src/plan/edge-routing.ts) at request time, reporting both generations at the probe path as the real edge
 * does; the installed versions are a list the test holds, as the swarm's labels would list them.
 *
 * The swarm's replicas are the versions' `replicas` (a scale sets them; the tasks run at once).
 *
 * `killAt` simulates a depl process that dies (SIGKILL) at one step of a change: from that step on every
 * call to the manager fails, so nothing after it runs, the lock's release included.
 */
export type KillPoint = 'after-lock' | 'after-intent' | 'after-config-written' | 'after-reload' | 'before-record' | 'after-step';
export const KILL_POINTS: KillPoint[] = ['after-lock', 'after-intent', 'after-config-written', 'after-reload', 'before-record'];

const execFileAsync = promisify(execFile);

export class Killed extends Error {
  constructor(point: string) {
    super(`depl was killed (${point})`);
  }
}

export interface FakeCluster {
  dir: string;
  app: string;
  domain: string;
  control: ClusterPort;
  /** The versions "the swarm" lists; tests add and remove. */
  versions: InstalledVersion[];
  /** Versions whose health path answers 500. */
  unhealthy: Set<string>;
  /** The spec each service was last put back to (SwarmReplicas.restore), by service name. */
  restoredSpecs: Map<string, Record<string, unknown>>;
  /** The generation the fake edge serves, null before the first reload. */
  served(): string | null;
  /** GET <host><path> through the fake edge. */
  get(host: string, path?: string, cookie?: string): Promise<{ status: number; version: string | null; body: string }>;
  /** A fresh control as a new depl process would build it (a killed one stays dead). */
  freshControl(): ClusterPort;
  /** Arms a kill at `point` for the next change made through `control`; returns that control. */
  killAt(point: KillPoint): ClusterPort;
  /**
   * The certificate authority of `depl tls renew` on the fake cluster (ClusterPort.tls): issues a self-signed
   * certificate valid `certificateDays` from now into the real store under the fake's folder (through the
   * store's own code, so the lock's fence guards it), and refuses the ids in `refuseIssue`.
   */
  tlsStore: TlsStore;
  certificateDays: number;
  refuseIssue: Set<string>;
  /** Ids the fake CA issued, in order. */
  issuedIds: string[];
  /** When set, `nginx -t` fails with this message. */
  rejectConfig: string | null;
  /** When true, the edge keeps the routing it has and ignores the file (a stuck edge): changes time out. */
  frozen: boolean;
  /** buildinst's slice (ClusterPort.install): what it made, and what the test makes fail. */
  swarm: FakeSwarm;
  /**
   * A configuration generation nginx accepts (`nginx -t`) but cannot load: on a reload the edge keeps the
   * configuration it runs (as nginx does when, say, a new listen address cannot be bound).
   */
  unloadable: string | null;
  close(): Promise<void>;
  /**
   * A control whose process dies when `kill()` is called (a plan's `afterStep` calls it): from then on every call
   * to the manager fails, the lock's release included, as after a SIGKILL between two steps.
   */
  killable(): { control: ClusterPort; kill: () => never };
  /** What `depl prune` reads besides services (the port's `leftovers`): image tags by node, jobs, configs and secrets. */
  leftovers: FakeLeftovers;
  /** Accessories with data (the port's `accessoryData`: depl backup and restore), by name; tests add them. */
  accessories: Map<string, FakeAccessory>;
  /** The swarm's nodes and their state (the port's `nodes`: depl wake waits for all Ready); tests set them. */
  nodeStates: Map<string, string>;
}

export interface FakeLeftovers {
  images: Record<string, string[]>;
  jobs: JobListing[];
  /** `usedBy` as created; the listing leaves out services the swarm no longer has, as the real one would. */
  objects: SwarmObject[];
}

// ---- buildinst's slice of the port (ClusterPort.install) on the fake cluster ----

/** Images, swarm objects and non-version services as buildinst makes them; version services live in `versions`. */
export interface FakeSwarm {
  /** Tag -> image id of what was built. */
  images: Map<string, string>;
  /** Image -> nodes it was distributed to ('all' or names). */
  distributed: Map<string, string>;
  configs: Map<string, string>;
  secrets: Map<string, string>;
  /** Every service's spec as last created or updated (version services and accessories). */
  specs: Map<string, Record<string, unknown>>;
  /** Accessories (and other non-version services) by name. */
  accessories: Map<string, PresentService>;
  /** Services whose tasks keep failing under their current spec: waiting for them fails until an earlier spec is put back. */
  failing: Set<string>;
  /** The apps' edge services by name, once their buildinst ensured them (one per app; a shared swarm has several). */
  edges: Map<string, PresentService>;
  /** Every call, in order (`create-service shop-v3-web`...). */
  calls: string[];
  // ---- one-off jobs (InstallTarget.runJob: the release phase) ----
  /** Every job run, by name, with the spec it was given (its config and secret ids as the swarm got them). */
  jobs: Map<string, Record<string, unknown>>;
  /** How the next jobs end: their command's exit code and output, or still running when their timeout runs out. */
  jobOutcome: { exitCode: number; output: string } | { timedOut: true; output: string };
  /** Version networks by name, with their labels. */
  networks: Map<string, Record<string, string>>;
  // ---- branch databases (src/plan/branch-database.ts): records are secrets with labels, jobs act on a fake server ----
  /** The labels each secret was created with. */
  secretLabels: Map<string, Record<string, string>>;
  /**
   * The database server's branch databases, as the jobs (by their `depl.branch-database.action` label) leave
   * them; Redis slots under `redis:<number or prefix>`. `seedFile`: what a seed file mounted in the create job held.
   */
  databases: Map<string, { seeded: boolean; seedFile?: string }>;
  /** Redis slots (`redis:3`, `redis:depl-branch:x:`) that hold keys no record accounts for: a create job that must find them empty fails. */
  occupiedRedis: Set<string>;
  /**
   * Branch database jobs that fail (exit 1), by action; a failing `create` has made the database before it
   * fails (what a seed that breaks halfway leaves), so the caller must drop it again.
   */
  failDatabaseJobs: Set<'create' | 'drop' | 'dump'>;
  // ---- named volumes on the nodes (src/plan/volume-move.ts moves one into its app-scoped name) ----
  /** Volumes by name: the node whose engine has it and its files (path -> content). */
  volumes: Map<string, FakeVolume>;
  /** Nodes whose engine cannot be reached: what they hold is not listed. */
  unreachableNodes: Set<string>;
  /** The next volume copy job finds its copy different from the volume (exit 4), as a disk that fills up would. */
  corruptNextCopy: boolean;
}

export interface FakeVolume {
  node: string;
  files: Map<string, string>;
}

/**
 * `depl prune`'s branch database port on the fake cluster: the records are the swarm's labelled secrets, the
 * accessory's spec the one buildinst created, jobs act on `swarm.databases`, dumps go to `backupDir`.
 */
export function fakeBranchDatabases(fake: FakeCluster, config: DeplConfig, backupDir: string): BranchDatabasePort {
  const target = fake.freshControl().install!;
  return {
    backupDir,
    async found() {
      return (await target.branchDatabases()).map((record) => {
        const spec = fake.swarm.specs.get(accessoryServiceName(fake.app, record.accessory)) as InspectedServiceSpec | undefined;
        return { record, shared: branchSharedOf(config, record.accessory), accessorySpec: spec ?? null };
      });
    },
    runJob: (spec, options) => target.runJob(spec, options),
    removeRecord: (name) => target.removeSecret(name),
    openDump: openDumpFile,
  };
}

/** A branch database job on the fake server: what its action does to `swarm.databases`, and how it ends. */
function fakeDatabaseJob(swarm: FakeSwarm, spec: JobSpec, action: 'create' | 'drop' | 'dump', write: (frame: Frame) => void): JobEnd {
  const redis = spec.Labels[BRANCH_DATABASE_LABELS.redis] !== undefined;
  const database = `${redis ? 'redis:' : ''}${spec.Labels[BRANCH_DATABASE_LABELS.database]!}`;
  const exited = (exitCode: number): JobEnd => ({ kind: 'ended', progress: { kind: 'exited', exitCode } });
  const script = spec.TaskTemplate.ContainerSpec.Args.join(' ');
  if (redis && action === 'create') {
    // the job only checks (a slot with keys of no record fails it, when the script asks for an empty one); the record comes after it
    if (swarm.failDatabaseJobs.has('create') || (swarm.occupiedRedis.has(database) && script.includes('no depl record accounts for'))) {
      write({ stream: 2, payload: Buffer.from(`${database} holds 3 keys that no depl record accounts for\n`) });
      return exited(5);
    }
    if (!swarm.databases.has(database)) swarm.databases.set(database, { seeded: false });
    return exited(0);
  }
  if (action === 'create') {
    // a seed file is bind-mounted from the manager: the job reads it there, so it must be there when the job runs
    const seedMount = (spec.TaskTemplate.ContainerSpec as { Mounts?: { Source: string; Target: string }[] }).Mounts?.find((m) => m.Target === SEED_MOUNT);
    const seedFile = seedMount === undefined ? undefined : readFileSync(seedMount.Source, 'utf8');
    swarm.databases.set(database, {
      seeded: swarm.databases.get(database)?.seeded ?? (script.includes('pg_dump --schema-only') || seedFile !== undefined),
      ...(seedFile !== undefined ? { seedFile } : {}),
    });
    if (swarm.failDatabaseJobs.has('create')) {
      write({ stream: 2, payload: Buffer.from('psql: ERROR:  relation "users" already exists\n') });
      return exited(1);
    }
    return exited(0);
  }
  if (swarm.failDatabaseJobs.has(action)) {
    write({ stream: 2, payload: Buffer.from(`${action} failed: connection refused\n`) });
    return exited(1);
  }
  if (action === 'dump') {
    if (!swarm.databases.has(database)) return exited(DATABASE_GONE_EXIT);
    write({ stream: 1, payload: Buffer.from(`-- dump of ${database}\n`) });
    return exited(0);
  }
  swarm.databases.delete(database);
  return exited(0);
}

/** The named volumes a spec mounts. */
function fakeMounts(spec: Record<string, unknown>): string[] {
  const mounts = (spec as { TaskTemplate?: { ContainerSpec?: { Mounts?: { Type: string; Source?: string }[] } } }).TaskTemplate?.ContainerSpec?.Mounts ?? [];
  return mounts.filter((m) => m.Type === 'volume' && m.Source !== undefined).map((m) => m.Source!);
}

/**
 * A volume copy job (src/plan/volume-move.ts) on the fake node: it runs only where its placement pins it and
 * where that node has the volume; the new volume is made on that node, emptied, filled and compared, as the
 * job's script does (a new volume with files refuses when the script asks for an empty one).
 */
function fakeVolumeCopy(swarm: FakeSwarm, spec: JobSpec, write: (frame: Frame) => void): JobEnd {
  const from = spec.Labels[VOLUME_MOVE_LABELS.from]!;
  const to = spec.Labels[VOLUME_MOVE_LABELS.to]!;
  const node = (spec.TaskTemplate.Placement?.Constraints ?? []).map((c) => /^node\.hostname==(.+)$/.exec(c)?.[1]).find((n) => n !== undefined);
  const source = swarm.volumes.get(from);
  if (node === undefined || swarm.unreachableNodes.has(node)) return { kind: 'not-started', detail: `no node ${node ?? '(none)'} to run on` };
  if (source === undefined || source.node !== node) {
    // docker would make an empty one: the job copies nothing and says so
    write({ stream: 2, payload: Buffer.from(`${from} is not on ${node}\n`) });
    return { kind: 'ended', progress: { kind: 'exited', exitCode: 1 } };
  }
  const target = swarm.volumes.get(to) ?? { node, files: new Map<string, string>() };
  swarm.volumes.set(to, target);
  const script = spec.TaskTemplate.ContainerSpec.Args.join(' ');
  if (script.includes('not overwritten') && target.files.size > 0) {
    write({ stream: 2, payload: Buffer.from('the new volume already holds files: not overwritten\n') });
    return { kind: 'ended', progress: { kind: 'exited', exitCode: COPY_EXIT.targetNotEmpty } };
  }
  target.files = new Map(source.files);
  if (swarm.corruptNextCopy) {
    swarm.corruptNextCopy = false;
    target.files.set([...target.files.keys()][0] ?? 'x', 'truncated');
    write({ stream: 2, payload: Buffer.from('the copy differs from the volume:\n') });
    return { kind: 'ended', progress: { kind: 'exited', exitCode: COPY_EXIT.differs } };
  }
  write({ stream: 1, payload: Buffer.from(`copied and verified: ${source.files.size} entries\n`) });
  return { kind: 'ended', progress: { kind: 'exited', exitCode: 0 } };
}

/**
 * The cluster's edge made on the fake swarm's edges and networks by the real workflow, through the cluster edge's fake
 * host (test/support/fake-cluster-edge.ts): an app's own edge (depl.app label) is an earlier edge to take over. What
 * it did is written back to the swarm however it ended (a failed or killed run leaves what it did).
 */
async function ensureFakeClusterEdge(swarm: FakeSwarm, app: string, manager: { remote: Remote; stateRoot: string }): Promise<void> {
  const view = fakeEdgeSwarm();
  const appOf = (s: PresentService) => s.labels['depl.app'];
  for (const [name, s] of swarm.edges) view.edges.set(name, { ...(appOf(s) !== undefined ? { app: appOf(s)! } : {}), networks: appOf(s) !== undefined ? [`${appOf(s)!}-net`] : [] });
  for (const name of swarm.networks.keys()) view.networks.add(name);
  view.calls = swarm.calls;
  try {
    await ensureClusterEdge(fakeClusterEdgeHost(view, manager.remote, manager.stateRoot), manager.remote, { image: 'depl-edge:fake', https: false, command: `depl buildinst (app ${app})`, root: manager.stateRoot }, silentLogger);
  } finally {
    for (const name of [...swarm.edges.keys()]) if (!view.edges.has(name)) swarm.edges.delete(name);
    for (const [name, edge] of view.edges) {
      if (!swarm.edges.has(name)) swarm.edges.set(name, { name, labels: { ...(edge.app !== undefined ? { 'depl.app': edge.app } : {}), [EDGE_ROLE_LABEL]: 'edge' }, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image: 'depl-edge:fake' });
    }
    for (const name of view.networks) if (!swarm.networks.has(name)) swarm.networks.set(name, { [EDGE_ROLE_LABEL]: 'edge' });
  }
}

function installOn(app: string, versions: InstalledVersion[], swarm: FakeSwarm, site: () => EdgeSite, get: FakeCluster['get'], repair: () => ClusterPort, manager: { remote: Remote; stateRoot: string }): InstallTarget {
  const labelsOf = (v: InstalledVersion, name: string): Record<string, string> => {
    const spec = swarm.specs.get(name) as { Labels?: Record<string, string> } | undefined;
    if (spec?.Labels !== undefined) return spec.Labels;
    const service = name.slice(`${v.services[0]?.split('-')[0] ?? ''}-${v.label}-`.length);
    return {
      'depl.app': name.split('-')[0]!, 'depl.version': v.label, 'depl.service': service, 'depl.http': String(v.http?.service === name),
      ...(v.http?.service === name ? { 'depl.port': String(v.http.port), ...(v.http.health !== undefined ? { 'depl.health': v.http.health } : {}) } : {}),
    };
  };
  // the install tests kill the applier between steps (applyPlan's afterStep), so no call here goes through the
  // manager: that keeps a fake buildinst to the shell lines the lock, the intent and the edge need
  const record = async (call: string) => {
    swarm.calls.push(call);
  };
  const put = (spec: ServiceSpec) => {
    swarm.specs.set(spec.Name, spec as unknown as Record<string, unknown>);
    const label = spec.Labels['depl.version'];
    if (label === undefined) {
      swarm.accessories.set(spec.Name, { name: spec.Name, labels: spec.Labels, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image: spec.TaskTemplate.ContainerSpec.Image });
      return;
    }
    let version = versions.find((v) => v.label === label);
    if (version === undefined) {
      // the branch from the services' labels, as the swarm's listing gives it (src/plan/releases.ts)
      const branch = spec.Labels['depl.branch'];
      version = { label, createdAt: new Date().toISOString(), services: [], replicas: {}, ...(branch !== undefined ? { branch } : {}) };
      versions.push(version);
    }
    if (!version.services.includes(spec.Name)) version.services = [...version.services, spec.Name].sort();
    version.replicas = { ...version.replicas, [spec.Name]: spec.Mode.Replicated.Replicas };
    if (spec.Labels['depl.http'] === 'true') version.http = { service: spec.Name, port: Number(spec.Labels['depl.port']), ...(spec.Labels['depl.health'] !== undefined ? { health: spec.Labels['depl.health'] } : {}) };
  };
  const remove = (name: string) => {
    swarm.specs.delete(name);
    swarm.accessories.delete(name);
    for (const v of [...versions]) {
      v.services = v.services.filter((s) => s !== name);
      if (v.services.length === 0) versions.splice(versions.indexOf(v), 1);
    }
  };
  // the named volumes a service's spec mounts, as the swarm's listing gives them (src/apply/swarm.ts listServices)
  const volumesOf = (name: string): { volumes?: string[] } => {
    const mounts = (swarm.specs.get(name) as { TaskTemplate?: { ContainerSpec?: { Mounts?: { Type: string; Source?: string }[] } } } | undefined)?.TaskTemplate?.ContainerSpec?.Mounts;
    return mounts === undefined ? {} : { volumes: mounts.filter((m) => m.Type === 'volume' && m.Source !== undefined).map((m) => m.Source!) };
  };
  const present = (): PresentService[] => [
    ...versions.flatMap((v) => v.services.map((name) => ({ name, labels: labelsOf(v, name), createdAt: v.createdAt, replicas: v.replicas?.[name] ?? 1, image: String((swarm.specs.get(name) as { TaskTemplate?: { ContainerSpec?: { Image?: string } } } | undefined)?.TaskTemplate?.ContainerSpec?.Image ?? ''), ...volumesOf(name) }))),
    // the swarm lists the app's services by its depl.app label: another app's accessories on a shared swarm are not its
    ...[...swarm.accessories.values()].filter((s) => s.labels['depl.app'] === app).map((s) => ({ ...s, ...volumesOf(s.name) })),
  ];
  return {
    appServices: async () => present(),
    servicesNamed: async (names) => [...swarm.accessories.values()].filter((s) => names.includes(s.name)),
    edgesOfOtherApps: async () => [...swarm.edges.values()].filter((s) => s.labels['depl.app'] !== app),
    async earlierSpecs(names) {
      return names.map((name) => ({ name, spec: swarm.specs.get(name) ?? { Name: name, Labels: labelsOf(versions.find((v) => v.services.includes(name))!, name) } }));
    },
    repairPort: async () => ({ port: repair(), edgeRunning: true }),
    async ensureEdge(edge) {
      if (edge.cluster) {
        // the cluster's edge made, and the apps' own edges taken over, by the real workflow on this swarm's edges (the
        // fake's HTTP edge stays the app's own: it does not route several apps)
        await record('ensure-cluster-edge');
        await ensureFakeClusterEdge(swarm, app, manager);
        return site();
      }
      await record('ensure-edge');
      const own = edgeServiceName(app);
      swarm.edges.set(own, { name: own, labels: { 'depl.app': app, [EDGE_ROLE_LABEL]: 'edge' }, createdAt: '2026-12-01T00:00:00Z', replicas: 1, image: 'depl-edge:fake' });
      return site();
    },
    async buildImage(build) {
      await record(`build-image ${build.tag}`);
      const id = `sha256:${createHash('sha256').update(build.tag).digest('hex')}`;
      swarm.images.set(build.tag, id);
      return id;
    },
    async distributeImage(image, nodes) {
      await record(`distribute-image ${image}`);
      swarm.distributed.set(image, nodes === 'all' ? 'all' : nodes.join(','));
      return `loaded on ${nodes === 'all' ? 'every' : nodes.length} node(s)`;
    },
    async ensureConfig(doc) {
      await record(`ensure-config ${doc.name}`);
      swarm.configs.set(doc.name, swarm.configs.get(doc.name) ?? `config-${swarm.configs.size + 1}`);
      return { id: swarm.configs.get(doc.name)!, name: doc.name };
    },
    async ensureSecret(doc) {
      await record(`ensure-secret ${doc.name}`);
      if (!swarm.secrets.has(doc.name)) swarm.secretLabels.set(doc.name, { ...doc.labels });
      swarm.secrets.set(doc.name, swarm.secrets.get(doc.name) ?? `secret-${swarm.secrets.size + 1}`);
      return { id: swarm.secrets.get(doc.name)!, name: doc.name };
    },
    async branchDatabases() {
      return [...swarm.secretLabels].flatMap(([name, labels]) => (swarm.secrets.has(name) ? recordFromLabels(name, labels) ?? [] : []));
    },
    async removeSecret(name) {
      await record(`remove-secret ${name}`);
      swarm.secrets.delete(name);
      swarm.secretLabels.delete(name);
    },
    async ensureAutoscalerImage() {
      await record('ensure-autoscaler-image');
      return 'depl-autoscaler:fake';
    },
    async createService(spec) {
      await record(`create-service ${spec.Name}`);
      if (swarm.specs.has(spec.Name) || swarm.accessories.has(spec.Name) || present().some((s) => s.name === spec.Name)) throw new Error(`service ${spec.Name} already exists`);
      put(spec);
    },
    async updateService(spec) {
      await record(`update-service ${spec.Name}`);
      put(spec);
    },
    async removeService(name) {
      await record(`remove-service ${name}`);
      remove(name);
    },
    async restoreServices(services) {
      await record(`restore-services ${services.map((s) => s.name).join(',')}`);
      for (const { name, spec } of services) {
        put(spec as unknown as ServiceSpec);
        // `failing` stands for the spec that failed: the earlier one put back ran before, and runs again
        swarm.failing.delete(name);
      }
    },
    taskIds: async (services) => new Set(services.map((s) => `${s}.1`)),
    async awaitServices(specs) {
      await record(`await-tasks ${specs.map((s) => s.Name).join(',')}`);
      const failed = specs.find((s) => swarm.failing.has(s.Name));
      if (failed !== undefined) throw new OperationError(`${failed.Name}: task failed: exit 3`, undefined, 'TASKS_FAILED');
    },
    async healthy(host, path) {
      const answer = await get(host, path);
      return answer.status === 200 ? { ok: true, last: '200' } : { ok: false, last: String(answer.status) };
    },
    logTail: async () => '',
    issueCertificates: async () => ({ tlsWithheld: [] }),
    renewalTask: async (mode) => (mode === 'remove' ? undefined : 'created'),
    async runJob(spec, options) {
      await record(`run-job ${spec.Name}`);
      const container = spec.TaskTemplate.ContainerSpec as { Configs?: { ConfigID: string }[]; Secrets?: { SecretID: string }[] };
      // the swarm refuses a mount without an id, as it would a spec whose objects were never made
      if ([...(container.Configs ?? []).map((c) => c.ConfigID), ...(container.Secrets ?? []).map((c) => c.SecretID)].includes('')) throw new Error(`${spec.Name}: a config or secret without an id`);
      swarm.jobs.set(spec.Name, spec as unknown as Record<string, unknown>);
      const action = spec.Labels[BRANCH_DATABASE_LABELS.action];
      if (action !== undefined) return fakeDatabaseJob(swarm, spec, action as 'create' | 'drop' | 'dump', options.write);
      if (spec.Labels[VOLUME_MOVE_LABELS.from] !== undefined) return fakeVolumeCopy(swarm, spec, options.write);
      const outcome = swarm.jobOutcome;
      if (outcome.output !== '') options.write({ stream: 1, payload: Buffer.from(outcome.output) });
      return 'timedOut' in outcome ? { kind: 'timed-out' } : { kind: 'ended', progress: { kind: 'exited', exitCode: outcome.exitCode } };
    },
    // -- version networks and the stateful takeover: replicas are the versions' as the swarm lists them --
    async ensureNetwork(name, labels) {
      await record(`ensure-network ${name}`);
      swarm.networks.set(name, labels);
    },
    async removeNetwork(name) {
      await record(`remove-network ${name}`);
      swarm.networks.delete(name);
    },
    async stopServices(services) {
      await record(`stop-services ${services.join(',')}`);
      for (const v of versions) for (const name of services) if (v.services.includes(name)) v.replicas = { ...v.replicas, [name]: 0 };
      for (const name of services) {
        const accessory = swarm.accessories.get(name);
        if (accessory !== undefined) swarm.accessories.set(name, { ...accessory, replicas: 0 });
      }
    },
    async startServices(targets) {
      await record(`start-services ${targets.map((t) => `${t.service}=${t.replicas}`).join(',')}`);
      for (const v of versions) for (const t of targets) if (v.services.includes(t.service)) v.replicas = { ...v.replicas, [t.service]: t.replicas };
      for (const t of targets) {
        const accessory = swarm.accessories.get(t.service);
        if (accessory !== undefined) swarm.accessories.set(t.service, { ...accessory, replicas: t.replicas });
      }
    },
    volumes: {
      async mounting(names) {
        // this app's services as listed, and every other app's on the shared swarm (their specs say what they mount)
        const others = [...swarm.specs.entries()].filter(([, spec]) => (spec.Labels as Record<string, string> | undefined)?.['depl.app'] !== app).map(([name, spec]): PresentService => ({
          name, labels: (spec.Labels ?? {}) as Record<string, string>, createdAt: '2026-12-01T00:00:00Z', image: '',
          replicas: swarm.accessories.get(name)?.replicas ?? (spec as { Mode?: { Replicated?: { Replicas?: number } } }).Mode?.Replicated?.Replicas ?? 1, volumes: fakeMounts(spec),
        }));
        return [...present(), ...others].filter((s) => (s.volumes ?? []).some((v) => names.includes(v)));
      },
      async locate(names) {
        await record(`locate-volumes ${names.join(',')}`);
        return Object.fromEntries(names.map((name) => {
          const volume = swarm.volumes.get(name);
          const reachable = volume !== undefined && !swarm.unreachableNodes.has(volume.node);
          return [name, { nodes: reachable ? [volume.node] : [], unreachable: [...swarm.unreachableNodes].sort() }];
        }));
      },
      async awaitFree(node, volume) {
        await record(`await-volume-free ${node} ${volume}`);
      },
      async repoint(services, from, to) {
        await record(`repoint ${services.join(',')} ${from}->${to}`);
        for (const name of services) {
          const spec = swarm.specs.get(name);
          if (spec !== undefined) swarm.specs.set(name, repointedSpec(spec, from, to));
        }
      },
      async remove(node, name) {
        await record(`remove-volume ${node} ${name}`);
        const volume = swarm.volumes.get(name);
        if (volume === undefined || volume.node !== node) return { removed: true };
        const users = [...swarm.specs.entries()].filter(([, spec]) => fakeMounts(spec).includes(name)).map(([service]) => service);
        if (users.length > 0) return { removed: false, reason: `volume is in use - [${users.join(', ')}]` };
        swarm.volumes.delete(name);
        return { removed: true };
      },
    },
  };
}

// ---- backup and restore's slice of the port (ClusterPort.accessoryData) on the fake cluster ----

/** An accessory of the fake swarm with a volume; a Redis one also holds keys in memory. */
export interface FakeAccessory {
  image: string;
  node: string;
  /** Wanted replicas: 0 once stopped. */
  replicas: number;
  paused: boolean;
  /** Its task exited (it could not load its files): it does not run although wanted. */
  crashed: boolean;
  /** Where its volume is mounted, and the volume's files under that mount point (folders end in `/`). */
  target: string;
  files: Map<string, Buffer>;
  /** The named volume its service mounts, as the swarm lists it (absent: the swarm does not say). */
  volume?: string;
  /** A Redis: its keys in memory, loaded from its files when it starts and written to them by BGSAVE and on stop. */
  redis?: { version: string; aof: boolean; keys: Record<string, string>; saves: number };
}

/** The fake's RDB: the real magic and version, then the keys as JSON. */
export function fakeRdb(keys: Record<string, string>): Buffer {
  return Buffer.concat([Buffer.from('REDIS0011'), Buffer.from(JSON.stringify(keys))]);
}

function parseFakeRdb(bytes: Buffer): Record<string, string> | null {
  if (bytes.subarray(0, 9).toString() !== 'REDIS0011') return null;
  try {
    return JSON.parse(bytes.subarray(9).toString()) as Record<string, string>;
  } catch {
    return null;
  }
}

/** The file a fake Redis loads at start: the AOF's base when AOF is on (Redis >= 7), else dump.rdb. */
const redisDataFile = (redis: NonNullable<FakeAccessory['redis']>) => (redis.aof ? 'appendonlydir/appendonly.aof.1.base.rdb' : 'dump.rdb');

function persistRedis(accessory: FakeAccessory): void {
  const redis = accessory.redis!;
  accessory.files.set('dump.rdb', fakeRdb(redis.keys));
  if (redis.aof) {
    accessory.files.set('appendonlydir/', Buffer.alloc(0));
    accessory.files.set(redisDataFile(redis), fakeRdb(redis.keys));
    accessory.files.set('appendonlydir/appendonly.aof.manifest', Buffer.from('file appendonly.aof.1.base.rdb seq 1 type b\n'));
  }
}

function fakeAccessoryData(remote: Remote, dir: string, app: string, versions: InstalledVersion[], accessories: Map<string, FakeAccessory>): AccessoryData {
  // every call goes through the manager first, so a killed control fails from then on (a file read: no process to spawn)
  const alive = () => remote.readFile(`${dir}/accessories.alive`);
  const get = async (name: string): Promise<FakeAccessory> => {
    await alive();
    const accessory = accessories.get(name);
    if (accessory === undefined) throw new OperationError(`no accessory ${name} on the fake swarm`, undefined, 'ACCESSORY_MISSING');
    return accessory;
  };
  const running = async (name: string) => {
    const accessory = await get(name);
    if (accessory.replicas === 0 || accessory.crashed) throw new OperationError(`accessory ${name} has no running task`, undefined, 'ACCESSORY_NOT_RUNNING');
    return accessory;
  };
  const answering = async (name: string) => {
    const accessory = await running(name);
    if (accessory.paused) throw new OperationError(`cannot exec in ${name}: container is paused, unpause the container before exec`, undefined, 'REDIS_COMMAND');
    if (accessory.redis === undefined) throw new OperationError(`${name} is not Redis`, undefined, 'REDIS_COMMAND');
    return { accessory, redis: accessory.redis };
  };
  const relative = (accessory: FakeAccessory, file: string) => path.posix.relative(accessory.target, file);
  return {
    async place(name) {
      await alive();
      const accessory = accessories.get(name);
      if (accessory === undefined) return null;
      return { image: accessory.image, node: accessory.node, running: accessory.replicas > 0 && !accessory.crashed, paused: accessory.paused, ...(accessory.volume !== undefined ? { volume: accessory.volume } : {}) };
    },
    async appServices() {
      await alive();
      return [
        ...versions.flatMap((v) => v.services.map((name) => ({ name, labels: { 'depl.app': app, 'depl.version': v.label }, replicas: v.replicas?.[name] ?? 1 }))),
        ...[...accessories.entries()].map(([name, a]) => ({ name: accessoryServiceName(app, name), labels: { 'depl.app': app, 'depl.accessory': name }, replicas: a.replicas })),
      ];
    },
    async redis(name, args) {
      const { accessory, redis } = await answering(name);
      const [command, sub] = args;
      if (command === 'INFO') {
        return [
          '# Server', `redis_version:${redis.version}`, 'loading:0',
          '# Persistence', 'rdb_bgsave_in_progress:0', `rdb_saves:${redis.saves}`, 'rdb_last_bgsave_status:ok', `aof_enabled:${redis.aof ? 1 : 0}`,
          '# Keyspace', ...(Object.keys(redis.keys).length > 0 ? [`db0:keys=${Object.keys(redis.keys).length},expires=0,avg_ttl=0`] : []),
        ].join('\n') + '\n';
      }
      if (command === 'CONFIG' && sub === 'GET') {
        return ['dir', accessory.target, 'dbfilename', 'dump.rdb', 'appendonly', redis.aof ? 'yes' : 'no', 'appendfilename', 'appendonly.aof', 'appenddirname', 'appendonlydir'].join('\n') + '\n';
      }
      if (command === 'BGSAVE') {
        accessory.files.set('dump.rdb', fakeRdb(redis.keys));
        redis.saves += 1;
        return 'Background saving started\n';
      }
      throw new OperationError(`the fake Redis does not know ${args.join(' ')}`, undefined, 'REDIS_COMMAND');
    },
    async pause(name) {
      (await running(name)).paused = true;
    },
    async resume(name) {
      (await running(name)).paused = false;
    },
    async stop(name) {
      const accessory = await get(name);
      // Redis saves its data when it is stopped gracefully
      if (accessory.redis !== undefined && accessory.replicas > 0 && !accessory.crashed) persistRedis(accessory);
      Object.assign(accessory, { replicas: 0, paused: false, crashed: false });
    },
    async start(name) {
      const accessory = await get(name);
      accessory.replicas = 1;
      const redis = accessory.redis;
      if (redis === undefined) return;
      const file = accessory.files.get(redisDataFile(redis));
      const keys = file === undefined ? {} : parseFakeRdb(file);
      accessory.crashed = keys === null;
      if (keys === null) throw new OperationError(`${name}: task failed: Bad file format reading the append only file`, undefined, 'TASKS_FAILED');
      redis.keys = keys;
    },
    async readFile(name, file) {
      const accessory = await running(name);
      const bytes = accessory.files.get(relative(accessory, file));
      if (bytes === undefined) throw new OperationError(`cannot copy ${file} out of the container: no such file`, undefined, 'DOCKER_ARCHIVE');
      return Readable.from([bytes]);
    },
    async withVolume(name, node, fn) {
      const accessory = await get(name);
      if (node !== accessory.node) throw new OperationError(`volume of ${name} is on ${accessory.node}, not ${node}`, undefined, 'DOCKER_API');
      const base = path.posix.basename(accessory.target);
      return fn({
        async read() {
          await alive();
          const pack = tar.pack();
          pack.entry({ name: `${base}/`, type: 'directory', mode: 0o755, uid: 999, gid: 999 });
          for (const [name, bytes] of [...accessory.files.entries()].sort(([a], [b]) => a.localeCompare(b))) {
            if (name.endsWith('/')) pack.entry({ name: `${base}/${name}`, type: 'directory', mode: 0o755, uid: 999, gid: 999 });
            else pack.entry({ name: `${base}/${name}`, type: 'file', mode: 0o644, uid: 999, gid: 999 }, bytes);
          }
          pack.finalize();
          return pack;
        },
        async empty() {
          await alive();
          accessory.files.clear();
        },
        async write(at, archive) {
          await alive();
          const extract = tar.extract();
          const written = new Map<string, Buffer>();
          extract.on('entry', (header, stream, next) => {
            const chunks: Buffer[] = [];
            stream.on('data', (c: Buffer) => chunks.push(c));
            stream.on('end', () => {
              const rel = relative(accessory, path.posix.join(at, header.name));
              if (rel.startsWith('..')) return next(new Error(`${header.name} is outside the volume`));
              if (rel !== '') written.set(header.type === 'directory' ? `${rel.replace(/\/$/, '')}/` : rel, Buffer.concat(chunks));
              next();
            });
          });
          await pipeline(archive, extract);
          for (const [name, bytes] of written) accessory.files.set(name, bytes);
        },
      });
    },
  };
}

export function fakeVersion(app: string, label: string, createdAt: string): InstalledVersion {
  return {
    label, createdAt, services: [`${app}-${label}-web`, `${app}-${label}-worker`], http: { service: `${app}-${label}-web`, port: 8080, health: '/healthz' },
    replicas: { [`${app}-${label}-web`]: 1, [`${app}-${label}-worker`]: 1 },
  };
}

/**
 * `swarm`: another fake cluster's swarm, shared (a second app with its own depl.yaml on the same cluster): its
 * objects and accessories are one set, each app lists its own by their depl.app label. `stateRoot`: another fake
 * cluster's state root (`control.stateRoot`), shared as the manager's /var/lib/depl is: each app's release state,
 * lock, intents and certificates under its own folder there.
 */
export async function startFakeCluster(options: { app?: string; domain?: string; versions?: string[]; swarm?: FakeSwarm; stateRoot?: string } = {}): Promise<FakeCluster> {
  const app = options.app ?? 'shop';
  const domain = options.domain ?? 'shop.test';
  const dir = await mkdtemp(path.join(tmpdir(), 'depl-fake-'));
  const stateRoot = options.stateRoot ?? `${dir}/state`;
  const edgeDir = `${dir}/edge`;
  const local = new SpawnerRemote();
  let loaded: string | null = null;
  let routing: RoutingSeen | null = null;
  let reloadMark = -1;
  const state = { rejectConfig: null as string | null, frozen: false, unloadable: null as string | null };
  const unhealthy = new Set<string>();
  const restoredSpecs = new Map<string, Record<string, unknown>>();
  const leftovers: FakeLeftovers = { images: {}, jobs: [], objects: [] };

  const reloadFile = `${edgeDir}/.reloaded`;
  /**
   * nginx loads its configuration file when signalled (the fake: lazily, on its next request); the routing
   * table is read at request time (the Lua edge polls it and re-reads it when asked), unless frozen.
   */
  async function current(): Promise<{ config: string | null; routing: RoutingSeen | null }> {
    // each reload appends a line: the file's size counts them (an mtime can repeat within the clock's ~4 ms tick)
    const mark = await stat(reloadFile).then((s) => s.size, () => -1);
    if (mark !== reloadMark) {
      reloadMark = mark;
      const file = await local.readFile(`${edgeDir}/nginx.conf`);
      if (file === null || state.unloadable === null || generationOf(file) !== state.unloadable) loaded = file;
    }
    if (!state.frozen) routing = parseRouting(await local.readFile(`${edgeDir}/routing`)) ?? routing;
    return { config: loaded, routing };
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const { config, routing: table } = await current();
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (host === PROBE_HOST && req.url === CONFIG_PROBE_PATH && config !== null) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${generationOf(config)} ${table?.generation ?? 'none'}\n`);
        return;
      }
      const route = table === null ? null : routeOf(table, host, cookieOf(req.headers.cookie));
      if (route === null) {
        res.writeHead(404).end();
        return;
      }
      // nginx with no task behind the upstream (the http service scaled to 0): 502, from no version
      const served = versions.find((v) => v.label === route);
      if (served?.http !== undefined && served.replicas?.[served.http.service] === 0) {
        res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>502 Bad Gateway</h1>');
        return;
      }
      const status = req.url?.startsWith('/healthz') && unhealthy.has(route) ? 500 : 200;
      res.writeHead(status, { 'content-type': 'application/json', [VERSION_HEADER]: route }).end(JSON.stringify({ version: route, path: req.url }));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const render: NginxRenderOptions = {
    listen: { port, address: '127.0.0.1' },
    paths: {
      pid: `${edgeDir}/nginx.pid`, accessLog: `${edgeDir}/logs/access.log`, errorLog: `${edgeDir}/logs/error.log`, temp: `${edgeDir}/tmp`,
      routing: `${edgeDir}/routing`, modules: `${edgeDir}/modules`,
    },
    workerProcesses: 1,
  };
  const versions: InstalledVersion[] = (options.versions ?? ['v1', 'v2']).map((label, i) => fakeVersion(app, label, `2026-11-2${i}T00:00:00Z`));
  // As buildinst leaves it: every installed version served at its own host, nothing live yet.
  // the test's own setup, not depl's: written in-process (a process per file would be most of a short case)
  await mkdir(`${edgeDir}/logs`, { recursive: true });
  await local.writeFileAtomic(`${edgeDir}/nginx.conf`, renderNginxConfig({ app }, render));
  await local.writeFileAtomic(`${edgeDir}/routing`, renderRoutingTable(routingFor(emptyReleaseState(app), app, domain, versions)).text);
  await writeFile(reloadFile, 'started\n');

  const site = (remote: Remote): EdgeSite => ({
    remote,
    dir: edgeDir,
    // `nginx -t`: the file must be one depl rendered, unless the test makes nginx reject it.
    nginx: (args) => state.rejectConfig !== null
      ? ['sh', '-c', 'echo "$1" >&2; exit 1', 'sh', state.rejectConfig]
      : ['sh', '-c', 'grep -q "^# generation " "$1"', 'sh', String(args[args.length - 1])],
    // one shell and no sleep: the edge loads the new settings on its next request, as after a real reload
    reload: ['sh', '-c', 'echo reload >> "$1"', 'sh', reloadFile],
    // No worker listing: the fake switches at once; an empty list means no old worker still accepts.
    processes: ['true'],
    render,
    reloadTimeoutMs: 1_000,
    url: `http://127.0.0.1:${port}`,
  });

  // ---- certificates (ClusterPort.tls) ----
  const tlsState = { certificateDays: 90, refuseIssue: new Set<string>(), issuedIds: [] as string[] };
  const tlsStoreOn = (remote: Remote): TlsStore => ({ remote, accountDir: tlsStateDir(app, stateRoot), edgeDir });
  const fakeIssuer = (store: TlsStore): CertificateIssuer => ({
    async issue(spec) {
      if (tlsState.refuseIssue.has(spec.id)) throw new OperationError(`the fake CA refuses ${spec.names.join(', ')}`, 'Let the fake CA issue it (refuseIssue).', 'ACME_FAILED');
      await installCertificate(store, spec.id, await selfSignedCertificate(dir, spec.names, tlsState.certificateDays));
      tlsState.issuedIds.push(spec.id);
    },
  });

  const swarm: FakeSwarm = options.swarm ?? { images: new Map(), distributed: new Map(), configs: new Map(), secrets: new Map(), specs: new Map(), accessories: new Map(), failing: new Set(), edges: new Map(), calls: [],
    jobs: new Map(), jobOutcome: { exitCode: 0, output: '' }, networks: new Map(), secretLabels: new Map(), databases: new Map(), failDatabaseJobs: new Set(), occupiedRedis: new Set(),
    volumes: new Map(), unreachableNodes: new Set(), corruptNextCopy: false };
  const accessories = new Map<string, FakeAccessory>();
  const nodeStates = new Map<string, string>();
  const makeControl = (remote: Remote): ClusterPort => ({
    accessoryData: fakeAccessoryData(remote, dir, app, versions, accessories),
    nodes: {
      async list() {
        await remote.exec(['true']);
        return [...nodeStates.entries()].map(([name, state]) => ({ name, state }));
      },
    },
    install: installOn(app, versions, swarm, () => site(remote), (host, urlPath) => fake.get(host, urlPath), () => makeControl(remote), { remote, stateRoot }),
    app, domain, site: site(remote), stateRemote: remote, stateRoot, healthPath: '/healthz', log: silentLogger,
    installed: async () => versions.map((v) => ({ ...v, replicas: { ...v.replicas } })),
    by: 'ops@test',
    tls: { store: tlsStoreOn(remote), issuerFor: async (store) => fakeIssuer(store) },
    // services an earlier depl installed (tests put their specs in swarm.specs), installed again as depl plans them
    upgrades: {
      async specs() {
        await remote.exec(['true']);
        return [...swarm.specs.entries()].filter(([, spec]) => (spec.Labels as Record<string, string> | undefined)?.['depl.app'] === app).map(([name, spec]) => ({ name, spec }));
      },
      async renewer(upgrade) {
        await remote.exec(['true']);
        const spec = planRenewerService({ settings: upgrade.settings, image: upgrade.image, script: `${renewerCodeDir(app)}/renewer-fake.mjs`, scriptHash: 'fake', ...(upgrade.dnsSecret !== undefined ? { dnsSecret: upgrade.dnsSecret } : {}) });
        swarm.calls.push(`install-renewal-task ${spec.Name}`);
        swarm.specs.set(spec.Name, spec as unknown as Record<string, unknown>);
      },
      async controllerImage(version) {
        await remote.exec(['true']);
        swarm.calls.push(`ensure-autoscaler-image ${version}`);
        return 'depl-autoscaler:fake';
      },
      async put(spec) {
        await remote.exec(['true']);
        swarm.calls.push(`${swarm.specs.has(spec.Name) ? 'update' : 'create'}-service ${spec.Name}`);
        swarm.specs.set(spec.Name, spec as unknown as Record<string, unknown>);
      },
      async stop(service) {
        await remote.exec(['true']);
        const spec = swarm.specs.get(service);
        if (spec === undefined) throw new Error(`no such service: ${service}`);
        swarm.calls.push(`stop-service ${service}`);
        swarm.specs.set(service, { ...spec, Mode: { Replicated: { Replicas: 0 } } });
      },
    },
    swarm: {
      async scale(targets) {
        await remote.exec(['true']);
        for (const t of targets) {
          const version = versions.find((v) => v.services.includes(t.service));
          if (version === undefined) throw new Error(`no such service: ${t.service}`);
          version.replicas = { ...version.replicas, [t.service]: t.replicas };
        }
      },
      async tasks(services) {
        const result: Record<string, { running: number; desired: number }> = {};
        // a service whose tasks keep failing (swarm.failing) runs none of them
        for (const v of versions) for (const [name, n] of Object.entries(v.replicas ?? {})) if (services.includes(name)) result[name] = { running: swarm.failing.has(name) ? 0 : n, desired: n };
        return result;
      },
      async restore(services) {
        await remote.exec(['true']);
        for (const { name, spec } of services) {
          // the spec's labels say which version the service is part of, as the swarm's listing reads them
          const label = (spec.Labels as Record<string, string> | undefined)?.['depl.version'];
          const version = versions.find((v) => v.label === label);
          if (version === undefined) throw new Error(`no version ${label} for ${name}`);
          if (!version.services.includes(name)) version.services = [...version.services, name].sort();
          restoredSpecs.set(name, spec);
        }
      },
      async remove(services) {
        await remote.exec(['true']);
        for (const name of services) swarm.specs.delete(name);
        for (const v of [...versions]) {
          v.services = v.services.filter((s) => !services.includes(s));
          // as the swarm's labels list them: a version none of whose services is left is not installed
          if (v.services.length === 0) versions.splice(versions.indexOf(v), 1);
        }
      },
    },
    leftovers: {
      async imageTags() {
        await remote.exec(['true']);
        return Object.fromEntries(Object.entries(leftovers.images).map(([node, tags]) => [node, [...tags]]));
      },
      async removeImageTags(node, tags) {
        await remote.exec(['true']);
        leftovers.images[node] = (leftovers.images[node] ?? []).filter((t) => !tags.includes(t));
      },
      async jobs() {
        await remote.exec(['true']);
        return leftovers.jobs.map((j) => ({ ...j }));
      },
      async removeJobs(names) {
        await remote.exec(['true']);
        leftovers.jobs = leftovers.jobs.filter((j) => !names.includes(j.name));
      },
      async configs() {
        await remote.exec(['true']);
        const services = new Set(versions.flatMap((v) => v.services));
        return leftovers.objects.map((o) => ({ ...o, usedBy: o.usedBy.filter((s) => services.has(s)) }));
      },
      async removeConfigs(configs, secrets, networks = []) {
        await remote.exec(['true']);
        const services = new Set(versions.flatMap((v) => v.services));
        const listed = (o: SwarmObject) => (o.kind === 'config' ? configs : o.kind === 'secret' ? secrets : networks).includes(o.name);
        for (const o of leftovers.objects) {
          const named = listed(o);
          // the swarm refuses to remove what a service uses
          if (named && o.usedBy.some((s) => services.has(s))) throw new Error(`${o.kind} ${o.name} is in use`);
        }
        leftovers.objects = leftovers.objects.filter((o) => !listed(o));
      },
    },
  });

  const fake: FakeCluster = {
    dir, app, domain, versions, unhealthy, restoredSpecs, leftovers, swarm, accessories, nodeStates,
    control: makeControl(local),
    served: () => routing?.generation ?? null,
    async get(host, urlPath = '/', cookie) {
      // undici's request, not fetch: fetch does not let a Host header through.
      const response = await request(`http://127.0.0.1:${port}${urlPath}`, { headers: { host, ...(cookie !== undefined ? { cookie: `${CANARY_COOKIE}=${cookie}` } : {}) } });
      const version = response.headers[VERSION_HEADER.toLowerCase()];
      return { status: response.statusCode, version: typeof version === 'string' ? version : null, body: await response.body.text() };
    },
    freshControl: () => makeControl(local),
    tlsStore: tlsStoreOn(local),
    get certificateDays() { return tlsState.certificateDays; },
    set certificateDays(value) { tlsState.certificateDays = value; },
    refuseIssue: tlsState.refuseIssue,
    issuedIds: tlsState.issuedIds,
    killAt: (point) => makeControl(new DyingRemote(local, point)),
    killable() {
      const remote = new DyingRemote(local, 'after-step');
      return { control: makeControl(remote), kill: () => remote.kill() };
    },
    get rejectConfig() { return state.rejectConfig; },
    set rejectConfig(value) { state.rejectConfig = value; },
    get frozen() { return state.frozen; },
    set frozen(value) { state.frozen = value; },
    get unloadable() { return state.unloadable; },
    set unloadable(value) { state.unloadable = value; },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fake;
}

/**
 * A self-signed certificate for `names`, valid from when it was first made for `days` (openssl, as the other
 * TLS unit tests make theirs). The fake CA makes one per names and days in a test process: making an EC key
 * is most of a fake issuance's time on a busy machine.
 */
const madeCertificates = new Map<string, Promise<{ chain: string; key: string }>>();
function selfSignedCertificate(dir: string, names: readonly string[], days: number): Promise<{ chain: string; key: string }> {
  const key = `${names.join(',')}|${days}`;
  let made = madeCertificates.get(key);
  if (made === undefined) {
    made = makeSelfSigned(dir, names, days);
    madeCertificates.set(key, made);
    made.catch(() => madeCertificates.delete(key));
  }
  return made;
}

async function makeSelfSigned(dir: string, names: readonly string[], days: number): Promise<{ chain: string; key: string }> {
  const work = await mkdtemp(path.join(dir, 'ca-'));
  try {
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', String(days),
      '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`], { cwd: work });
    return { chain: await readFile(path.join(work, 'cert.pem'), 'utf8'), key: await readFile(path.join(work, 'key.pem'), 'utf8') };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function cookieOf(header: string | undefined): string | null {
  const match = new RegExp(`(?:^|;\\s*)${CANARY_COOKIE}=([^;]+)`).exec(header ?? '');
  return match?.[1] ?? null;
}

function generationOf(config: string): string {
  return /^# generation (\S+)$/m.exec(config)?.[1] ?? '(none)';
}

interface RoutingSeen {
  generation: string;
  domain: string;
  live?: string;
  canary?: { version: string; weight: number };
  versions: Set<string>;
}

/** The routing table (src/plan/edge-routing.ts) as the edge reads it; null when torn (no `end`). */
function parseRouting(text: string | null): RoutingSeen | null {
  if (text === null || !/^end$/m.test(text)) return null;
  const seen: RoutingSeen = { generation: '', domain: '', versions: new Set() };
  for (const line of text.split('\n')) {
    const [key, a, b] = line.split(' ');
    if (key === 'generation') seen.generation = a!;
    else if (key === 'domain') seen.domain = a!;
    else if (key === 'live') seen.live = a!;
    else if (key === 'canary') seen.canary = { version: a!, weight: Number(b) };
    else if (key === 'version') seen.versions.add(a!);
  }
  return seen;
}

/** Which version a request for `host` goes to, as the edge routes it. */
function routeOf(table: RoutingSeen, host: string, client: string | null): string | null {
  if (host === table.domain) {
    if (table.live === undefined) return null;
    if (table.canary === undefined || client === null) return table.live;
    let hash = 0;
    for (const char of client) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
    return (hash % 10_000) / 100 < table.canary.weight ? table.canary.version : table.live;
  }
  const label = host.endsWith(`.${table.domain}`) ? host.slice(0, -table.domain.length - 1) : null;
  return label !== null && table.versions.has(label) ? label : null;
}

/** The manager as a process that dies at one step sees it: that step and everything after fails. */
class DyingRemote implements Remote {
  readonly name = 'fake-manager';
  private dead = false;
  constructor(private readonly inner: Remote, private readonly point: KillPoint) {}

  private die(): never {
    this.dead = true;
    throw new Killed(this.point);
  }

  /** The process dies now (between two steps of a plan). */
  kill(): never {
    return this.die();
  }

  private alive(): void {
    if (this.dead) throw new Killed(this.point);
  }

  async exec(argv: Argv, options?: ExecOptions): Promise<ExecResult> {
    this.alive();
    const result = await this.inner.exec(argv, options);
    // the lock's acquisition (its holder's JSON is the lock script's second argument) read the release state with it
    if (this.point === 'after-lock' && argv[3] === 'depl-lock' && argv[5]?.startsWith('{') === true && /^(acquired|taken-over) /.test(result.stdout)) this.die();
    return result;
  }

  async shell(line: string, options?: ExecOptions): Promise<ExecResult> {
    this.alive();
    // a write of the release document under the lock's fence (src/apply/fenced-remote.ts) is a shell line
    if (/\/release\.json'?$/.test(line)) return this.stateWrite(String(options?.stdin ?? ''), () => this.inner.shell(line, options));
    // The intent written by the routing table's own command (src/plan/stdin-files.ts), and depl dies while the
    // table's bytes are still on their way: the command gets the intent's bytes only, and must leave the table.
    const intentBytes = /release\.json/.test(line) && line.includes('/routing.next') ? Number(/ bs=(\d+) /.exec(line)?.[1]) : NaN;
    if (this.point === 'after-intent' && Number.isInteger(intentBytes)) {
      await this.inner.shell(line, { ...options, check: false, stdin: Buffer.from(options?.stdin as Buffer | string).subarray(0, intentBytes) });
      this.die();
    }
    const result = await this.inner.shell(line, options);
    // The routing table is written (the edge may already read it); depl dies before it hears the edge confirm.
    if (line.includes('/routing.next') && this.point === 'after-config-written') this.die();
    return result;
  }

  async writeFileAtomic(file: string, content: string | Buffer, mode?: number): Promise<void> {
    this.alive();
    if (!file.endsWith('/release.json')) return this.inner.writeFileAtomic(file, content, mode);
    await this.stateWrite(String(content), () => this.inner.writeFileAtomic(file, content, mode));
  }

  private async stateWrite<T>(content: string, write: () => Promise<T>): Promise<T> {
    const pending = JSON.parse(content).pending !== null;
    // Nothing touches the manager between the edge's confirmation and the commit: both points are here.
    if (!pending && (this.point === 'before-record' || this.point === 'after-reload')) this.die();
    const result = await write();
    if (pending && this.point === 'after-intent') this.die();
    return result;
  }

  async readFile(file: string): Promise<string | null> {
    this.alive();
    if (file.endsWith('/release.json') && this.point === 'after-lock') this.die();
    return this.inner.readFile(file);
  }

  async close(): Promise<void> {}
}
