import { parse } from 'yaml';

/**
 * A research allocation's two limits, as data: the project's quotas (does the plan fit?) and its Service Unit
 * budget (how long can it run?). The figures come from the cloud's own APIs (src/apply/openstack/quota.ts);
 * this file only compares them, so a refusal is decided before anything is created.
 */

/** The resources depl can plan, by the name the cloud's quota API uses for them. */
export type QuotaResource =
  | 'instances' | 'cores' | 'ram'
  | 'floatingip' | 'network' | 'port' | 'security_group' | 'security_group_rule'
  | 'volumes' | 'gigabytes'
  | 'loadbalancer';

export type QuotaService = 'Nova' | 'Neutron' | 'Cinder' | 'Octavia';

export const RESOURCE_SERVICE: Record<QuotaResource, QuotaService> = {
  instances: 'Nova', cores: 'Nova', ram: 'Nova',
  floatingip: 'Neutron', network: 'Neutron', port: 'Neutron', security_group: 'Neutron', security_group_rule: 'Neutron',
  volumes: 'Cinder', gigabytes: 'Cinder',
  loadbalancer: 'Octavia',
};

const LABELS: Record<QuotaResource, string> = {
  instances: 'instances', cores: 'vCPUs', ram: 'RAM (MB)',
  floatingip: 'floating IPs', network: 'networks', port: 'ports', security_group: 'security groups', security_group_rule: 'security group rules',
  volumes: 'volumes', gigabytes: 'volume storage (GB)',
  loadbalancer: 'load balancers',
};

/** One quota as the cloud reports it; `limit` null means unlimited (the APIs' -1). */
export interface QuotaFigure {
  resource: QuotaResource;
  limit: number | null;
  used: number;
}

/** What one service answered: its figures, or why it was not asked (not in the catalog, not needed). */
export type ServiceQuota = { service: QuotaService; figures: QuotaFigure[] } | { service: QuotaService; notChecked: string };

export type Demand = Partial<Record<QuotaResource, number>>;

export interface QuotaRow {
  service: QuotaService;
  resource: QuotaResource;
  label: string;
  limit: number | null;
  used: number;
  /** What is left before the plan: null when unlimited. */
  headroom: number | null;
  /** What the plan adds. */
  needed: number;
  fits: boolean;
}

export interface QuotaCheck {
  rows: QuotaRow[];
  notChecked: Array<{ service: QuotaService; reason: string }>;
  over: QuotaRow[];
}

/** Every resource the plan needs, against what each service reported; services not asked are listed as such. */
export function checkQuota(answers: readonly ServiceQuota[], demand: Demand): QuotaCheck {
  const rows: QuotaRow[] = [];
  const notChecked: QuotaCheck['notChecked'] = [];
  for (const answer of answers) {
    if ('notChecked' in answer) {
      notChecked.push({ service: answer.service, reason: answer.notChecked });
      continue;
    }
    for (const figure of answer.figures) {
      const needed = demand[figure.resource] ?? 0;
      const headroom = figure.limit === null ? null : figure.limit - figure.used;
      rows.push({
        service: answer.service,
        resource: figure.resource,
        label: LABELS[figure.resource],
        limit: figure.limit,
        used: figure.used,
        headroom,
        needed,
        fits: headroom === null || needed <= headroom,
      });
    }
  }
  return { rows, notChecked, over: rows.filter((r) => !r.fits) };
}

/** The quota table for people: one line per resource the plan touches (or that is already full). */
export function quotaLines(check: QuotaCheck): string[] {
  const shown = check.rows.filter((r) => r.needed > 0 || (r.headroom !== null && r.headroom <= 0));
  const lines = ['quota (used / limit, headroom, this plan needs):'];
  for (const r of shown) {
    const limit = r.limit === null ? 'unlimited' : String(r.limit);
    const headroom = r.headroom === null ? 'no limit' : `${r.headroom} left`;
    lines.push(`  ${r.fits ? ' ' : '!'} ${r.service} ${r.label}: ${r.used} / ${limit}, ${headroom}, needs ${r.needed}${r.fits ? '' : `: ${r.needed - (r.headroom ?? 0)} too many`}`);
  }
  if (shown.length === 0) lines.push('  nothing new is needed');
  for (const n of check.notChecked) lines.push(`  ${n.service}: not checked (${n.reason})`);
  return lines;
}

/** The quota table of `depl status`: what the project uses of each limit, one line per service. */
export function quotaUsageLines(check: QuotaCheck): string[] {
  const lines = ['quota (used / limit):'];
  for (const service of ['Nova', 'Neutron', 'Cinder', 'Octavia'] as const) {
    const rows = check.rows.filter((r) => r.service === service);
    if (rows.length > 0) lines.push(`  ${service}: ${rows.map((r) => `${r.label} ${r.used}/${r.limit === null ? 'unlimited' : r.limit}${r.headroom !== null && r.headroom <= 0 ? ' (full)' : ''}`).join(', ')}`);
  }
  for (const n of check.notChecked) lines.push(`  ${n.service}: not checked (${n.reason})`);
  return lines;
}

/** Why a plan that does not fit is refused, naming every resource over quota and its numbers. */
export function quotaRefusal(check: QuotaCheck): { message: string; hint: string } | undefined {
  if (check.over.length === 0) return undefined;
  const parts = check.over.map((r) => `${r.label} (${r.service}): needs ${r.needed}, ${r.used} of ${r.limit} used, ${Math.max(0, r.headroom ?? 0)} left`);
  return {
    message: `the plan does not fit the project's quota: ${parts.join('; ')}`,
    hint: 'Plan fewer or smaller nodes (provider.nodes, provider.parameters.flavor), free what other servers hold (openstack server list), or ask for more quota (on Nectar: amend the allocation in the dashboard).',
  };
}

/** A flavor as Nova's /flavors/detail describes it. */
export interface FlavorSize {
  name: string;
  id: string;
  vcpus: number;
  ram: number;
}

export interface TemplateDemand {
  demand: Demand;
  /** Flavor name or id -> number of servers of it. */
  servers: Record<string, number>;
  /** What could not be counted (a count or flavor the plan cannot evaluate). */
  notes: string[];
}

type Doc = { parameters?: Record<string, { default?: unknown }>; resources?: Record<string, { type?: string; properties?: Record<string, unknown> }> };

/**
 * What a Heat template asks of the quotas with these parameters: servers (and ResourceGroup members) with
 * their flavor and one port each, security groups and their rules (Neutron adds two egress rules to every
 * new group), floating IPs, networks, ports, volumes and their size, load balancers. Values are read through
 * get_param only; anything else is noted, not guessed.
 */
export function templateDemand(templateText: string, parameters: Record<string, string>): TemplateDemand {
  const doc = (parse(templateText) ?? {}) as Doc;
  const demand: Demand = {};
  const servers: Record<string, number> = {};
  const notes: string[] = [];
  const add = (r: QuotaResource, n: number) => {
    if (n > 0) demand[r] = (demand[r] ?? 0) + n;
  };
  const value = (v: unknown): unknown => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'get_param' in v) {
      const name = (v as { get_param: unknown }).get_param;
      if (typeof name !== 'string') return undefined;
      return parameters[name] ?? doc.parameters?.[name]?.default;
    }
    return typeof v === 'object' ? undefined : v;
  };
  const count = (name: string, v: unknown): number => {
    const n = Number(value(v ?? 1));
    if (!Number.isInteger(n) || n < 0) {
      notes.push(`${name}: its count cannot be read; not counted`);
      return 0;
    }
    return n;
  };
  const one = (name: string, type: string | undefined, properties: Record<string, unknown>, times: number) => {
    if (times === 0) return;
    switch (type) {
      case 'OS::Nova::Server': {
        add('instances', times);
        add('port', times);
        const flavor = value(properties.flavor);
        if (typeof flavor === 'string' && flavor !== '') servers[flavor] = (servers[flavor] ?? 0) + times;
        else notes.push(`${name}: its flavor cannot be read; its vCPUs and RAM are not counted`);
        return;
      }
      case 'OS::Neutron::SecurityGroup':
        add('security_group', times);
        add('security_group_rule', times * ((Array.isArray(properties.rules) ? properties.rules.length : 0) + 2));
        return;
      case 'OS::Neutron::FloatingIP': return add('floatingip', times);
      case 'OS::Neutron::Net': return add('network', times);
      case 'OS::Neutron::Port': return add('port', times);
      case 'OS::Cinder::Volume': {
        add('volumes', times);
        const size = Number(value(properties.size));
        if (Number.isFinite(size)) add('gigabytes', times * size);
        else notes.push(`${name}: its size cannot be read; its gigabytes are not counted`);
        return;
      }
      case 'OS::Octavia::LoadBalancer': return add('loadbalancer', times);
      default: return;
    }
  };
  for (const [name, def] of Object.entries(doc.resources ?? {})) {
    if (def?.type === 'OS::Heat::ResourceGroup') {
      const member = (def.properties?.resource_def ?? {}) as { type?: string; properties?: Record<string, unknown> };
      one(name, member.type, member.properties ?? {}, count(name, def.properties?.count));
    } else {
      one(name, def?.type, def?.properties ?? {}, 1);
    }
  }
  return { demand, servers, notes };
}

/** vCPUs and RAM of the servers, from their flavors; unknown flavors are returned, not guessed. */
export function flavorDemand(servers: Record<string, number>, flavors: readonly FlavorSize[]): { demand: Demand; unknown: string[] } {
  const demand: Demand = {};
  const unknown: string[] = [];
  for (const [name, n] of Object.entries(servers)) {
    const flavor = flavors.find((f) => f.name === name) ?? flavors.find((f) => f.id === name);
    if (flavor === undefined) {
      unknown.push(name);
      continue;
    }
    demand.cores = (demand.cores ?? 0) + n * flavor.vcpus;
    demand.ram = (demand.ram ?? 0) + n * flavor.ram;
  }
  return { demand, unknown };
}

/** What an update adds: the new demand less what the stack holds now (never below zero). */
export function addedDemand(wanted: Demand, current: Demand): Demand {
  const out: Demand = {};
  for (const [r, n] of Object.entries(wanted) as Array<[QuotaResource, number]>) {
    const more = n - (current[r] ?? 0);
    if (more > 0) out[r] = more;
  }
  return out;
}

export function mergeDemand(...parts: Demand[]): Demand {
  const out: Demand = {};
  for (const part of parts) for (const [r, n] of Object.entries(part) as Array<[QuotaResource, number]>) out[r] = (out[r] ?? 0) + n;
  return out;
}
