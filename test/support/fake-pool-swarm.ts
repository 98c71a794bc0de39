import type { PoolSwarm } from '../../src/autoscaler/pool-swarm.js';
import type { PoolSwarmNode } from '../../src/plan/pool-drain.js';

/**
 * The pool nodes of a swarm for the autoscaler's unit tests: one node per live pool server of the OpenStack
 * emulator (hostname = the server's name, as Nova sets it), each with its availability and its running tasks.
 * A drained node keeps its tasks until the test says they stopped (their SIGTERM handlers handed the work
 * back), or never (a task that ignores SIGTERM). Every drain and activation is logged with how many stack
 * updates Heat had been asked for by then, so a test sees the order of the two.
 */
export interface FakePoolSwarm extends PoolSwarm {
  /** Running tasks by hostname (a node not listed runs none). */
  tasks: Map<string, number>;
  availability: Map<string, string>;
  log: Array<{ change: string; stackUpdatesBefore: number }>;
}

export function fakePoolSwarm(pool: string, liveServers: () => string[], stackUpdates: () => number): FakePoolSwarm {
  const tasks = new Map<string, number>();
  const availability = new Map<string, string>();
  const log: FakePoolSwarm['log'] = [];
  const idOf = (hostname: string) => `node-${hostname}`;
  const hostOf = (id: string) => {
    const found = liveServers().find((h) => idOf(h) === id);
    if (found === undefined) throw new Error(`node ${id} not found`);
    return found;
  };
  return {
    tasks, availability, log,
    async nodes(asked) {
      if (asked !== pool) return [];
      return liveServers().map((hostname): PoolSwarmNode => ({ id: idOf(hostname), hostname, availability: availability.get(hostname) ?? 'active', state: 'ready', tasks: tasks.get(hostname) ?? 0 }));
    },
    async drain(id) {
      const host = hostOf(id);
      availability.set(host, 'drain');
      log.push({ change: `drain ${host}`, stackUpdatesBefore: stackUpdates() });
    },
    async activate(id) {
      const host = hostOf(id);
      availability.set(host, 'active');
      log.push({ change: `activate ${host}`, stackUpdatesBefore: stackUpdates() });
    },
  };
}
