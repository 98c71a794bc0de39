import { describe, expect, it } from 'vitest';
import {
  budgetDays, budgetLasts, daysToEnd, decidePoolScale, MIN_BUDGET_DAYS, otherSuPerHour, startPoolMemory,
  type PoolBudget, type PoolMemory, type PoolObservation, type PoolScalePolicy,
} from '../../../src/plan/pool-autoscale.js';
import { NECTAR_SU_RATES } from '../../../src/plan/service-units.js';

const P3_SMALL = NECTAR_SU_RATES['p3.small']!;
const M3_SMALL = NECTAR_SU_RATES['m3.small']!;
/** A pool of p3.small nodes 0..4, 50 tasks each, back to 0 after 10 minutes of an empty queue. */
const policy: PoolScalePolicy = { pool: 'crawl', min: 0, max: 4, targetBacklog: 50, nodeRate: P3_SMALL, idleMs: 600_000, upCooldownMs: 60_000 };
const T0 = Date.parse('2027-01-10T00:00:00Z');
/** The rest of the cluster: 3 x m3.small. */
const others = 3 * M3_SMALL;

/** Readings (seconds after T0) with the stack's count following the decisions. */
function run(readings: Array<[seconds: number, backlog: number | null]>, options: { budget?: PoolBudget; start?: number; lost?: number } = {}) {
  let memory: PoolMemory = startPoolMemory(T0 - 3_600_000);
  let count = options.start ?? 0;
  return readings.map(([s, backlog]) => {
    const observation: PoolObservation = { now: T0 + s * 1000, backlog, count, lost: options.lost ?? 0, otherSuPerHour: others, stackBusy: false };
    const decision = decidePoolScale(policy, options.budget ?? {}, memory, observation);
    memory = decision.memory;
    count = decision.to;
    return decision;
  });
}

describe('the budget arithmetic', () => {
  it('days of budget at a burn, and days to the end of the allocation', () => {
    // 3 x m3.small burn 1500 SU a year: 4.11 SU a day
    expect(budgetDays(1500, others)).toBeCloseTo(365, 6);
    expect(budgetDays(100, 0)).toBeNull();
    expect(daysToEnd('2027-01-10', T0)).toBeCloseTo(86_399 / 86_400, 6);
    expect(daysToEnd('2027-02-09', T0)).toBeCloseTo(30 + 86_399 / 86_400, 6);
    expect(daysToEnd('2026-12-31', T0)).toBe(0);
  });

  it('lasts until the allocation ends, or MIN_BUDGET_DAYS without an end date', () => {
    const burn = others; // 4.11 SU/day
    expect(budgetLasts({ suBudget: 4.11 * 31, endsOn: '2027-02-09' }, burn, T0).ok).toBe(true);
    expect(budgetLasts({ suBudget: 4.11 * 30, endsOn: '2027-02-09' }, burn, T0)).toMatchObject({ ok: false });
    expect(budgetLasts({ suBudget: 4.11 * 30, endsOn: '2027-02-09' }, burn, T0).why).toMatch(/would last 30\.0 days .* short of the allocation's end \(2027-02-09, 31\.0 days\)/);
    expect(budgetLasts({ suBudget: 4.11 * MIN_BUDGET_DAYS + 1 }, burn, T0).ok).toBe(true);
    expect(budgetLasts({ suBudget: 4.11 * MIN_BUDGET_DAYS - 1 }, burn, T0).ok).toBe(false);
    expect(budgetLasts({}, burn, T0)).toEqual({ ok: true, why: 'no SU budget given' });
  });
});

describe('decidePoolScale', () => {
  it('grows to ceil(backlog / target) within the range when there is no budget to mind', () => {
    const [a, b] = run([[0, 120], [120, 10_000]]);
    expect([a!.action, a!.from, a!.to, a!.wanted]).toEqual(['grow', 0, 3, 3]);
    expect([b!.action, b!.to]).toEqual(['grow', 4]);
  });

  it('grows no sooner than upCooldown after the last change', () => {
    const decisions = run([[0, 60], [30, 200], [60, 200]]);
    expect(decisions.map((d) => `${d.action} ${d.to}`)).toEqual(['grow 2', 'hold 2', 'grow 4']);
    expect(decisions[1]!.reason).toBe('backlog 200 / 50 per node wants 4; growth waits 30s more');
  });

  it('an exhausted budget: no growth, whatever the queue', () => {
    const [d] = run([[0, 10_000]], { budget: { suBudget: 0, endsOn: '2027-06-30' } });
    expect([d!.action, d!.to]).toEqual(['hold', 0]);
    expect(d!.reason).toMatch(/^backlog 10000 \/ 50 per node wants 4, but the budget does not allow more: 0 SU would last 0\.0 days/);
  });

  it('grows only as far as the budget lasts until the allocation ends', () => {
    // 30 days left; 3 x m3.small burn 4.11 SU/day, each p3.small 1.37 SU/day: room for exactly 2 pool nodes
    const perDay = (nodes: number) => (others + nodes * P3_SMALL) * 24;
    const budget = { suBudget: perDay(2) * 31 + 1, endsOn: '2027-02-09' };
    const [d] = run([[0, 10_000]], { budget });
    expect([d!.action, d!.to, d!.wanted]).toEqual(['grow', 2, 4]);
    expect(d!.reason).toMatch(/\(4 would not: .* short of the allocation's end/);
  });

  it('a flavor without an SU rate does not grow against a budget (its cost is unknown)', () => {
    const d = decidePoolScale({ ...policy, nodeRate: null }, { suBudget: 1e6 }, startPoolMemory(0), { now: T0, backlog: 500, count: 0, lost: 0, otherSuPerHour: others, stackBusy: false });
    expect(d.action).toBe('hold');
    expect(d.reason).toMatch(/has no SU rate/);
  });

  it('shrinks to min only after the queue has stayed empty for idle; one reading with work starts it again', () => {
    const decisions = run([[0, 200], [60, 0], [400, 0], [500, 3], [560, 0], [1100, 0], [1160, 0]], { start: 0 });
    expect(decisions.map((d) => `${d.action} ${d.to}`)).toEqual(['grow 4', 'hold 4', 'hold 4', 'hold 4', 'hold 4', 'hold 4', 'shrink 0']);
    expect(decisions[2]!.reason).toBe('the queue has been empty for 340s; the pool shrinks after 600s');
    expect(decisions[6]!.reason).toBe('the queue has been empty for 600s');
  });

  it('a queue that is low but not empty keeps the nodes (no flapping)', () => {
    const decisions = run([[0, 200], [60, 10], [700, 10], [1400, 1]]);
    expect(decisions.map((d) => `${d.action} ${d.to}`)).toEqual(['grow 4', 'hold 4', 'hold 4', 'hold 4']);
  });

  it('recreates lost nodes while there is work, at once (no cooldown), when the budget allows', () => {
    const [d] = run([[0, 100]], { start: 2, lost: 1 });
    expect([d!.action, d!.from, d!.to]).toEqual(['recreate', 2, 2]);
    expect(d!.reason).toBe('1 of 2 pool nodes are gone (preempted); backlog 100 / 50 per node');
    const cooling = decidePoolScale(policy, {}, startPoolMemory(T0), { now: T0 + 1000, backlog: 300, count: 2, lost: 2, otherSuPerHour: others, stackBusy: false });
    expect(cooling.action).toBe('recreate');
  });

  it('does not recreate lost nodes nobody has work for, unless the pool is below its minimum without them', () => {
    const [idle] = run([[0, 0]], { start: 2, lost: 2 });
    expect(idle!.action).toBe('hold');
    expect(idle!.reason).toBe('2 pool nodes are gone, and no work waits for them');
    const floor = decidePoolScale({ ...policy, min: 2 }, {}, startPoolMemory(0), { now: T0, backlog: 0, count: 2, lost: 1, otherSuPerHour: others, stackBusy: false });
    expect(floor.action).toBe('recreate');
  });

  it('does not recreate lost nodes the budget cannot pay for', () => {
    const [d] = run([[0, 100]], { start: 2, lost: 1, budget: { suBudget: 1 } });
    expect(d!.action).toBe('hold');
    expect(d!.reason).toMatch(/^1 pool node is gone; making it again does not fit the budget: 1 SU would last/);
  });

  it('leaves a stack Heat is busy with alone, and keeps counting the empty queue meanwhile', () => {
    const memory = { lastChangeAt: T0 - 3_600_000, emptySince: T0 - 700_000 };
    const d = decidePoolScale(policy, {}, memory, { now: T0, backlog: 0, count: 3, lost: 0, otherSuPerHour: others, stackBusy: true });
    expect([d.action, d.to]).toEqual(['hold', 3]);
    expect(d.memory).toEqual(memory);
  });

  it('brings a count outside the range back inside it', () => {
    const d = decidePoolScale(policy, {}, startPoolMemory(0), { now: T0, backlog: null, count: 7, lost: 0, otherSuPerHour: 0, stackBusy: false });
    expect([d.action, d.to]).toEqual(['shrink', 4]);
  });

  it('without a backlog reading nothing moves, and the empty-queue clock neither starts nor stops', () => {
    const memory = { lastChangeAt: 0, emptySince: T0 - 1000 };
    const d = decidePoolScale(policy, {}, memory, { now: T0, backlog: null, count: 2, lost: 0, otherSuPerHour: 0, stackBusy: false });
    expect([d.action, d.reason, d.memory.emptySince]).toEqual(['hold', 'no backlog reading', T0 - 1000]);
  });
});

describe('otherSuPerHour', () => {
  it('the nodes and the other pools at their counts, from the stack\'s parameters; a flavor without a rate is named', () => {
    const rates = { 'm3.small': M3_SMALL, 'p3.small': P3_SMALL };
    const parameters = { count: '3', flavor: 'm3.small', pool_crawl_count: '2', pool_render_count: '1' };
    const pools = [{ pool: 'crawl', flavor: 'p3.small' }, { pool: 'render', flavor: 'p3.small' }];
    expect(otherSuPerHour(parameters, rates, pools, 'crawl').suPerHour).toBeCloseTo(3 * M3_SMALL + P3_SMALL, 10);
    expect(otherSuPerHour(parameters, rates, pools, 'render').suPerHour).toBeCloseTo(3 * M3_SMALL + 2 * P3_SMALL, 10);
    expect(otherSuPerHour({ ...parameters, flavor: 't3.xsmall' }, rates, pools, 'crawl')).toEqual({ suPerHour: P3_SMALL, unrated: ['t3.xsmall'] });
  });
});
