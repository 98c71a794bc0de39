import { poolCountParameter } from './pool-stack.js';

/**
 * How many nodes a worker pool (provider.pools) should have, decided from the queue and the allocation's Service
 * Unit budget: the autoscale controller asks `decidePoolScale` every reading, with time passed in, and applies
 * the answer through Heat (a stack update of the pool's count parameter; src/apply/openstack/pool-scaler.ts).
 *
 *   grow:     the backlog wants more nodes (ceil(backlog / targetBacklog) within the pool's range), the last
 *             change is upCooldown old, and the budget lasts at the larger burn: until the allocation ends when
 *             its end is given, else at least `minBudgetDays`. It grows to the most nodes the budget allows.
 *   shrink:   only after the queue has been empty for `idle` without a break (one reading with work resets it),
 *             and then to the pool's minimum.
 *   recreate: nodes the cloud took back (preempted instances) are made again while there is work for them (or
 *             the pool is below its minimum without them), when the budget allows their burn.
 *   hold:     anything else, with the reason; a stack Heat is busy with is never touched (it would answer 409).
 *
 * No clock, no network: plain data in and out (test/unit/plan/pool-autoscale.test.ts).
 */

export interface PoolScalePolicy {
  pool: string;
  min: number;
  max: number;
  /** Queued tasks one pool node should have to itself: nodes wanted = ceil(backlog / targetBacklog). */
  targetBacklog: number;
  /** SU per hour of one node of the pool's flavor (the rate table); null: the flavor has no rate. */
  nodeRate: number | null;
  /** How long the queue must stay empty before the pool goes back to its minimum. */
  idleMs: number;
  /** No growth sooner than this after the last change. */
  upCooldownMs: number;
}

export interface PoolBudget {
  /** SUs the allocation has left (provider.allocation.suBudget). */
  suBudget?: number;
  /** The allocation's last day, YYYY-MM-DD (provider.allocation.endsOn). */
  endsOn?: string;
}

/** Without an end date, growth needs the budget to last at least this many days at the new burn. */
export const MIN_BUDGET_DAYS = 7;

export interface PoolMemory {
  /** When the pool's count last changed (epoch ms): by the controller, or when it started watching. */
  lastChangeAt: number;
  /** Since when every reading found the queue empty; null while there is work. */
  emptySince: number | null;
}

export interface PoolObservation {
  now: number;
  /** The backlog gauge; null when it could not be read. */
  backlog: number | null;
  /** The pool's count parameter as the stack has it. */
  count: number;
  /** Pool nodes the stack still lists whose servers are gone. */
  lost: number;
  /** SU per hour the rest of the cluster burns (its other servers). */
  otherSuPerHour: number;
  /** Heat is working on the stack (<ACTION>_IN_PROGRESS). */
  stackBusy: boolean;
}

export type PoolAction = 'grow' | 'shrink' | 'recreate' | 'hold';

export interface PoolDecision {
  action: PoolAction;
  from: number;
  to: number;
  /** clamp(ceil(backlog / targetBacklog), min, max); null without a reading. */
  wanted: number | null;
  reason: string;
  memory: PoolMemory;
}

export function startPoolMemory(now: number): PoolMemory {
  return { lastChangeAt: now, emptySince: null };
}

/** Days the budget lasts at this many SU per hour; null when nothing burns. */
export function budgetDays(suBudget: number, suPerHour: number): number | null {
  return suPerHour <= 0 ? null : suBudget / (suPerHour * 24);
}

/** Days from `now` to the end of the allocation's last day (never below 0). */
export function daysToEnd(endsOn: string, now: number): number {
  return Math.max(0, (Date.parse(`${endsOn}T23:59:59Z`) - now) / 86_400_000);
}

/** Whether the budget lasts at this burn: until the allocation's end when given, else MIN_BUDGET_DAYS. */
export function budgetLasts(budget: PoolBudget, suPerHour: number, now: number): { ok: boolean; why: string } {
  if (budget.suBudget === undefined) return { ok: true, why: 'no SU budget given' };
  const days = budgetDays(budget.suBudget, suPerHour);
  if (days === null) return { ok: true, why: 'nothing burns' };
  const need = budget.endsOn !== undefined ? daysToEnd(budget.endsOn, now) : MIN_BUDGET_DAYS;
  const until = budget.endsOn !== undefined ? `the allocation's end (${budget.endsOn}, ${need.toFixed(1)} days)` : `${MIN_BUDGET_DAYS} days`;
  return days >= need
    ? { ok: true, why: `${budget.suBudget} SU last ${days.toFixed(1)} days at ${suPerHour.toFixed(2)} SU/hour, past ${until}` }
    : { ok: false, why: `${budget.suBudget} SU would last ${days.toFixed(1)} days at ${suPerHour.toFixed(2)} SU/hour, short of ${until}` };
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

export function decidePoolScale(policy: PoolScalePolicy, budget: PoolBudget, memory: PoolMemory, observation: PoolObservation): PoolDecision {
  const { now, backlog, count, lost, otherSuPerHour } = observation;
  const clamp = (n: number) => Math.min(policy.max, Math.max(policy.min, n));
  const reading = backlog !== null && Number.isFinite(backlog) && backlog >= 0 ? backlog : null;
  const emptySince = reading === null ? memory.emptySince : reading === 0 ? (memory.emptySince ?? now) : null;
  const wanted = reading === null ? null : clamp(Math.ceil(reading / policy.targetBacklog));
  const hold = (reason: string): PoolDecision => ({ action: 'hold', from: count, to: count, wanted, reason, memory: { lastChangeAt: memory.lastChangeAt, emptySince } });
  const change = (action: PoolAction, to: number, reason: string): PoolDecision => ({ action, from: count, to, wanted, reason, memory: { lastChangeAt: now, emptySince } });
  /** Whether `nodes` nodes of the pool (with the rest of the cluster) fit the budget. */
  const affordable = (nodes: number) => {
    if (policy.nodeRate === null) return budget.suBudget === undefined ? { ok: true, why: 'no SU budget given' } : { ok: false, why: 'the pool\'s flavor has no SU rate (add it under provider.serviceUnits.rates)' };
    return budgetLasts(budget, otherSuPerHour + nodes * policy.nodeRate, now);
  };

  if (observation.stackBusy) return hold('Heat is working on the stack; nothing is asked of it until it is done');
  if (count < policy.min || count > policy.max) {
    return change(count < policy.min ? 'grow' : 'shrink', clamp(count), `the stack has ${count} nodes, outside the pool's ${policy.min}..${policy.max}`);
  }
  const asked = reading === null ? 'no backlog reading' : `backlog ${reading} / ${policy.targetBacklog} per node`;
  // without a reading nothing grows or shrinks; only a pool below its minimum gets its lost nodes back
  if (reading === null && lost === 0) return hold(asked);

  if (wanted !== null && wanted > count) {
    const cooling = now - memory.lastChangeAt < policy.upCooldownMs;
    // a node the cloud took back is made again without waiting for the cooldown: it is not growth
    if (cooling && lost === 0) return hold(`${asked} wants ${wanted}; growth waits ${seconds(policy.upCooldownMs - (now - memory.lastChangeAt))} more`);
    let to = wanted;
    while (to > count && !affordable(to).ok) to -= 1;
    if (to > count && !cooling) return change('grow', to, `${asked} wants ${wanted}; ${affordable(to).why}${to < wanted ? ` (${wanted} would not: ${affordable(wanted).why})` : ''}`);
    const refusal = affordable(count + 1).why;
    if (lost === 0) return hold(`${asked} wants ${wanted}, but the budget does not allow more: ${refusal}`);
  }

  if (lost > 0) {
    const alive = count - lost;
    const needed = (reading !== null && reading > 0) || alive < policy.min;
    if (!needed) return hold(`${lost} pool node${lost === 1 ? ' is' : 's are'} gone, and no work waits for ${lost === 1 ? 'it' : 'them'}`);
    const fits = affordable(count);
    if (!fits.ok) return hold(`${lost} pool node${lost === 1 ? ' is' : 's are'} gone; making ${lost === 1 ? 'it' : 'them'} again does not fit the budget: ${fits.why}`);
    return change('recreate', count, `${lost} of ${count} pool nodes are gone (preempted); ${asked}`);
  }

  if (emptySince !== null && count > policy.min) {
    const idle = now - emptySince;
    if (idle < policy.idleMs) return hold(`the queue has been empty for ${seconds(idle)}; the pool shrinks after ${seconds(policy.idleMs)}`);
    return change('shrink', policy.min, `the queue has been empty for ${seconds(idle)}`);
  }
  return hold(wanted === null ? asked : `${asked} wants ${wanted}`);
}

/**
 * SU per hour of the cluster apart from one pool, from the stack's parameters: the nodes (`count` servers of
 * `flavor`, as node-up sets them) and every other pool at its count. A flavor without a rate counts 0 and is named.
 */
export function otherSuPerHour(
  parameters: Readonly<Record<string, string>>,
  rates: Readonly<Record<string, number>>,
  pools: ReadonlyArray<{ pool: string; flavor: string }>,
  except: string,
): { suPerHour: number; unrated: string[] } {
  const unrated: string[] = [];
  const burn = (servers: number, flavor: string | undefined) => {
    if (!Number.isFinite(servers) || servers <= 0) return 0;
    const rate = flavor === undefined ? undefined : rates[flavor];
    if (rate === undefined) {
      unrated.push(flavor ?? '(no flavor parameter)');
      return 0;
    }
    return servers * rate;
  };
  let suPerHour = burn(Number(parameters.count), parameters.flavor);
  for (const p of pools) if (p.pool !== except) suPerHour += burn(Number(parameters[poolCountParameter(p.pool)]), p.flavor);
  return { suPerHour, unrated };
}
