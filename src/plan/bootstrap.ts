import type { Argv } from './shell.js';
import { appNetworkName } from './names.js';

/**
 * Bootstrap of a swarm over SSH, as data (Kamal's commands layer): the commands to run on each node and
 * the decisions taken from what the nodes report. src/workflows/node-up.ts runs them; nothing here
 * connects anywhere, so every decision is unit-tested with the facts a node could report.
 */

export const SWARM_PORT = 2377;

/* Commands are written as root would run them; src/plan/privilege.ts prefixes them for a sudo user. */

export const INSTALL_DOCKER_SCRIPT = `set -e
if command -v docker >/dev/null 2>&1; then
  echo docker=present
else
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Docker is missing and this node has no apt-get: install Docker on it, then re-run" >&2
    exit 3
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
  echo docker=installed
fi
if ! docker info >/dev/null 2>&1; then
  if ! pidof dockerd >/dev/null 2>&1; then
    (systemctl start docker || service docker start) >/dev/null 2>&1 || true
    sleep 1
    if ! pidof dockerd >/dev/null 2>&1; then
      # no init system could start it (e.g. a container without CAP_SYS_RESOURCE): run it directly
      setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
    fi
    echo dockerd=started
  fi
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 90 ]; then echo "dockerd does not answer after 90 s (see its log on the node)" >&2; exit 4; fi
    sleep 1
  done
fi
echo dockerd=ready`;

/** Installs Docker with apt when it is missing (Debian/Ubuntu), and makes sure dockerd answers. */
export function ensureDockerCommand(): Argv {
  return ['sh', '-c', INSTALL_DOCKER_SCRIPT];
}

export interface DockerEnsureOutcome {
  installed: boolean;
  started: boolean;
}

export function parseEnsureDocker(stdout: string): DockerEnsureOutcome {
  return { installed: /^docker=installed$/m.test(stdout), started: /^dockerd=started$/m.test(stdout) };
}

/** The node's swarm state and its hostname (the name the manager's node list shows for it). */
export function swarmInfoCommand(): Argv {
  return ['docker', 'info', '--format', '{"Name":{{json .Name}},"Swarm":{{json .Swarm}}}'];
}

export interface SwarmInfo {
  state: 'inactive' | 'pending' | 'active' | 'error' | 'locked' | string;
  nodeId: string;
  nodeAddr: string;
  isManager: boolean;
  /** The swarm's id; only managers know it. */
  clusterId: string;
  managerAddrs: string[];
  /** The engine's hostname ('' when not reported): the manager lists the node under it. */
  hostname: string;
}

/** swarmInfoCommand's output (or the Engine's bare `.Swarm` object). */
export function parseSwarmInfo(json: string): SwarmInfo {
  const parsed = JSON.parse(json) as { Name?: string; Swarm?: unknown };
  const raw = ('Swarm' in parsed ? parsed.Swarm ?? {} : parsed) as {
    LocalNodeState?: string; NodeID?: string; NodeAddr?: string; ControlAvailable?: boolean;
    Cluster?: { ID?: string } | null; RemoteManagers?: { Addr?: string }[] | null;
  };
  return {
    state: raw.LocalNodeState ?? 'inactive',
    nodeId: raw.NodeID ?? '',
    nodeAddr: raw.NodeAddr ?? '',
    isManager: raw.ControlAvailable === true,
    clusterId: raw.Cluster?.ID ?? '',
    managerAddrs: (raw.RemoteManagers ?? []).map((m) => m.Addr ?? '').filter((a) => a.length > 0),
    hostname: typeof parsed.Name === 'string' && 'Swarm' in parsed ? parsed.Name : '',
  };
}

export function swarmInitCommand(address: string): Argv {
  return ['docker', 'swarm', 'init', '--advertise-addr', address, '--listen-addr', `${address}:${SWARM_PORT}`];
}

/**
 * The body of the Engine API's `POST /swarm/join`, sent to the worker's engine through the SSH-tunnelled
 * socket: the join token travels in a request body, never on a command line (where `ps` on the node, shell
 * history or an audit log would show it). The token itself comes from the manager's `GET /swarm`.
 */
export interface SwarmJoinRequest {
  ListenAddr: string;
  AdvertiseAddr: string;
  RemoteAddrs: string[];
  JoinToken: string;
}

export function swarmJoinRequest(token: string, managerAddress: string, address: string): SwarmJoinRequest {
  return { ListenAddr: `${address}:${SWARM_PORT}`, AdvertiseAddr: address, RemoteAddrs: [`${managerAddress}:${SWARM_PORT}`], JoinToken: token };
}

export function swarmLeaveCommand(): Argv {
  return ['docker', 'swarm', 'leave', '--force'];
}

export function nodeListCommand(): Argv {
  return ['docker', 'node', 'ls', '--format', '{{json .}}'];
}

export interface SwarmNodeRow {
  id: string;
  hostname: string;
  /** Ready, Down, Unknown, Disconnected */
  status: string;
  /** Active, Pause, Drain */
  availability: string;
  /** Leader, Reachable, Unreachable, or "" for a worker */
  managerStatus: string;
}

/** `docker node ls --format '{{json .}}'`: one JSON object per line. */
export function parseNodeList(stdout: string): SwarmNodeRow[] {
  return stdout.split('\n').filter((l) => l.trim().length > 0).map((line) => {
    const raw = JSON.parse(line) as Record<string, string>;
    return {
      id: raw.ID ?? '',
      hostname: raw.Hostname ?? '',
      status: raw.Status ?? '',
      availability: raw.Availability ?? '',
      managerStatus: raw.ManagerStatus ?? '',
    };
  });
}

export function nodeLabelsCommand(nodeIds: string[]): Argv {
  return ['docker', 'node', 'inspect', '--format', '{{.ID}} {{json .Spec.Labels}}', ...nodeIds];
}

export function parseNodeLabels(stdout: string): Map<string, Record<string, string>> {
  const labels = new Map<string, Record<string, string>>();
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    const parsed = JSON.parse(line.slice(space + 1)) as Record<string, string> | null;
    labels.set(line.slice(0, space), parsed ?? {});
  }
  return labels;
}

/**
 * Labels node-up puts on each swarm node: its depl name, depl.edge=true on the (first) manager, and on a pool's
 * node depl.pool=<pool> (src/plan/pools.ts: the placement constraints read it).
 */
export function desiredNodeLabels(nodeName: string, isManager: boolean, pool?: string): Record<string, string> {
  const labels: Record<string, string> = isManager ? { 'depl.node': nodeName, 'depl.edge': 'true' } : { 'depl.node': nodeName };
  if (pool !== undefined && !isManager) labels['depl.pool'] = pool;
  return labels;
}

/** The labels still to add (missing or different), or null when the node already has them all. */
export function missingLabels(current: Record<string, string>, desired: Record<string, string>): Record<string, string> | null {
  const missing = Object.fromEntries(Object.entries(desired).filter(([key, value]) => current[key] !== value));
  return Object.keys(missing).length > 0 ? missing : null;
}

export function nodeLabelAddCommand(nodeId: string, labels: Record<string, string>): Argv {
  return ['docker', 'node', 'update', ...Object.entries(labels).flatMap(([k, v]) => ['--label-add', `${k}=${v}`]), nodeId];
}

export function nodeDrainCommand(nodeId: string): Argv {
  return ['docker', 'node', 'update', '--availability', 'drain', nodeId];
}

export function nodeRemoveCommand(nodeId: string): Argv {
  return ['docker', 'node', 'rm', '--force', nodeId];
}

/** The overlay network every service of the app joins; attachable so one-off containers can use it. */
export function overlayNetworkName(app: string): string {
  return appNetworkName(app);
}

export function networkExistsCommand(name: string): Argv {
  // the option keys, not values: `--opt encrypted` is stored as "encrypted" with an empty value
  return ['docker', 'network', 'inspect', '--format', '{{.Driver}} {{.Attachable}}{{range $k, $v := .Options}} {{$k}}{{end}}', name];
}

export interface NetworkFacts {
  driver: string;
  attachable: boolean;
  encrypted: boolean;
}

export function parseNetworkFacts(stdout: string): NetworkFacts {
  const [driver = '', attachable = '', ...options] = stdout.trim().split(/\s+/);
  return { driver, attachable: attachable === 'true', encrypted: options.includes('encrypted') };
}

export function overlayNetworkCreateCommand(app: string, options: { encrypted: boolean }): Argv {
  return ['docker', 'network', 'create', '--driver', 'overlay', '--attachable', ...(options.encrypted ? ['--opt', 'encrypted'] : []),
    '--label', `depl.app=${app}`, overlayNetworkName(app)];
}

/**
 * Can this node's kernel do IPsec ESP (what `--opt encrypted` overlays use)? Asked by adding an ESP security
 * association like the ones Docker makes (AES-GCM, transport mode) between two TEST-NET addresses, and
 * deleting it at once. Kernels without ESP (CONFIG_INET_ESP unset) answer "Protocol not supported".
 */
export const IPSEC_PROBE_SCRIPT = `if ! command -v ip >/dev/null 2>&1; then echo ipsec=unknown; exit 0; fi
sa="src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x0de91501"
if ip xfrm state add $sa mode transport aead 'rfc4106(gcm(aes))' 0x0000000000000000000000000000000000000000 128 2>/dev/null; then
  ip xfrm state delete $sa 2>/dev/null
  echo ipsec=yes
else
  echo ipsec=no
fi`;

export function ipsecProbeCommand(): Argv {
  return ['sh', '-c', IPSEC_PROBE_SCRIPT];
}

export type IpsecSupport = 'yes' | 'no' | 'unknown';

export function parseIpsecProbe(stdout: string): IpsecSupport {
  const match = /^ipsec=(yes|no|unknown)$/m.exec(stdout);
  return (match?.[1] as IpsecSupport | undefined) ?? 'unknown';
}

export type EncryptionSetting = 'auto' | boolean;

export type EncryptionDecision =
  | { encrypted: boolean; note?: string }
  | { refuse: string };

/**
 * Whether the app network is created with `--opt encrypted`: every node must support ESP (traffic between a
 * node with and one without would be dropped). "auto" encrypts where all can and says so where they cannot.
 */
export function decideNetworkEncryption(setting: EncryptionSetting, support: { node: string; ipsec: IpsecSupport }[]): EncryptionDecision {
  const lacking = support.filter((s) => s.ipsec !== 'yes');
  if (setting === false) return { encrypted: false, note: 'the app network is not encrypted (network.encrypted: false in depl.yaml)' };
  if (lacking.length === 0) return { encrypted: true };
  const which = lacking.map((s) => `${s.node}${s.ipsec === 'unknown' ? ' (no `ip` command to check)' : ''}`).join(', ');
  if (setting === true) {
    if (lacking.every((s) => s.ipsec === 'unknown')) return { encrypted: true, note: `cannot check IPsec support on ${which}; encrypting as network.encrypted: true asks` };
    return { refuse: `network.encrypted: true, but the kernel of ${which} has no IPsec ESP support, which encrypted overlay networks need` };
  }
  return { encrypted: false, note: `the app network is NOT encrypted: no IPsec ESP support in the kernel of ${which} (traffic between nodes is plain; on OpenStack VMs it is encrypted)` };
}

/** What to do about an existing network whose encryption differs from the decision: it cannot be changed in place. */
export function networkEncryptionMismatch(name: string, facts: NetworkFacts, wanted: boolean): string | null {
  if (facts.encrypted === wanted) return null;
  return wanted
    ? `network ${name} exists unencrypted although the nodes support encryption; to encrypt it, remove the app's services (depl prune, the edge, accessories) and the network, then re-run node-up`
    : `network ${name} is encrypted although encryption is off or unsupported now; services on it may not reach each other across nodes`;
}

export type ManagerAction = 'ok' | 'init';

/** The first node must be a swarm manager; an inactive one starts the swarm. */
export function decideManager(info: SwarmInfo): ManagerAction | { refuse: string } {
  if (info.state === 'active' && info.isManager) return 'ok';
  if (info.state === 'inactive') return 'init';
  if (info.state === 'active') return { refuse: 'is a worker of another swarm, but should be this cluster\'s manager' };
  if (info.state === 'locked') return { refuse: 'has a locked swarm (autolock): unlock it with `docker swarm unlock`' };
  return { refuse: `is in swarm state "${info.state}"` };
}

export type WorkerAction = 'ok' | 'join' | 'rejoin';

/**
 * A worker is fine when the manager lists its node id; inactive ones join; any other state (pending, error,
 * active in another swarm, e.g. after the manager was recreated) leaves and joins again.
 */
export function decideWorker(info: SwarmInfo, managerList: SwarmNodeRow[]): WorkerAction {
  if (info.state === 'inactive') return 'join';
  if (info.state === 'active' && managerList.some((row) => row.id === info.nodeId)) return 'ok';
  return 'rejoin';
}

/**
 * Swarm entries no provisioned node answers for: a node that was recreated leaves its old entry under the
 * same hostname (still "Ready" until the manager notices), a removed one leaves a "Down" entry. The
 * manager removes them so `docker node ls` shows only the live cluster. `formerIds` are ids node-up
 * recorded before (the inventory): a former id that is no longer live is stale whatever its status.
 */
export function staleNodeIds(managerList: SwarmNodeRow[], liveIds: string[], formerIds: string[] = []): string[] {
  const live = new Set(liveIds);
  const former = new Set(formerIds);
  const liveHostnames = new Set(managerList.filter((row) => live.has(row.id)).map((row) => row.hostname));
  return managerList
    .filter((row) => !live.has(row.id))
    .filter((row) => row.status !== 'Ready' || former.has(row.id) || liveHostnames.has(row.hostname))
    .map((row) => row.id);
}

/** Tasks still meant to run on a node: empty once a drain has moved them elsewhere. */
export function nodeRunningTasksCommand(nodeId: string): Argv {
  return ['docker', 'node', 'ps', '--filter', 'desired-state=running', '--format', '{{.ID}}', nodeId];
}
