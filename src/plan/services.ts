import { createHash } from 'node:crypto';
import type { AccessoryConfig, DeplConfig, ServiceConfig } from '../config/schema.js';
import { accessoryAliases, accessoryServiceName, serviceName, volumeNameOf } from './names.js';
import { poolConstraints, poolsOf } from './pool-placement.js';
import { secretVersion, swarmSecretName } from './secrets.js';
import type { Secret } from '../util/secret.js';

/**
 * Swarm service specs (the Docker Engine API's ServiceSpec, as data) for one version of the app and for its
 * accessories. Endpoint mode is dnsrr everywhere: the kernels this runs on may lack IPVS, so swarm VIPs and
 * the routing mesh cannot be relied on; nginx resolves the tasks through Docker's DNS instead.
 */

/**
 * Where every service finds its config document: a file mounted as a swarm config, named by environment
 * variables, so the image's own command runs untouched (as `docker run IMAGE` runs it). Only a service with
 * `configArg: true` (the crawler) is also started with `--config <CONFIG_URL>`.
 */
export const CONFIG_PATH = '/run/depl/config.json';
export const CONFIG_URL = `file://${CONFIG_PATH}`;
export const CONFIG_ENV = { DEPL_CONFIG_FILE: CONFIG_PATH, DEPL_CONFIG_URL: CONFIG_URL } as const;

/** What a version's tasks are told about their release: its version id and the id of the image they run. */
export const RELEASE_ENV = { version: 'DEPL_VERSION', imageId: 'DEPL_IMAGE_ID' } as const;

/**
 * The container's arguments: depl.yaml's `command:` as written (it replaces the image's CMD, the ENTRYPOINT
 * stays), plus `--config <url>` when the service asks for it. Neither: no arguments, so the image's CMD runs.
 */
export function serviceArgs(svc: Pick<ServiceConfig, 'command' | 'configArg'>): string[] | undefined {
  const args = [...(svc.command ?? []), ...(svc.configArg ? ['--config', CONFIG_URL] : [])];
  return args.length > 0 ? args : undefined;
}

/** The config document's variables, then the service's own env (which may override them). */
export function serviceEnv(env: Record<string, string>): string[] {
  return Object.entries({ ...CONFIG_ENV, ...env }).map(([k, v]) => `${k}=${v}`);
}

export const LABELS = {
  app: 'depl.app',
  version: 'depl.version',
  service: 'depl.service',
  branch: 'depl.branch',
  port: 'depl.port',
  http: 'depl.http',
  health: 'depl.health',
  accessory: 'depl.accessory',
  config: 'depl.config',
  /** On the container spec: the image id, so a rebuilt image under the same tag (a branch) replaces tasks. */
  imageId: 'depl.image-id',
  /** On a swarm secret: its name in depl.yaml. */
  secret: 'depl.secret',
  /** On a swarm config holding one of the project's files: its content hash. */
  file: 'depl.file',
  /** On an accessory: the swarm secrets it mounts, so a rotated one is noticed and the accessory updated. */
  secrets: 'depl.secrets',
  /** On an autoscaled service: its bounds, `min-max`; its replicas belong to the version's autoscaler. */
  autoscale: 'depl.autoscale',
  /**
   * On a version's service of an app whose services all consume queues (no `http: true`): its replicas while the
   * version is live. Only the live version's consumers run (src/plan/consumers.ts); the others are kept at 0.
   */
  replicas: 'depl.replicas',
  /** On a stateful version service: the named volume it holds, which one version at a time runs. */
  volume: 'depl.volume',
} as const;

export interface SwarmConfigRef {
  id: string;
  name: string;
}

/** A swarm secret as created: its id and its versioned swarm name (`<app>-<name>-<version>`). */
export interface SwarmSecretRef {
  id: string;
  name: string;
}

/** Swarm secrets to ensure: one per declared secret, named after its value's version (they are immutable). */
export interface SecretDocument {
  /** The name in depl.yaml, and the file name under /run/secrets. */
  secret: string;
  /** The swarm secret's name. */
  name: string;
  data: Secret;
  labels: Record<string, string>;
}

export function planSecrets(app: string, values: readonly { name: string; value: Secret }[]): SecretDocument[] {
  return values.map(({ name, value }) => ({
    secret: name,
    name: swarmSecretName(app, name, secretVersion(app, name, value.reveal())),
    data: value,
    labels: { [LABELS.app]: app, [LABELS.secret]: name },
  }));
}

export type SecretMount = { File: { Name: string; UID: string; GID: string; Mode: number }; SecretID: string; SecretName: string };

/**
 * Mounts at /run/secrets/<name> (tmpfs, only in the services that list the secret), or at the path the
 * service's `secretPaths` gives (a compose target: a file name under /run/secrets, or an absolute path; swarm
 * takes either as the file's Name). Mode 0444 as Docker's default: images run as any user (the crawler's as
 * nobody), and the container is the boundary.
 */
export function secretMounts(names: readonly string[], refs: Record<string, SwarmSecretRef>, owner: string, paths: Record<string, string> = {}): SecretMount[] {
  return names.map((name) => {
    const ref = refs[name];
    if (ref === undefined) throw new Error(`no swarm secret planned for ${name} (used by ${owner})`);
    return { File: { Name: paths[name] ?? name, UID: '0', GID: '0', Mode: 0o444 }, SecretID: ref.id, SecretName: ref.name };
  });
}

type ConfigMount = { File: { Name: string; UID: string; GID: string; Mode: number }; ConfigID: string; ConfigName: string };

/** One file of the project as read by buildinst: where it is mounted, and its bytes. */
export interface ProjectFile {
  /** The service or accessory that mounts it. */
  owner: string;
  /** Its absolute path in the container. */
  target: string;
  data: Buffer;
}

/** A project file's swarm config: named after its content, so a changed file is a new config and a rollback keeps the old one. */
export function projectFileDocument(app: string, file: ProjectFile): Omit<ConfigDocument, 'data'> & { data: Buffer } {
  const hash = createHash('sha256').update(file.data).digest('hex').slice(0, 16);
  return { name: `${app}-file-${hash}`, data: file.data, labels: { [LABELS.app]: app, [LABELS.file]: hash } };
}

/** Read-only mounts of the owner's project files, by target path. */
export function fileMounts(owner: string, refs: readonly ProjectFileRef[]): ConfigMount[] {
  return refs
    .filter((ref) => ref.owner === owner)
    .sort((a, b) => a.target.localeCompare(b.target))
    .map((ref) => ({ File: { Name: ref.target, UID: '0', GID: '0', Mode: 0o444 }, ConfigID: ref.id, ConfigName: ref.name }));
}

/** A project file's swarm config as created. */
export interface ProjectFileRef extends SwarmConfigRef {
  owner: string;
  target: string;
}

type ContainerOptions = Pick<ServiceConfig, 'entrypoint' | 'user' | 'workdir' | 'stopSignal' | 'resources'>;

/** Compose's keys that swarm expresses one to one: entrypoint, user, working directory. */
function containerOptions(o: ContainerOptions): Pick<ServiceSpec['TaskTemplate']['ContainerSpec'], 'Command' | 'User' | 'Dir'> {
  return {
    ...(o.entrypoint !== undefined ? { Command: [...o.entrypoint] } : {}),
    ...(o.user !== undefined ? { User: o.user } : {}),
    ...(o.workdir !== undefined ? { Dir: o.workdir } : {}),
  };
}

/** `512m` -> 536870912 (compose's units: b, k, m, g; powers of 1024). */
export function memoryBytes(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([bkmg]?)$/.exec(text);
  if (!match) throw new Error(`not a size: ${text}`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2] as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.round(Number(match[1]) * unit);
}

type ResourceAmount = NonNullable<NonNullable<ServiceConfig['resources']>['limits']>;
const amount = (a: ResourceAmount) => ({
  ...(a.cpus !== undefined ? { NanoCPUs: Math.round(a.cpus * 1e9) } : {}),
  ...(a.memory !== undefined ? { MemoryBytes: memoryBytes(a.memory) } : {}),
});

function taskResources(resources: ServiceConfig['resources']): Pick<ServiceSpec['TaskTemplate'], 'Resources'> {
  if (resources === undefined) return {};
  return {
    Resources: {
      ...(resources.limits !== undefined ? { Limits: amount(resources.limits) } : {}),
      ...(resources.reservations !== undefined ? { Reservations: amount(resources.reservations) } : {}),
    },
  };
}
/** A subset of the Engine API's ServiceSpec: only the fields depl sets. */
export interface ServiceSpec {
  Name: string;
  Labels: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: {
      Image: string;
      /** Replaces the image's entrypoint. */
      Command?: string[];
      Args?: string[];
      Env?: string[];
      Labels?: Record<string, string>;
      StopGracePeriod: number;
      StopSignal: string;
      User?: string;
      Dir?: string;
      Configs?: ConfigMount[];
      Secrets?: SecretMount[];
      Mounts?: { Type: 'volume' | 'bind' | 'tmpfs'; Source?: string; Target: string; ReadOnly?: boolean; VolumeOptions?: { Labels: Record<string, string> }; TmpfsOptions?: { SizeBytes: number; Mode: number } }[];
      /** The container's root file system read-only (what it writes goes to its mounts). */
      ReadOnly?: boolean;
      HealthCheck?: { Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number };
    };
    RestartPolicy: { Condition: 'none' | 'on-failure' | 'any'; Delay: number; MaxAttempts: number; Window: number };
    Placement?: { Constraints?: string[]; MaxReplicas?: number };
    Resources?: { Limits?: { NanoCPUs?: number; MemoryBytes?: number }; Reservations?: { NanoCPUs?: number; MemoryBytes?: number } };
    Networks: { Target: string; Aliases?: string[] }[];
  };
  Mode: { Replicated: { Replicas: number } };
  UpdateConfig: UpdatePolicy;
  RollbackConfig: UpdatePolicy;
  /** dnsrr everywhere; published ports only in host mode (no routing mesh), as the edge does. */
  EndpointSpec: { Mode: 'dnsrr'; Ports?: { Protocol: 'tcp'; TargetPort: number; PublishedPort: number; PublishMode: 'host' }[] };
}

export interface UpdatePolicy {
  Parallelism: number;
  Delay: number;
  FailureAction: 'pause' | 'continue' | 'rollback';
  Monitor: number;
  Order: 'start-first' | 'stop-first';
}

export interface ConfigDocument {
  /** Swarm config names are immutable: the name carries the content hash, so a new content is a new config. */
  name: string;
  data: string;
  labels: Record<string, string>;
}

const NS_PER_MS = 1_000_000;
const seconds = (s: number) => s * 1000 * NS_PER_MS;

/** `15s`, `500ms`, `2m` (as the schema allows) -> nanoseconds, the Engine API's unit. */
export function durationNs(text: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  const n = Number(match[1]);
  const ms = match[2] === 'ms' ? n : match[2] === 's' ? n * 1000 : n * 60_000;
  return ms * NS_PER_MS;
}

/**
 * start-first (new task up before the old one stops) is what makes an update lose nothing, but it needs a free
 * slot: with at most `maxPerNode` tasks per node and every slot taken, the new task stays Pending forever.
 */
export function updateOrder(replicas: number, nodes: number, maxPerNode?: number): 'start-first' | 'stop-first' {
  if (maxPerNode === undefined || maxPerNode === 0) return 'start-first';
  return replicas >= maxPerNode * nodes ? 'stop-first' : 'start-first';
}

export function configDocument(config: DeplConfig): ConfigDocument {
  const data = JSON.stringify(config.config, null, 2) + '\n';
  const hash = createHash('sha256').update(data).digest('hex').slice(0, 12);
  return { name: `${config.app}-config-${hash}`, data, labels: { [LABELS.app]: config.app, [LABELS.config]: hash } };
}

export interface VersionServicesInput {
  config: DeplConfig;
  version: string;
  /** Service name -> image reference (from planImages). */
  images: Record<string, string>;
  /** Service name -> id of the image built for it, when depl built it. */
  imageIds?: Record<string, string>;
  network: string;
  configRef: SwarmConfigRef;
  /** Secret name in depl.yaml -> the swarm secret holding its current value. */
  secrets?: Record<string, SwarmSecretRef>;
  nodes: number;
  /** Set for a per-branch staging deploy (the name as given; its label is src/plan/names.ts branchLabel). */
  branch?: string;
  /** The app's scale recorded by `depl scale` (release state): replicas by service name, over depl.yaml's. */
  scale?: Record<string, number>;
  /** depl.yaml's volume name -> the volume on the cluster (src/plan/volume-names.ts); absent: app-scoped names. */
  volumeNames?: Readonly<Record<string, string>>;
  /** The services' project files (depl.yaml's `files:`) as swarm configs. */
  files?: readonly ProjectFileRef[];
  /**
   * The version's own network (src/plan/names.ts versionNetworkName): each service joins it with its depl.yaml
   * name as an alias, so the version's services reach each other as compose named them (`backend:8000`).
   */
  versionNetwork?: string;
  /** The cluster edge's network (src/plan/cluster-edge.ts), which the http services join so that depl_edge reaches them. */
  edgeNetwork?: string;
}

/**
 * A service's networks: the app's (the edge and the accessories, by their names) and the version's own, where
 * the service answers to its depl.yaml name. Aliases are per network: another version's `backend` is on
 * another network, which this version's tasks are not on.
 */
export function serviceNetworks(network: string, versionNetwork: string | undefined, name: string, aliases: readonly string[] = []): ServiceSpec['TaskTemplate']['Networks'] {
  return [{ Target: network }, ...(versionNetwork !== undefined ? [{ Target: versionNetwork, Aliases: [name, ...aliases] }] : [])];
}

/** A stateful service's volume mount (the volume labelled with its app and service when swarm creates it). */
function volumeMounts(name: string, volume: string, labels: Record<string, string>): NonNullable<ServiceSpec['TaskTemplate']['ContainerSpec']['Mounts']> {
  return [{ Type: 'volume', Source: name, Target: parseVolume(volume).target, VolumeOptions: { Labels: labels } }];
}

export function planVersionServices(input: VersionServicesInput): ServiceSpec[] {
  const { config, version } = input;
  return Object.entries(config.services).map(([name, svc]) => {
    const image = input.images[name];
    if (image === undefined) throw new Error(`no image planned for service ${name}`);
    // an autoscaled service starts with depl.yaml's replicas within its bounds; its controller takes it from there.
    // Any other service starts at the app's scale (depl scale), else depl.yaml's replicas.
    const autoscaled = config.autoscale[name];
    // a service with a volume runs one task: two would share its data files
    const stateful = svc.volume !== undefined;
    // the volume on the cluster: the label tells versions apart that hold the same one (the stateful takeover)
    const volumeName = svc.volume !== undefined ? volumeNameOf(config.app, parseVolume(svc.volume).source, input.volumeNames) : undefined;
    const replicas = stateful ? 1 : autoscaled === undefined ? input.scale?.[name] ?? svc.replicas : Math.min(autoscaled.max, Math.max(autoscaled.min, svc.replicas));
    const labels: Record<string, string> = {
      [LABELS.app]: config.app,
      [LABELS.version]: version,
      [LABELS.service]: name,
      [LABELS.http]: String(svc.http),
      ...(svc.port !== undefined ? { [LABELS.port]: String(svc.port) } : {}),
      ...(svc.health !== undefined ? { [LABELS.health]: svc.health } : {}),
      ...(input.branch !== undefined ? { [LABELS.branch]: input.branch } : {}),
      ...(autoscaled !== undefined ? { [LABELS.autoscale]: `${autoscaled.min}-${autoscaled.max}` } : {}),
      ...(volumeName !== undefined ? { [LABELS.volume]: volumeName } : {}),
    };
    // stop-first for a service with a volume: its one task lets go of the data files before the next starts
    const order = stateful ? 'stop-first' : updateOrder(replicas, input.nodes);
    const args = serviceArgs(svc);
    return {
      Name: serviceName(config.app, version, name),
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          ...containerOptions(svc),
          ...(args !== undefined ? { Args: args } : {}),
          // the release a task belongs to, for what it records about itself (the crawler's provenance); its
          // image id is added once the build made it (resolveSpec in install-plan)
          Env: serviceEnv({ [RELEASE_ENV.version]: version, ...svc.env }),
          Labels: {
            [LABELS.app]: config.app, [LABELS.version]: version, [LABELS.service]: name,
            ...(input.imageIds?.[name] !== undefined ? { [LABELS.imageId]: input.imageIds[name] } : {}),
          },
          StopGracePeriod: durationNs(svc.stopGracePeriod),
          StopSignal: svc.stopSignal ?? 'SIGTERM',
          ...(svc.healthcheck !== undefined ? { HealthCheck: containerHealthCheck(svc.healthcheck) } : {}),
          Configs: [{
            File: { Name: CONFIG_PATH, UID: '0', GID: '0', Mode: 0o444 },
            ConfigID: input.configRef.id,
            ConfigName: input.configRef.name,
          }, ...fileMounts(name, input.files ?? [])],
          ...(svc.secrets.length > 0 ? { Secrets: secretMounts(svc.secrets, input.secrets ?? {}, name, svc.secretPaths) } : {}),
          ...(svc.volume !== undefined && volumeName !== undefined ? { Mounts: volumeMounts(volumeName, svc.volume, { [LABELS.app]: config.app, [LABELS.service]: name }) } : {}),
        },
        RestartPolicy: { Condition: 'any', Delay: seconds(3), MaxAttempts: 0, Window: 0 },
        // pinned where its volume is: a named volume lives on one node
        // and kept on its pool, or off every pool (src/plan/pools.ts)
        ...placement([...(svc.volume !== undefined ? [placementConstraint(svc.node ?? 'manager')] : []), ...poolConstraints(poolsOf(config), name)]),
        ...taskResources(svc.resources),
        Networks: [...serviceNetworks(input.network, input.versionNetwork, name, svc.aliases), ...(svc.http && input.edgeNetwork !== undefined ? [{ Target: input.edgeNetwork }] : [])],
      },
      Mode: { Replicated: { Replicas: replicas } },
      UpdateConfig: { Parallelism: 1, Delay: seconds(1), FailureAction: 'rollback', Monitor: seconds(10), Order: order },
      RollbackConfig: { Parallelism: 1, Delay: 0, FailureAction: 'pause', Monitor: seconds(5), Order: order },
      EndpointSpec: { Mode: 'dnsrr' },
    };
  });
}

type InspectedSpec = { TaskTemplate?: { ContainerSpec?: { Image?: string; Labels?: Record<string, string> } } };

/**
 * A service's spec as inspected, to be put back after a failed branch redeploy, with its image pinned to the
 * image its tasks ran. A branch's image tag (`<app>/<service>:<label>`) moves to every new build, so the earlier
 * spec's tag would start the new, failed image again; `image` is a reference that cannot move (an image id, or
 * the registry's digest of it). Without a recorded image id (an image from depl.yaml's `image:`) the spec is
 * kept as it is: depl did not build that image, and a redeploy does not change it.
 */
export function pinnedSpec(spec: Record<string, unknown>, image: (id: string) => string | undefined): Record<string, unknown> {
  const container = (spec as InspectedSpec).TaskTemplate?.ContainerSpec;
  const id = container?.Labels?.[LABELS.imageId];
  const pinned = id === undefined ? undefined : image(id);
  if (pinned === undefined || pinned === container?.Image) return spec;
  const template = spec.TaskTemplate as Record<string, unknown>;
  return { ...spec, TaskTemplate: { ...template, ContainerSpec: { ...(template.ContainerSpec as Record<string, unknown>), Image: pinned } } };
}

/** The image id a spec's tasks run, when depl built the image (the container label). */
export function specImageId(spec: Record<string, unknown>): string | undefined {
  return (spec as InspectedSpec).TaskTemplate?.ContainerSpec?.Labels?.[LABELS.imageId];
}

function placement(constraints: string[]): { Placement?: { Constraints: string[] } } {
  return constraints.length > 0 ? { Placement: { Constraints: constraints } } : {};
}

/** `node: manager` pins to the (first) manager; any other value is a node's hostname. */
export function placementConstraint(node: string): string {
  return node === 'manager' ? 'node.role==manager' : `node.hostname==${node}`;
}

/**
 * An accessory (Redis) outlives versions: its service is `<app>-<accessory>` (two apps on one cluster each have
 * their own `redis`) with the accessory's name as an alias on the app's network, so `redis://redis:6379` resolves
 * to this app's Redis; it is pinned to one node so its named volume stays with it, and it is
 * updated stop-first so two instances never share one append-only file.
 */
export function planAccessory(
  app: string, name: string, accessory: AccessoryConfig, image: string, network: string, secrets: Record<string, SwarmSecretRef> = {}, files: readonly ProjectFileRef[] = [],
  volumeNames?: Readonly<Record<string, string>>,
): ServiceSpec {
  const mounts = secretMounts(accessory.secrets, secrets, name, accessory.secretPaths);
  const configs = fileMounts(name, files);
  const labels: Record<string, string> = { [LABELS.app]: app, [LABELS.accessory]: name };
  const serviceLabels = mounts.length > 0 ? { ...labels, [LABELS.secrets]: accessorySecretsLabel(mounts.map((m) => m.SecretName)) } : labels;
  const volume = accessory.volume !== undefined ? parseVolume(accessory.volume) : undefined;
  const policy: UpdatePolicy = { Parallelism: 1, Delay: 0, FailureAction: 'pause', Monitor: seconds(5), Order: 'stop-first' };
  return {
    Name: accessoryServiceName(app, name),
    Labels: serviceLabels,
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        ...containerOptions(accessory),
        ...(accessory.command !== undefined ? { Args: [...accessory.command] } : {}),
        ...(Object.keys(accessory.env).length > 0 ? { Env: Object.entries(accessory.env).map(([k, v]) => `${k}=${v}`) } : {}),
        // A first start (initdb, loading an append-only file) may take a while: failures then do not count.
        ...(accessory.health !== undefined
          ? { HealthCheck: containerHealthCheck({ ...accessory.health, startPeriod: accessory.health.startPeriod }) }
          : {}),
        Labels: labels,
        ...(mounts.length > 0 ? { Secrets: mounts } : {}),
        ...(configs.length > 0 ? { Configs: configs } : {}),
        StopGracePeriod: durationNs(accessory.stopGracePeriod),
        StopSignal: accessory.stopSignal ?? 'SIGTERM',
        ...(volume ? { Mounts: [{ Type: 'volume' as const, Source: volumeNameOf(app, volume.source, volumeNames), Target: volume.target, VolumeOptions: { Labels: labels } }] } : {}),
      },
      RestartPolicy: { Condition: 'any', Delay: seconds(3), MaxAttempts: 0, Window: 0 },
      Placement: { Constraints: [placementConstraint(accessory.node)] },
      ...taskResources(accessory.resources),
      // reached by its own name on the app's network (the app's network only: another app's `redis` is not there),
      // and by the names depl.yaml adds (a compose name)
      Networks: [{ Target: network, Aliases: accessoryAliases(name, accessory.aliases) }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: policy,
    RollbackConfig: policy,
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

/** A healthcheck run in the container: `CMD` argv, with its timing (as compose's healthcheck: and Docker's HEALTHCHECK). */
export function containerHealthCheck(h: { command: readonly string[]; interval: string; timeout: string; retries: number; startPeriod: string }): NonNullable<ServiceSpec['TaskTemplate']['ContainerSpec']['HealthCheck']> {
  return { Test: ['CMD', ...h.command], Interval: durationNs(h.interval), Timeout: durationNs(h.timeout), Retries: h.retries, StartPeriod: durationNs(h.startPeriod) };
}

/**
 * The order accessories are created in: each after those it depends on (compose's depends_on between image
 * services), else in depl.yaml's order. A cycle is kept in file order from where it closes.
 */
export function accessoryStartOrder(accessories: Record<string, Pick<AccessoryConfig, 'dependsOn'>>): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name) || visiting.has(name) || !(name in accessories)) return;
    visiting.add(name);
    for (const dep of accessories[name]!.dependsOn) visit(dep);
    order.push(name);
  };
  for (const name of Object.keys(accessories)) visit(name);
  return order;
}

/** The swarm secrets an accessory mounts, as its label: a rotated secret changes it. */
export function accessorySecretsLabel(swarmNames: readonly string[]): string {
  return [...swarmNames].sort().join(',');
}

export function parseVolume(text: string): { source: string; target: string } {
  const at = text.indexOf(':');
  return { source: text.slice(0, at), target: text.slice(at + 1) };
}
