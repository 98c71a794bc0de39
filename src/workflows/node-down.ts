import { rm } from 'node:fs/promises';
import { ansibleInventoryPath, inventoryPath, knownHostsPath, readInventory } from '../apply/inventory.js';
import { KnownHosts } from '../apply/known-hosts.js';
import type { Logger } from '../util/log.js';
import { tlsSettings } from '../plan/tls/certificates.js';
import { renewerServiceName } from '../plan/tls/renewal.js';
import type { NodeInputs } from './command-inputs.js';
import { managedDomain, planDomainRemoval, removeDomainRecords } from './domain.js';
import { deleteRenewerCredentials } from './tls/renewer-credential.js';

export interface NodeDownPlan {
  /** Node names that will go (from the provider, and the inventory for nodes it no longer lists). */
  nodes: { name: string; address: string }[];
  /** The DNS records depl made for the zero-config domain (provider.dns), which go first. */
  records: string[];
}

/** What node-down would remove, without changing anything: for the confirmation question. */
export async function planNodeDown(inputs: NodeInputs, log: Logger, interactive?: boolean): Promise<NodeDownPlan> {
  const provider = await inputs.provider(log, { interactive });
  const listed = await provider.list(log);
  const inventory = await readInventory(inputs);
  const nodes = [...listed];
  for (const node of inventory?.nodes ?? []) if (!nodes.some((n) => n.address === node.address)) nodes.push(node);
  const managed = managedDomain(inputs.config);
  const records = managed === undefined ? undefined : await planDomainRemoval(await inputs.designate({ interactive }), managed);
  return { nodes, records: records?.plan.steps.map((s) => `${s.name} ${s.type} ${s.records.join(',')}`) ?? [] };
}

/**
 * The certificate renewal task goes first: no renewal round takes the lock or answers a CA while the nodes
 * go away. Best effort: nodes that cannot be reached any more take it with them.
 */
async function stopRenewalTask(inputs: NodeInputs, log: Logger): Promise<void> {
  const { app } = inputs.config;
  if (tlsSettings(inputs.config).mode !== 'acme' || (await readInventory(inputs)) === null) return;
  try {
    const cluster = await inputs.cluster.open(log);
    try {
      const { removeRenewalTask } = await import('../apply/tls/renewal-task.js');
      if (await removeRenewalTask(await cluster.engine(), app)) log.step(`removed the certificate renewal task ${renewerServiceName(app)}`);
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
export async function nodeDown(inputs: NodeInputs, log: Logger, interactive?: boolean): Promise<NodeDownPlan> {
  const plan = await planNodeDown(inputs, log, interactive);
  await stopRenewalTask(inputs, log);
  // the records go before the addresses they point at: a released floating IP may soon be someone else's, and a
  // name still pointing there would send the app's users to them. A failure stops here; the next run retries.
  const managed = managedDomain(inputs.config);
  if (managed !== undefined) {
    const designate = await inputs.designate({ interactive });
    await removeDomainRecords(designate, managed, log);
    // the renewal task's credentials (node-up's): with the task gone, nothing uses them
    await deleteRenewerCredentials({ app: inputs.config.app, designate, log });
  }
  const provider = await inputs.provider(log, { interactive });
  await provider.down(log);
  const knownHosts = new KnownHosts(knownHostsPath(inputs));
  for (const node of plan.nodes) await knownHosts.forget(node.address, inputs.config.ssh.port);
  await rm(inventoryPath(inputs), { force: true });
  await rm(ansibleInventoryPath(inputs), { force: true });
  return plan;
}
