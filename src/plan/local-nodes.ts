/**
 * Local provider, as data: node names, fixed addresses on the cluster's bridge, and the container and
 * network specs the launcher hands to Docker. Pure, so every flag that makes docker-in-docker work
 * without --privileged is pinned by a unit test.
 */

export const LOCAL_LABEL_PREFIX = 'depl.local.prefix';
export const LOCAL_LABEL_NODE = 'depl.local.node';
export const LOCAL_LABEL_INDEX = 'depl.local.index';
/** The project (folder of its depl.yaml) that made a node, its volume and the bridge. */
export const LOCAL_LABEL_PROJECT = 'depl.local.project';

/** Host number of node i (1-based) inside the /24: .11, .12, ... (.1 is the bridge's gateway). */
const FIRST_HOST = 10;

export function localNodeName(index: number): string {
  return `node-${index}`;
}

export function localNodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => localNodeName(i + 1));
}

function subnetBase(subnet: string): string {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(subnet);
  if (!match || match.slice(1).some((part) => Number(part) > 255)) throw new Error(`not an IPv4 /24: ${subnet}`);
  return `${match[1]}.${match[2]}.${match[3]}`;
}

export function localNodeAddress(subnet: string, index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > 200) throw new Error(`node index out of range: ${index}`);
  return `${subnetBase(subnet)}.${FIRST_HOST + index}`;
}

export function localGateway(subnet: string): string {
  return `${subnetBase(subnet)}.1`;
}

/** Names of everything the local provider makes for one cluster, all derived from its prefix. */
export interface LocalNames {
  network: string;
  container(index: number): string;
  volume(index: number): string;
}

export function localNames(prefix: string): LocalNames {
  return {
    network: `${prefix}-net`,
    container: (index) => `${prefix}-node-${index}`,
    volume: (index) => `${prefix}-node-${index}-docker`,
  };
}

/** The default prefix keeps two apps' local clusters on one laptop apart. */
export function defaultLocalPrefix(app: string): string {
  return `depl-${app}`;
}

/** What names this project's local nodes, volumes and bridge: provider.prefix, else depl-<app>. */
export function localPrefixOf(config: { app: string; provider: { prefix?: string } }): string {
  return config.provider.prefix ?? defaultLocalPrefix(config.app);
}

/** A subset of Docker's container-create body (what dockerode's createContainer takes). */
export interface NodeContainerSpec {
  name: string;
  Hostname: string;
  Image: string;
  Env: string[];
  Labels: Record<string, string>;
  StopSignal: string;
  StopTimeout: number;
  HostConfig: {
    CapAdd: string[];
    CapDrop: string[];
    SecurityOpt: string[];
    MaskedPaths: string[];
    ReadonlyPaths: string[];
    DeviceCgroupRules: string[];
    Mounts: { Type: 'volume'; Source: string; Target: string }[];
    Tmpfs: Record<string, string>;
    NetworkMode: string;
    RestartPolicy: { Name: string };
  };
  NetworkingConfig: { EndpointsConfig: Record<string, { IPAMConfig: { IPv4Address: string } }> };
}

export interface NodeContainerInput {
  prefix: string;
  index: number;
  subnet: string;
  image: string;
  /** The cluster's public key, authorised by the node's init at start; never baked into the image. */
  publicKey: string;
  /** The project that makes the node (its depl.yaml folder); another project finding it refuses to use it. */
  project?: string;
}

/** Labels of everything one cluster makes: its prefix, and the project that made it. */
export function localLabels(prefix: string, project?: string): Record<string, string> {
  return project === undefined ? { [LOCAL_LABEL_PREFIX]: prefix } : { [LOCAL_LABEL_PREFIX]: prefix, [LOCAL_LABEL_PROJECT]: project };
}

/**
 * Things of this cluster's prefix made by another project: a second checkout of the same app on one
 * machine finds the first one's nodes, whose keys and swarm are not its own. Unlabelled ones predate the
 * label and count as this project's.
 */
export function foreignProjects(found: { labels: Record<string, string> }[], project: string): string[] {
  const others = found.map((f) => f.labels[LOCAL_LABEL_PROJECT]).filter((p): p is string => p !== undefined && p !== project);
  return [...new Set(others)];
}

export function nodeContainerSpec(input: NodeContainerInput): NodeContainerSpec {
  const names = localNames(input.prefix);
  return {
    name: names.container(input.index),
    Hostname: localNodeName(input.index),
    Image: input.image,
    Env: [`DEPL_AUTHORIZED_KEY=${input.publicKey.trim()}`],
    Labels: {
      ...localLabels(input.prefix, input.project),
      [LOCAL_LABEL_NODE]: localNodeName(input.index),
      [LOCAL_LABEL_INDEX]: String(input.index),
    },
    StopSignal: 'SIGTERM',
    StopTimeout: 10,
    HostConfig: {
      // --privileged is refused on machines whose bounding set lacks CAP_SYS_RESOURCE: grant the rest
      CapAdd: ['ALL'],
      CapDrop: ['SYS_RESOURCE'],
      SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
      // what the CLI's --security-opt systempaths=unconfined means in the API: nothing masked or read-only
      MaskedPaths: [],
      ReadonlyPaths: [],
      DeviceCgroupRules: ['a *:* rwm'],
      // overlay2 cannot sit on the container's own overlay root
      Mounts: [{ Type: 'volume', Source: names.volume(input.index), Target: '/var/lib/docker' }],
      Tmpfs: { '/run': 'rw,exec,mode=755', '/tmp': 'rw,exec,mode=1777' },
      NetworkMode: names.network,
      RestartPolicy: { Name: 'no' },
    },
    NetworkingConfig: { EndpointsConfig: { [names.network]: { IPAMConfig: { IPv4Address: localNodeAddress(input.subnet, input.index) } } } },
  };
}

export interface LocalNetworkSpec {
  Name: string;
  Driver: 'bridge';
  CheckDuplicate: boolean;
  Labels: Record<string, string>;
  IPAM: { Driver: 'default'; Config: { Subnet: string; Gateway: string }[] };
}

export function localNetworkSpec(prefix: string, subnet: string, project?: string): LocalNetworkSpec {
  return {
    Name: localNames(prefix).network,
    Driver: 'bridge',
    CheckDuplicate: true,
    Labels: localLabels(prefix, project),
    IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: localGateway(subnet) }] },
  };
}
