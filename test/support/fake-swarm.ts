import type { SwarmNodes } from '../../src/apply/swarm-nodes.js';
import type { NetworkFacts, SwarmInfo, SwarmNodeRow } from '../../src/plan/bootstrap.js';

/**
 * An in-memory swarm for node-up's unit tests: machines with their own swarm state, the manager's node list
 * with labels, networks. It answers node-up's reads as the nodes would and refuses what Docker refuses (joining
 * twice, a network made twice, labelling an entry that is gone), so a test shows that a re-run after an
 * interruption plans only what is left instead of repeating what was done.
 */
export interface FakeMachine {
  name: string;
  address: string;
  hostname: string;
  state: SwarmInfo['state'];
  nodeId: string;
  isManager: boolean;
}

export interface FakeEntry extends SwarmNodeRow {
  labels: Record<string, string>;
}

export interface FakeSwarm extends SwarmNodes {
  machines: Map<string, FakeMachine>;
  entries: Map<string, FakeEntry>;
  networks: Map<string, NetworkFacts>;
  /** Every change made, in order (`join node-2`, `label <id>`...). */
  changes: string[];
  /** A machine made anew under the same name (a recreated VM): out of any swarm, new host. */
  recreate(name: string): void;
}

export function fakeSwarm(nodes: readonly { name: string; address: string }[]): FakeSwarm {
  let next = 0;
  const newId = () => `id${String(++next).padStart(12, '0')}`;
  const machines = new Map<string, FakeMachine>(nodes.map((n) => [n.name, { name: n.name, address: n.address, hostname: n.name, state: 'inactive', nodeId: '', isManager: false }]));
  const entries = new Map<string, FakeEntry>();
  const networks = new Map<string, NetworkFacts>();
  const changes: string[] = [];
  const machine = (name: string) => {
    const found = machines.get(name);
    if (!found) throw new Error(`${name} cannot be reached`);
    return found;
  };
  const manager = () => {
    const found = [...machines.values()].find((m) => m.isManager && m.state === 'active');
    if (!found) throw new Error('This node is not a swarm manager.');
    return found;
  };
  const entry = (id: string) => {
    manager();
    const found = entries.get(id);
    if (!found) throw new Error(`node ${id} not found`);
    return found;
  };
  return {
    machines, entries, networks, changes,
    recreate(name) {
      const old = machine(name);
      machines.set(name, { ...old, state: 'inactive', nodeId: '', isManager: false });
      // the manager notices the old machine is gone only later: its entry stays Ready for a while
    },
    async info(name) {
      const m = machine(name);
      return { state: m.state, nodeId: m.nodeId, nodeAddr: m.state === 'active' ? m.address : '', isManager: m.isManager, clusterId: m.isManager ? 'cluster' : '', managerAddrs: [], hostname: m.hostname };
    },
    async nodeList() {
      manager();
      return [...entries.values()].map(({ labels: _labels, ...row }) => row);
    },
    async nodeLabels(ids) {
      return new Map(ids.map((id) => [id, { ...entry(id).labels }]));
    },
    async network(name) {
      manager();
      return networks.get(name) ?? null;
    },
    async init(name) {
      const m = machine(name);
      if (m.state !== 'inactive') throw new Error('This node is already part of a swarm.');
      changes.push(`init ${name}`);
      entries.clear();
      networks.clear();
      Object.assign(m, { state: 'active', nodeId: newId(), isManager: true });
      entries.set(m.nodeId, { id: m.nodeId, hostname: m.hostname, status: 'Ready', availability: 'Active', managerStatus: 'Leader', labels: {} });
    },
    async leave(name) {
      const m = machines.get(name);
      if (!m || m.state === 'inactive') return;
      changes.push(`leave ${name}`);
      const gone = entries.get(m.nodeId);
      if (gone) gone.status = 'Down';
      Object.assign(m, { state: 'inactive', nodeId: '', isManager: false });
    },
    async join(name, address, managerAddress) {
      const m = machine(name);
      const lead = manager();
      if (lead.address !== managerAddress) throw new Error(`no manager at ${managerAddress}`);
      if (m.state !== 'inactive') throw new Error('This node is already part of a swarm.');
      changes.push(`join ${name}`);
      Object.assign(m, { state: 'active', nodeId: newId(), address });
      entries.set(m.nodeId, { id: m.nodeId, hostname: m.hostname, status: 'Ready', availability: 'Active', managerStatus: '', labels: {} });
    },
    async removeEntry(id) {
      manager();
      if (!entries.has(id)) return;
      changes.push(`remove ${id}`);
      entries.delete(id);
    },
    async label(id, labels) {
      const e = entry(id);
      changes.push(`label ${id} ${Object.keys(labels).join(',')}`);
      e.labels = { ...e.labels, ...labels };
    },
    async createNetwork(app, encrypted) {
      manager();
      const name = `${app}-net`;
      if (networks.has(name)) throw new Error(`network with name ${name} already exists`);
      changes.push(`network ${name}`);
      networks.set(name, { driver: 'overlay', attachable: true, encrypted });
    },
    async drain(id) {
      entry(id).availability = 'Drain';
      changes.push(`drain ${id}`);
      return true;
    },
  };
}
