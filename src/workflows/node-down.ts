import { rm } from 'node:fs/promises';
import { ansibleInventoryPath, inventoryPath, knownHostsPath, readInventory } from '../apply/inventory.js';
import { KnownHosts } from '../apply/known-hosts.js';
import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../util/log.js';
import { providerFor } from './cluster.js';

export interface NodeDownPlan {
  /** Node names that will go (from the provider, and the inventory for nodes it no longer lists). */
  nodes: { name: string; address: string }[];
}

/** What node-down would remove, without changing anything: for the confirmation question. */
export async function planNodeDown(loaded: LoadedConfig, log: Logger, interactive?: boolean): Promise<NodeDownPlan> {
  const provider = await providerFor(loaded, log, { interactive });
  const listed = await provider.list(log);
  const inventory = await readInventory(loaded);
  const nodes = [...listed];
  for (const node of inventory?.nodes ?? []) if (!nodes.some((n) => n.address === node.address)) nodes.push(node);
  return { nodes };
}

/**
 * Removes the nodes with their network and volumes (or the Heat stack), forgets their host keys (their
 * addresses will belong to new machines) and deletes the inventory files node-up wrote.
 */
export async function nodeDown(loaded: LoadedConfig, log: Logger, interactive?: boolean): Promise<NodeDownPlan> {
  const plan = await planNodeDown(loaded, log, interactive);
  const provider = await providerFor(loaded, log, { interactive });
  await provider.down(log);
  const knownHosts = new KnownHosts(knownHostsPath(loaded));
  for (const node of plan.nodes) await knownHosts.forget(node.address, loaded.config.ssh.port);
  await rm(inventoryPath(loaded), { force: true });
  await rm(ansibleInventoryPath(loaded), { force: true });
  return plan;
}
