import type { DeplConfig, OpenStackProviderConfig } from '../config/schema.js';

/**
 * The Heat stack's name: provider.stack, else "<app>-nodes". On its own (src/plan/heat.ts re-exports it) so the
 * autoscale controller's bundle, which plans the pools' stack updates, carries no YAML parser.
 */
export function stackName(config: DeplConfig): string {
  const provider = config.provider as OpenStackProviderConfig;
  return provider.stack ?? `${config.app}-nodes`;
}
