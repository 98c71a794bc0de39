import type { ProvisionPlan } from '../apply/providers/types.js';
import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../util/log.js';
import { providerFor } from './cluster.js';

/**
 * What `depl node-up` would change, without changing anything: the provider's own dry run (Heat's
 * preview for a stack), else a comparison of the nodes that exist with the count asked for.
 */
export async function planNodeUp(loaded: LoadedConfig, log: Logger, options: { nodes?: number; interactive?: boolean } = {}): Promise<ProvisionPlan> {
  const count = options.nodes ?? loaded.config.provider.nodes;
  const provider = await providerFor(loaded, log, { interactive: options.interactive });
  if (provider.plan) return provider.plan(count, log);
  const existing = await provider.list(log);
  const names = existing.map((n) => n.name);
  if (existing.length === count) return { action: 'none', lines: [`${count} node${count === 1 ? '' : 's'} exist: node-up would make or remove none`], resources: { unchanged: names } };
  const lines = existing.length < count
    ? [`node-up would add ${count - existing.length} node${count - existing.length === 1 ? '' : 's'} to the ${existing.length} that exist`]
    : [`node-up would remove ${existing.length - count} of the ${existing.length} nodes: ${names.slice(count).join(', ')}`];
  return { action: existing.length === 0 ? 'create' : 'update', lines, resources: { unchanged: names.slice(0, count), deleted: names.slice(count) } };
}
