import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../../src/config/load.js';
import type { OpenStackProviderConfig } from '../../../src/config/schema.js';
import { templateDemand } from '../../../src/plan/allocation.js';
import { poolConstraints, poolsOf } from '../../../src/plan/pool-placement.js';
import {
  planPoolRecovery, poolCounts, poolNodeIndex, poolNodesFromOutputs, poolNotes, poolParameters, poolSurplus, withPools,
} from '../../../src/plan/pools.js';
import { planVersionServices } from '../../../src/plan/services.js';
import { planSwarm, type SwarmFacts } from '../../../src/plan/swarm-plan.js';
import { convergeSwarm } from '../../../src/workflows/node-up-swarm.js';
import { silentLogger } from '../../../src/util/log.js';
import { parseTemplate } from '../../support/openstack-emulator/template.js';
import { fakeSwarm } from '../../support/fake-swarm.js';

const base = {
  app: 'crawler',
  domain: 'crawler.example.org',
  services: { api: { image: 'x', port: 8000, http: true }, worker: { image: 'x', stopGracePeriod: '45s' }, db: { image: 'pg', volume: 'data:/var/lib/db' } },
};
const withProvider = (pools: unknown) => JSON.stringify({ ...base, provider: { type: 'openstack', pools } });
const crawl = { flavor: 'p3.small', count: '0..4', preemptible: true, services: ['worker'] };
const configWith = (pools: unknown) => parseConfig(withProvider(pools));
const poolsIn = (pools: unknown) => (configWith(pools).provider as OpenStackProviderConfig).pools;
const refusal = (pools: unknown) => {
  try {
    parseConfig(withProvider(pools));
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
};

describe('provider.pools in depl.yaml', () => {
  it('takes a number or a range for the count', () => {
    expect(poolsIn({ crawl }).crawl).toEqual({ flavor: 'p3.small', count: { min: 0, max: 4 }, preemptible: true, services: ['worker'] });
    expect(poolsIn({ crawl: { ...crawl, count: 2 } }).crawl!.count).toEqual({ min: 2, max: 2 });
    expect(poolsIn({ crawl: { flavor: 'm3.small', count: 1, services: ['worker'] } }).crawl!.preemptible).toBe(false);
    expect(poolsOf(parseConfig(JSON.stringify(base)))).toEqual({});
  });

  it('refuses with a message that names what to fix', () => {
    expect(refusal({ crawl: { ...crawl, services: ['crawler'] } })).toMatch(/provider\.pools\.crawl\.services\[0\].*no service named "crawler" \(have: api, worker, db\)/s);
    expect(refusal({ crawl: { ...crawl, count: '4..1' } })).toMatch(/provider\.pools\.crawl\.count.*the range 4\.\.1 runs backwards/s);
    expect(refusal({ crawl: { ...crawl, count: '0-4' } })).toMatch(/expected a number of nodes or a range like 0\.\.4/);
    expect(refusal({ crawl: { ...crawl, count: '0..60' } })).toMatch(/goes above 50 nodes/);
    expect(refusal({ crawl: { ...crawl, count: -1 } })).toMatch(/expected 0 or more nodes/);
    expect(refusal({ crawl, other: { ...crawl, preemptible: false } })).toMatch(/provider\.pools\.other\.services\[0\].*"worker" already runs on pool "crawl"/s);
    expect(refusal({ crawl: { ...crawl, services: ['db'] } })).toMatch(/"db" has a volume and stays on its volume's node/);
    expect(refusal({ Crawl: crawl })).toMatch(/expected a pool name of lower-case letters/);
    expect(refusal({ crawl: { ...crawl, services: [] } })).toMatch(/expected the services that run on this pool/);
  });

  it('notes a flavor that does not match preemptible: either way, a note and not a refusal', () => {
    expect(poolNotes(poolsIn({ crawl }))).toEqual([]);
    expect(poolNotes(poolsIn({ crawl: { ...crawl, preemptible: false } }))).toEqual([expect.stringContaining('pool crawl: p3.small is a preemptible flavor on Nectar')]);
    expect(poolNotes(poolsIn({ crawl: { ...crawl, flavor: 'm3.small' } }))).toEqual([expect.stringContaining("not one of Nectar's preemptible p3 flavors")]);
  });
});

describe('pool counts', () => {
  const pools = poolsIn({ crawl });
  it('starts a range at its minimum, keeps what the stack has within it, and takes what --pool asks', () => {
    expect(poolCounts(pools, undefined)).toEqual({ crawl: 0 });
    expect(poolCounts(pools, { pool_crawl_count: '3' })).toEqual({ crawl: 3 });
    expect(poolCounts(pools, { pool_crawl_count: '9' })).toEqual({ crawl: 4 });
    expect(poolCounts(pools, { pool_crawl_count: '3' }, { crawl: 1 })).toEqual({ crawl: 1 });
    expect(() => poolCounts(pools, undefined, { crawl: 5 })).toThrow("--pool crawl=5 is outside the pool's count 0..4");
    expect(poolParameters(pools, { crawl: 2 })).toEqual({ pool_crawl_count: '2', pool_crawl_flavor: 'p3.small' });
  });
});

describe('the pools in the Heat template', () => {
  const stackYaml = readFileSync(new URL('../../../heat/stack.yaml', import.meta.url), 'utf8');
  const pools = poolsIn({ crawl });

  it('adds a server group per pool copied from the nodes group, with its own name, flavor and metadata', () => {
    type Def = { type: string; properties: { count: unknown; resource_def: { properties: Record<string, unknown> } } };
    const doc = parse(withPools(stackYaml, pools)) as { resources: Record<string, Def>; outputs: Record<string, { value: unknown }> };
    const nodes = (parse(stackYaml) as typeof doc).resources.nodes!.properties.resource_def.properties;
    const group = doc.resources.pool_crawl!;
    expect(group.type).toBe('OS::Heat::ResourceGroup');
    expect(group.properties.count).toEqual({ get_param: 'pool_crawl_count' });
    const server = group.properties.resource_def.properties;
    expect(server).toEqual({
      ...nodes,
      name: { list_join: ['-', [{ get_param: 'OS::stack_name' }, 'crawl', '%index%']] },
      flavor: { get_param: 'pool_crawl_flavor' },
      metadata: { 'depl.pool': 'crawl', 'depl.preemptible': 'true' },
    });
    // the same security group and network as the nodes
    expect(server.security_groups).toEqual([{ get_resource: 'swarm_security_group' }]);
    expect(doc.outputs.pool_crawl_names!.value).toEqual({ get_attr: ['pool_crawl', 'name'] });
    expect(doc.outputs.pool_crawl_addresses!.value).toEqual({ get_attr: ['pool_crawl', 'first_address'] });
    // Heat's own shape, as the emulator's parser reads it
    expect(Object.keys(parseTemplate(withPools(stackYaml, pools)).resources)).toEqual(['swarm_security_group', 'nodes', 'pool_crawl']);
    expect(withPools(stackYaml, {})).toBe(stackYaml);
  });

  it('counts the pool in the quota demand and by its flavor for the SU cost', () => {
    const demand = templateDemand(withPools(stackYaml, pools), { count: '3', ...poolParameters(pools, { crawl: 2 }) });
    expect(demand.servers).toEqual({ 'm3.small': 3, 'p3.small': 2 });
    expect(demand.demand.instances).toBe(5);
  });

  it('refuses a template without a nodes group to copy, and one that already has the pool', () => {
    expect(() => withPools('heat_template_version: 2018-08-31\nresources: { server: { type: OS::Nova::Server } }\n', pools)).toThrow(/needs a template whose "nodes" resource is an OS::Heat::ResourceGroup/);
    expect(() => withPools(withPools(stackYaml, pools), pools)).toThrow(/already has pool_crawl_count, pool_crawl_flavor, pool_crawl/);
  });

  it('reads the pool nodes from the outputs; a server without an address is lost', () => {
    const outputs = [
      { output_key: 'pool_crawl_names', output_value: ['s-crawl-0', 's-crawl-1'] },
      { output_key: 'pool_crawl_addresses', output_value: ['10.0.0.20', ''] },
    ];
    expect(poolNodesFromOutputs('s', pools, outputs)).toEqual({ nodes: [{ name: 's-crawl-0', address: '10.0.0.20', pool: 'crawl' }], lost: [{ pool: 'crawl', name: 's-crawl-1' }] });
    expect(() => poolNodesFromOutputs('s', pools, [])).toThrow(/no output "pool_crawl_names"/);
  });

  it('plans the repair of lost nodes as a stack check then an update; nothing lost, nothing to do', () => {
    expect(planPoolRecovery('s', [])).toEqual({ command: 'depl node-up', notes: [], steps: [] });
    const plan = planPoolRecovery('s', [{ pool: 'crawl', name: 's-crawl-1' }]);
    expect(plan.steps.map((st) => st.kind)).toEqual(['check-stack', 'replace-lost']);
    expect(plan.steps[1]).toMatchObject({ nodes: ['s-crawl-1'] });
    expect(plan.notes).toEqual(['s-crawl-1 (pool crawl) is gone from the cloud (a preempted instance is deleted): it is made again']);
  });

  it('a shrink takes the pool nodes at or above the new count (a group removes its highest indexes)', () => {
    expect(poolNodeIndex('s-crawl-12')).toBe(12);
    const nodes = [{ name: 's-0' }, { name: 's-crawl-0', pool: 'crawl' }, { name: 's-crawl-1', pool: 'crawl' }, { name: 's-crawl-2', pool: 'crawl' }];
    expect(poolSurplus(nodes, { crawl: 1 }).map((n) => n.name)).toEqual(['s-crawl-1', 's-crawl-2']);
    expect(poolSurplus(nodes, { crawl: 3 })).toEqual([]);
  });
});

describe('placement of services with pools', () => {
  const specs = (pools: unknown) => planVersionServices({ config: configWith(pools), version: 'v1', images: { api: 'a', worker: 'w', db: 'd' }, network: 'net', configRef: { id: 'c', name: 'c' }, nodes: 3 });
  it("keeps a pool's services on its nodes and every other service off every pool", () => {
    const [api, worker, db] = specs({ crawl, big: { flavor: 'm3.large', count: 1, services: ['api'] } });
    expect(worker!.TaskTemplate.Placement).toEqual({ Constraints: ['node.labels.depl.pool==crawl'] });
    expect(api!.TaskTemplate.Placement).toEqual({ Constraints: ['node.labels.depl.pool==big'] });
    expect(db!.TaskTemplate.Placement).toEqual({ Constraints: ['node.role==manager', 'node.labels.depl.pool!=crawl', 'node.labels.depl.pool!=big'] });
    expect(poolConstraints(poolsIn({ crawl }), 'api')).toEqual(['node.labels.depl.pool!=crawl']);
  });

  it('without pools, no constraint but a volume pin', () => {
    const [api, , db] = planVersionServices({ config: parseConfig(JSON.stringify(base)), version: 'v1', images: { api: 'a', worker: 'w', db: 'd' }, network: 'net', configRef: { id: 'c', name: 'c' }, nodes: 3 });
    expect(api!.TaskTemplate.Placement).toBeUndefined();
    expect(db!.TaskTemplate.Placement).toEqual({ Constraints: ['node.role==manager'] });
  });
});

describe('pool nodes in the swarm', () => {
  const nodes = [
    { name: 's-0', address: '10.0.0.11' },
    { name: 's-1', address: '10.0.0.12' },
    { name: 's-crawl-0', address: '10.0.0.20', pool: 'crawl' },
  ];

  it('join as workers labelled depl.pool=<pool> (plan as data)', () => {
    const inactive = { state: 'inactive', nodeId: '', nodeAddr: '', isManager: false, clusterId: '', managerAddrs: [], hostname: '' };
    const facts: SwarmFacts = { app: 'crawler', nodes: nodes.map((n) => ({ ...n, info: inactive })), managerList: [], labels: new Map(), network: null, encrypted: false, formerIds: [] };
    const outcome = planSwarm(facts);
    if (!outcome.ok) throw new Error(outcome.refuse);
    expect(outcome.plan.steps.filter((st) => st.kind === 'join-swarm').map((st) => st.describe)).toEqual(['s-1: join the swarm as a worker of 10.0.0.11', 's-crawl-0: join the swarm as a worker of 10.0.0.11']);
    expect(outcome.plan.steps.find((st) => st.kind === 'label-node' && st.node === 's-crawl-0')).toMatchObject({ labels: { 'depl.node': 's-crawl-0', 'depl.pool': 'crawl' } });
  });

  it('on the fake swarm: labelled once, a re-run plans nothing, a recreated pool node joins again with its label', async () => {
    const swarm = fakeSwarm(nodes);
    const target = { app: 'crawler', nodes, encrypted: false, formerIds: [] };
    const options = { log: silentLogger, change: () => {}, note: () => {} };
    const first = await convergeSwarm(swarm, target, options);
    const poolEntry = swarm.entries.get(first.liveIds[2]!)!;
    expect(poolEntry.labels).toEqual({ 'depl.node': 's-crawl-0', 'depl.pool': 'crawl' });
    expect(swarm.entries.get(first.liveIds[1]!)!.labels).toEqual({ 'depl.node': 's-1' });

    swarm.changes.length = 0;
    await convergeSwarm(swarm, target, options);
    expect(swarm.changes).toEqual([]);

    // a preempted node made again by Heat: a new machine under the same name
    swarm.recreate('s-crawl-0');
    const again = await convergeSwarm(swarm, { ...target, formerIds: first.liveIds }, options);
    expect(swarm.changes).toEqual(['join s-crawl-0', `remove ${first.liveIds[2]}`, `label ${again.liveIds[2]} depl.node,depl.pool`]);
    expect(swarm.entries.get(again.liveIds[2]!)!.labels).toEqual({ 'depl.node': 's-crawl-0', 'depl.pool': 'crawl' });
  });
});
