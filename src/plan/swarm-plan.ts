import {
  decideManager, decideWorker, desiredNodeLabels, missingLabels, networkEncryptionMismatch, overlayNetworkName,
  type NetworkFacts, type SwarmInfo, type SwarmNodeRow,
} from './bootstrap.js';
import type { ChangePlan } from './change-plan.js';

/**
 * node-up's swarm part as data: from what the nodes and the manager report, the steps that make them one swarm
 * (init, leave, join, stale entries removed, labels, the app's overlay network), and the steps that take
 * surplus nodes out before a shrink. src/workflows/node-up.ts reads the facts, applies the plan with applyPlan
 * and `depl node-up --dry-run` prints it. Every step is planned from what is there, so the next node-up after
 * an interruption plans only what is left.
 */

export type SwarmStep =
  | { kind: 'init-swarm'; describe: string; node: string; address: string }
  | { kind: 'leave-swarm'; describe: string; node: string }
  | { kind: 'join-swarm'; describe: string; node: string; address: string; managerAddress: string }
  | { kind: 'remove-node-entry'; describe: string; nodeId: string }
  | { kind: 'label-node'; describe: string; node: string; labels: Record<string, string> }
  | { kind: 'create-network'; describe: string; name: string; encrypted: boolean }
  | { kind: 'drain-node'; describe: string; node: string; nodeId: string };

export type SwarmPlan = ChangePlan<SwarmStep>;

/** One provisioned node as it reports itself (first = the manager). */
export interface SwarmNodeFacts {
  name: string;
  address: string;
  info: SwarmInfo;
  /** The worker pool (provider.pools) the node belongs to; never the manager. */
  pool?: string;
}

export interface SwarmFacts {
  app: string;
  nodes: SwarmNodeFacts[];
  /** The manager's node list; empty when the manager is in no swarm yet. */
  managerList: SwarmNodeRow[];
  /** Labels of the nodes the manager lists, by node id. */
  labels: ReadonlyMap<string, Record<string, string>>;
  /** The app's network on the manager, null when there is none. */
  network: NetworkFacts | null;
  /** Whether the network is to be encrypted (node-up's decision from every node's IPsec support). */
  encrypted: boolean;
  /** Node ids node-up recorded before (the inventory): one no live node answers for is stale whatever its status. */
  formerIds: readonly string[];
}

export type SwarmPlanOutcome = { ok: true; plan: SwarmPlan } | { ok: false; refuse: string; hint: string; code: 'SWARM_MANAGER' | 'NETWORK_MISMATCH' };

const short = (id: string) => id.slice(0, 12);

/** The steps that bring the provisioned nodes to one swarm with the app's network, or a refusal before any. */
export function planSwarm(facts: SwarmFacts, command = 'depl node-up'): SwarmPlanOutcome {
  const [manager, ...workers] = facts.nodes;
  if (manager === undefined) return { ok: false, refuse: 'no nodes to form a swarm of', hint: 'Check provider.nodes in depl.yaml.', code: 'SWARM_MANAGER' };
  const steps: SwarmStep[] = [];
  const notes: string[] = [];

  const managerAction = decideManager(manager.info);
  if (typeof managerAction === 'object') {
    return { ok: false, refuse: `${manager.name} (${manager.address}) ${managerAction.refuse}`, hint: "Fix it on the node (ssh there), or run 'depl node-down' and 'depl node-up' to start afresh.", code: 'SWARM_MANAGER' };
  }
  // a new swarm lists no node yet: every worker joins it
  const managerList = managerAction === 'init' ? [] : facts.managerList;
  if (managerAction === 'init') steps.push({ kind: 'init-swarm', describe: `${manager.name}: initialise the swarm (manager, advertising ${manager.address})`, node: manager.name, address: manager.address });

  // node ids that stay as they are; nodes that (re)join get a new id
  const keptIds = new Map<string, string>();
  if (managerAction === 'ok') keptIds.set(manager.name, manager.info.nodeId);
  for (const worker of workers) {
    const action = decideWorker(worker.info, managerList);
    if (action === 'ok') {
      keptIds.set(worker.name, worker.info.nodeId);
      continue;
    }
    if (action === 'rejoin') steps.push({ kind: 'leave-swarm', describe: `${worker.name}: leave the swarm it is in (state ${worker.info.state})`, node: worker.name });
    steps.push({ kind: 'join-swarm', describe: `${worker.name}: join the swarm as a worker of ${manager.address}`, node: worker.name, address: worker.address, managerAddress: manager.address });
  }

  for (const id of staleEntries(managerList, facts, new Set(keptIds.values()))) {
    steps.push({ kind: 'remove-node-entry', describe: `swarm: remove the stale node entry ${short(id)}`, nodeId: id });
  }

  facts.nodes.forEach((node, index) => {
    const id = keptIds.get(node.name);
    const current = id === undefined ? {} : facts.labels.get(id) ?? {};
    const missing = missingLabels(current, desiredNodeLabels(node.name, index === 0, node.pool));
    if (missing) steps.push({ kind: 'label-node', describe: `${node.name}: label ${Object.entries(missing).map(([k, v]) => `${k}=${v}`).join(' ')}`, node: node.name, labels: missing });
  });

  const name = overlayNetworkName(facts.app);
  // a new swarm has no overlay network, whatever the manager's engine had before
  const network = managerAction === 'init' ? null : facts.network;
  if (network === null) {
    steps.push({ kind: 'create-network', describe: `swarm: create the overlay network ${name}${facts.encrypted ? ' (encrypted)' : ''}`, name, encrypted: facts.encrypted });
  } else {
    if (network.driver !== 'overlay' || !network.attachable) {
      return { ok: false, refuse: `network ${name} exists on the manager but is "${network.driver}", attachable=${network.attachable}`, hint: `Remove it on the manager (docker network rm ${name}) and re-run node-up.`, code: 'NETWORK_MISMATCH' };
    }
    const mismatch = networkEncryptionMismatch(name, network, facts.encrypted);
    if (mismatch) notes.push(mismatch);
  }
  return { ok: true, plan: { command, notes, steps } };
}

/**
 * Entries of the manager's list no provisioned node will answer for once the plan has run: a recreated node's
 * old entry under the same hostname, a removed node's "Down" one, an id recorded before that is not live.
 */
function staleEntries(managerList: SwarmNodeRow[], facts: SwarmFacts, kept: ReadonlySet<string>): string[] {
  // the hostnames the provisioned nodes report, and those the manager shows for the nodes that keep their id
  const hostnames = new Set(facts.nodes.map((node) => node.info.hostname).filter((name) => name !== ''));
  for (const row of managerList) if (kept.has(row.id)) hostnames.add(row.hostname);
  const former = new Set(facts.formerIds);
  return managerList
    .filter((row) => !kept.has(row.id))
    .filter((row) => row.status !== 'Ready' || former.has(row.id) || hostnames.has(row.hostname))
    .map((row) => row.id);
}

/** A node node-up had, that a shrink takes out: its swarm id when it was recorded. */
export interface SurplusNode {
  name: string;
  nodeId?: string;
}

/**
 * Shrinking: the nodes that go, last first, are drained so their tasks move, leave the swarm and lose their
 * entry, before the provider removes their machines.
 */
export function planShrink(surplus: readonly SurplusNode[], managerList: readonly SwarmNodeRow[] | null, command = 'depl node-up'): SwarmPlan {
  const steps: SwarmStep[] = [];
  for (const node of [...surplus].reverse()) {
    // an unreadable list (the manager did not answer): the recorded id is tried, as the swarm may still have it
    const id = node.nodeId !== undefined && (managerList === null || managerList.some((row) => row.id === node.nodeId)) ? node.nodeId : undefined;
    if (id !== undefined) steps.push({ kind: 'drain-node', describe: `${node.name}: drain (its tasks move to the other nodes)`, node: node.name, nodeId: id });
    steps.push({ kind: 'leave-swarm', describe: `${node.name}: leave the swarm`, node: node.name });
    if (id !== undefined) steps.push({ kind: 'remove-node-entry', describe: `swarm: remove ${node.name}'s entry ${short(id)}`, nodeId: id });
  }
  return { command, notes: surplus.length > 0 ? [`shrinking: ${surplus.map((n) => n.name).join(', ')} go`] : [], steps };
}
