import { describe, expect, it } from 'vitest';
import type { SwarmInfo, SwarmNodeRow } from '../../../src/plan/bootstrap.js';
import { planShrink, planSwarm, type SwarmFacts, type SwarmPlan } from '../../../src/plan/swarm-plan.js';
import { convergeSwarm, readSwarmFacts, shrinkSwarm, type SwarmTarget } from '../../../src/workflows/node-up-swarm.js';
import { fakeSwarm, type FakeSwarm } from '../../support/fake-swarm.js';
import { silentLogger } from '../../../src/util/log.js';

const nodes = [
  { name: 'node-1', address: '10.0.0.11' },
  { name: 'node-2', address: '10.0.0.12' },
  { name: 'node-3', address: '10.0.0.13' },
];
const target: SwarmTarget = { app: 'shop', nodes, encrypted: false, formerIds: [] };

const inactive: SwarmInfo = { state: 'inactive', nodeId: '', nodeAddr: '', isManager: false, clusterId: '', managerAddrs: [], hostname: '' };
const active = (nodeId: string, hostname: string, isManager = false): SwarmInfo => ({ ...inactive, state: 'active', nodeId, isManager, hostname });
const row = (id: string, hostname: string, status = 'Ready'): SwarmNodeRow => ({ id, hostname, status, availability: 'Active', managerStatus: '' });

const healthyFacts = (): SwarmFacts => ({
  app: 'shop',
  nodes: [
    { ...nodes[0]!, info: active('m1', 'node-1', true) },
    { ...nodes[1]!, info: active('w2', 'node-2') },
    { ...nodes[2]!, info: active('w3', 'node-3') },
  ],
  managerList: [row('m1', 'node-1'), row('w2', 'node-2'), row('w3', 'node-3')],
  labels: new Map<string, Record<string, string>>([['m1', { 'depl.node': 'node-1', 'depl.edge': 'true' }], ['w2', { 'depl.node': 'node-2' }], ['w3', { 'depl.node': 'node-3' }]]),
  network: { driver: 'overlay', attachable: true, encrypted: false },
  encrypted: false,
  formerIds: [],
});

const kinds = (plan: SwarmPlan) => plan.steps.map((s) => `${s.kind} ${'node' in s ? s.node : 'nodeId' in s ? s.nodeId : s.name}`);

function planned(facts: SwarmFacts): SwarmPlan {
  const outcome = planSwarm(facts);
  if (!outcome.ok) throw new Error(outcome.refuse);
  return outcome.plan;
}

describe('node-up swarm plan (data)', () => {
  it('fresh nodes: init on the first, joins, labels, the network', () => {
    const facts: SwarmFacts = { ...healthyFacts(), nodes: nodes.map((n) => ({ ...n, info: inactive })), managerList: [], labels: new Map(), network: null, encrypted: true };
    const plan = planned(facts);
    expect(plan.steps).toEqual([
      { kind: 'init-swarm', describe: 'node-1: initialise the swarm (manager, advertising 10.0.0.11)', node: 'node-1', address: '10.0.0.11' },
      { kind: 'join-swarm', describe: 'node-2: join the swarm as a worker of 10.0.0.11', node: 'node-2', address: '10.0.0.12', managerAddress: '10.0.0.11' },
      { kind: 'join-swarm', describe: 'node-3: join the swarm as a worker of 10.0.0.11', node: 'node-3', address: '10.0.0.13', managerAddress: '10.0.0.11' },
      { kind: 'label-node', describe: 'node-1: label depl.node=node-1 depl.edge=true', node: 'node-1', labels: { 'depl.node': 'node-1', 'depl.edge': 'true' } },
      { kind: 'label-node', describe: 'node-2: label depl.node=node-2', node: 'node-2', labels: { 'depl.node': 'node-2' } },
      { kind: 'label-node', describe: 'node-3: label depl.node=node-3', node: 'node-3', labels: { 'depl.node': 'node-3' } },
      { kind: 'create-network', describe: 'swarm: create the overlay network shop-net (encrypted)', name: 'shop-net', encrypted: true },
    ]);
    expect(plan.notes).toEqual([]);
  });

  it('a healthy cluster: nothing to do', () => {
    expect(planned(healthyFacts()).steps).toEqual([]);
  });

  it('a recreated worker joins again, its old entry goes and it is labelled; a half-labelled manager gets the label it lacks', () => {
    const facts = healthyFacts();
    facts.nodes[2] = { ...nodes[2]!, info: { ...inactive, hostname: 'node-3' } };
    facts.labels = new Map<string, Record<string, string>>([['m1', { 'depl.node': 'node-1' }], ['w2', { 'depl.node': 'node-2' }], ['w3', { 'depl.node': 'node-3' }]]);
    expect(kinds(planned(facts))).toEqual(['join-swarm node-3', 'remove-node-entry w3', 'label-node node-1', 'label-node node-3']);
    expect(planned(facts).steps.find((s) => s.kind === 'label-node' && s.node === 'node-1')).toMatchObject({ labels: { 'depl.edge': 'true' } });
  });

  it('a worker of another swarm leaves before it joins; a Down entry and a recorded former id are stale', () => {
    const facts = healthyFacts();
    facts.nodes[1] = { ...nodes[1]!, info: active('x9', 'node-2') };
    facts.managerList = [...facts.managerList, row('old', 'gone-host', 'Down'), row('former', 'other-host')];
    facts.formerIds = ['former'];
    expect(kinds(planned(facts))).toEqual(['leave-swarm node-2', 'join-swarm node-2', 'remove-node-entry w2', 'remove-node-entry old', 'remove-node-entry former', 'label-node node-2']);
  });

  it('refuses before any step: a manager that is a worker elsewhere, a network of the wrong kind', () => {
    const worker = healthyFacts();
    worker.nodes[0] = { ...nodes[0]!, info: active('m1', 'node-1', false) };
    expect(planSwarm(worker)).toMatchObject({ ok: false, code: 'SWARM_MANAGER', refuse: expect.stringContaining('worker of another swarm') });
    expect(planSwarm({ ...healthyFacts(), network: { driver: 'bridge', attachable: false, encrypted: false } })).toMatchObject({ ok: false, code: 'NETWORK_MISMATCH' });
  });

  it('notes an existing network whose encryption differs (it cannot be changed in place)', () => {
    expect(planned({ ...healthyFacts(), encrypted: true }).notes).toEqual([expect.stringContaining('exists unencrypted although the nodes support encryption')]);
  });

  it('shrinking: the last node first, drained, out of the swarm, its entry removed', () => {
    const plan = planShrink([{ name: 'node-3', nodeId: 'w3' }, { name: 'node-4', nodeId: 'w4' }], [row('w3', 'node-3'), row('w4', 'node-4')]);
    expect(kinds(plan)).toEqual(['drain-node node-4', 'leave-swarm node-4', 'remove-node-entry w4', 'drain-node node-3', 'leave-swarm node-3', 'remove-node-entry w3']);
    // an entry already gone (an interrupted shrink) is not drained or removed again; the node still leaves
    expect(kinds(planShrink([{ name: 'node-3', nodeId: 'w3' }], [row('m1', 'node-1')]))).toEqual(['leave-swarm node-3']);
  });
});

/** What node-up leaves when it finished: one swarm, every node labelled, the network made, no stale entry. */
function expectConverged(swarm: FakeSwarm): void {
  const ids = nodes.map((n) => swarm.machines.get(n.name)!.nodeId);
  expect(ids.every((id) => id !== '')).toBe(true);
  expect([...swarm.entries.keys()].sort()).toEqual([...ids].sort());
  expect(nodes.map((n, i) => swarm.entries.get(ids[i]!)!.labels)).toEqual([
    { 'depl.node': 'node-1', 'depl.edge': 'true' }, { 'depl.node': 'node-2' }, { 'depl.node': 'node-3' },
  ]);
  expect(swarm.networks.get('shop-net')).toEqual({ driver: 'overlay', attachable: true, encrypted: false });
}

class Killed extends Error {}

async function run(swarm: FakeSwarm, options: { killAfter?: number; target?: SwarmTarget } = {}): Promise<string[]> {
  const changes: string[] = [];
  await convergeSwarm(swarm, options.target ?? target, {
    log: silentLogger,
    change: (line) => changes.push(line),
    note: () => {},
    ...(options.killAfter !== undefined ? { afterStep: (index: number) => { if (index === options.killAfter) throw new Killed(`killed after step ${index + 1}`); } } : {}),
  });
  return changes;
}

describe('node-up swarm part on a fake swarm, killed after every step', () => {
  it('from fresh nodes: the next node-up does only what is left, and a third changes nothing', async () => {
    const steps = planned(await readSwarmFacts(fakeSwarm(nodes), target)).steps.length;
    expect(steps).toBe(7);
    for (let kill = 0; kill < steps; kill++) {
      const swarm = fakeSwarm(nodes);
      await expect(run(swarm, { killAfter: kill })).rejects.toBeInstanceOf(Killed);
      const doneBefore = swarm.changes.length;
      expect(doneBefore).toBe(kill + 1);
      const left = planned(await readSwarmFacts(swarm, target));
      // nothing done is planned again: a node that joined is not joined twice, labels set are not set again
      expect(left.steps.length).toBe(steps - kill - 1);
      await run(swarm);
      expectConverged(swarm);
      expect(await run(swarm)).toEqual([]);
    }
  });

  it('a recreated worker: killed after its join, the next run removes its old entry and labels it', async () => {
    const swarm = fakeSwarm(nodes);
    await run(swarm);
    const oldId = swarm.machines.get('node-3')!.nodeId;
    swarm.recreate('node-3');
    const plan = planned(await readSwarmFacts(swarm, target));
    expect(kinds(plan)).toEqual(['join-swarm node-3', `remove-node-entry ${oldId}`, 'label-node node-3']);
    for (let kill = 0; kill < plan.steps.length; kill++) {
      const copy = fakeSwarm(nodes);
      await run(copy);
      copy.recreate('node-3');
      await expect(run(copy, { killAfter: kill })).rejects.toBeInstanceOf(Killed);
      await run(copy);
      expectConverged(copy);
      expect(await run(copy)).toEqual([]);
    }
  });

  it('shrinking from four nodes, killed after every step: the next run finishes taking the node out', async () => {
    const four = [...nodes, { name: 'node-4', address: '10.0.0.14' }];
    const fresh = async () => {
      const swarm = fakeSwarm(four);
      await run(swarm, { target: { ...target, nodes: four } });
      return swarm;
    };
    const surplus = async (swarm: FakeSwarm) => [{ name: 'node-4', nodeId: (await swarm.info('node-4')).nodeId || 'unknown' }];
    const first = await fresh();
    const id = (await first.info('node-4')).nodeId;
    const plan = planShrink([{ name: 'node-4', nodeId: id }], await first.nodeList());
    expect(kinds(plan)).toEqual(['drain-node node-4', 'leave-swarm node-4', `remove-node-entry ${id}`]);
    for (let kill = 0; kill < plan.steps.length; kill++) {
      const swarm = await fresh();
      const recorded = await surplus(swarm);
      const options = { log: silentLogger, change: () => {}, note: () => {} };
      await expect(shrinkSwarm(swarm, recorded, { ...options, afterStep: (index) => { if (index === kill) throw new Killed('killed'); } })).rejects.toBeInstanceOf(Killed);
      const before = swarm.changes.length;
      await shrinkSwarm(swarm, recorded, options);
      expect(swarm.entries.has(recorded[0]!.nodeId)).toBe(false);
      expect(swarm.machines.get('node-4')!.state).toBe('inactive');
      // the steps done before the kill are not done again (a drain of a gone entry, a second leave)
      expect(swarm.changes.slice(before).filter((c) => c.startsWith('leave')).length).toBe(kill >= 1 ? 0 : 1);
      expectConverged(swarm);
    }
  });
});
