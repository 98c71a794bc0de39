import path from 'node:path';
import { ansibleInventoryPath, knownHostsPath, readInventory, sshKeyPath, writeFileAtomicLocal, writeInventory, type Inventory } from '../apply/inventory.js';
import type { ProvisionedNode } from '../apply/providers/types.js';
import type { SshPool, SshRemote } from '../apply/ssh.js';
import { engineOverSsh, type Engine } from '../apply/docker.js';
import type { LoadedConfig } from '../config/load.js';
import { OperationError } from '../errors.js';
import { requireAnsiblePlaybook, runPlaybook } from '../apply/ansible.js';
import { renderAnsibleInventory, type InventoryNode } from '../plan/ansible-inventory.js';
import { ansiblePlaybookCommand } from '../plan/ansible-playbook.js';
import {
  decideManager, decideNetworkEncryption, decideWorker, desiredNodeLabels, ensureDockerCommand, ipsecProbeCommand, missingLabels,
  networkEncryptionMismatch, networkExistsCommand, nodeDrainCommand, nodeLabelAddCommand, nodeLabelsCommand, nodeListCommand,
  nodeRemoveCommand, nodeRunningTasksCommand, overlayNetworkCreateCommand, overlayNetworkName, parseEnsureDocker, parseIpsecProbe,
  parseNetworkFacts, parseNodeList, parseNodeLabels, parseSwarmInfo, staleNodeIds, swarmInfoCommand, swarmInitCommand,
  swarmJoinRequest, swarmLeaveCommand, type EncryptionSetting, type IpsecSupport, type SwarmInfo, type SwarmNodeRow,
} from '../plan/bootstrap.js';
import type { Logger } from '../util/log.js';
import { Secret } from '../util/secret.js';
import { providerFor, sshPoolFor } from './cluster.js';
import { pollUntil } from '../util/poll.js';
import { packagePath } from '../util/paths.js';

export interface NodeUpOptions {
  /** Grow or shrink to this many nodes; default: provider.nodes in depl.yaml. */
  nodes?: number;
  /** May a provider ask for a missing password? The CLI passes ctx.interactive. */
  interactive?: boolean;
}

export interface NodeRow {
  name: string;
  address: string;
  role: 'manager' | 'worker';
  /** Active, Pause or Drain */
  availability: string;
  /** Ready, Down, ... as the swarm reports it */
  state: string;
}

export interface NodeUpResult {
  nodes: NodeRow[];
  network: string;
  /** Whether the app network is IPsec-encrypted (`--opt encrypted`). */
  encrypted: boolean;
  /** What this run changed, one line each; empty when the cluster already was as asked. */
  changes: string[];
  /** What the operator should know about the cluster (an unencrypted network, and why). */
  notes: string[];
  seconds: number;
}

const SSH_WAIT_MS = 120_000;
const READY_WAIT_MS = 90_000;
const DRAIN_WAIT_MS = 120_000;

async function swarmInfo(remote: SshRemote): Promise<SwarmInfo> {
  return parseSwarmInfo((await remote.exec(swarmInfoCommand())).stdout);
}

async function nodeList(manager: SshRemote): Promise<SwarmNodeRow[]> {
  return parseNodeList((await manager.exec(nodeListCommand())).stdout);
}

/** A node that restarted reports "pending" while it reconnects to its manager: give it a moment. */
async function settledSwarmInfo(remote: SshRemote): Promise<SwarmInfo> {
  let info: SwarmInfo | undefined;
  return pollUntil(async () => {
    info = await swarmInfo(remote);
    return info.state === 'pending' ? undefined : info;
  }, { timeoutMs: 20_000, intervalMs: 500, onTimeout: () => info! });
}

/**
 * Brings the cluster to `count` nodes forming one swarm: provision (provider), then over SSH, all nodes in
 * parallel: Docker present and running, swarm init on the first node, joins, stale entries removed, labels,
 * the app's overlay network. Every step first looks at what is there, so a re-run on a healthy cluster
 * changes nothing, and a re-run after a failure or a lost node repairs it.
 */
export async function nodeUp(loaded: LoadedConfig, log: Logger, options: NodeUpOptions = {}): Promise<NodeUpResult> {
  const started = Date.now();
  const { config } = loaded;
  const count = options.nodes ?? config.provider.nodes;
  if (options.nodes !== undefined && options.nodes !== config.provider.nodes) {
    log.warn(`depl.yaml says provider.nodes: ${config.provider.nodes}; a later node-up without --nodes goes back to that. Set provider.nodes: ${count} to keep ${count} nodes.`);
  }
  const changes: string[] = [];
  const change = (line: string) => { changes.push(line); log.step(line); };
  if (config.bootstrap === 'ansible') await requireAnsiblePlaybook();
  const provider = await providerFor(loaded, log, { interactive: options.interactive });
  const pool = await sshPoolFor(loaded, log, SSH_WAIT_MS);
  try {
    const previous = await readInventory(loaded);
    if (previous && previous.nodes.length > count) await drainSurplus(previous, count, pool, log, change);

    const provisioned = await provider.up(count, log);
    if (provisioned.length === 0) throw new OperationError('the provider returned no nodes', undefined, 'NO_NODES');
    for (const node of provisioned.filter((n) => n.fresh)) {
      await pool.forget(node);
      change(`${node.name}: new machine at ${node.address}`);
    }

    const notes: string[] = [];
    const note = (line: string) => { notes.push(line); log.warn(line); };
    const swarm = config.bootstrap === 'ansible'
      ? await bootstrapWithAnsible(loaded, provisioned, previous, pool, log, change, note)
      : await bootstrapOverSsh(loaded, provisioned, previous, pool, log, change, note);
    const { liveIds, list, network } = swarm;

    const inventory: Inventory = {
      version: 1,
      app: config.app,
      provider: config.provider.type,
      network: network.name,
      nodes: provisioned.map((node, i) => ({ name: node.name, address: node.address, role: i === 0 ? 'manager' : 'worker', nodeId: liveIds[i] })),
      updatedAt: new Date().toISOString(),
    };
    await writeInventory(loaded, inventory);
    await writeAnsibleInventory(loaded, inventory.nodes, network.encrypted);

    const rows = provisioned.map((node, i): NodeRow => {
      const row = list.find((r) => r.id === liveIds[i]);
      return { name: node.name, address: node.address, role: i === 0 ? 'manager' : 'worker', availability: row?.availability ?? '?', state: row?.status ?? '?' };
    });
    for (const row of rows) log.step(`${row.name}: ${row.state}, ${row.role}, ${row.availability.toLowerCase()}`);
    return { nodes: rows, network: network.name, encrypted: network.encrypted, changes, notes, seconds: (Date.now() - started) / 1000 };
  } finally {
    await pool.closeAll();
  }
}

interface SwarmOutcome {
  /** Swarm node ids, in the order of the provisioned nodes. */
  liveIds: string[];
  list: SwarmNodeRow[];
  network: { name: string; encrypted: boolean };
}

/** `bootstrap: ssh` (the default): every step over SSH, each first looking at what is there. */
async function bootstrapOverSsh(
  loaded: LoadedConfig, provisioned: ProvisionedNode[], previous: Inventory | null, pool: SshPool, log: Logger,
  change: (line: string) => void, note: (line: string) => void,
): Promise<SwarmOutcome> {
  const { config } = loaded;
  const ready = await Promise.all(provisioned.map((node) => readyNode(node, pool, log, change)));
  const remotes = ready.map((r) => r.remote);
  const [managerNode, ...workerNodes] = provisioned as [ProvisionedNode, ...ProvisionedNode[]];
  const manager = remotes[0]!;

  const managerId = await ensureManager(managerNode, manager, change);
  let tokenPromise: Promise<Secret> | undefined;
  // from the manager's Engine API (GET /swarm): the token is never printed by a command nor passed as an argument
  const workerToken = () => (tokenPromise ??= withEngine(manager, pool, async (engine) => {
    const swarm = await engine.docker.swarmInspect() as { JoinTokens?: { Worker?: string } };
    if (!swarm.JoinTokens?.Worker) throw new OperationError(`${managerNode.name}: the manager reported no worker join token`, undefined, 'SWARM_TOKEN');
    return new Secret(swarm.JoinTokens.Worker);
  }));
  const listBefore = await nodeList(manager);
  const workerIds = await Promise.all(workerNodes.map((node, i) =>
    ensureWorker(node, remotes[i + 1]!, pool, listBefore, managerNode.address, workerToken, log, change)));
  const liveIds = [managerId, ...workerIds];

  await removeStaleEntries(manager, liveIds, previous, change);
  const list = await waitReady(manager, liveIds, provisioned);
  await ensureLabels(manager, provisioned, liveIds, change);
  const encrypted = networkEncryption(config.network.encrypted as EncryptionSetting, provisioned.map((node, i) => ({ node: node.name, ipsec: ready[i]!.ipsec })), note);
  const network = await ensureOverlayNetwork(manager, config.app, encrypted, change, note);
  return { liveIds, list, network };
}

/**
 * `bootstrap: ansible`: ansible/bootstrap.yml with the inventory node-up writes. SSH first, so each node's host
 * key is pinned in .depl/known_hosts before Ansible's ssh checks it strictly, and to ask each kernel about IPsec
 * (the encryption decision is node-up's, as for its own bootstrap); then the play; then the swarm as it is.
 */
async function bootstrapWithAnsible(
  loaded: LoadedConfig, provisioned: ProvisionedNode[], previous: Inventory | null, pool: SshPool, log: Logger,
  change: (line: string) => void, note: (line: string) => void,
): Promise<SwarmOutcome> {
  const remotes = await Promise.all(provisioned.map(async (node) => {
    const remote = await pool.remote(node);
    log.step(`${node.name}: ssh ready`);
    return remote;
  }));
  const support = await Promise.all(remotes.map(async (remote, i) => ({
    node: provisioned[i]!.name,
    ipsec: parseIpsecProbe((await remote.exec(ipsecProbeCommand(), { check: false })).stdout),
  })));
  const encrypted = networkEncryption(loaded.config.network.encrypted as EncryptionSetting, support, note);
  const roles = provisioned.map((node, i) => ({ name: node.name, address: node.address, role: i === 0 ? 'manager' as const : 'worker' as const }));
  const inventoryFile = await writeAnsibleInventory(loaded, roles, encrypted);
  const { recap } = await runPlaybook(ansiblePlaybookCommand({ inventory: inventoryFile, playbook: packagePath('ansible', 'bootstrap.yml') }), log, { cwd: loaded.root });
  for (const [host, counts] of recap) if (counts.changed > 0) change(`${host}: ${counts.changed} change${counts.changed === 1 ? '' : 's'} by ansible/bootstrap.yml`);

  const manager = remotes[0]!;
  const liveIds = await Promise.all(remotes.map(async (remote) => (await swarmInfo(remote)).nodeId));
  await removeStaleEntries(manager, liveIds, previous, change);
  const list = await waitReady(manager, liveIds, provisioned);
  const name = overlayNetworkName(loaded.config.app);
  const facts = parseNetworkFacts((await manager.exec(networkExistsCommand(name))).stdout);
  const mismatch = networkEncryptionMismatch(name, facts, encrypted);
  if (mismatch) note(mismatch);
  return { liveIds, list, network: { name, encrypted: facts.encrypted } };
}

/** Whether the app network is encrypted: node-up's decision for either bootstrap, from every node's IPsec support. */
function networkEncryption(setting: EncryptionSetting, support: { node: string; ipsec: IpsecSupport }[], note: (line: string) => void): boolean {
  const encryption = decideNetworkEncryption(setting, support);
  if ('refuse' in encryption) {
    throw new OperationError(encryption.refuse, 'Use nodes whose kernel has IPsec ESP (CONFIG_INET_ESP), or set network.encrypted: auto (or false) in depl.yaml.', 'NETWORK_ENCRYPTION');
  }
  if (encryption.note) note(encryption.note);
  return encryption.encrypted;
}

/** Swarm entries no live node answers for (a recreated node's old entry, a removed node's): node-up's own tidying. */
async function removeStaleEntries(manager: SshRemote, liveIds: string[], previous: Inventory | null, change: (line: string) => void): Promise<void> {
  const formerIds = (previous?.nodes ?? []).flatMap((n) => (n.nodeId ? [n.nodeId] : []));
  for (const id of staleNodeIds(await nodeList(manager), liveIds, formerIds)) {
    await manager.exec(nodeRemoveCommand(id), { check: false });
    change(`swarm: removed stale node entry ${id.slice(0, 12)}`);
  }
}

async function readyNode(node: ProvisionedNode, pool: SshPool, log: Logger, change: (line: string) => void): Promise<{ remote: SshRemote; ipsec: IpsecSupport }> {
  const remote = await pool.remote(node);
  log.step(`${node.name}: ssh ready`);
  const outcome = parseEnsureDocker((await remote.exec(ensureDockerCommand(), { timeoutMs: 15 * 60_000 })).stdout);
  if (outcome.installed) change(`${node.name}: Docker installed`);
  if (outcome.started) change(`${node.name}: dockerd started`);
  log.step(`${node.name}: docker ready`);
  const ipsec = parseIpsecProbe((await remote.exec(ipsecProbeCommand(), { check: false })).stdout);
  return { remote, ipsec };
}

/**
 * The node's Docker Engine API through an SSH channel to its socket (a second connection, checked against the
 * host key the pool's connection recorded), for calls whose arguments must not appear on a command line.
 */
async function withEngine<T>(remote: SshRemote, pool: SshPool, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await engineOverSsh(remote.target, pool.knownHosts);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

async function ensureManager(node: ProvisionedNode, manager: SshRemote, change: (line: string) => void): Promise<string> {
  const info = await settledSwarmInfo(manager);
  const action = decideManager(info);
  if (typeof action === 'object') {
    throw new OperationError(`${node.name} (${node.address}) ${action.refuse}`, `Fix it on the node (ssh there), or run 'depl node-down' and 'depl node-up' to start afresh.`, 'SWARM_MANAGER');
  }
  if (action === 'ok') return info.nodeId;
  await manager.exec(swarmInitCommand(node.address), { timeoutMs: 60_000 });
  change(`${node.name}: swarm initialised (manager)`);
  return (await swarmInfo(manager)).nodeId;
}

async function ensureWorker(
  node: ProvisionedNode, remote: SshRemote, pool: SshPool, managerList: SwarmNodeRow[], managerAddress: string,
  token: () => Promise<Secret>, log: Logger, change: (line: string) => void,
): Promise<string> {
  const info = await settledSwarmInfo(remote);
  const action = decideWorker(info, managerList);
  if (action === 'ok') {
    log.step(`${node.name}: in the swarm`);
    return info.nodeId;
  }
  if (action === 'rejoin') {
    log.step(`${node.name}: belongs to another swarm (state ${info.state}); leaving it`);
    await remote.exec(swarmLeaveCommand(), { check: false, timeoutMs: 60_000 });
  }
  const joinToken = await token();
  await withEngine(remote, pool, async (engine) => {
    try {
      await engine.docker.swarmJoin(swarmJoinRequest(joinToken.reveal(), managerAddress, node.address));
    } catch (error) {
      const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
      throw new OperationError(`${node.name} (${node.address}): swarm join failed: ${message}`, `Check that ${managerAddress}:2377 is reachable from ${node.address}, then re-run node-up.`, 'SWARM_JOIN');
    }
  });
  change(`${node.name}: joined the swarm`);
  return (await swarmInfo(remote)).nodeId;
}

async function waitReady(manager: SshRemote, liveIds: string[], nodes: ProvisionedNode[]): Promise<SwarmNodeRow[]> {
  let notReady: string[] = [];
  return pollUntil(async () => {
    const list = await nodeList(manager);
    notReady = liveIds.filter((id) => list.find((row) => row.id === id)?.status !== 'Ready');
    return notReady.length === 0 ? list : undefined;
  }, {
    timeoutMs: READY_WAIT_MS,
    intervalMs: 500,
    onTimeout: () => {
      const names = notReady.map((id) => nodes[liveIds.indexOf(id)]?.name ?? id).join(', ');
      throw new OperationError(`not Ready after ${READY_WAIT_MS / 1000} s: ${names}`, "Look at `docker node ls` on the manager; re-running 'depl node-up' repairs nodes that failed half-way.", 'SWARM_NOT_READY');
    },
  });
}

async function ensureLabels(manager: SshRemote, nodes: ProvisionedNode[], ids: string[], change: (line: string) => void): Promise<void> {
  const current = parseNodeLabels((await manager.exec(nodeLabelsCommand(ids))).stdout);
  for (const [i, node] of nodes.entries()) {
    const id = ids[i]!;
    const missing = missingLabels(current.get(id) ?? {}, desiredNodeLabels(node.name, i === 0));
    if (!missing) continue;
    await manager.exec(nodeLabelAddCommand(id, missing));
    change(`${node.name}: labels ${Object.entries(missing).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
}

async function ensureOverlayNetwork(
  manager: SshRemote, app: string, encrypted: boolean, change: (line: string) => void, note: (line: string) => void,
): Promise<{ name: string; encrypted: boolean }> {
  const name = overlayNetworkName(app);
  const existing = await manager.exec(networkExistsCommand(name), { check: false });
  if (existing.code === 0) {
    const facts = parseNetworkFacts(existing.stdout);
    if (facts.driver !== 'overlay' || !facts.attachable) {
      throw new OperationError(`network ${name} exists on the manager but is "${facts.driver}", attachable=${facts.attachable}`, `Remove it on the manager (docker network rm ${name}) and re-run node-up.`, 'NETWORK_MISMATCH');
    }
    const mismatch = networkEncryptionMismatch(name, facts, encrypted);
    if (mismatch) note(mismatch);
    return { name, encrypted: facts.encrypted };
  }
  await manager.exec(overlayNetworkCreateCommand(app, { encrypted }));
  change(`swarm: overlay network ${name} created${encrypted ? ' (encrypted)' : ''}`);
  return { name, encrypted };
}

/** Shrinking: drain the nodes that go so their tasks move first, then take them out of the swarm. */
async function drainSurplus(previous: Inventory, count: number, pool: SshPool, log: Logger, change: (line: string) => void): Promise<void> {
  const managerNode = previous.nodes[0]!;
  const manager = await pool.remote(managerNode, 30_000);
  for (const node of previous.nodes.slice(count).reverse()) {
    if (node.nodeId) {
      await manager.exec(nodeDrainCommand(node.nodeId), { check: false });
      log.step(`${node.name}: draining`);
      const nodeId = node.nodeId;
      const drained = await pollUntil(async () => {
        const tasks = await manager.exec(nodeRunningTasksCommand(nodeId), { check: false });
        return tasks.code !== 0 || tasks.stdout.trim().length === 0 ? true : undefined;
      }, { timeoutMs: DRAIN_WAIT_MS, intervalMs: 1000, onTimeout: () => false });
      if (!drained) log.warn(`${node.name}: tasks still running after ${DRAIN_WAIT_MS / 1000} s of draining; removing it anyway`);
    }
    const remote = await pool.remote(node, 5000).catch(() => null);
    if (remote) await remote.exec(swarmLeaveCommand(), { check: false, timeoutMs: 30_000 });
    if (node.nodeId) await manager.exec(nodeRemoveCommand(node.nodeId), { check: false });
    await pool.forget(node);
    change(`${node.name}: drained and removed from the swarm`);
  }
}

/** ansible/generated_hosts.ini beside depl.yaml; returns its path. */
async function writeAnsibleInventory(loaded: LoadedConfig, nodes: InventoryNode[], networkEncrypted: boolean): Promise<string> {
  const file = path.resolve(ansibleInventoryPath(loaded));
  const text = renderAnsibleInventory({
    nodes,
    app: loaded.config.app,
    networkEncrypted,
    user: loaded.config.ssh.user,
    port: loaded.config.ssh.port,
    keyFile: sshKeyPath(loaded),
    knownHostsFile: knownHostsPath(loaded),
  });
  await writeFileAtomicLocal(file, text);
  return file;
}
