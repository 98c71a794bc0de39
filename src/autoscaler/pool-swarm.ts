import type { EngineSocket } from '../apply/engine-socket.js';
import type { PoolSwarmNode } from '../plan/pool-drain.js';

/**
 * The controller's hand on the pool nodes in the swarm, through the manager's Engine API (the bind-mounted
 * socket): list a pool's nodes with their tasks, drain one. Drain is `docker node update --availability drain`
 * (the node's spec at the version it was read at).
 */
export interface PoolSwarm {
  /** The pool's nodes (label depl.pool=<pool>), with the tasks still running or starting on each. */
  nodes(pool: string): Promise<PoolSwarmNode[]>;
  drain(nodeId: string): Promise<void>;
  /** Back to availability active (a shrink that is not wanted any more). */
  activate(nodeId: string): Promise<void>;
}

interface EngineNode {
  ID: string;
  Version: { Index: number };
  Spec: { Availability?: string; Labels?: Record<string, string> } & Record<string, unknown>;
  Description?: { Hostname?: string };
  Status?: { State?: string };
}

/** Task states before a task ends: it still holds (or is about to hold) its node. */
const LIVE_TASK_STATES = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

export function poolSwarmOn(engine: EngineSocket): PoolSwarm {
  const filters = (f: Record<string, string[]>) => encodeURIComponent(JSON.stringify(f));
  const setAvailability = async (nodeId: string, availability: 'drain' | 'active') => {
    const node = await engine.getJson<EngineNode>(`/nodes/${encodeURIComponent(nodeId)}`, `inspect node ${nodeId}`);
    if (node.Spec.Availability === availability) return;
    const answer = await engine.request('POST', `/nodes/${encodeURIComponent(nodeId)}/update?version=${node.Version.Index}`, { ...node.Spec, Availability: availability });
    if (answer.status !== 200) throw new Error(`the Docker Engine refused to set node ${nodeId} to ${availability}: HTTP ${answer.status} ${answer.body.toString().slice(0, 200)}`);
  };
  return {
    async nodes(pool) {
      const nodes = await engine.getJson<EngineNode[]>(`/nodes?filters=${filters({ label: [`depl.pool=${pool}`] })}`, 'list the pool\'s nodes');
      return Promise.all(nodes.map(async (node) => {
        const tasks = await engine.getJson<Array<{ Status?: { State?: string } }>>(`/tasks?filters=${filters({ node: [node.ID] })}`, `list the tasks of node ${node.ID}`);
        return {
          id: node.ID,
          hostname: node.Description?.Hostname ?? '',
          availability: node.Spec.Availability ?? 'active',
          state: node.Status?.State ?? 'unknown',
          tasks: tasks.filter((t) => LIVE_TASK_STATES.has(t.Status?.State ?? '')).length,
        };
      }));
    },
    drain: (nodeId) => setAvailability(nodeId, 'drain'),
    activate: (nodeId) => setAvailability(nodeId, 'active'),
  };
}
