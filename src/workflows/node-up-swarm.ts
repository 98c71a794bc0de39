import type { SwarmNodes } from '../apply/swarm-nodes.js';
import { OperationError } from '../errors.js';
import { overlayNetworkName, type SwarmNodeRow } from '../plan/bootstrap.js';
import { planShrink, planSwarm, type SurplusNode, type SwarmFacts, type SwarmPlan, type SwarmStep } from '../plan/swarm-plan.js';
import { OVERDUE_HINT } from '../plan/pool-drain.js';
import type { Logger } from '../util/log.js';
import { pollUntil } from '../util/poll.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';

/**
 * node-up's swarm part: read what the nodes report, plan (src/plan/swarm-plan.ts), apply that plan, and read
 * the outcome. `--dry-run` prints the plan read the same way. A node-up killed after any step leaves a swarm
 * the next node-up reads and plans the rest of (test/unit/bootstrap/node-up-swarm.test.ts).
 */

export interface SwarmTarget {
  app: string;
  /** The provisioned nodes; the first is the manager. A pool's nodes name their pool. */
  nodes: readonly { name: string; address: string; pool?: string }[];
  encrypted: boolean;
  formerIds: readonly string[];
}

export interface SwarmOutcome {
  /** Swarm node ids, in the order of the nodes. */
  liveIds: string[];
  list: SwarmNodeRow[];
  network: { name: string; encrypted: boolean };
}

const READY_WAIT_MS = 90_000;
export const DRAIN_WAIT_MS = 120_000;

/** What the nodes and the manager report now (every node in parallel). */
export async function readSwarmFacts(swarm: SwarmNodes, target: SwarmTarget): Promise<SwarmFacts> {
  const infos = await Promise.all(target.nodes.map((node) => swarm.info(node.name)));
  const manager = infos[0];
  const inSwarm = manager?.state === 'active' && manager.isManager;
  const managerList = inSwarm ? await swarm.nodeList() : [];
  const [labels, network] = inSwarm
    ? await Promise.all([swarm.nodeLabels(managerList.map((row) => row.id)), swarm.network(overlayNetworkName(target.app))])
    : [new Map<string, Record<string, string>>(), null];
  return {
    app: target.app,
    nodes: target.nodes.map((node, i) => ({ name: node.name, address: node.address, info: infos[i]!, ...(node.pool !== undefined ? { pool: node.pool } : {}) })),
    managerList,
    labels,
    network,
    encrypted: target.encrypted,
    formerIds: target.formerIds,
  };
}

/** The plan for these facts, or the refusal as an error (nothing changed). */
export function swarmPlanOrRefuse(facts: SwarmFacts): SwarmPlan {
  const outcome = planSwarm(facts);
  if (!outcome.ok) throw new OperationError(outcome.refuse, outcome.hint, outcome.code);
  return outcome.plan;
}

export interface ApplySwarmOptions {
  log: Logger;
  /** One line per change made (node-up's summary). */
  change: (line: string) => void;
  note: (line: string) => void;
  afterStep?: ApplyPlanOptions['afterStep'];
}

/** Reads, plans and applies node-up's swarm part; then waits until every node is Ready and reports the swarm. */
export async function convergeSwarm(swarm: SwarmNodes, target: SwarmTarget, options: ApplySwarmOptions): Promise<SwarmOutcome> {
  const facts = await readSwarmFacts(swarm, target);
  const plan = swarmPlanOrRefuse(facts);
  for (const note of plan.notes) options.note(note);
  await applyPlan(plan, swarmApplier(swarm, target.app, options), { log: options.log, ...(options.afterStep ? { afterStep: options.afterStep } : {}) });
  const liveIds = await Promise.all(target.nodes.map(async (node) => (await swarm.info(node.name)).nodeId));
  const list = await waitReady(swarm, liveIds, target.nodes.map((n) => n.name));
  const created = plan.steps.find((s) => s.kind === 'create-network');
  return { liveIds, list, network: { name: overlayNetworkName(target.app), encrypted: created?.kind === 'create-network' ? created.encrypted : facts.network?.encrypted ?? target.encrypted } };
}

/** Shrinking, before the provider removes the machines: the surplus nodes drained, out of the swarm, their entries gone. */
export async function shrinkSwarm(swarm: SwarmNodes, surplus: readonly SurplusNode[], options: ApplySwarmOptions): Promise<void> {
  const list = await swarm.nodeList().catch(() => null);
  const plan = planShrink(surplus, list);
  await applyPlan(plan, swarmApplier(swarm, '', options, false), { log: options.log, ...(options.afterStep ? { afterStep: options.afterStep } : {}) });
  for (const node of surplus) options.change(`${node.name}: drained and removed from the swarm`);
}

/** Runs one step of either plan; each looks again at what it needs, so a step done twice does nothing more. */
function swarmApplier(swarm: SwarmNodes, app: string, { log, change }: ApplySwarmOptions, staleEntries = true) {
  return {
    async run(step: SwarmStep): Promise<void> {
      switch (step.kind) {
        case 'init-swarm':
          await swarm.init(step.node, step.address);
          change(`${step.node}: swarm initialised (manager)`);
          return;
        case 'leave-swarm':
          await swarm.leave(step.node);
          return;
        case 'join-swarm':
          await swarm.join(step.node, step.address, step.managerAddress);
          change(`${step.node}: joined the swarm`);
          return;
        case 'remove-node-entry':
          await swarm.removeEntry(step.nodeId);
          // a shrink reports each node it took out once, after its steps
          if (staleEntries) change(`swarm: removed stale node entry ${step.nodeId.slice(0, 12)}`);
          return;
        case 'label-node': {
          // the node's id now: one that joined in this run has a new one
          const { nodeId } = await swarm.info(step.node);
          await swarm.label(nodeId, step.labels);
          change(`${step.node}: labels ${Object.entries(step.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`);
          return;
        }
        case 'create-network':
          await swarm.createNetwork(app, step.encrypted);
          change(`swarm: overlay network ${step.name} created${step.encrypted ? ' (encrypted)' : ''}`);
          return;
        case 'drain-node':
          if (!(await swarm.drain(step.nodeId, DRAIN_WAIT_MS))) log.warn(`${step.node}: tasks still running after ${DRAIN_WAIT_MS / 1000} s of draining; removing it anyway: ${OVERDUE_HINT}`);
          return;
      }
    },
  };
}

/** Until every live node is Ready in the manager's list; returns the list. */
export async function waitReady(swarm: SwarmNodes, liveIds: string[], names: string[]): Promise<SwarmNodeRow[]> {
  let notReady: string[] = [];
  return pollUntil(async () => {
    const list = await swarm.nodeList();
    notReady = liveIds.filter((id) => list.find((row) => row.id === id)?.status !== 'Ready');
    return notReady.length === 0 ? list : undefined;
  }, {
    timeoutMs: READY_WAIT_MS,
    intervalMs: 500,
    onTimeout: () => {
      const which = notReady.map((id) => names[liveIds.indexOf(id)] ?? id).join(', ');
      throw new OperationError(`not Ready after ${READY_WAIT_MS / 1000} s: ${which}`, "Look at `docker node ls` on the manager; re-running 'depl node-up' repairs nodes that failed half-way.", 'SWARM_NOT_READY');
    },
  });
}
