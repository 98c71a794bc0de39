import { expect } from 'vitest';
import { abortCanary, promoteCanary, setCanary } from '../../src/workflows/canary.js';
import type { ClusterPort } from '../../src/workflows/cluster-port.js';
import { rollback } from '../../src/workflows/rollback.js';
import { switchVersion } from '../../src/workflows/switch.js';
import type { LoadResult, LoadSample, RunningLoad } from './load.js';

/** When each step of the scenario started and returned (performance.now()). */
export interface ScenarioMarks {
  switchStart: number;
  switched: number;
  rollbackStart: number;
  rolledBack: number;
  canaryStart: number;
  canaryOn: number;
  abortStart: number;
  aborted: number;
  canaryAgainStart: number;
  canaryAgainOn: number;
  promoteStart: number;
  promoted: number;
  installStart: number;
  installed: number;
  end: number;
  switchPhases: Record<string, number>;
}

/**
 * The live-traffic scenario of the switch tests, from v1 live: switch to v2, roll back to v1, canary v2 at 30%,
 * abort it, canary v2 at 30% again and promote it, then install another version (`install`, which adds it to
 * the edge the way buildinst does). Run it inside runLoad(): between the steps it waits for enough responses
 * to judge the step by (expectScenarioHeld), the canary for 2,400 split by fresh cookies.
 */
export async function switchRollbackCanaryPromote(control: ClusterPort, load: RunningLoad, install: () => Promise<void>): Promise<ScenarioMarks> {
  const marks = {} as ScenarioMarks;
  await load.responses(300);
  marks.switchStart = performance.now();
  marks.switchPhases = (await switchVersion(control, 'v2')).phases;
  marks.switched = performance.now();
  await load.responses(300);
  marks.rollbackStart = performance.now();
  await rollback(control);
  marks.rolledBack = performance.now();
  await load.responses(200);
  marks.canaryStart = performance.now();
  await setCanary(control, 'v2', 30);
  marks.canaryOn = performance.now();
  await load.responses(CANARY_SPLIT_REQUESTS + 400, (s) => s.cookie === undefined);
  marks.abortStart = performance.now();
  await abortCanary(control);
  marks.aborted = performance.now();
  await load.responses(200);
  marks.canaryAgainStart = performance.now();
  await setCanary(control, 'v2', 30);
  marks.canaryAgainOn = performance.now();
  await load.responses(300);
  marks.promoteStart = performance.now();
  await promoteCanary(control);
  marks.promoted = performance.now();
  await load.responses(200);
  marks.installStart = performance.now();
  await install();
  marks.installed = performance.now();
  await load.responses(200);
  marks.end = performance.now();
  return marks;
}

/** Requests split by the canary (fresh cookies) that its share is judged on. */
const CANARY_SPLIT_REQUESTS = 2_000;

/** Responses to requests sent strictly between two instants. */
export function sentBetween(result: LoadResult, from: number, to: number): LoadSample[] {
  return result.samples.filter((s) => s.sentAt > from && s.sentAt < to);
}

export function versionShare(samples: LoadSample[], version: string): number {
  return samples.filter((s) => s.version === version).length / samples.length;
}

/**
 * What the scenario must show: not one failed or non-2xx request; every request sent after a change returned
 * served by the new side (the routing is shared by all workers: there is no old worker left to answer); the
 * canary's share 30% +/- 5 on at least 2,000 requests; each client with a cookie on one side for the whole
 * split, and on the same side again when the same split comes back.
 */
export function expectScenarioHeld(result: LoadResult, marks: ScenarioMarks): { canaryShare: number; canaryRequests: number; stickyClients: number } {
  if (result.failures.length > 0) console.log(`failures: ${JSON.stringify(result.failures.slice(0, 10))}`);
  expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
  expect(result.samples.every((s) => s.status === 200)).toBe(true);
  const servedBy = (name: string, from: number, to: number, version: string) => {
    const window = sentBetween(result, from, to);
    expect(window.length, `requests after ${name}`).toBeGreaterThan(10);
    const wrong = window.filter((s) => s.version !== version);
    expect(wrong.map((s) => ({ client: s.client, sentMsAfter: Math.round(s.sentAt - from), version: s.version })), `served by another version than ${version} after ${name}`).toEqual([]);
  };
  servedBy('switch', marks.switched, marks.rollbackStart, 'v2');
  servedBy('rollback', marks.rolledBack, marks.canaryStart, 'v1');
  servedBy('abort', marks.aborted, marks.canaryAgainStart, 'v1');
  servedBy('promote', marks.promoted, marks.end, 'v2');
  servedBy('install', marks.installStart, marks.end, 'v2');
  const canaryWindow = sentBetween(result, marks.canaryOn, marks.abortStart);
  // The share is measured on requests with a fresh cookie each; the few cookie-keeping clients each stay on
  // one side (checked below) and would only add their own few coin flips to it.
  const split = canaryWindow.filter((s) => s.cookie === undefined);
  expect(split.length).toBeGreaterThanOrEqual(CANARY_SPLIT_REQUESTS);
  expect(versionShare(split, 'v2')).toBeGreaterThan(0.25);
  expect(versionShare(split, 'v2')).toBeLessThan(0.35);
  const sides = new Map<string, Set<string>>();
  const again = new Map<string, Set<string>>();
  for (const s of canaryWindow) if (s.cookie !== undefined) sides.set(s.cookie, (sides.get(s.cookie) ?? new Set()).add(s.version));
  for (const s of sentBetween(result, marks.canaryAgainOn, marks.promoteStart)) if (s.cookie !== undefined) again.set(s.cookie, (again.get(s.cookie) ?? new Set()).add(s.version));
  expect(sides.size).toBeGreaterThan(0);
  for (const [cookie, versions] of sides) {
    expect([...versions], `versions seen by the client with ${cookie}`).toHaveLength(1);
    if (again.has(cookie)) expect([...again.get(cookie)!]).toEqual([...versions]);
  }
  return { canaryShare: versionShare(split, 'v2'), canaryRequests: split.length, stickyClients: sides.size };
}
