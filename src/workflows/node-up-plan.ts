import { readInventory } from '../apply/inventory.js';
import type { ProvisionPlan, ProvisionedNode } from '../apply/providers/types.js';
import { swarmNodesOverSsh, type SwarmNodes } from '../apply/swarm-nodes.js';
import { OperationError } from '../errors.js';
import { decideNetworkEncryption, ipsecProbeCommand, parseIpsecProbe, type EncryptionSetting, type IpsecSupport, type SwarmInfo } from '../plan/bootstrap.js';
import { planShrink, type SwarmPlan } from '../plan/swarm-plan.js';
import { poolsOf } from '../plan/pool-placement.js';
import { poolNotes, poolSurplus } from '../plan/pools.js';
import type { Logger } from '../util/log.js';
import type { NodeInputs } from './command-inputs.js';
import { readSwarmFacts, swarmPlanOrRefuse } from './node-up-swarm.js';
import type { DomainRecordPlan } from '../plan/domain-records.js';
import { managedDomain, planDomain } from './domain.js';
import type { Provider } from '../apply/providers/types.js';
import { heldRenewerCredentials } from '../apply/tls/renewer-secret.js';
import type { DesignateClient, Zone } from '../apply/openstack/designate.js';
import { renderCredentialPlanLines, renewerCredentialWanted, type HeldCredential, type RenewerCredentialPlan } from '../plan/tls/renewer-credential.js';
import { planRenewerCredentialNow } from './tls/renewer-credential.js';

/**
 * What `depl node-up` would change, without changing anything: the provider's own dry run (Heat's
 * preview for a stack), else a comparison of the nodes that exist with the count asked for.
 */
export async function planNodeUp(inputs: NodeInputs, log: Logger, options: { nodes?: number; interactive?: boolean; pools?: Record<string, number> } = {}): Promise<ProvisionPlan> {
  const count = options.nodes ?? inputs.config.provider.nodes;
  const provider = await inputs.provider(log, { interactive: options.interactive });
  const domain = await domainPlan(inputs, provider, options.interactive);
  const dns = domain?.plan;
  const pools = provider.poolCounts ? await provider.poolCounts(options.pools ?? {}) : {};
  const plan = provider.plan ? await provider.plan(count, log, pools) : compareNodes((await provider.list(log)).map((n) => n.name), count);
  if (dns === undefined) return plan;
  const credential = renewerCredentialWanted(inputs.config) ? await credentialPlan(inputs, domain!, log) : undefined;
  return {
    ...plan,
    lines: [...plan.lines, ...dnsLines(dns), ...(credential ? renderCredentialPlanLines(credential) : [])],
    resources: { ...plan.resources, dns: dns.steps.map((s) => s.describe), ...(credential ? { renewerCredential: credential.steps.map((s) => s.describe) } : {}) },
    ...(credential ? { renewerCredential: credential } : {}),
  };
}

/** The zero-config domain's record plan (provider.dns), from the zone as it is and the entry address if the stack exists. */
async function domainPlan(inputs: NodeInputs, provider: Provider, interactive: boolean | undefined): Promise<{ plan: DomainRecordPlan; designate: DesignateClient; zone: Zone } | undefined> {
  const managed = managedDomain(inputs.config);
  if (managed === undefined) return undefined;
  const designate = await inputs.designate({ interactive });
  const { zone, plan } = await planDomain(designate, managed, (await provider.entryAddress?.()) ?? null);
  return { plan, designate, zone };
}

/**
 * The renewal task's DNS credential (src/plan/tls/renewer-credential.ts), from Keystone and, when there is a
 * cluster, the swarm's secrets: the same decisions node-up applies.
 */
async function credentialPlan(inputs: NodeInputs, domain: { designate: DesignateClient; zone: Zone }, log: Logger): Promise<RenewerCredentialPlan> {
  const scope = { app: inputs.config.app, designate: domain.designate, zone: domain.zone, now: Date.now };
  if ((await readInventory(inputs)) === null) return planRenewerCredentialNow(scope, []);
  let held: HeldCredential[] | { unknown: string };
  try {
    const cluster = await inputs.cluster.open(log);
    try {
      held = await heldRenewerCredentials(await cluster.engine(), inputs.config.app);
    } finally {
      await cluster.close();
    }
  } catch (error) {
    held = { unknown: (error as Error).message };
  }
  return planRenewerCredentialNow(scope, held);
}

function dnsLines(plan: DomainRecordPlan): string[] {
  return [
    'DNS records (provider.dns):',
    ...plan.steps.map((s) => `  + ${s.describe}`),
    ...plan.notes.map((n) => `  = ${n}`),
  ];
}

function compareNodes(names: string[], count: number): ProvisionPlan {
  if (names.length === count) return { action: 'none', lines: [`${count} node${count === 1 ? '' : 's'} exist: node-up would make or remove none`], resources: { unchanged: names } };
  const lines = names.length < count
    ? [`node-up would add ${count - names.length} node${count - names.length === 1 ? '' : 's'} to the ${names.length} that exist`]
    : [`node-up would remove ${names.length - count} of the ${names.length} nodes: ${names.slice(count).join(', ')}`];
  return { action: names.length === 0 ? 'create' : 'update', lines, resources: { unchanged: names.slice(0, count), deleted: names.slice(count) } };
}

export interface NodeUpDryRun {
  provision: ProvisionPlan;
  /** Surplus nodes taken out of the swarm before the provider removes them. */
  shrink: SwarmPlan;
  /** The swarm part, planned from what the nodes that exist report (nodes still to be made count as new). */
  swarm: SwarmPlan;
  /** The zero-config domain's records (provider.dns), from the zone as it is now. */
  dns?: DomainRecordPlan;
}

const NOT_IN_SWARM: SwarmInfo = { state: 'inactive', nodeId: '', nodeAddr: '', isManager: false, clusterId: '', managerAddrs: [], hostname: '' };

/**
 * `depl node-up --dry-run`: the provider's plan, then node-up's swarm plans (src/plan/swarm-plan.ts) read from the
 * nodes as they are, as the run would read them after provisioning. Nothing is installed or changed: a node whose
 * Docker does not answer yet counts as out of the swarm, and a node still to be made as a new one.
 */
export async function dryRunNodeUp(inputs: NodeInputs, log: Logger, options: { nodes?: number; interactive?: boolean; pools?: Record<string, number> } = {}): Promise<NodeUpDryRun> {
  const count = options.nodes ?? inputs.config.provider.nodes;
  const { config } = inputs;
  const provider = await inputs.provider(log, { interactive: options.interactive });
  const existing = (await provider.list(log)).filter((n) => n.pool === undefined);
  const dns = (await domainPlan(inputs, provider, options.interactive))?.plan;
  const pools = provider.poolCounts ? await provider.poolCounts(options.pools ?? {}) : {};
  const provision = provider.plan ? await provider.plan(count, log, pools) : compareNodes(existing.map((n) => n.name), count);
  const previous = await readInventory(inputs);
  const pool = await inputs.sshPool(log, 10_000);
  try {
    const kept = existing.slice(0, count);
    const reachable = new Map<string, ProvisionedNode>();
    await Promise.all(kept.map(async (node) => {
      if (await pool.remote(node).then(() => true, () => false)) reachable.set(node.name, node);
    }));
    const notes: string[] = [];
    const swarm = swarmNodesOverSsh({
      remote: async (name) => (reachable.has(name) ? pool.remote(reachable.get(name)!) : null),
      manager: async () => {
        if (kept[0] === undefined || !reachable.has(kept[0].name)) throw new OperationError('no manager to ask yet', undefined, 'NO_MANAGER');
        return pool.remote(kept[0]);
      },
      knownHosts: pool.knownHosts,
    });
    const surplus = [...(previous?.nodes ?? []).filter((n) => n.pool === undefined).slice(count), ...poolSurplus(previous?.nodes ?? [], pools)];
    const shrink = planShrink(surplus.map((n) => ({ name: n.name, ...(n.nodeId ? { nodeId: n.nodeId } : {}) })), surplus.length > 0 && previous !== null ? await managerList(swarm) : []);

    notes.push(...poolNotes(poolsOf(config)));
    const newNodes = Array.from({ length: Math.max(0, count - kept.length) }, (_, i) => ({ name: `new-node-${i + 1}`, address: '(new)' }));
    if (newNodes.length > 0) notes.push(`${newNodes.length} node${newNodes.length === 1 ? '' : 's'} still to be made ${newNodes.length === 1 ? 'is' : 'are'} shown as ${newNodes.map((n) => n.name).join(', ')}; the provider names them`);
    const support: { node: string; ipsec: IpsecSupport }[] = [];
    const answering = new Set<string>();
    const facts = await readSwarmFacts(dryRunNodes(swarm, answering), {
      app: config.app,
      nodes: [...kept, ...newNodes],
      // decided below, once every node's support is known; the network step shows the decision
      encrypted: false,
      formerIds: (previous?.nodes ?? []).flatMap((n) => (n.nodeId ? [n.nodeId] : [])),
    });
    for (const node of kept) {
      if (!answering.has(node.name)) notes.push(`${node.name}: Docker does not answer (or SSH does not): node-up installs and starts it first`);
      const remote = reachable.has(node.name) ? await pool.remote(node) : null;
      support.push({ node: node.name, ipsec: remote === null ? 'unknown' : parseIpsecProbe((await remote.exec(ipsecProbeCommand(), { check: false })).stdout) });
    }
    const encryption = decideNetworkEncryption(config.network.encrypted as EncryptionSetting, support);
    const encrypted = 'refuse' in encryption ? false : encryption.encrypted;
    if ('refuse' in encryption) notes.push(`node-up would refuse: ${encryption.refuse}`);
    else if (encryption.note) notes.push(encryption.note);
    const plan = swarmPlanOrRefuse({ ...facts, encrypted });
    return { provision, shrink, swarm: { ...plan, notes: [...notes, ...plan.notes] }, ...(dns ? { dns } : {}) };
  } finally {
    await pool.closeAll();
  }
}

/** The swarm as a dry run reads it: a node whose Docker (or SSH) does not answer is out of any swarm. */
function dryRunNodes(swarm: SwarmNodes, answering: Set<string>): SwarmNodes {
  return {
    ...swarm,
    async info(node) {
      try {
        const info = await swarm.info(node);
        answering.add(node);
        return info;
      } catch {
        return NOT_IN_SWARM;
      }
    },
  };
}

async function managerList(swarm: SwarmNodes) {
  return swarm.nodeList().catch(() => null);
}
