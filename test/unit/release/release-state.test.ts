import { describe, expect, it } from 'vitest';
import {
  describeChange, emptyReleaseState, parseReleaseDocument, planRelease, resolvePending, routingFor, toDocument,
  type HistoryAction, type InstalledVersion, type Planned, type ReleaseFacts, type ReleaseRequest, type ReleaseState,
} from '../../../src/plan/release-state.js';

const at = '2026-11-29T12:00:00.000Z';
const by = 'ops@laptop';
const version = (label: string, createdAt: string, extra: Partial<InstalledVersion> = {}): InstalledVersion => ({
  label, createdAt, services: [`shop-${label}-api`, `shop-${label}-worker`], http: { service: `shop-${label}-api`, port: 8000, health: '/healthz' }, ...extra,
});
// v2 and v3 are branch deploys (their services carry depl.branch), v1 an install with --version
const installed = [version('v1', '2026-11-20T00:00:00Z'), version('v2', '2026-11-21T00:00:00Z', { branch: 'b' }), version('v3', '2026-11-22T00:00:00Z', { branch: 'feature/x' }), version('jobs', '2026-11-23T00:00:00Z', { http: undefined, services: ['shop-jobs-worker'] })];
const facts: ReleaseFacts = { installed, at, by };
const empty = emptyReleaseState('shop');
const state = (fields: Partial<ReleaseState>): ReleaseState => ({ ...empty, ...fields });
const h = (action: HistoryAction, v: string | null, extra: { note?: string; weight?: number } = {}) => ({ at, by, action, version: v, ...extra });

function ok(planned: Planned): Extract<Planned, { ok: true }> {
  if (!planned.ok) throw new Error(`refused: ${planned.refusal.code} ${planned.refusal.message}`);
  return planned;
}

/** [name, state before, request, expected state fields after] */
const accepted: [string, ReleaseState, ReleaseRequest, Partial<ReleaseState>][] = [
  ['first switch', empty, { kind: 'switch', version: 'v1' }, { live: 'v1', previous: null, canary: null, history: [h('switch', 'v1')] }],
  ['switch keeps the old live as previous', state({ live: 'v1' }), { kind: 'switch', version: 'v2' }, { live: 'v2', previous: 'v1', history: [h('switch', 'v2', { note: 'was v1' })] }],
  ['switch to the live version changes nothing but the history', state({ live: 'v1', previous: 'v3' }), { kind: 'switch', version: 'v1' }, { live: 'v1', previous: 'v3' }],
  ['switch ends a canary', state({ live: 'v1', canary: { version: 'v2', weight: 10 } }), { kind: 'switch', version: 'v3' }, { live: 'v3', previous: 'v1', canary: null }],
  ['the app\'s scale outlives a switch', state({ live: 'v1', scale: { worker: 5 } }), { kind: 'switch', version: 'v2' }, { live: 'v2', scale: { worker: 5 } }],
  ['the app\'s scale outlives a rollback', state({ live: 'v2', previous: 'v1', scale: { worker: 5 } }), { kind: 'rollback' }, { live: 'v1', scale: { worker: 5 } }],
  ['rollback swaps live and previous', state({ live: 'v2', previous: 'v1' }), { kind: 'rollback' }, { live: 'v1', previous: 'v2', history: [h('rollback', 'v1', { note: 'was v2' })] }],
  ['canary', state({ live: 'v1' }), { kind: 'canary', version: 'v2', weight: 30 }, { live: 'v1', canary: { version: 'v2', weight: 30 }, history: [h('canary', 'v2', { weight: 30 })] }],
  ['canary re-weighted', state({ live: 'v1', canary: { version: 'v2', weight: 30 } }), { kind: 'canary', version: 'v2', weight: 50 }, { canary: { version: 'v2', weight: 50 } }],
  ['canary at 0% is an abort', state({ live: 'v1', canary: { version: 'v2', weight: 30 } }), { kind: 'canary', version: 'v2', weight: 0 }, { canary: null, history: [h('abort', 'v2')] }],
  ['promote', state({ live: 'v1', canary: { version: 'v2', weight: 30 } }), { kind: 'promote' }, { live: 'v2', previous: 'v1', canary: null, history: [h('promote', 'v2', { note: 'was v1' })] }],
  ['abort with the figures that decided it', state({ live: 'v1', canary: { version: 'v2', weight: 30 } }), { kind: 'abort', note: '5xx 9%' }, { live: 'v1', canary: null, history: [h('abort', 'v2', { note: '5xx 9%' })] }],
  ['install a new version', state({ live: 'v1' }), { kind: 'install', version: 'v4' }, { live: 'v1', history: [h('install', 'v4')] }],
  ['redeploy a branch that is not live', state({ live: 'v1' }), { kind: 'install', version: 'v3', branch: 'feature/x' }, { history: [h('install', 'v3', { note: 'branch feature/x, redeployed' })] }],
  ['remove a failed install', state({ live: 'v1' }), { kind: 'remove', version: 'v3', note: 'install failed' }, { live: 'v1', history: [h('prune', 'v3', { note: 'install failed' })] }],
  ['prune keeps live, previous and the newest', state({ live: 'v3', previous: 'v2' }), { kind: 'prune', keep: 1 }, { live: 'v3', previous: 'v2', history: [h('prune', null, { note: 'removed v1' })] }],
  ['scale the live version', state({ live: 'v1' }), { kind: 'scale', replicas: { worker: 6 } }, { scale: { worker: 6 }, history: [h('scale', 'v1', { note: 'worker=6' })] }],
  ['scale several services of the live version, keeping the rest of the scale', state({ live: 'v1', scale: { worker: 2, api: 3 } }), { kind: 'scale', replicas: { worker: 6, api: 1 } },
    { scale: { worker: 6, api: 1 }, history: [h('scale', 'v1', { note: 'worker=6, api=1' })] }],
  ['scale the live version named with --version', state({ live: 'v1' }), { kind: 'scale', replicas: { worker: 0 }, version: 'v1' }, { scale: { worker: 0 } }],
  ['scale a version that is not live: applied, not recorded', state({ live: 'v1', scale: { worker: 2 } }), { kind: 'scale', replicas: { worker: 4 }, version: 'v2' },
    { scale: { worker: 2 }, history: [h('scale', 'v2', { note: 'worker=4 (applied only: not the live version, so not the app\'s scale)' })] }],
  ['scale a version that is not live to 0, http service included', state({ live: 'v1' }), { kind: 'scale', replicas: { api: 0, worker: 0 }, version: 'v3' }, { scale: {} }],
];

/** [name, state before, request, refusal code, message pattern] */
const refused: [string, ReleaseState, ReleaseRequest, string, RegExp][] = [
  ['switch to a version not installed', empty, { kind: 'switch', version: 'v9' }, 'NOT_INSTALLED', /version "v9" is not installed \(installed: v1, v2, v3, jobs\)/],
  ['switch to a version without http', empty, { kind: 'switch', version: 'jobs' }, 'NOT_ROUTABLE', /no http service/],
  ['rollback without previous', state({ live: 'v1' }), { kind: 'rollback' }, 'NO_PREVIOUS', /no previous live version/],
  ['rollback to a previous since removed', state({ live: 'v1', previous: 'v0' }), { kind: 'rollback' }, 'NOT_INSTALLED', /"v0" is not installed/],
  ['canary with nothing live', empty, { kind: 'canary', version: 'v2', weight: 10 }, 'NO_LIVE', /nothing is live/],
  ['canary of the live version', state({ live: 'v2' }), { kind: 'canary', version: 'v2', weight: 10 }, 'CANARY_IS_LIVE', /already live/],
  ['canary weight above 100', state({ live: 'v1' }), { kind: 'canary', version: 'v2', weight: 101 }, 'BAD_WEIGHT', /outside 0..100/],
  ['canary not installed', state({ live: 'v1' }), { kind: 'canary', version: 'v9', weight: 10 }, 'NOT_INSTALLED', /not installed/],
  ['promote without canary', state({ live: 'v1' }), { kind: 'promote' }, 'NO_CANARY', /no canary/],
  ['abort without canary', state({ live: 'v1' }), { kind: 'abort' }, 'NO_CANARY', /no canary/],
  ['install over an installed version', state({}), { kind: 'install', version: 'v2' }, 'VERSION_EXISTS', /already installed/],
  ['redeploy the live branch', state({ live: 'v2' }), { kind: 'install', version: 'v2', branch: 'b' }, 'VERSION_LIVE', /is live; buildinst never changes what serves live traffic/],
  ['redeploy the canary branch', state({ live: 'v1', canary: { version: 'v2', weight: 5 } }), { kind: 'install', version: 'v2', branch: 'b' }, 'VERSION_LIVE', /is the canary/],
  ['redeploy the previous branch (the rollback target)', state({ live: 'v1', previous: 'v2' }), { kind: 'install', version: 'v2', branch: 'b' }, 'VERSION_PREVIOUS',
    /^branch b \(version v2\) is the previous version, the one `depl rollback` returns to; buildinst never changes the rollback target$/],
  ['a branch deploy over another branch\'s version', state({}), { kind: 'install', version: 'v3', branch: 'feature-x' }, 'VERSION_OTHER_BRANCH',
    /^branch "feature-x" deploys to version v3, which belongs to branch "feature\/x"; a branch deploy only replaces its own$/],
  ['a branch deploy over a version installed with --version', state({}), { kind: 'install', version: 'v1', branch: 'v1' }, 'VERSION_NOT_BRANCH',
    /^branch "v1" deploys to version v1, which was installed with --version v1, not by a branch deploy/],
  ['a branch deploy over another branch\'s live version names the owner first', state({ live: 'v3' }), { kind: 'install', version: 'v3', branch: 'feature-x' }, 'VERSION_OTHER_BRANCH', /belongs to branch "feature\/x"/],
  ['remove the live version', state({ live: 'v1' }), { kind: 'remove', version: 'v1' }, 'VERSION_IN_USE', /is live/],
  ['prune with a negative keep', state({}), { kind: 'prune', keep: -1 }, 'BAD_KEEP', /--keep -1/],
  ['scale with nothing live', empty, { kind: 'scale', replicas: { api: 2 } }, 'NO_LIVE', /nothing to scale/],
  ['scale services the live version lacks', state({ live: 'v1' }), { kind: 'scale', replicas: { db: 2, worker: 1, cache: 1 } }, 'NO_SUCH_SERVICE', /the live version v1 has no service "db", "cache" \(it has: api, worker\)/],
  ['scale a version not installed', state({ live: 'v1' }), { kind: 'scale', replicas: { worker: 2 }, version: 'v9' }, 'NOT_INSTALLED', /version "v9" is not installed/],
  ['scale to a negative or fractional count', state({ live: 'v1' }), { kind: 'scale', replicas: { worker: -1, api: 1.5 } }, 'BAD_REPLICAS', /worker=-1, api=1.5: replicas must be a whole number from 0 to 100/],
  ['scale above the cap', state({ live: 'v1' }), { kind: 'scale', replicas: { worker: 101 } }, 'BAD_REPLICAS', /from 0 to 100/],
  ['scale nothing', state({ live: 'v1' }), { kind: 'scale', replicas: {} }, 'NOTHING_TO_SCALE', /no <service>=<replicas>/],
  ['scale the live http service to 0', state({ live: 'v1' }), { kind: 'scale', replicas: { api: 0 } }, 'WOULD_STOP_LIVE', /api=0 would stop every task of the live version v1's http service/],
  ['scale the canary http service to 0', state({ live: 'v1', canary: { version: 'v2', weight: 5 } }), { kind: 'scale', replicas: { api: 0 }, version: 'v2' }, 'WOULD_STOP_LIVE', /the canary v2/],
];

describe('release transitions', () => {
  it.each(accepted)('%s', (_name, before, request, after) => {
    const planned = ok(planRelease(before, request, facts));
    expect(planned.state).toMatchObject(after);
    // Nothing but what the transition says changes.
    expect(planned.state.app).toBe('shop');
    expect(planned.state.history.slice(0, before.history.length)).toEqual(before.history);
  });

  it.each(refused)('refuses: %s', (_name, before, request, code, message) => {
    const planned = planRelease(before, request, facts);
    expect(planned.ok).toBe(false);
    if (!planned.ok) {
      expect(planned.refusal.code).toBe(code);
      expect(planned.refusal.message).toMatch(message);
    }
  });

  it('install adds the version, with its http service, to what the edge routes', () => {
    const planned = ok(planRelease(state({ live: 'v1' }), { kind: 'install', version: 'v4', services: ['shop-v4-api'], http: { service: 'shop-v4-api', port: 8000 } }, facts));
    expect(routingFor(planned.state, 'shop', 'shop.test', planned.installed).versions.map((v) => v.label)).toEqual(['v1', 'v2', 'v3', 'v4']);
  });

  it('scale says which services to bring to which replicas, and changes nothing when they are there already', () => {
    const known = installed.map((v) => ({ ...v, replicas: Object.fromEntries(v.services.map((s) => [s, 1])) }));
    const planned = ok(planRelease(state({ live: 'v1' }), { kind: 'scale', replicas: { worker: 5, api: 1 } }, { ...facts, installed: known }));
    expect(planned.scale).toEqual([{ service: 'shop-v1-worker', replicas: 5, from: 1 }, { service: 'shop-v1-api', replicas: 1, from: 1 }]);
    expect(planned.installed.find((v) => v.label === 'v1')!.replicas).toEqual({ 'shop-v1-api': 1, 'shop-v1-worker': 5 });
    expect(describeChange(state({ live: 'v1' }), planned.state, known, planned.installed)).toEqual([
      'scale: {} -> {"worker":5,"api":1}', 'replicas: shop-v1-worker 1 -> 5', 'history: + scale v1 (worker=5, api=1)',
    ]);
    const again = ok(planRelease(planned.state, { kind: 'scale', replicas: { worker: 5 } }, { ...facts, installed: planned.installed }));
    expect(again).toMatchObject({ unchanged: true, state: planned.state });
  });

  it('a switch brings the new live version to the app\'s scale, and only the services that differ', () => {
    const known = installed.map((v) => ({ ...v, replicas: Object.fromEntries(v.services.map((s) => [s, 1])) }));
    const before = state({ live: 'v1', scale: { worker: 5, api: 1, gone: 3 } });
    const planned = ok(planRelease(before, { kind: 'switch', version: 'v2' }, { ...facts, installed: known }));
    expect(planned.scale).toEqual([{ service: 'shop-v2-worker', replicas: 5, from: 1 }]);
    expect(planned.state.scale).toEqual(before.scale);
    expect(describeChange(before, planned.state, known, planned.installed)).toContain('replicas: shop-v2-worker 1 -> 5');
    // a version already at the app's scale needs nothing; unknown replicas are set (idempotent)
    expect(ok(planRelease(before, { kind: 'switch', version: 'v2' }, { ...facts, installed: planned.installed })).scale).toBeUndefined();
    expect(ok(planRelease(before, { kind: 'switch', version: 'v3' }, facts)).scale).toEqual([{ service: 'shop-v3-worker', replicas: 5 }, { service: 'shop-v3-api', replicas: 1 }]);
  });

  it('prune lists what to remove and takes it off the routing; nothing to remove changes nothing', () => {
    const planned = ok(planRelease(state({ live: 'v3', previous: 'v2' }), { kind: 'prune', keep: 1 }, facts));
    expect(planned.prune!.remove.map((v) => v.label)).toEqual(['v1']);
    expect(planned.prune!.keep).toEqual([{ label: 'v2', why: 'previous' }, { label: 'v3', why: 'live' }, { label: 'jobs', why: 'recent' }]);
    expect(planned.installed.map((v) => v.label)).toEqual(['v2', 'v3', 'jobs']);
    const nothing = ok(planRelease(state({ live: 'v3', previous: 'v2' }), { kind: 'prune', keep: 5 }, facts));
    expect(nothing.unchanged).toBe(true);
    expect(nothing.state.history).toEqual([]);
  });
});

describe('routing', () => {
  it('routes every installed version with http, live and canary only when installed', () => {
    expect(routingFor(state({ live: 'v2', canary: { version: 'v3', weight: 20 } }), 'shop', 'shop.test', installed)).toEqual({
      app: 'shop', domain: 'shop.test', live: 'v2', canary: { version: 'v3', weight: 20 },
      versions: ['v1', 'v2', 'v3'].map((label) => ({ label, upstream: { service: `shop-${label}-api`, port: 8000 } })),
    });
    expect(routingFor(state({ live: 'gone' }), 'shop', 'shop.test', installed).live).toBeUndefined();
  });
});

describe('the document and crash repair', () => {
  const committed = state({ live: 'v1', edge: { generation: 'aaaa' } });
  const next = state({ live: 'v2', previous: 'v1', edge: { generation: null } });
  const pending = toDocument(committed, { next, generation: 'bbbb', command: 'depl switch v2' });

  it('validates on read and names the first problem', () => {
    expect(parseReleaseDocument(JSON.parse(JSON.stringify(pending)))).toEqual({ ok: true, doc: pending });
    expect(parseReleaseDocument({ ...pending, canary: { version: 'v2', weight: 150 } })).toMatchObject({ ok: false, problem: expect.stringMatching(/^canary.weight: /) });
    expect(parseReleaseDocument({ app: 'shop' })).toMatchObject({ ok: false });
  });

  it('a clean document is what it says', () => {
    expect(resolvePending(toDocument(committed), 'zzzz')).toEqual({ state: committed, outcome: 'clean', needsEdgeRewrite: false });
  });

  it('rolls forward a change the edge already serves (depl died after the reload, before recording)', () => {
    expect(resolvePending(pending, 'bbbb')).toEqual({ state: { ...next, edge: { generation: 'bbbb' } }, outcome: 'rolled-forward', needsEdgeRewrite: false });
  });

  it('rolls back a change the edge does not serve (died before or after writing the file, before the reload)', () => {
    expect(resolvePending(pending, 'aaaa')).toEqual({ state: committed, outcome: 'rolled-back', needsEdgeRewrite: true });
    expect(resolvePending(pending, null)).toEqual({ state: committed, outcome: 'rolled-back', needsEdgeRewrite: true });
  });

  it('keeps the newest 200 history entries', () => {
    const long = state({ history: Array.from({ length: 250 }, (_, i) => ({ at, by, action: 'switch' as const, version: `v${i}` })) });
    const doc = toDocument(long);
    expect(doc.history).toHaveLength(200);
    expect(doc.history[0]!.version).toBe('v50');
  });

  it('describes a change field by field', () => {
    const planned = ok(planRelease(state({ live: 'v1', canary: { version: 'v2', weight: 10 } }), { kind: 'promote' }, facts));
    expect(describeChange(state({ live: 'v1', canary: { version: 'v2', weight: 10 } }), planned.state, installed, planned.installed)).toEqual([
      'live: v1 -> v2', 'previous: (none) -> v1', 'canary: v2 at 10% -> (none)', 'history: + promote v2 (was v1)',
    ]);
  });
});
