import { rm } from 'node:fs/promises';
import { ansibleInventoryPath, inventoryPath, knownHostsPath, readInventory } from '../apply/inventory.js';
import { KnownHosts } from '../apply/known-hosts.js';
import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../util/log.js';
import { tlsSettings } from '../plan/tls/certificates.js';
import { renewerServiceName } from '../plan/tls/renewal.js';
import { providerFor } from './cluster.js';
import { designateCloud } from './adapter-slices.js';
import { designateFor, managedDomain, planDomainRemoval, removeDomainRecords } from './domain.js';

export interface NodeDownPlan {
  /** Node names that will go (from the provider, and the inventory for nodes it no longer lists). */
  nodes: { name: string; address: string }[];
  /** The DNS records depl made for the zero-config domain (provider.dns), which go first. */
  records: string[];
}

/** What node-down would remove, without changing anything: for the confirmation question. */
export async function planNodeDown(loaded: LoadedConfig, log: Logger, interactive?: boolean): Promise<NodeDownPlan> {
  const provider = await providerFor(loaded, log, { interactive });
  const listed = await provider.list(log);
  const inventory = await readInventory(loaded);
  const nodes = [...listed];
  for (const node of inventory?.nodes ?? []) if (!nodes.some((n) => n.address === node.address)) nodes.push(node);
  const managed = managedDomain(loaded.config);
  const records = managed === undefined ? undefined : await planDomainRemoval(await designateFor(designateCloud(loaded), { interactive }), managed);
  return { nodes, records: records?.plan.steps.map((s) => `${s.name} ${s.type} ${s.records.join(',')}`) ?? [] };
}

/**
 * The certificate renewal task goes first: no renewal round takes the lock or answers a CA while the nodes
 * go away. Best effort: nodes that cannot be reached any more take it with them.
 */
async function stopRenewalTask(loaded: LoadedConfig, log: Logger): Promise<void> {
  if (tlsSettings(loaded.config).mode !== 'acme' || (await readInventory(loaded)) === null) return;
  try {
    const { openCluster } = await import('./cluster.js');
    const cluster = await openCluster(loaded, log);
    try {
      const { removeRenewalTask } = await import('../apply/tls/renewal-task.js');
      if (await removeRenewalTask(await cluster.engine(), loaded.config.app)) log.step(`removed the certificate renewal task ${renewerServiceName(loaded.config.app)}`);
    } finally {
      await cluster.close();
    }
  } catch (error) {
    log.debug(`renewal task not removed before node-down (${(error as Error).message}); it goes with the nodes`);
  }
}

/**
 * Removes the DNS records node-up made (provider.dns), then the nodes with their network and volumes (or the
 * Heat stack), forgets their host keys (their addresses will belong to new machines) and deletes the inventory
 * files node-up wrote.
 */
export async function nodeDown(loaded: LoadedConfig, log: Logger, interactive?: boolean): Promise<NodeDownPlan> {
  const plan = await planNodeDown(loaded, log, interactive);
  await stopRenewalTask(loaded, log);
  // the records go before the addresses they point at: a released floating IP may soon be someone else's, and a
  // name still pointing there would send the app's users to them. A failure stops here; the next run retries.
  const managed = managedDomain(loaded.config);
  if (managed !== undefined) await removeDomainRecords(await designateFor(designateCloud(loaded), { interactive }), managed, log);
  const provider = await providerFor(loaded, log, { interactive });
  await provider.down(log);
  const knownHosts = new KnownHosts(knownHostsPath(loaded));
  for (const node of plan.nodes) await knownHosts.forget(node.address, loaded.config.ssh.port);
  await rm(inventoryPath(loaded), { force: true });
  await rm(ansibleInventoryPath(loaded), { force: true });
  return plan;
}
