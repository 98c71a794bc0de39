/**
 * The autoscale controller's pool shrink, drain first: before Heat removes a pool's surplus nodes, they are
 * drained in the swarm (availability drain: the swarm stops their tasks with each service's stopGracePeriod, so a
 * crawler worker hands its jobs back on SIGTERM, and starts them on the nodes that stay), and only once none of
 * their tasks runs, or the grace period is over, is the stack updated to the smaller count.
 *
 * Which nodes go: the newest, the highest indexes (`<stack>-<pool>-<index>` with index >= the new count), because
 * those are the ones Heat's ResourceGroup deletes when its count drops. Choosing others (the ones with the fewest
 * tasks) would need the group's `removal_policies`, which Heat keeps in the stack for good and which leaves gaps in
 * the names; the queue is empty when a pool shrinks (src/plan/pool-autoscale.ts), so every node is as idle as the
 * next and nothing is gained.
 *
 * One call per reading, as the rest of the controller: the swarm's own state carries the shrink from reading to
 * reading (a drained node stays drained), so a controller killed between the drain and the stack update finds the
 * nodes drained at its next reading and goes on; only when the grace period started is kept in its memory (lost
 * with a kill before the state was written: the period then starts again, which errs on waiting longer).
 * No clock, no network: test/unit/plan/pool-drain.test.ts.
 */

/** A node of the pool as the manager's Engine lists it. */
export interface PoolSwarmNode {
  id: string;
  /** The swarm's hostname for it: the server's name (`<stack>-<pool>-<index>`). */
  hostname: string;
  /** Spec.Availability: active, pause or drain. */
  availability: string;
  /** Status.State: ready, down, unknown, disconnected. */
  state: string;
  /** Tasks still running (or starting) on the node. */
  tasks: number;
}

export interface PoolShrinkRead {
  stack: string;
  pool: string;
  from: number;
  to: number;
  /** The pool's nodes in the swarm (label depl.pool=<pool>). */
  nodes: readonly PoolSwarmNode[];
  /** When the controller drained them (its memory), null when it does not know. */
  drainingSince: number | null;
  now: number;
  graceMs: number;
}

export type PoolShrinkStep =
  | { kind: 'drain-nodes'; describe: string; nodes: Array<{ id: string; hostname: string }> }
  | { kind: 'wait-drained'; describe: string; drainingSince: number }
  | { kind: 'update-stack'; describe: string; overdue: Array<{ hostname: string; tasks: number }> };

/** The pool's index of a node named `<stack>-<pool>-<index>`, or null for any other name. */
export function poolNodeIndex(stack: string, pool: string, hostname: string): number | null {
  const prefix = `${stack}-${pool}-`.toLowerCase();
  const name = hostname.toLowerCase().split('.')[0]!;
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : null;
}

/** The nodes a shrink to `to` takes away: the pool's, at index `to` and above (Heat's choice), highest first. */
export function goingPoolNodes(stack: string, pool: string, to: number, nodes: readonly PoolSwarmNode[]): PoolSwarmNode[] {
  return nodes
    .map((node) => ({ node, index: poolNodeIndex(stack, pool, node.hostname) }))
    .filter((n): n is { node: PoolSwarmNode; index: number } => n.index !== null && n.index >= to)
    .sort((a, b) => b.index - a.index)
    .map((n) => n.node);
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

export function planPoolShrink(read: PoolShrinkRead): PoolShrinkStep {
  const going = goingPoolNodes(read.stack, read.pool, read.to, read.nodes);
  const shrink = `${read.pool} ${read.from} -> ${read.to}`;
  const undrained = going.filter((n) => n.availability !== 'drain');
  if (undrained.length > 0) {
    return {
      kind: 'drain-nodes', nodes: undrained.map((n) => ({ id: n.id, hostname: n.hostname })),
      describe: `${shrink}: drain ${undrained.map((n) => n.hostname).join(', ')} first (their tasks stop with their grace period and start on the nodes that stay)`,
    };
  }
  // a node that is down runs nothing the swarm could move any more: it does not hold the shrink up
  const busy = going.filter((n) => n.tasks > 0 && n.state.toLowerCase() === 'ready');
  if (busy.length === 0) {
    return { kind: 'update-stack', overdue: [], describe: `${shrink}: ${going.length === 0 ? 'no node of the pool is in the swarm' : `${going.map((n) => n.hostname).join(', ')} drained`}; the stack goes to ${read.to}` };
  }
  const since = read.drainingSince ?? read.now;
  const waited = read.now - since;
  const running = busy.map((n) => `${n.hostname} (${n.tasks} task${n.tasks === 1 ? '' : 's'})`).join(', ');
  if (waited < read.graceMs) {
    return { kind: 'wait-drained', drainingSince: since, describe: `${shrink}: draining, still running on ${running}; waited ${seconds(waited)} of ${seconds(read.graceMs)}` };
  }
  return {
    kind: 'update-stack', overdue: busy.map((n) => ({ hostname: n.hostname, tasks: n.tasks })),
    describe: `${shrink}: ${running} still running after the ${seconds(read.graceMs)} grace period; the stack goes to ${read.to} anyway (what they did not hand back is lost with them)`,
  };
}

/** What an operator does about nodes that did not drain in time (depl status shows it with the pool). */
export const OVERDUE_HINT = "a task that does not stop on SIGTERM within its service's stopGracePeriod keeps its node from draining: see docker service ps <service> and its logs, give it a SIGTERM handler that hands its work back, and look for work it did not hand back (depl crawl status)";

/** Default time the controller gives a drain before the stack is updated anyway: the hand-off's own bound on a preempted node (570 s). */
export const POOL_DRAIN_GRACE_MS = 570_000;
