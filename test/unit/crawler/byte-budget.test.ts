import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../../crawler/src/worker/byte-budget.js';

/** Resolves after pending promise callbacks have run: what was granted by then is granted. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the in-flight budget of image bodies', () => {
  it('grants what fits at once and holds the rest until bytes are given back', async () => {
    const budget = new ByteBudget(100);
    const first = await budget.take(60);
    const granted: string[] = [];
    const second = budget.take(50).then((release) => { granted.push('second'); return release; });
    await settle();
    expect(granted).toEqual([]);
    expect(budget.held).toBe(60);
    first();
    const releaseSecond = await second;
    expect(granted).toEqual(['second']);
    expect(budget.held).toBe(50);
    releaseSecond();
    expect(budget.held).toBe(0);
  });

  it('serves waiting tasks in order: a small one does not overtake a large one that came first', async () => {
    const budget = new ByteBudget(100);
    const first = await budget.take(90);
    const order: string[] = [];
    const large = budget.take(80).then((release) => { order.push('large'); return release; });
    const small = budget.take(5).then((release) => { order.push('small'); return release; });
    await settle();
    // 5 bytes would fit beside the 90, but the large body asked first
    expect(order).toEqual([]);
    first();
    (await large)();
    (await small)();
    expect(order).toEqual(['large', 'small']);
    expect(budget.held).toBe(0);
  });

  it('lets a body larger than the whole budget through when nothing else is held, and only then', async () => {
    const budget = new ByteBudget(100);
    const releaseHuge = await budget.take(500);
    expect(budget.held).toBe(500);
    let next = false;
    const after = budget.take(1).then((release) => { next = true; return release; });
    await settle();
    expect(next).toBe(false);
    releaseHuge();
    (await after)();
    expect(next).toBe(true);
  });

  it('gives bytes back once however often a release is called', async () => {
    const budget = new ByteBudget(100);
    const a = await budget.take(40);
    const b = await budget.take(40);
    a();
    a();
    expect(budget.held).toBe(40);
    b();
    expect(budget.held).toBe(0);
  });
});
