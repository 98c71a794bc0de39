import type { Cluster } from '../apply/cluster.js';
import { readInventory, requireInventory, type ProjectFolder } from '../apply/inventory.js';
import type { BackupObjects } from '../apply/hibernation-objects.js';
import { hibernationRecordPath, readHibernationRecord, readRecordCopies } from '../apply/hibernation-record.js';
import { chooseRecord, type RecordCopies } from '../plan/hibernation-copies.js';
import { describeHibernation } from '../plan/hibernation.js';
import { readRenewalTaskStatus, type RenewalTaskStatus } from '../apply/tls/renewal-task.js';
import { listCertificates, tlsStoreFor } from '../apply/tls/store.js';
import type { ControllerState } from '../plan/autoscale.js';
import { nodeListCommand, parseNodeList } from '../plan/bootstrap.js';
import type { JobRow } from '../plan/jobs.js';
import { nodeInspectCommand, nodeTableFromInspect, type NodeTableRow } from '../plan/node-table.js';
import { tlsSettings, type InstalledCertificate } from '../plan/tls/certificates.js';
import type { Logger } from '../util/log.js';
import { readAutoscaleStatus } from './autoscale-report.js';
import { domainStatusLines, type DomainStatus } from '../plan/domain-records.js';
import type { NodeInputs } from './command-inputs.js';
import { managedDomain, readDomainStatus } from './domain.js';
import { readJobs } from './run.js';
import { readReleaseReport, type ReleaseReport } from './versions.js';

/** Everything `depl status` reports, read over one SSH connection with one read of the release state. */
export interface StatusReading {
  nodes: NodeTableRow[];
  release: ReleaseReport;
  jobs: JobRow[];
  /** The certificates in the store (none read when TLS is off). */
  certificates: InstalledCertificate[];
  /** The renewal task's state (TLS by ACME only). */
  renewal?: RenewalTaskStatus;
  autoscale: ControllerState | null;
  /** OpenStack: the project's quota use and the cluster's SU cost, or why they could not be read. */
  allocation?: { lines: string[] } | { error: string };
  /** provider.dns: the records depl keeps, read from Designate, or why they could not be read. */
  dns?: { status: DomainStatus; lines: string[] } | { error: string };
}

/**
 * `depl status` of a deployment depl hibernate recorded (.depl/hibernation.json, or its copy in Swift when the
 * cloud has an object store: another machine's hibernate): the record and the nodes of the inventory, read
 * without reaching for the instances (they are shelved, or being shelved or unshelved). null when there is no
 * record. A Swift that cannot be read leaves this machine's copy to go by, and says so.
 */
export async function hibernationStatus(loaded: ProjectFolder, objects?: () => Promise<BackupObjects | undefined>): Promise<{ report: unknown; human: string } | null> {
  let copies: RecordCopies = { local: await readHibernationRecord(loaded), localFile: hibernationRecordPath(loaded) };
  let unread: string | undefined;
  try {
    const store = objects === undefined ? undefined : await objects();
    if (store !== undefined) copies = await readRecordCopies(loaded, store);
  } catch (error) {
    unread = `Swift's copy of the hibernation record could not be read (${(error as Error).message}): this machine's copy shown`;
  }
  const chosen = chooseRecord(copies);
  if (!chosen.ok) return { report: { hibernation: 'conflict', code: chosen.code, message: chosen.message }, human: `hibernation: ${chosen.message}\n  ${chosen.hint ?? ''}`.trimEnd() };
  const { record } = chosen;
  const notes = [...(unread !== undefined ? [unread] : []), ...chosen.notes];
  if (record === null) return null;
  if (record === 'unreadable') {
    return { report: { hibernation: 'unreadable' }, human: `${hibernationRecordPath(loaded)} is not a hibernation record: depl hibernate and wake refuse until it is looked at` };
  }
  const inventory = await readInventory(loaded);
  const state = record.phase === 'waking' ? 'waking' : record.instances === 'node-containers' ? 'stopped' : 'shelved';
  const nodes = (inventory?.nodes ?? []).map((n) => ({ name: n.name, address: n.address, role: n.role, state }));
  const human = [
    `hibernation: ${describeHibernation(record)}`,
    ...nodes.map((n) => `  ${n.name}  ${n.address}  ${n.role}  ${n.state}`),
    `live:     ${record.live ?? '(none)'} (when hibernated)`,
    ...Object.entries(record.backups).map(([accessory, file]) => `backup:   ${accessory} -> ${file}`),
    ...(record.releaseCopy !== null ? [`release:  ${record.releaseCopy}`] : []),
    ...(record.swift?.recordShared === true ? [`record:   also in Swift, ${record.swift.container} (${chosen.from === 'swift' ? 'read from there: this machine has none' : chosen.cloudCurrent ? 'the same' : 'behind this machine\'s'})`] : []),
    ...notes.map((n) => `note:     ${n}`),
  ];
  return { report: { nodes, live: record.live, canary: null, hibernation: record, recordFrom: chosen.from, ...(notes.length > 0 ? { notes } : {}) }, human: human.join('\n') };
}

/**
 * What depl status reads of depl.yaml: the app and its TLS, provider and domain settings, its folder (the
 * inventory), and the cluster, the provider and Designate it names.
 */
export type StatusInputs = Pick<NodeInputs, 'config' | 'root' | 'cluster' | 'provider' | 'designate'>;

/** The node table as the swarm itself reports it (over SSH on the manager), in the inventory's order. */
export async function readNodeTable(cluster: Cluster, project: ProjectFolder): Promise<NodeTableRow[]> {
  const inventory = await requireInventory(project);
  const ids = parseNodeList((await cluster.manager.exec(nodeListCommand())).stdout).map((row) => row.id);
  if (ids.length === 0) return [];
  const inspected = await cluster.manager.exec(nodeInspectCommand(ids));
  return nodeTableFromInspect(inspected.stdout, inventory.nodes);
}

/**
 * `depl status`: the nodes, the release state (read once), jobs, certificates, the renewal task and the
 * autoscaler, the independent reads side by side on the manager's one connection.
 */
export async function readStatus(inputs: StatusInputs, log: Logger, options: { interactive?: boolean } = {}): Promise<StatusReading> {
  const mode = tlsSettings(inputs.config).mode;
  const { app } = inputs.config;
  const allocation = readAllocation(inputs, log, options);
  const dns = readDns(inputs, log, options);
  const access = inputs.cluster;
  const cluster = await access.open(log);
  try {
    const port = await access.readingPort(cluster, log);
    const [nodes, release, jobs, certificates, renewal] = await Promise.all([
      readNodeTable(cluster, inputs),
      readReleaseReport(port),
      readJobs(access, log, cluster),
      mode !== 'off' ? listCertificates(tlsStoreFor(cluster.manager, app)) : Promise.resolve([]),
      mode === 'acme' ? readRenewalTaskStatus(cluster.manager, await cluster.engine(), app) : Promise.resolve(undefined),
    ]);
    const autoscale = await readAutoscaleStatus(cluster, app, release.live, log);
    const cloud = await allocation;
    const records = await dns;
    return { nodes, release, jobs, certificates, ...(renewal !== undefined ? { renewal } : {}), autoscale, ...(cloud !== undefined ? { allocation: cloud } : {}), ...(records !== undefined ? { dns: records } : {}) };
  } finally {
    await cluster.close();
  }
}

/**
 * The zero-config domain's records (provider.dns) as Designate has them, against the entry address node-up points
 * them at (the provider's, else the manager's address, as node-up does). Unreadable: said, not fatal.
 */
export async function readDns(inputs: Omit<StatusInputs, 'cluster'>, log: Logger, options: { interactive?: boolean; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<StatusReading['dns']> {
  const managed = managedDomain(inputs.config);
  if (managed === undefined) return undefined;
  try {
    const [designate, provider, inventory] = await Promise.all([inputs.designate(options), inputs.provider(log, options), readInventory(inputs)]);
    const entry = (await provider.entryAddress?.()) ?? inventory?.nodes[0]?.address ?? null;
    const status = await readDomainStatus(designate, managed, entry);
    return { status, lines: domainStatusLines(status) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/**
 * The allocation as the cloud reports it now (OpenStack only), read beside the cluster: a cloud that cannot be
 * reached makes status say so, not fail, since the cluster itself may be fine.
 */
async function readAllocation(inputs: Pick<StatusInputs, 'config' | 'provider'>, log: Logger, options: { interactive?: boolean }): Promise<StatusReading['allocation']> {
  if (inputs.config.provider.type !== 'openstack') return undefined;
  try {
    const provider = await inputs.provider(log, options);
    const report = await provider.allocation?.();
    return report === undefined ? { lines: ['no Heat stack: nothing of the allocation in use'] } : { lines: report.lines };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
