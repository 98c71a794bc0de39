import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { addedDemand, checkQuota, flavorDemand, mergeDemand, quotaLines, quotaRefusal, templateDemand, type ServiceQuota } from '../../../src/plan/allocation.js';
import { budgetOutlook, NECTAR_SU_RATES, suCost, suLines, suRates } from '../../../src/plan/service-units.js';

const stackTemplate = readFileSync(new URL('../../../heat/stack.yaml', import.meta.url), 'utf8');
const flavors = [
  { id: 'f1', name: 'm3.small', vcpus: 2, ram: 4096 },
  { id: 'f2', name: 'p3.small', vcpus: 2, ram: 4096 },
];

describe('what a plan asks of the quotas', () => {
  it("reads heat/stack.yaml: count servers of the flavor, a port each, one security group with its rules and Neutron's two egress rules", () => {
    const d = templateDemand(stackTemplate, { count: '3', flavor: 'm3.small' });
    expect(d.servers).toEqual({ 'm3.small': 3 });
    expect(d.demand).toEqual({ instances: 3, port: 3, security_group: 1, security_group_rule: 11 });
    expect(d.notes).toEqual([]);
    // the template's own default flavor when none is given
    expect(templateDemand(stackTemplate, { count: '1' }).servers).toEqual({ 'm3.small': 1 });
    expect(flavorDemand(d.servers, flavors)).toEqual({ demand: { cores: 6, ram: 12288 }, unknown: [] });
    expect(flavorDemand({ 'x9.huge': 1 }, flavors).unknown).toEqual(['x9.huge']);
  });

  it('counts volumes with their size, floating IPs and load balancers; notes what it cannot evaluate', () => {
    const template = `
resources:
  data: { type: OS::Cinder::Volume, properties: { size: { get_param: size } } }
  ip: { type: OS::Neutron::FloatingIP }
  lb: { type: OS::Octavia::LoadBalancer }
  odd: { type: OS::Heat::ResourceGroup, properties: { count: { get_attr: [x, y] }, resource_def: { type: OS::Nova::Server } } }
`;
    const d = templateDemand(template, { size: '50' });
    expect(d.demand).toEqual({ volumes: 1, gigabytes: 50, floatingip: 1, loadbalancer: 1 });
    expect(d.notes).toEqual(['odd: its count cannot be read; not counted']);
  });

  it('an update needs only what it adds to the stack', () => {
    const wanted = mergeDemand({ instances: 5, port: 5, security_group: 1 }, { cores: 10 });
    expect(addedDemand(wanted, { instances: 3, port: 3, security_group: 1, cores: 6 })).toEqual({ instances: 2, port: 2, cores: 4 });
    expect(addedDemand({ instances: 1 }, { instances: 3 })).toEqual({});
  });
});

describe('the quota check', () => {
  const answers: ServiceQuota[] = [
    { service: 'Nova', figures: [{ resource: 'instances', limit: 10, used: 8 }, { resource: 'cores', limit: 20, used: 10 }, { resource: 'ram', limit: null, used: 4096 }] },
    { service: 'Neutron', figures: [{ resource: 'port', limit: 50, used: 8 }, { resource: 'floatingip', limit: 2, used: 2 }] },
    { service: 'Cinder', notChecked: 'no block-storage service in the catalog' },
  ];

  it('gives each resource its headroom and what the plan needs; unlimited always fits', () => {
    const check = checkQuota(answers, { instances: 2, cores: 4, ram: 8192, port: 2 });
    expect(check.over).toEqual([]);
    expect(check.rows.find((r) => r.resource === 'ram')).toMatchObject({ limit: null, headroom: null, needed: 8192, fits: true });
    expect(quotaLines(check)).toEqual([
      'quota (used / limit, headroom, this plan needs):',
      '    Nova instances: 8 / 10, 2 left, needs 2',
      '    Nova vCPUs: 10 / 20, 10 left, needs 4',
      '    Nova RAM (MB): 4096 / unlimited, no limit, needs 8192',
      '    Neutron ports: 8 / 50, 42 left, needs 2',
      '    Neutron floating IPs: 2 / 2, 0 left, needs 0',
      '  Cinder: not checked (no block-storage service in the catalog)',
    ]);
    expect(quotaRefusal(check)).toBeUndefined();
  });

  it('refuses a plan over quota, naming each resource and its numbers', () => {
    const check = checkQuota(answers, { instances: 3, cores: 4, floatingip: 1 });
    expect(check.over.map((r) => r.resource)).toEqual(['instances', 'floatingip']);
    const refusal = quotaRefusal(check)!;
    expect(refusal.message).toBe("the plan does not fit the project's quota: instances (Nova): needs 3, 8 of 10 used, 2 left; floating IPs (Neutron): needs 1, 2 of 2 used, 0 left");
    expect(refusal.hint).toContain('ask for more quota');
    expect(quotaLines(check)).toContain('  ! Nova instances: 8 / 10, 2 left, needs 3: 1 too many');
  });
});

describe('Service Units', () => {
  it("3 x m3.small + 2 x p3.small cost what the rate table says (p3 a quarter of m3, Nectar's rule)", () => {
    const rates = suRates();
    expect(rates['p3.small']).toBeCloseTo(rates['m3.small']! / 4, 12);
    const cost = suCost({ 'm3.small': 3, 'p3.small': 2 }, rates);
    expect(cost.perHour).toBeCloseTo(3 * NECTAR_SU_RATES['m3.small']! + 2 * NECTAR_SU_RATES['p3.small']!, 12);
    expect(cost.perDay).toBeCloseTo(cost.perHour * 24, 12);
    // m3.small is 500 SU for a year of running: 3.5 m3.small-equivalents cost 1,750 SU a year
    expect(cost.perDay * 365).toBeCloseTo(1750, 6);
    expect(cost.unknown).toEqual([]);
  });

  it("the user's rates add to and override Nectar's; a flavor without a rate is named, not priced at 0 silently", () => {
    const rates = suRates({ 'm3.small': 1, 't3.xsmall': 0.25 });
    expect(suCost({ 'm3.small': 2, 't3.xsmall': 4 }, rates).perHour).toBe(3);
    const cost = suCost({ 'c3.large': 1, 'm3.small': 1 }, suRates({ 'm3.small': 1 }));
    expect(cost.unknown).toEqual(['c3.large']);
    expect(suLines(cost, {}, 0)).toEqual([
      'service units: 1.00 SU/hour, 24.0 SU/day (1 x c3.large (rate unknown) + 1 x m3.small at 1.00)',
      "  no SU rate for c3.large: add it under provider.serviceUnits.rates (Nectar's Flavors page lists it)",
    ]);
  });

  it('days left: the budget at this rate, against the allocation end', () => {
    const cost = suCost({ 'm3.small': 1 }, { 'm3.small': 1 });
    const today = Date.parse('2026-12-06T12:00:00Z');
    expect(budgetOutlook(cost, { suBudget: 240 }, today)).toEqual({ daysOfBudget: 10 });
    const outlook = budgetOutlook(cost, { suBudget: 240, endsOn: '2026-12-31' }, today);
    expect(outlook.daysOfBudget).toBe(10);
    expect(Math.floor(outlook.daysToEnd!)).toBe(25);
    expect(outlook.runsOutEarly).toBe(true);
    expect(suLines(cost, { suBudget: 240, endsOn: '2026-12-31' }, today)).toEqual([
      'service units: 1.00 SU/hour, 24.0 SU/day (1 x m3.small at 1.00)',
      '  240 SU left: 10.0 days at this rate',
      '  ! the allocation ends on 2026-12-31 (in 25 days): the budget runs out 15 days before it',
    ]);
    expect(budgetOutlook(cost, { suBudget: 24_000, endsOn: '2026-12-31' }, today).runsOutEarly).toBe(false);
    expect(budgetOutlook(suCost({}, {}), { suBudget: 5 }, today).daysOfBudget).toBeNull();
  });

  it('depl.yaml takes the rate table and the allocation, checked', () => {
    const config = (extra: string) => parseConfig(`app: a\ndomain: a.example.org\nprovider: { type: openstack${extra} }\nservices: { api: { image: x } }\n`);
    const provider = config(', serviceUnits: { rates: { m3.small: 0.1 } }, allocation: { endsOn: "2027-06-30", suBudget: 5000 }').provider;
    expect(provider).toMatchObject({ serviceUnits: { rates: { 'm3.small': 0.1 } }, allocation: { endsOn: '2027-06-30', suBudget: 5000 } });
    expect(config('').provider).toMatchObject({ serviceUnits: { rates: {} } });
    expect(() => config(', allocation: { endsOn: "30/06/2027" }')).toThrow(/provider\.allocation\.endsOn/);
    expect(() => config(', serviceUnits: { rates: { m3.small: -1 } }')).toThrow(/serviceUnits\.rates/);
  });
});
