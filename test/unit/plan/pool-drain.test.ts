import { describe, expect, it } from 'vitest';
import { goingPoolNodes, planPoolShrink, poolNodeIndex, type PoolShrinkRead, type PoolSwarmNode } from '../../../src/plan/pool-drain.js';

/** The autoscaler's pool shrink as data: which nodes go, and drain -> wait -> stack update. */

const node = (index: number, extra: Partial<PoolSwarmNode> = {}): PoolSwarmNode => ({ id: `id${index}`, hostname: `shop-crawl-${index}`, availability: 'active', state: 'ready', tasks: 1, ...extra });
const read = (extra: Partial<PoolShrinkRead> = {}): PoolShrinkRead => ({
  stack: 'shop', pool: 'crawl', from: 4, to: 2, nodes: [node(0), node(1), node(2), node(3)], drainingSince: null, now: 1_000_000, graceMs: 60_000, ...extra,
});

describe('planPoolShrink', () => {
  it('the nodes that go are the highest indexes (Heat\'s), newest first; other names are not the pool\'s', () => {
    expect(poolNodeIndex('shop', 'crawl', 'shop-crawl-12')).toBe(12);
    expect(poolNodeIndex('shop', 'crawl', 'SHOP-crawl-3.novalocal')).toBe(3);
    expect(poolNodeIndex('shop', 'crawl', 'shop-nodes-1')).toBeNull();
    expect(poolNodeIndex('shop', 'crawl', 'shop-crawl-x')).toBeNull();
    expect(goingPoolNodes('shop', 'crawl', 2, [node(0), node(3), node(1), node(2), { ...node(9), hostname: 'other-9' }]).map((n) => n.hostname)).toEqual(['shop-crawl-3', 'shop-crawl-2']);
  });

  it('drains first; waits while their tasks run, within the grace period; then the stack update', () => {
    expect(planPoolShrink(read())).toEqual({ kind: 'drain-nodes', nodes: [{ id: 'id3', hostname: 'shop-crawl-3' }, { id: 'id2', hostname: 'shop-crawl-2' }], describe: expect.stringMatching(/^crawl 4 -> 2: drain shop-crawl-3, shop-crawl-2 first/) });
    // one drained, a controller killed before the other: the rest is drained
    expect(planPoolShrink(read({ nodes: [node(0), node(1), node(2), node(3, { availability: 'drain' })] }))).toMatchObject({ kind: 'drain-nodes', nodes: [{ id: 'id2' }] });
    const drained = [node(0), node(1), node(2, { availability: 'drain' }), node(3, { availability: 'drain', tasks: 2 })];
    expect(planPoolShrink(read({ nodes: drained, drainingSince: 990_000 }))).toEqual({ kind: 'wait-drained', drainingSince: 990_000, describe: 'crawl 4 -> 2: draining, still running on shop-crawl-3 (2 tasks), shop-crawl-2 (1 task); waited 10 s of 60 s' });
    // without a remembered start (a controller killed after the drain), the period starts now
    expect(planPoolShrink(read({ nodes: drained }))).toMatchObject({ kind: 'wait-drained', drainingSince: 1_000_000 });
    const idle = drained.map((n) => ({ ...n, tasks: n.hostname === 'shop-crawl-3' || n.hostname === 'shop-crawl-2' ? 0 : n.tasks }));
    expect(planPoolShrink(read({ nodes: idle, drainingSince: 990_000 }))).toEqual({ kind: 'update-stack', overdue: [], describe: 'crawl 4 -> 2: shop-crawl-3, shop-crawl-2 drained; the stack goes to 2' });
    // a node that is down holds nothing up; no pool node in the swarm at all: nothing to wait for
    expect(planPoolShrink(read({ nodes: [node(0), node(1), node(2, { availability: 'drain', state: 'down' }), node(3, { availability: 'drain', tasks: 0 })] }))).toMatchObject({ kind: 'update-stack', overdue: [] });
    expect(planPoolShrink(read({ nodes: [] }))).toMatchObject({ kind: 'update-stack', overdue: [], describe: expect.stringContaining('no node of the pool is in the swarm') });
  });

  it('a node still running tasks after the grace period: the update goes ahead, naming it', () => {
    const stuck = [node(0), node(1), node(2, { availability: 'drain', tasks: 0 }), node(3, { availability: 'drain', tasks: 1 })];
    expect(planPoolShrink(read({ nodes: stuck, drainingSince: 940_000 }))).toEqual({
      kind: 'update-stack', overdue: [{ hostname: 'shop-crawl-3', tasks: 1 }],
      describe: 'crawl 4 -> 2: shop-crawl-3 (1 task) still running after the 60 s grace period; the stack goes to 2 anyway (what they did not hand back is lost with them)',
    });
  });
});
