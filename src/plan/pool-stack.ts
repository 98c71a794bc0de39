import { OperationError } from '../errors.js';
import type { HeatOutput, StackNode } from './heat.js';

/**
 * A pool as the Heat stack holds it: the names of its parameters, resource and outputs, and its nodes read from
 * the outputs. Apart from src/plan/pools.ts (which edits templates with the YAML library) so that the autoscale
 * controller, which reads and updates the stack from its bundle, carries no YAML parser.
 */

export const poolResource = (pool: string) => `pool_${pool}`;
export const poolCountParameter = (pool: string) => `pool_${pool}_count`;
export const poolFlavorParameter = (pool: string) => `pool_${pool}_flavor`;
export const poolNamesOutput = (pool: string) => `pool_${pool}_names`;
export const poolAddressesOutput = (pool: string) => `pool_${pool}_addresses`;


/** A pool node as the stack lists it; `address` is null when its server is gone (a preempted instance). */
export interface PoolNode extends StackNode {
  pool: string;
}

/** The pools' nodes from the stack's outputs, pool by pool in the order of provider.pools. */
export function poolNodesFromOutputs(stack: string, pools: Readonly<Record<string, unknown>>, outputs: HeatOutput[] | undefined): { nodes: PoolNode[]; lost: Array<{ pool: string; name: string }> } {
  const byKey = new Map((outputs ?? []).map((o) => [o.output_key, o]));
  const nodes: PoolNode[] = [];
  const lost: Array<{ pool: string; name: string }> = [];
  for (const pool of Object.keys(pools)) {
    const list = (key: string): Array<string | null> => {
      const output = byKey.get(key);
      if (output === undefined) throw new OperationError(`stack ${stack} has no output "${key}": the stack was made before pool ${pool} was added`, "Run 'depl node-up' to update the stack.", 'HEAT_OUTPUT_MISSING');
      if (output.output_error) throw new OperationError(`stack ${stack}: output "${key}" failed: ${output.output_error}`, undefined, 'HEAT_OUTPUT_ERROR');
      const value = output.output_value ?? [];
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' && v !== null)) {
        throw new OperationError(`stack ${stack}: output "${key}" is not a list of strings: ${JSON.stringify(value)}`, undefined, 'HEAT_OUTPUT_INVALID');
      }
      return value as Array<string | null>;
    };
    const names = list(poolNamesOutput(pool));
    const addresses = list(poolAddressesOutput(pool));
    names.forEach((name, i) => {
      if (!name) return;
      const address = addresses[i];
      // Heat answers '' (or null) for the address of a server deleted behind its back
      if (!address) lost.push({ pool, name });
      else nodes.push({ name, address, pool });
    });
  }
  return { nodes, lost };
}
