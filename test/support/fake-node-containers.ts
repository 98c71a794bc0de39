import type { StackServers } from '../../src/apply/providers/types.js';

/**
 * The local provider's node containers as depl hibernate and wake see them (src/apply/providers/local.ts
 * `servers`), for the fake cluster: each has Docker's state (running, exited, dead...), stop and start
 * finish before they return as Docker's do and are no-ops when already done (Docker's 304), and the node's
 * swarm state follows its container: Down once stopped, Ready a moment after it starts (dockerd boots and
 * rejoins). `nodeStates` is the fake cluster's swarm node table.
 */
export interface FakeNodeContainers {
  servers: StackServers;
  /** Container id -> Docker state, in node order. */
  states: Map<string, string>;
  /** How many stop and start calls reached "Docker" (repeats included). */
  calls: { stop: number; start: number };
}

export function fakeNodeContainers(nodeStates: Map<string, string>, names: string[], rejoinMs = 20): FakeNodeContainers {
  const states = new Map(names.map((name) => [`c-${name}`, 'running']));
  for (const name of names) nodeStates.set(name, 'Ready');
  const calls = { stop: 0, start: 0 };
  const nameOf = (id: string) => id.replace(/^c-/, '');
  const known = (id: string) => {
    if (!states.has(id)) throw Object.assign(new Error(`No such container: ${id}`), { statusCode: 404 });
  };
  const servers: StackServers = {
    instances: 'node-containers',
    list: async () => [...states.entries()].map(([id, status]) => ({ id, name: nameOf(id), status, taskState: null })),
    shelve: async ({ id }) => {
      known(id);
      calls.stop += 1;
      if (states.get(id) === 'running') {
        states.set(id, 'exited');
        nodeStates.set(nameOf(id), 'Down');
      }
    },
    unshelve: async ({ id }) => {
      known(id);
      calls.start += 1;
      if (states.get(id) !== 'running') {
        states.set(id, 'running');
        setTimeout(() => nodeStates.set(nameOf(id), 'Ready'), rejoinMs);
      }
    },
  };
  return { servers, states, calls };
}
