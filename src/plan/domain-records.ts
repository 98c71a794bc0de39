import type { ChangePlan } from './change-plan.js';

/**
 * The zero-config domain as data: which Designate zone `depl init` proposes a domain in, and the A records
 * node-up keeps in that zone (`<domain>` and `*.<domain>`, pointing at the cluster's entry address) or
 * node-down removes. What Designate holds is read by src/apply/openstack/designate.ts and the plan applied by
 * src/workflows/domain.ts; nothing here talks to the cloud.
 */

/** A recordset as Designate lists it (names fully qualified, with the trailing dot). */
export interface RecordSetView {
  id: string;
  name: string;
  type: string;
  records: string[];
  status?: string;
  description?: string | null;
}

/** A zone of the project, as Designate lists it. */
export interface ZoneView {
  id: string;
  name: string;
}

export type DomainRecordStep =
  | { kind: 'create-record'; describe: string; name: string; type: 'A'; records: string[]; description: string }
  | { kind: 'update-record'; describe: string; id: string; name: string; type: 'A'; records: string[]; from: string[] }
  | { kind: 'delete-record'; describe: string; id: string; name: string; type: string; records: string[] };

export type DomainRecordPlan = ChangePlan<DomainRecordStep>;

/** Why depl will not touch the records: names, what is there, and what the operator can do. */
export interface DomainRecordRefusal {
  refuse: string;
  hint: string;
  /** The recordsets in the way, as `name TYPE values`. */
  conflicts: string[];
}

/** TTL of the records depl makes: short, so a re-made cluster (a new address) is reachable soon. */
export const DOMAIN_RECORD_TTL = 300;

const OWNER_PREFIX = 'depl app ';

/**
 * The description depl writes on the recordsets it creates: the mark by which a later run (or node-down)
 * knows a record is depl's to change or remove. Designate keeps a recordset's description (at most 160 characters).
 */
export function ownerDescription(app: string): string {
  return `${OWNER_PREFIX}${app}: made by depl node-up, removed by depl node-down`;
}

export function madeByDepl(recordSet: Pick<RecordSetView, 'description'>, app: string): boolean {
  return (recordSet.description ?? '').startsWith(`${OWNER_PREFIX}${app}:`);
}

/** The two names depl keeps for a domain, fully qualified: the live URL's and every version's (`<version>.<domain>`). */
export function domainRecordNames(domain: string): { apex: string; wildcard: string } {
  const apex = `${domain.replace(/\.$/, '')}.`;
  return { apex, wildcard: `*.${apex}` };
}

/** Types at one of depl's names that would send browsers elsewhere besides the A records depl keeps. */
const CONFLICTING_TYPES = new Set(['A', 'AAAA', 'CNAME']);

const show = (rs: Pick<RecordSetView, 'name' | 'type' | 'records'>) => `${rs.name} ${rs.type} ${rs.records.join(',')}`;

/** Recordsets listed under one of depl's names (Designate's name filter treats `*` as a wildcard: exact names only). */
function atName(existing: readonly RecordSetView[], name: string): RecordSetView[] {
  return existing.filter((rs) => rs.name.toLowerCase() === name.toLowerCase());
}

/**
 * node-up's records: for each of `<domain>.` and `*.<domain>.`, an A record with exactly `address`. A record
 * depl made that is right is left alone; one that points elsewhere (a re-made cluster) or that Designate could
 * not publish (status ERROR) is updated; a missing one is created with depl's mark. Records depl did not make
 * (an A with other addresses, an AAAA or a CNAME at either name) are refused, named, and never touched:
 * they are someone's, and replacing them would take their traffic.
 */
export function planDomainRecords(input: {
  app: string;
  domain: string;
  zone: string;
  /** The entry address; null when it is not known yet (a dry run before the stack exists). */
  address: string | null;
  /** The recordsets listed under the two names. */
  existing: readonly RecordSetView[];
}): DomainRecordPlan | DomainRecordRefusal {
  const { apex, wildcard } = domainRecordNames(input.domain);
  const wanted = input.address === null ? null : [input.address];
  const shown = input.address ?? '(the entry address, known once the stack exists)';
  const conflicts: string[] = [];
  const steps: DomainRecordStep[] = [];
  const notes: string[] = [];
  for (const name of [apex, wildcard]) {
    const here = atName(input.existing, name);
    // Designate holds one recordset per name and type, so there is at most one A recordset here
    const a = here.find((rs) => rs.type === 'A');
    for (const rs of here) if (rs.type !== 'A' && CONFLICTING_TYPES.has(rs.type)) conflicts.push(show(rs));
    if (a === undefined) {
      steps.push({ kind: 'create-record', describe: `create ${name} A ${shown} in zone ${input.zone}`, name, type: 'A', records: wanted ?? [], description: ownerDescription(input.app) });
    } else if (!madeByDepl(a, input.app)) {
      // someone's A record that already says exactly what depl would write is fine as it is, and stays theirs
      if (wanted !== null && sameRecords(a.records, wanted)) notes.push(`${show(a)}: already right (not made by depl, so node-down leaves it)`);
      else conflicts.push(show(a));
    } else if (wanted !== null && (!sameRecords(a.records, wanted) || a.status === 'ERROR')) {
      const why = sameRecords(a.records, wanted) ? ' (Designate reported ERROR publishing it: sent again)' : ` (was ${a.records.join(',')})`;
      steps.push({ kind: 'update-record', describe: `point ${name} A at ${shown}${why}`, id: a.id, name, type: 'A', records: wanted, from: a.records });
    } else if (wanted === null) {
      notes.push(`${show(a)}: made by depl; node-up points it at the entry address once the stack exists`);
    } else {
      notes.push(`${show(a)}: already right${a.status === 'PENDING' ? ' (Designate is still publishing it)' : ''}`);
    }
  }
  if (conflicts.length > 0) {
    return {
      refuse: `the zone ${input.zone} already has records depl did not make at ${input.domain}: ${conflicts.join('; ')}`,
      hint: `depl leaves records it did not make alone. Delete them if they are stale (openstack recordset delete ${input.zone} <name>), or choose another domain: under provider.dns.zone (e.g. another-name.${input.zone.replace(/\.$/, '')}).`,
      conflicts,
    };
  }
  return { command: 'depl node-up (DNS records)', notes, steps };
}

/** node-down's records: the ones depl made at the domain's two names go; any other record stays, with a note. */
export function planDomainRecordRemoval(input: { app: string; domain: string; zone: string; existing: readonly RecordSetView[] }): DomainRecordPlan {
  const { apex, wildcard } = domainRecordNames(input.domain);
  const steps: DomainRecordStep[] = [];
  const notes: string[] = [];
  for (const name of [apex, wildcard]) {
    for (const rs of atName(input.existing, name)) {
      if (madeByDepl(rs, input.app)) steps.push({ kind: 'delete-record', describe: `delete ${show(rs)} from zone ${input.zone}`, id: rs.id, name: rs.name, type: rs.type, records: rs.records });
      else if (CONFLICTING_TYPES.has(rs.type)) notes.push(`${show(rs)}: not made by depl, left as it is`);
    }
  }
  return { command: 'depl node-down (DNS records)', notes, steps };
}

function sameRecords(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);
}

// ---- depl init: which zone the domain goes in ---------------------------------------------------------------

export type DomainProposal =
  | { kind: 'proposed'; domain: string; zone: string; why: string; others: string[] }
  | { kind: 'no-zone'; why: string }
  | { kind: 'ambiguous'; zones: string[]; why: string };

/**
 * The domain `depl init` proposes when none is given: `<app>.<zone>` in the project's Designate zone. With one
 * zone, that one; with several, the one named after the project (Nectar makes `<project>.cloud.edu.au.` for
 * every project); several and none named so is a choice for the operator.
 */
export function proposeDomain(input: { app: string; zones: readonly ZoneView[]; projectName?: string }): DomainProposal {
  const names = [...new Set(input.zones.map((z) => (z.name.endsWith('.') ? z.name : `${z.name}.`)))].sort();
  const domainIn = (zone: string) => `${input.app}.${zone.slice(0, -1)}`;
  if (names.length === 0) return { kind: 'no-zone', why: 'the project has no DNS zone in Designate' };
  if (names.length === 1) return { kind: 'proposed', domain: domainIn(names[0]!), zone: names[0]!, why: `the project's DNS zone is ${names[0]}`, others: [] };
  const project = input.projectName === undefined ? undefined : projectLabel(input.projectName);
  const named = project === undefined ? [] : names.filter((zone) => zone.split('.')[0] === project);
  if (named.length >= 1) {
    // the shortest: Nectar's own <project>.cloud.edu.au. before a sub-zone of it
    const zone = named.sort((a, b) => a.length - b.length || a.localeCompare(b))[0]!;
    return { kind: 'proposed', domain: domainIn(zone), zone, why: `the project has ${names.length} DNS zones; ${zone} is the one named after the project "${input.projectName}"`, others: names.filter((n) => n !== zone) };
  }
  return { kind: 'ambiguous', zones: names, why: `the project has ${names.length} DNS zones (${names.join(', ')}) and none is named after the project${input.projectName === undefined ? '' : ` "${input.projectName}"`}` };
}

/** A project name as a zone's first label: Nectar's zones are lower-case, with "_" and spaces as "-". */
function projectLabel(projectName: string): string {
  return projectName.toLowerCase().replace(/[_\s]+/g, '-');
}

/** The zone of `zones` that `domain` is in (the longest, for a sub-zone), for a domain the operator typed. */
export function zoneHolding(domain: string, zones: readonly string[]): string | undefined {
  const name = `${domain.replace(/\.$/, '')}.`;
  return zones.filter((z) => name === z || name.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0];
}

/** One of the domain's two names as `depl status` shows it. */
export interface DomainRecordStatus {
  name: string;
  /** The A records' addresses at the name (empty: none). */
  addresses: string[];
  /** Designate's status of the A recordset (ACTIVE: published; PENDING: not yet), when there is one. */
  status?: string;
  /** The recordset carries depl's mark for this app. */
  depl: boolean;
  /** It is exactly the entry address (null: the entry address is not known). */
  matches: boolean | null;
}

export interface DomainStatus {
  zone: string;
  domain: string;
  entryAddress: string | null;
  records: DomainRecordStatus[];
  /** Other records at depl's names that would send browsers elsewhere (AAAA, CNAME). */
  others: string[];
}

/** What Designate holds at the domain's two names, against the entry address. */
export function domainStatus(input: { app: string; domain: string; zone: string; entryAddress: string | null; existing: readonly RecordSetView[] }): DomainStatus {
  const { apex, wildcard } = domainRecordNames(input.domain);
  const records = [apex, wildcard].map((name): DomainRecordStatus => {
    const a = atName(input.existing, name).find((rs) => rs.type === 'A');
    const addresses = a?.records ?? [];
    return {
      name,
      addresses,
      ...(a?.status !== undefined ? { status: a.status } : {}),
      depl: a !== undefined && madeByDepl(a, input.app),
      matches: input.entryAddress === null ? null : addresses.length === 1 && addresses[0] === input.entryAddress,
    };
  });
  const others = [apex, wildcard].flatMap((name) => atName(input.existing, name).filter((rs) => rs.type !== 'A' && CONFLICTING_TYPES.has(rs.type)).map(show));
  return { zone: input.zone, domain: input.domain, entryAddress: input.entryAddress, records, others };
}

/** `depl status`'s DNS lines. */
export function domainStatusLines(status: DomainStatus): string[] {
  const lines = [`zone ${status.zone}, entry address ${status.entryAddress ?? 'unknown'}`];
  for (const r of status.records) {
    const where = r.addresses.length === 0 ? 'no A record' : `A ${r.addresses.join(', ')}`;
    const verdict = r.addresses.length === 0 ? "missing: run 'depl node-up' to make it"
      : r.matches === null ? 'entry address unknown'
        : r.matches ? 'matches the entry address' : `does NOT match the entry address${r.depl ? ": run 'depl node-up' to point it there" : ' (not made by depl)'}`;
    const published = r.status !== undefined && r.status !== 'ACTIVE' ? `, ${r.status}` : '';
    lines.push(`${r.name} ${where}${r.depl ? " (depl's)" : ''}${published}: ${verdict}`);
  }
  for (const other of status.others) lines.push(`also at depl's names: ${other} (sends some clients elsewhere)`);
  return lines;
}
