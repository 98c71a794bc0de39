import { readState } from '../apply/cluster-state.js';
import { readSiteLogs } from '../apply/edge.js';
import { UserError } from '../errors.js';
import { decideCanaryStep, type CanaryDecision, type CanaryThresholds } from '../plan/canary-analysis.js';
import { computeStats } from '../plan/stats.js';
import {
  applyAndRecord, assertVersionLabel, historyEntry, loadEdgeState, requireHealthy, requireInstalled, underLock, type EdgeControl,
} from './edge-control.js';
import { switchTo, type SwitchResult } from './switch.js';

export interface CanaryResult {
  live: string;
  canary: { version: string; weight: number } | null;
}

/** Sends `weight`% of <domain>'s clients to `version`, the rest to live; 0 ends the canary. */
export async function setCanary(control: EdgeControl, version: string, weight: number): Promise<CanaryResult> {
  assertVersionLabel(version);
  assertWeight(weight);
  return underLock(control, `depl canary ${version} --weight ${weight}`, () => applyCanary(control, version, weight));
}

/** The canary becomes live for everyone (a switch, with its checks). */
export async function promoteCanary(control: EdgeControl): Promise<SwitchResult> {
  return switchTo(control, (state) => {
    if (state.canary === null) throw new UserError('no canary is running', 'Start one with `depl canary <version> --weight <pct>`.', 'NO_CANARY');
    return state.canary.version;
  }, 'promote');
}

/** All traffic back to the live version. */
export async function abortCanary(control: EdgeControl): Promise<CanaryResult> {
  return underLock(control, 'depl canary --abort', () => removeCanary(control));
}

export interface CanaryStep {
  weight: number;
  decision: CanaryDecision;
}

export interface CanaryRun {
  outcome: 'promoted' | 'aborted';
  version: string;
  steps: CanaryStep[];
  /** The figures that ended the run: the failing step's reason, or the last step's. */
  reason: string;
}

export interface CanaryRunOptions {
  steps: number[];
  intervalMs: number;
  thresholds: CanaryThresholds;
  /** Injected by tests; the real one waits. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Automatic canary: at each weight, wait one interval, judge the canary on that interval's requests, and
 * either move on or abort (back to 0%). Passing every step promotes it. Holds the lock for the whole run.
 */
export async function runCanary(control: EdgeControl, version: string, options: CanaryRunOptions): Promise<CanaryRun> {
  assertVersionLabel(version);
  options.steps.forEach(assertWeight);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const steps: CanaryStep[] = [];
  const run = await underLock(control, `depl canary ${version} --steps ${options.steps.join(',')}`, async (): Promise<CanaryRun> => {
    let live = '';
    for (const weight of options.steps) {
      ({ live } = await applyCanary(control, version, weight));
      const since = Date.now();
      control.log.step(`canary ${version} at ${weight}%: watching for ${Math.round(options.intervalMs / 1000)}s`);
      await sleep(options.intervalMs);
      const report = computeStats(await readSiteLogs(control.site, since), { sinceMs: since, untilMs: Date.now() });
      const decision = decideCanaryStep(report, version, live, options.thresholds);
      steps.push({ weight, decision });
      control.log.info(`  ${decision.action === 'continue' ? 'ok' : 'ABORT'}: ${decision.reason}`);
      if (decision.action === 'abort') {
        await removeCanary(control, decision.reason);
        return { outcome: 'aborted', version, steps, reason: decision.reason };
      }
    }
    return { outcome: 'promoted', version, steps, reason: steps.at(-1)?.decision.reason ?? '' };
  });
  if (run.outcome === 'promoted') await promoteCanary(control);
  return run;
}

async function applyCanary(control: EdgeControl, version: string, weight: number): Promise<CanaryResult> {
  const state = await readState(control.stateRemote, control.app, control.stateRoot);
  if (state.live === null) throw new UserError('nothing is live yet, so there is no traffic to split', `Make a version live first: depl switch <version>.`, 'NO_LIVE');
  if (state.live === version) throw new UserError(`version ${version} is already live`, 'A canary is a version other than the live one.', 'CANARY_IS_LIVE');
  if (weight === 0) return removeCanary(control);
  const edge = await loadEdgeState(control);
  requireInstalled(edge, version);
  await requireHealthy(control, version);
  const live = state.live;
  await applyAndRecord(control, { ...edge, live, canary: { version, weight } }, (s) => ({
    ...s,
    canary: { version, weight },
    history: [...s.history, historyEntry('canary', version, { weight })],
  }));
  control.log.step(`canary ${version} gets ${weight}% of ${control.domain}, ${live} the rest`);
  return { live, canary: { version, weight } };
}

async function removeCanary(control: EdgeControl, note?: string): Promise<CanaryResult> {
  const state = await readState(control.stateRemote, control.app, control.stateRoot);
  if (state.live === null) throw new UserError('nothing is live yet', undefined, 'NO_LIVE');
  const edge = await loadEdgeState(control);
  const live = state.live;
  await applyAndRecord(control, { ...edge, live, canary: undefined }, (s) => ({
    ...s,
    canary: null,
    history: [...s.history, historyEntry('abort', state.canary?.version ?? null, note !== undefined ? { note } : {})],
  }));
  control.log.step(`all of ${control.domain} goes to ${live} again`);
  return { live, canary: null };
}

function assertWeight(weight: number): void {
  if (!Number.isFinite(weight) || weight < 0 || weight > 100) throw new UserError(`canary weight ${weight} is outside 0..100`, 'Give a percentage like --weight 10.', 'BAD_WEIGHT');
}
