import path from 'node:path';
import { ansibleInventoryPath, knownHostsPath, readInventory, writeFileAtomicLocal, writeInventory, type Inventory } from '../apply/inventory.js';
import type { ProvisionedNode } from '../apply/providers/types.js';
import type { SshPool, SshRemote } from '../apply/ssh.js';
import { swarmNodesOverSsh, type SwarmNodes } from '../apply/swarm-nodes.js';
import { OperationError } from '../errors.js';
import { requireAnsiblePlaybook, runPlaybook } from '../apply/ansible.js';
import { renderAnsibleInventory, type InventoryNode } from '../plan/ansible-inventory.js';
import { ansiblePlaybookCommand } from '../plan/ansible-playbook.js';
import {
  decideNetworkEncryption, ensureDockerCommand, ipsecProbeCommand, networkEncryptionMismatch, overlayNetworkName, parseEnsureDocker,
  parseIpsecProbe, staleNodeIds, type EncryptionSetting, type IpsecSupport,
} from '../plan/bootstrap.js';
import type { Logger } from '../util/log.js';
import type { NodeInputs } from './command-inputs.js';
import { convergeSwarm, shrinkSwarm, waitReady, type SwarmOutcome } from './node-up-swarm.js';
import { packagePath } from '../util/paths.js';
import { ensureDomainRecords, managedDomain, planDomain } from './domain.js';
import { holdRenewerCredential, prepareRenewerCredential } from './tls/renewer-credential.js';
import { renewerCredentialWanted } from '../plan/tls/renewer-credential.js';
import { swarmCredentialHolder } from '../apply/tls/renewer-secret.js';
import { poolsOf } from '../plan/pool-placement.js';
import { poolNotes, poolSurplus } from '../plan/pools.js';
import { installPoolHandoff, preemptibleNodes, writePoolHandoffTree } from './pool-handoff.js';

export interface NodeUpOptions {
  /** Grow or shrink to this many nodes; default: provider.nodes in depl.yaml. */
  nodes?: number;
  /** May a provider ask for a missing password? The CLI passes ctx.interactive. */
  interactive?: boolean;
  /** Pool counts asked for (`--pool crawl=3`), each within its pool's range. */
  pools?: Record<string, number>;
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
  /** The zero-config domain (provider.dns): the names node-up keeps pointing at the entry address. */
  dns?: { domain: string; zone: string; address: string };
  seconds: number;
}

const SSH_WAIT_MS = 120_000;

/** The provisioned nodes' swarm over the pool's SSH connections (the first node is the manager). */
function swarmOf(pool: SshPool, nodes: readonly ProvisionedNode[]): SwarmNodes {
  const byName = (name: string) => nodes.find((n) => n.name === name)!;
  return swarmNodesOverSsh({ remote: (name) => pool.remote(byName(name)), manager: () => pool.remote(nodes[0]!), knownHosts: pool.knownHosts });
}

/**
 * Brings the cluster to `count` nodes forming one swarm: provision (provider), then over SSH, all nodes in
 * parallel: Docker present and running, swarm init on the first node, joins, stale entries removed, labels,
 * the app's overlay network. Every step first looks at what is there, so a re-run on a healthy cluster
 * changes nothing, and a re-run after a failure or a lost node repairs it.
 */
export async function nodeUp(inputs: NodeInputs, log: Logger, options: NodeUpOptions = {}): Promise<NodeUpResult> {
  const started = Date.now();
  const { config } = inputs;
  const count = options.nodes ?? config.provider.nodes;
  if (options.nodes !== undefined && options.nodes !== config.provider.nodes) {
    log.warn(`depl.yaml says provider.nodes: ${config.provider.nodes}; a later node-up without --nodes goes back to that. Set provider.nodes: ${count} to keep ${count} nodes.`);
  }
  const changes: string[] = [];
  const change = (line: string) => { changes.push(line); log.step(line); };
  if (config.bootstrap === 'ansible') await requireAnsiblePlaybook();
  const provider = await inputs.provider(log, { interactive: options.interactive });
  // the zero-config domain's zone and records are checked before anything is made: a missing zone or someone
  // else's record at the domain is refused (exit 2) with nothing changed
  const managed = managedDomain(config);
  const designate = managed === undefined ? undefined : await inputs.designate({ interactive: options.interactive });
  const zone = managed !== undefined && designate !== undefined ? (await planDomain(designate, managed, (await provider.entryAddress?.()) ?? null)).zone : undefined;
  // the renewal task's DNS credential is made now, before anything else: a cloud that refuses it stops node-up with
  // nothing created (src/workflows/tls/renewer-credential.ts)
  const renewer = managed !== undefined && designate !== undefined && zone !== undefined && renewerCredentialWanted(config)
    ? { app: config.app, domain: config.domain, designate, zone, now: Date.now, log }
    : undefined;
  const prepared = renewer === undefined ? undefined : await prepareRenewerCredential(renewer);
  const pool = await inputs.sshPool(log, SSH_WAIT_MS);
  try {
    const previous = await readInventory(inputs);
    const pools = provider.poolCounts ? await provider.poolCounts(options.pools ?? {}) : {};
    if (previous) {
      // the cluster's own nodes beyond the count, and the pool nodes at or above their pool's new count
      const surplus = [...previous.nodes.filter((n) => n.pool === undefined).slice(count), ...poolSurplus(previous.nodes, pools)];
      if (surplus.length > 0) await drainSurplus(previous, surplus, pool, log, change);
    }

    const provisioned = await provider.up(count, log, pools);
    if (provisioned.length === 0) throw new OperationError('the provider returned no nodes', undefined, 'NO_NODES');
    for (const node of provisioned.filter((n) => n.fresh)) {
      await pool.forget(node);
      change(`${node.name}: new machine at ${node.address}`);
    }

    const notes: string[] = [];
    const note = (line: string) => { notes.push(line); log.warn(line); };
    for (const line of poolNotes(poolsOf(config))) note(line);
    const swarm = config.bootstrap === 'ansible'
      ? await bootstrapWithAnsible(inputs, provisioned, previous, pool, log, change, note)
      : await bootstrapOverSsh(inputs, provisioned, previous, pool, log, change, note);
    const { liveIds, list, network } = swarm;

    const inventory: Inventory = {
      version: 1,
      app: config.app,
      provider: config.provider.type,
      network: network.name,
      nodes: provisioned.map((node, i) => ({ name: node.name, address: node.address, role: i === 0 ? 'manager' : 'worker', nodeId: liveIds[i], ...(node.pool !== undefined ? { pool: node.pool } : {}) })),
      updatedAt: new Date().toISOString(),
    };
    await writeInventory(inputs, inventory);
    await writeAnsibleInventory(inputs, inventory.nodes, network.encrypted);

    const rows = provisioned.map((node, i): NodeRow => {
      const row = list.find((r) => r.id === liveIds[i]);
      return { name: node.name, address: node.address, role: i === 0 ? 'manager' : 'worker', availability: row?.availability ?? '?', state: row?.status ?? '?' };
    });
    for (const row of rows) log.step(`${row.name}: ${row.state}, ${row.role}, ${row.availability.toLowerCase()}`);
    let dns: NodeUpResult['dns'];
    if (managed !== undefined && designate !== undefined) {
      const address = (await provider.entryAddress?.()) ?? provisioned[0]!.address;
      const records = await ensureDomainRecords(designate, managed, address, log);
      for (const step of records.steps) changes.push(`DNS: ${step.describe}`);
      dns = { domain: managed.domain, zone: managed.zone, address };
    }
    if (renewer !== undefined && prepared !== undefined) {
      const cluster = await inputs.cluster.open(log);
      try {
        for (const line of await holdRenewerCredential(renewer, prepared, swarmCredentialHolder(await cluster.engine(), config.app))) change(`TLS: ${line}`);
      } finally {
        await cluster.close();
      }
    }
    return { nodes: rows, network: network.name, encrypted: network.encrypted, changes, notes, ...(dns ? { dns } : {}), seconds: (Date.now() - started) / 1000 };
  } finally {
    await pool.closeAll();
  }
}

/** `bootstrap: ssh` (the default): Docker on every node, then the swarm part planned from what is there and applied. */
async function bootstrapOverSsh(
  inputs: NodeInputs, provisioned: ProvisionedNode[], previous: Inventory | null, pool: SshPool, log: Logger,
  change: (line: string) => void, note: (line: string) => void,
): Promise<SwarmOutcome> {
  const ready = await Promise.all(provisioned.map((node) => readyNode(node, pool, log, change)));
  const encrypted = networkEncryption(inputs.config.network.encrypted as EncryptionSetting, provisioned.map((node, i) => ({ node: node.name, ipsec: ready[i]!.ipsec })), note);
  const formerIds = (previous?.nodes ?? []).flatMap((n) => (n.nodeId ? [n.nodeId] : []));
  const outcome = await convergeSwarm(swarmOf(pool, provisioned), { app: inputs.config.app, nodes: provisioned, encrypted, formerIds }, { log, change, note });
  // preemptible pools: each of their nodes hands its tasks off when the cloud shuts it down
  const byName = (name: string) => provisioned.find((n) => n.name === name)!;
  await installPoolHandoff({ config: inputs.config, root: inputs.root, manager: provisioned[0]!, nodes: provisioned, remote: (name) => pool.remote(byName(name)), log, change, note });
  return outcome;
}

/**
 * `bootstrap: ansible`: ansible/bootstrap.yml with the inventory node-up writes. SSH first, so each node's host
 * key is pinned in .depl/known_hosts before Ansible's ssh checks it strictly, and to ask each kernel about IPsec
 * (the encryption decision is node-up's, as for its own bootstrap); then the play; then the swarm as it is.
 */
async function bootstrapWithAnsible(
  inputs: NodeInputs, provisioned: ProvisionedNode[], previous: Inventory | null, pool: SshPool, log: Logger,
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
  const encrypted = networkEncryption(inputs.config.network.encrypted as EncryptionSetting, support, note);
  const roles = provisioned.map((node, i) => ({ name: node.name, address: node.address, role: i === 0 ? 'manager' as const : 'worker' as const, ...(node.pool !== undefined ? { pool: node.pool } : {}) }));
  const inventoryFile = await writeAnsibleInventory(inputs, roles, encrypted);
  const { recap } = await runPlaybook(ansiblePlaybookCommand({ inventory: inventoryFile, playbook: packagePath('ansible', 'bootstrap.yml') }), log, { cwd: inputs.root });
  for (const [host, counts] of recap) if (counts.changed > 0) change(`${host}: ${counts.changed} change${counts.changed === 1 ? '' : 's'} by ansible/bootstrap.yml`);

  const swarm = swarmOf(pool, provisioned);
  const liveIds = await Promise.all(provisioned.map(async (node) => (await swarm.info(node.name)).nodeId));
  const formerIds = (previous?.nodes ?? []).flatMap((n) => (n.nodeId ? [n.nodeId] : []));
  for (const id of staleNodeIds(await swarm.nodeList(), liveIds, formerIds)) {
    await swarm.removeEntry(id);
    change(`swarm: removed stale node entry ${id.slice(0, 12)}`);
  }
  const list = await waitReady(swarm, liveIds, provisioned.map((n) => n.name));
  const name = overlayNetworkName(inputs.config.app);
  const facts = await swarm.network(name);
  if (facts === null) throw new OperationError(`ansible/bootstrap.yml left no network ${name} on the manager`, 'Look at the play\'s output above, then re-run node-up.', 'NETWORK_MISMATCH');
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

/** Shrinking: the nodes that go are drained, leave the swarm and lose their entry (planned: src/plan/swarm-plan.ts planShrink). */
async function drainSurplus(previous: Inventory, surplus: Inventory['nodes'], pool: SshPool, log: Logger, change: (line: string) => void): Promise<void> {
  const swarm = swarmNodesOverSsh({
    remote: async (name) => pool.remote(previous.nodes.find((n) => n.name === name)!, 5000).catch(() => null),
    manager: () => pool.remote(previous.nodes[0]!, 30_000),
    knownHosts: pool.knownHosts,
  });
  await shrinkSwarm(swarm, surplus.map((n) => ({ name: n.name, ...(n.nodeId ? { nodeId: n.nodeId } : {}) })), { log, change, note: (line) => log.warn(line) });
  for (const node of surplus) await pool.forget(node);
}

/**
 * ansible/generated_hosts.ini beside depl.yaml, with the pool nodes in their groups; with preemptible pool nodes,
 * the hand-off's files under .depl/pool-handoff/ for the play to copy. Returns the inventory's path.
 */
async function writeAnsibleInventory(inputs: Pick<NodeInputs, 'config' | 'root' | 'sshKey'>, nodes: InventoryNode[], networkEncrypted: boolean): Promise<string> {
  const { config, root } = inputs;
  const file = path.resolve(ansibleInventoryPath(inputs));
  const preemptible = new Set(preemptibleNodes(config, nodes).map((n) => n.name));
  const manager = nodes.find((n) => n.role === 'manager');
  const handoffDir = preemptible.size > 0 && manager !== undefined ? await writePoolHandoffTree(config, root, manager.address) : undefined;
  const text = renderAnsibleInventory({
    nodes: nodes.map((n) => (preemptible.has(n.name) ? { ...n, preemptible: true } : n)),
    ...(handoffDir !== undefined ? { poolHandoffDir: path.resolve(handoffDir) } : {}),
    app: config.app,
    networkEncrypted,
    user: config.ssh.user,
    port: config.ssh.port,
    keyFile: inputs.sshKey,
    knownHostsFile: knownHostsPath(inputs),
  });
  await writeFileAtomicLocal(file, text);
  return file;
}
