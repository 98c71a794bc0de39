import type { DesignateClient, Zone } from '../apply/openstack/designate.js';
import type { DeplConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { PlanStep } from '../plan/change-plan.js';
import {
  DOMAIN_RECORD_TTL, domainRecordNames, domainStatus, planDomainRecordRemoval, planDomainRecords, type DomainRecordPlan, type DomainRecordStep, type DomainStatus,
  type RecordSetView,
} from '../plan/domain-records.js';
import type { Logger } from '../util/log.js';
import { applyPlan } from './apply-plan.js';

/**
 * The zero-config domain's records (provider.dns): node-up reads what the zone holds at `<domain>` and
 * `*.<domain>`, plans (src/plan/domain-records.ts) and applies; node-down removes what depl made. One Designate
 * client, the provider's Keystone session (the same one DNS-01 uses).
 */

/** The domain depl keeps records for, or undefined when the operator points their own domain. */
export interface ManagedDomain {
  app: string;
  domain: string;
  /** Fully qualified, with the trailing dot. */
  zone: string;
}

export function managedDomain(config: Pick<DeplConfig, 'app' | 'domain' | 'provider'>): ManagedDomain | undefined {
  if (config.provider.type !== 'openstack' || config.provider.dns === undefined) return undefined;
  return { app: config.app, domain: config.domain, zone: config.provider.dns.zone };
}

/** The provider's cloud as Designate is reached through it: clouds.yaml's entry and region, and depl.yaml's folder (a clouds.yaml beside it). */
export interface DesignateCloud {
  root: string;
  cloud?: string;
  region?: string;
}

/** Designate through the provider's cloud (the Keystone session is shared with Heat and Nova in this process). */
export async function designateFor(cloud: DesignateCloud, options: { interactive?: boolean; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<DesignateClient> {
  const [{ openstackSession }, { DesignateClient }] = await Promise.all([import('../apply/providers/openstack.js'), import('../apply/openstack/designate.js')]);
  const session = await openstackSession({ root: cloud.root }, { cloud: cloud.cloud, region: cloud.region }, options);
  return new DesignateClient(session);
}

/** The zone, and the recordsets at the domain's two names. */
async function readZone(designate: DesignateClient, managed: ManagedDomain): Promise<{ zone: Zone; existing: RecordSetView[] }> {
  const zone = await designate.zoneNamed(managed.zone);
  if (zone === undefined) {
    const zones = (await designate.zones()).map((z) => z.name);
    throw new UserError(
      `provider.dns.zone ${managed.zone} is not a Designate zone of this project (it has: ${zones.join(', ') || 'none'})`,
      zones.length > 0
        ? `Set provider.dns.zone to one of those (and domain: to a name in it), or remove provider.dns and point ${managed.domain} at the cluster yourself.`
        : `Ask your cloud's support for the project's DNS zone (openstack zone list shows none), or remove provider.dns and point ${managed.domain} at the cluster yourself.`,
      'DNS_ZONE_MISSING',
    );
  }
  const { apex, wildcard } = domainRecordNames(managed.domain);
  const existing = [...(await designate.recordSetsNamed(zone, apex)), ...(await designate.recordSetsNamed(zone, wildcard))];
  return { zone, existing };
}

/**
 * What node-up would do to the records (address null: not known yet). Records depl did not make in the way are
 * refused here, before anything is changed (exit 2, naming them).
 */
export async function planDomain(designate: DesignateClient, managed: ManagedDomain, address: string | null): Promise<{ zone: Zone; plan: DomainRecordPlan }> {
  const { zone, existing } = await readZone(designate, managed);
  const plan = planDomainRecords({ ...managed, address, existing });
  if ('refuse' in plan) throw new UserError(plan.refuse, plan.hint, 'DNS_RECORD_CONFLICT');
  return { zone, plan };
}

/** `depl status`: what Designate holds at the domain's names, against the entry address (null: unknown). Changes nothing. */
export async function readDomainStatus(designate: DesignateClient, managed: ManagedDomain, entryAddress: string | null): Promise<DomainStatus> {
  const { existing } = await readZone(designate, managed);
  return domainStatus({ ...managed, entryAddress, existing });
}

export interface DomainApplyOptions {
  /** The fake-cluster style kill point: called after each step (tests throw here). */
  afterStep?: (index: number, step: PlanStep) => void | Promise<void>;
}

/** node-up: `<domain>` and `*.<domain>` point at `address` when this returns; returns what was planned and done. */
export async function ensureDomainRecords(designate: DesignateClient, managed: ManagedDomain, address: string, log: Logger, options: DomainApplyOptions = {}): Promise<DomainRecordPlan> {
  const { zone, plan } = await planDomain(designate, managed, address);
  for (const note of plan.notes) log.debug(`DNS: ${note}`);
  await applyPlan(plan, { run: (step) => applyRecordStep(designate, zone, step) }, { log, afterStep: options.afterStep });
  return plan;
}

/** node-down: what node-down would remove (the records depl made), without changing anything. */
export async function planDomainRemoval(designate: DesignateClient, managed: ManagedDomain): Promise<{ zone: Zone; plan: DomainRecordPlan } | undefined> {
  const zone = await designate.zoneNamed(managed.zone);
  // no zone: nothing of depl's can be in it
  if (zone === undefined) return undefined;
  const { apex, wildcard } = domainRecordNames(managed.domain);
  const existing = [...(await designate.recordSetsNamed(zone, apex)), ...(await designate.recordSetsNamed(zone, wildcard))];
  return { zone, plan: planDomainRecordRemoval({ ...managed, existing }) };
}

/** node-down: removes the records depl made at the domain; others are left, with a note. */
export async function removeDomainRecords(designate: DesignateClient, managed: ManagedDomain, log: Logger, options: DomainApplyOptions = {}): Promise<DomainRecordPlan | undefined> {
  const planned = await planDomainRemoval(designate, managed);
  if (planned === undefined) return undefined;
  for (const note of planned.plan.notes) log.info(`DNS: ${note}`);
  await applyPlan(planned.plan, { run: (step) => applyRecordStep(designate, planned.zone, step) }, { log, afterStep: options.afterStep });
  return planned.plan;
}

async function applyRecordStep(designate: DesignateClient, zone: Zone, step: DomainRecordStep): Promise<void> {
  switch (step.kind) {
    case 'create-record':
      return designate.createRecordSet(zone, { name: step.name, type: step.type, records: step.records, ttl: DOMAIN_RECORD_TTL, description: step.description });
    case 'update-record':
      return designate.updateRecordSet(zone, step.id, step.name, step.records);
    case 'delete-record':
      return designate.deleteRecordSet(zone, step.id);
  }
}
