/**
 * Service Units: what a cluster costs an allocation per hour and per day, and how long the budget lasts.
 * Every running (and every shut-off) instance burns its flavor's SUs; only shelving or deleting stops it.
 */

const HOURS_PER_YEAR = 365 * 24;

/**
 * Nectar's published rates, SU per hour. Where they come from (read 2026-12-06):
 * - m3: Nectar's allocation request form states the yearly cost of an instance running all year:
 *   m3.small 500 SU, m3.medium 1,000 SU, m3.large 2,000 SU (NeCTAR-RC/nectar-dashboard,
 *   nectar_dashboard/rcallocation/templates/rcallocation/allocationrequest_edit.html, commit 1cd3e16 of
 *   2024-10-23); per hour is that over the 8,760 hours of a year.
 * - p3 (preemptible): "a quarter (1/4) of the SU cost of comparative m3 flavors" (support.ehelp.edu.au,
 *   article 6000243910, Nectar Preemptible Instance Service).
 * Nectar's Flavors article (support.ehelp.edu.au 6000205341) lists every flavor's hourly rate; it could not be
 * read from here, so other flavors (t3, c3, r3, m3.xsmall...) have no default: set them in
 * provider.serviceUnits.rates, which adds to and overrides this table.
 */
export const NECTAR_SU_RATES: Readonly<Record<string, number>> = Object.freeze({
  'm3.small': 500 / HOURS_PER_YEAR,
  'm3.medium': 1000 / HOURS_PER_YEAR,
  'm3.large': 2000 / HOURS_PER_YEAR,
  'p3.small': 500 / HOURS_PER_YEAR / 4,
  'p3.medium': 1000 / HOURS_PER_YEAR / 4,
  'p3.large': 2000 / HOURS_PER_YEAR / 4,
});

export interface SuCost {
  perHour: number;
  perDay: number;
  /** Flavor -> servers, SU per hour each. */
  byFlavor: Array<{ flavor: string; servers: number; rate: number | null }>;
  /** Flavors without a rate: the figures above leave them out. */
  unknown: string[];
}

/** The table in force: Nectar's defaults with the user's rates over them. */
export function suRates(configured: Readonly<Record<string, number>> = {}): Record<string, number> {
  return { ...NECTAR_SU_RATES, ...configured };
}

export function suCost(servers: Readonly<Record<string, number>>, rates: Readonly<Record<string, number>>): SuCost {
  const byFlavor = Object.entries(servers).map(([flavor, n]) => ({ flavor, servers: n, rate: rates[flavor] ?? null }));
  const perHour = byFlavor.reduce((sum, f) => sum + (f.rate ?? 0) * f.servers, 0);
  return { perHour, perDay: perHour * 24, byFlavor, unknown: byFlavor.filter((f) => f.rate === null).map((f) => f.flavor) };
}

export interface AllocationBudget {
  /** The allocation's last day, YYYY-MM-DD. */
  endsOn?: string;
  /** SUs the allocation has left (the dashboard's Usage page shows budget and use). */
  suBudget?: number;
}

export interface BudgetOutlook {
  /** Days the budget lasts at this rate (null: nothing burns). */
  daysOfBudget: number | null;
  /** Days until the allocation ends (from `today`). */
  daysToEnd?: number;
  /** The budget runs out before the allocation ends. */
  runsOutEarly?: boolean;
}

/** `today` is passed in (plan/ reads no clock): ms since the epoch. */
export function budgetOutlook(cost: SuCost, budget: AllocationBudget, today: number): BudgetOutlook {
  const daysOfBudget = budget.suBudget === undefined || cost.perDay === 0 ? null : budget.suBudget / cost.perDay;
  const out: BudgetOutlook = { daysOfBudget };
  if (budget.endsOn !== undefined) {
    const end = Date.parse(`${budget.endsOn}T23:59:59Z`);
    out.daysToEnd = Math.max(0, (end - today) / 86_400_000);
    if (daysOfBudget !== null) out.runsOutEarly = daysOfBudget < out.daysToEnd;
  }
  return out;
}

const su = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** The SU lines of a plan or of status. */
export function suLines(cost: SuCost, budget: AllocationBudget, today: number): string[] {
  const parts = cost.byFlavor.map((f) => `${f.servers} x ${f.flavor}${f.rate === null ? ' (rate unknown)' : ` at ${su(f.rate)}`}`);
  const lines = [`service units: ${su(cost.perHour)} SU/hour, ${su(cost.perDay)} SU/day (${parts.join(' + ') || 'no servers'})`];
  if (cost.unknown.length > 0) {
    lines.push(`  no SU rate for ${cost.unknown.join(', ')}: add it under provider.serviceUnits.rates (Nectar's Flavors page lists it)`);
  }
  const outlook = budgetOutlook(cost, budget, today);
  if (budget.suBudget !== undefined) {
    if (outlook.daysOfBudget === null) lines.push(`  ${su(budget.suBudget)} SU left; nothing burns them`);
    else lines.push(`  ${su(budget.suBudget)} SU left: ${outlook.daysOfBudget.toFixed(1)} days at this rate`);
  }
  if (outlook.daysToEnd !== undefined) {
    const end = `the allocation ends on ${budget.endsOn} (in ${Math.floor(outlook.daysToEnd)} days)`;
    if (outlook.runsOutEarly === true) lines.push(`  ! ${end}: the budget runs out ${Math.floor(outlook.daysToEnd - outlook.daysOfBudget!)} days before it`);
    else lines.push(`  ${end}`);
  }
  return lines;
}
