import { expect } from 'vitest';
import { promoteCanary, setCanary } from '../../src/workflows/canary.js';
import type { EdgeControl } from '../../src/workflows/edge-control.js';
import { rollback } from '../../src/workflows/rollback.js';
import { switchVersion } from '../../src/workflows/switch.js';
import type { LoadResult, LoadSample } from './load.js';

/** When each step of the scenario started and returned (performance.now()). */
export interface ScenarioMarks {
  switchStart: number;
  switched: number;
  rollbackStart: number;
  rolledBack: number;
  canaryStart: number;
  canaryOn: number;
  promoteStart: number;
  promoted: number;
  switchPhases: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The live-traffic scenario of the switch tests, from v1 live: switch to v2, roll back to v1, canary v2 at 30%,
 * promote it. Run it inside runLoad(); the pauses let enough requests land between the steps.
 */
export async function switchRollbackCanaryPromote(control: EdgeControl, pauses: { afterSwitch: number; canary: number }): Promise<ScenarioMarks> {
  const marks = {} as ScenarioMarks;
  await sleep(2_000);
  marks.switchStart = performance.now();
  marks.switchPhases = (await switchVersion(control, 'v2')).phases;
  marks.switched = performance.now();
  await sleep(pauses.afterSwitch);
  marks.rollbackStart = performance.now();
  await rollback(control);
  marks.rolledBack = performance.now();
  await sleep(1_000);
  marks.canaryStart = performance.now();
  await setCanary(control, 'v2', 30);
  marks.canaryOn = performance.now();
  await sleep(pauses.canary);
  marks.promoteStart = performance.now();
  await promoteCanary(control);
  marks.promoted = performance.now();
  return marks;
}

/** Responses to requests sent strictly between two instants. */
export function sentBetween(result: LoadResult, from: number, to: number): LoadSample[] {
  return result.samples.filter((s) => s.sentAt > from && s.sentAt < to);
}

export function versionShare(samples: LoadSample[], version: string): number {
  return samples.filter((s) => s.version === version).length / samples.length;
}

/**
 * What the scenario must show: not one failed or non-2xx request, every request sent after a change returned
 * served by the new side, and the canary's share 30% +/- 5 on at least 2,000 requests.
 */
export function expectScenarioHeld(result: LoadResult, marks: ScenarioMarks): { canaryShare: number; canaryRequests: number } {
  for (const [name, from, to, expected] of [['switch', marks.switched, marks.switched + 1_500, 'v2'], ['rollback', marks.rolledBack, marks.canaryStart, 'v1'], ['promote', marks.promoted, Infinity, 'v2']] as const) {
    const late = sentBetween(result, from, to).filter((s) => s.version !== expected);
    if (late.length > 0) console.log(`late after ${name} (${late.length}): ${JSON.stringify(late.slice(0, 5).map((s) => ({ c: s.client, sent: Math.round(s.sentAt - from), got: Math.round(s.at - from), v: s.version })))}`);
  }
  expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
  expect(result.samples.every((s) => s.status === 200)).toBe(true);
  // Once a change returned, every request sent later on a new connection went to the new side. A keep-alive
  // client may have opened a connection during nginx's ~100 ms overlap of old and new workers and send its
  // first request on it only at its next rate tick (autocannon opens connections ahead of requests): that
  // one request is answered by the old side, then the old worker closes the connection.
  const servedByNew = (from: number, to: number, version: string) => {
    const window = sentBetween(result, from, to);
    expect(window.length).toBeGreaterThan(10);
    expect(window.filter((s) => s.client === 'new-connection' && s.version !== version)).toEqual([]);
    const late = window.filter((s) => s.version !== version);
    expect(late.length).toBeLessThanOrEqual(Math.max(3, window.length * 0.01));
    expect(late.every((s) => s.sentAt - from < 1_100)).toBe(true);
  };
  servedByNew(marks.switched, marks.switched + 1_500, 'v2');
  servedByNew(marks.rolledBack, marks.canaryStart, 'v1');
  const canaryWindow = sentBetween(result, marks.canaryOn, marks.promoteStart);
  expect(canaryWindow.length).toBeGreaterThanOrEqual(2_000);
  expect(versionShare(canaryWindow, 'v2')).toBeGreaterThan(0.25);
  expect(versionShare(canaryWindow, 'v2')).toBeLessThan(0.35);
  servedByNew(marks.promoted, Infinity, 'v2');
  return { canaryShare: versionShare(canaryWindow, 'v2'), canaryRequests: canaryWindow.length };
}
