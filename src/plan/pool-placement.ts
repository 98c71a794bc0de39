import type { DeplConfig, OpenStackProviderConfig } from '../config/schema.js';

/**
 * Where a pool's services run, apart from how its nodes are made (src/plan/pools.ts, which edits the Heat
 * template with the YAML library): the service specs need only this, and the autoscaler's bundle, which plans
 * service specs' labels, must not carry a YAML parser it never runs.
 */

/** The swarm node label node-up puts on a pool's nodes: depl.pool=<pool name>. */
export const POOL_LABEL = 'depl.pool';

export type Pools = OpenStackProviderConfig['pools'];

/** The config's pools: only the openstack provider has them. */
export function poolsOf(config: DeplConfig): Pools {
  return config.provider.type === 'openstack' ? config.provider.pools : {};
}

/**
 * Where a version's service may run: a pool's services on that pool's nodes only; every other service on no
 * pool's node (a constraint per pool: a node without the label satisfies `!=`).
 */
export function poolConstraints(pools: Pools, service: string): string[] {
  const home = Object.entries(pools).find(([, pool]) => pool.services.includes(service))?.[0];
  if (home !== undefined) return [`node.labels.${POOL_LABEL}==${home}`];
  return Object.keys(pools).map((name) => `node.labels.${POOL_LABEL}!=${name}`);
}
