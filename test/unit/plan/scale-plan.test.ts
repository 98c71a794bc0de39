import { describe, expect, it } from 'vitest';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import { emptyReleaseState, type InstalledVersion } from '../../../src/plan/release-state.js';
import { planScaleChange } from '../../../src/plan/scale-plan.js';

const version = (label: string, worker = 1): InstalledVersion => ({
  label, createdAt: '2026-11-20T00:00:00Z', services: [`shop-${label}-web`, `shop-${label}-worker`],
  http: { service: `shop-${label}-web`, port: 8080, health: '/healthz' }, replicas: { [`shop-${label}-web`]: 1, [`shop-${label}-worker`]: worker },
});
const state = { ...emptyReleaseState('shop'), live: 'v2', previous: 'v1', scale: { worker: 2 } };
const installed = [version('v1'), version('v2', 2)];

describe('the scale plan', () => {
  it('on the live version: one release change that sets and records the replicas, then the wait', () => {
    const planned = planScaleChange({ state, installed, request: { replicas: { worker: 5 } } });
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan).toEqual({
      command: 'depl scale worker=5',
      notes: ['scale: {"worker":2} -> {"worker":5}', 'replicas: shop-v2-worker 2 -> 5', 'history: + scale v2 (worker=5)'],
      steps: [
        { kind: 'release-change', request: { kind: 'scale', replicas: { worker: 5 } }, targets: [{ service: 'shop-v2-worker', replicas: 5, from: 2 }], describe: "set replicas shop-v2-worker 2 -> 5 and record worker=5 as the app's scale" },
        { kind: 'wait-for-replicas', targets: [{ service: 'shop-v2-worker', replicas: 5, from: 2 }], describe: 'wait until shop-v2-worker runs 5' },
      ],
      version: 'v2', recorded: true, scale: { worker: 5 }, targets: [{ service: 'shop-v2-worker', replicas: 5, from: 2 }],
    });
    expect(renderPlanText(planned.plan)).toContain("  1. set replicas shop-v2-worker 2 -> 5 and record worker=5 as the app's scale\n  2. wait until shop-v2-worker runs 5\n");
  });

  it('on another version: applied and in the history, not the app\'s scale', () => {
    const planned = planScaleChange({ state, installed, request: { replicas: { worker: 0 }, version: 'v1' } });
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan).toMatchObject({ command: 'depl scale worker=0 --version v1', version: 'v1', recorded: false, scale: { worker: 2 } });
    expect(planned.plan.notes).toContain("v1 is not live: not recorded as the app's scale");
    expect(planned.plan.steps[0]?.describe).toBe('set replicas shop-v1-worker 1 -> 0 and record it in the history');
  });

  it('already in place: only the wait (what a run killed after its release change leaves to the next one)', () => {
    const planned = planScaleChange({ state, installed, request: { replicas: { worker: 2 } } });
    if (!planned.ok) throw new Error(planned.message);
    expect(planned.plan.steps.map((s) => s.kind)).toEqual(['wait-for-replicas']);
    expect(planned.plan.notes).toEqual(['v2 already runs worker=2: nothing to set']);
  });

  it('refuses with the release transition\'s codes', () => {
    expect(planScaleChange({ state, installed, request: { replicas: { db: 2 } } })).toMatchObject({ ok: false, code: 'NO_SUCH_SERVICE' });
    expect(planScaleChange({ state, installed, request: { replicas: { web: 0 } } })).toMatchObject({ ok: false, code: 'WOULD_STOP_LIVE' });
    expect(planScaleChange({ state, installed, request: { replicas: { worker: 1 }, version: 'v9' } })).toMatchObject({ ok: false, code: 'NOT_INSTALLED' });
    expect(planScaleChange({ state: { ...state, live: null }, installed, request: { replicas: { worker: 1 } } })).toMatchObject({ ok: false, code: 'NO_LIVE' });
  });
});
