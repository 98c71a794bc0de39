import { parse, stringify } from 'yaml';
import type { PoolConfig } from '../config/schema.js';
import { POOL_LABEL, type Pools } from './pool-placement.js';
import { UserError } from '../errors.js';
import { poolCountParameter, poolFlavorParameter, poolResource, poolNamesOutput, poolAddressesOutput } from './pool-stack.js';

export { poolCountParameter, poolFlavorParameter, poolResource, poolNamesOutput, poolAddressesOutput, poolNodesFromOutputs, type PoolNode } from './pool-stack.js';
import type { ChangePlan } from './change-plan.js';

/**
 * Worker pools (provider.pools), as data: what they add to the Heat stack (one ResourceGroup of servers per
 * pool, copied from the `nodes` group so they share its image, key, network and security group), how many
 * nodes each gets, the swarm label that marks their nodes, and the placement constraints that keep the named
 * services on their pool and every other service off it.
 */


/**
 * How many nodes each pool gets: `requested` (node-up --pool name=n) within the pool's range; else what the
 * stack has now (`current`: its parameters) kept within the range; else the range's minimum.
 */
export function poolCounts(pools: Pools, current: Record<string, string> | undefined, requested: Record<string, number> = {}): Record<string, number> {
  for (const name of Object.keys(requested)) {
    if (!(name in pools)) throw new UserError(`--pool ${name}: no pool named "${name}" (have: ${Object.keys(pools).join(', ') || 'none'})`, 'Name a pool of provider.pools in depl.yaml.', 'POOL_UNKNOWN');
  }
  const out: Record<string, number> = {};
  for (const [name, pool] of Object.entries(pools)) {
    const { min, max } = pool.count;
    const asked = requested[name];
    if (asked !== undefined) {
      if (!Number.isInteger(asked) || asked < min || asked > max) {
        throw new UserError(`--pool ${name}=${asked} is outside the pool's count ${min}..${max}`, `Ask for ${min === max ? min : `${min} to ${max}`} nodes, or change provider.pools.${name}.count in depl.yaml.`, 'POOL_COUNT');
      }
      out[name] = asked;
      continue;
    }
    const now = Number(current?.[poolCountParameter(name)]);
    out[name] = Number.isInteger(now) ? Math.min(max, Math.max(min, now)) : min;
  }
  return out;
}

/** The pools' Heat parameters: each pool's count and flavor (strings, as Heat wants every value). */
export function poolParameters(pools: Pools, counts: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, pool] of Object.entries(pools)) {
    out[poolCountParameter(name)] = String(counts[name] ?? pool.count.min);
    out[poolFlavorParameter(name)] = pool.flavor;
  }
  return out;
}

type TemplateDoc = {
  parameters?: Record<string, unknown>;
  resources?: Record<string, { type?: string; properties?: Record<string, unknown> }>;
  outputs?: Record<string, unknown>;
};

/** The group whose server definition the pools copy. */
export const NODES_RESOURCE = 'nodes';

/**
 * The template with the pools' resources: per pool a count and a flavor parameter, an OS::Heat::ResourceGroup of
 * servers defined as the `nodes` group's members are (same image, key, zone, network and security group), named
 * `<stack>-<pool>-<index>` and carrying the pool in their metadata, and two outputs with the pool's server names
 * and addresses. Without pools the text is returned as it is.
 */
export function withPools(templateText: string, pools: Pools): string {
  if (Object.keys(pools).length === 0) return templateText;
  let doc: TemplateDoc;
  try {
    doc = (parse(templateText) ?? {}) as TemplateDoc;
  } catch (error) {
    throw new UserError(`the Heat template cannot be read: ${(error as Error).message.split('\n')[0]}`, 'Fix provider.template.', 'HEAT_TEMPLATE_INVALID');
  }
  const nodes = doc.resources?.[NODES_RESOURCE];
  const member = nodes?.properties?.resource_def as { type?: string; properties?: Record<string, unknown> } | undefined;
  if (nodes?.type !== 'OS::Heat::ResourceGroup' || member?.type !== 'OS::Nova::Server') {
    throw new UserError(
      `provider.pools needs a template whose "${NODES_RESOURCE}" resource is an OS::Heat::ResourceGroup of OS::Nova::Server (the pools copy its servers' definition)`,
      'Use heat/stack.yaml, or give your template such a group.',
      'POOL_TEMPLATE',
    );
  }
  const parameters = { ...(doc.parameters ?? {}) };
  const resources = { ...(doc.resources ?? {}) };
  const outputs = { ...(doc.outputs ?? {}) };
  for (const [name, pool] of Object.entries(pools)) {
    const taken = [poolCountParameter(name), poolFlavorParameter(name)].filter((p) => p in parameters);
    if (taken.length > 0 || poolResource(name) in resources) {
      throw new UserError(`the template already has ${[...taken, poolResource(name)].join(', ')}: depl adds the pool "${name}" itself`, 'Remove them from the template.', 'POOL_TEMPLATE');
    }
    parameters[poolCountParameter(name)] = { type: 'number', label: `Pool ${name}: nodes`, default: 0, constraints: [{ range: { min: 0, max: 50 } }] };
    parameters[poolFlavorParameter(name)] = { type: 'string', label: `Pool ${name}: flavor`, default: pool.flavor };
    const memberProperties = { ...(member.properties ?? {}) };
    const metadata = typeof memberProperties.metadata === 'object' && memberProperties.metadata !== null ? memberProperties.metadata : {};
    resources[poolResource(name)] = {
      type: 'OS::Heat::ResourceGroup',
      properties: {
        count: { get_param: poolCountParameter(name) },
        resource_def: {
          type: 'OS::Nova::Server',
          properties: {
            ...memberProperties,
            name: { list_join: ['-', [{ get_param: 'OS::stack_name' }, name, '%index%']] },
            flavor: { get_param: poolFlavorParameter(name) },
            metadata: { ...metadata, [POOL_LABEL]: name, 'depl.preemptible': String(pool.preemptible) },
          },
        },
      },
    };
    outputs[poolNamesOutput(name)] = { description: `Pool ${name}: server names, in index order`, value: { get_attr: [poolResource(name), 'name'] } };
    outputs[poolAddressesOutput(name)] = { description: `Pool ${name}: server addresses, in the order of the names`, value: { get_attr: [poolResource(name), 'first_address'] } };
  }
  return stringify({ ...doc, parameters, resources, outputs });
}

/** Nectar names its preemptible flavors p3.*: a mismatch either way is worth a note, not a refusal (other clouds differ). */
export function poolNotes(pools: Pools): string[] {
  const notes: string[] = [];
  for (const [name, pool] of Object.entries(pools) as Array<[string, PoolConfig]>) {
    const p3 = /^p3\./.test(pool.flavor);
    if (pool.preemptible && !p3) notes.push(`pool ${name}: preemptible: true with flavor ${pool.flavor}, which is not one of Nectar's preemptible p3 flavors; its nodes get the shutdown hand-off all the same`);
    if (!pool.preemptible && p3) notes.push(`pool ${name}: ${pool.flavor} is a preemptible flavor on Nectar (deleted within 24 h, 10 minutes' warning): set preemptible: true so its nodes hand their tasks off on the warning`);
  }
  return notes;
}

/** Repairing a pool the cloud took nodes from (preempted instances): Heat is told, then replaces them. */
export type PoolRecoveryStep =
  | { kind: 'check-stack'; describe: string; stack: string }
  | { kind: 'replace-lost'; describe: string; stack: string; nodes: string[] };

/**
 * A server deleted behind Heat's back stays CREATE_COMPLETE in its stack, and an update with the same count
 * changes nothing. Heat's stack check marks it CHECK_FAILED; the update after it replaces it (same name,
 * same index, a new machine). No lost node: no step.
 */
export function planPoolRecovery(stack: string, lost: ReadonlyArray<{ pool: string; name: string }>, command = 'depl node-up'): ChangePlan<PoolRecoveryStep> {
  if (lost.length === 0) return { command, notes: [], steps: [] };
  const names = lost.map((n) => n.name);
  return {
    command,
    notes: lost.map((n) => `${n.name} (pool ${n.pool}) is gone from the cloud (a preempted instance is deleted): it is made again`),
    steps: [
      { kind: 'check-stack', describe: `stack ${stack}: Heat's stack check, which marks the servers that are gone (${names.join(', ')}) as CHECK_FAILED`, stack },
      { kind: 'replace-lost', describe: `stack ${stack}: update, which replaces ${names.join(', ')} with new servers of the same names`, stack, nodes: names },
    ],
  };
}

/** A pool node's index: the number its name ends with (`<stack>-<pool>-<index>`), -1 when it has none. */
export function poolNodeIndex(name: string): number {
  const match = /-(\d+)$/.exec(name);
  return match ? Number(match[1]) : -1;
}

/** The pool nodes a shrink removes: a ResourceGroup removes its highest indexes, so those at or above the new count. */
export function poolSurplus<T extends { name: string; pool?: string }>(nodes: readonly T[], counts: Record<string, number>): T[] {
  return nodes.filter((n) => n.pool !== undefined && n.pool in counts && poolNodeIndex(n.name) >= counts[n.pool]!);
}
