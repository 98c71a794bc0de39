import { readSiteLogs } from '../apply/edge/logs.js';
import { UserError } from '../errors.js';
import { decideCanaryStep, type CanaryDecision, type CanaryThresholds } from '../plan/canary-analysis.js';
import { consumersOnly } from '../plan/consumers.js';
import { computeStats } from '../plan/stats.js';
import { assertVersionLabel, requireHealthy, type ClusterPort } from './cluster-port.js';
import { startConsumers } from './consumers.js';
import { withRelease, type ReleaseChange, type ReleaseSession } from './release.js';
import { switchIn, type SwitchResult } from './switch.js';

export interface CanaryResult {
  live: string;
  canary: { version: string; weight: number } | null;
  change: ReleaseChange;
}

export interface CanaryOptions {
  dryRun?: boolean;
}

/** Sends `weight`% of <domain>'s clients to `version`, the rest to live; 0 ends the canary. */
export async function setCanary(control: ClusterPort, version: string, weight: number, options: CanaryOptions = {}): Promise<CanaryResult> {
  assertVersionLabel(version);
  assertWeight(weight);
  return withRelease(control, `depl canary ${version} --weight ${weight}`, options, (session) => canaryIn(session, control, version, weight));
}

/** The canary becomes live for everyone (a switch, with its checks). */
export async function promoteCanary(control: ClusterPort, options: CanaryOptions = {}): Promise<SwitchResult> {
  return withRelease(control, 'depl canary --promote', options, (session) => switchIn(session, control, { kind: 'promote' }));
}

/** All traffic back to the live version. */
export async function abortCanary(control: ClusterPort, options: CanaryOptions = {}): Promise<CanaryResult> {
  return withRelease(control, 'depl canary --abort', options, (session) => abortIn(session, control));
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
  /** The clock the step windows are read with (tests of the fake cluster pass theirs). */
  clock?: () => number;
}

/**
 * Automatic canary: at each weight, wait one interval, judge the canary on that interval's requests, and
 * either move on or abort (back to 0%). Passing every step promotes it. Holds the lock for the whole run,
 * promotion included: no other change can slip in between the last step and the promotion.
 */
export async function runCanary(control: ClusterPort, version: string, options: CanaryRunOptions): Promise<CanaryRun> {
  assertVersionLabel(version);
  options.steps.forEach(assertWeight);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const clock = options.clock ?? Date.now;
  const steps: CanaryStep[] = [];
  return withRelease(control, `depl canary ${version} --steps ${options.steps.join(',')}`, {}, async (session): Promise<CanaryRun> => {
    if (consumersOnly(session.installed)) {
      throw new UserError('an automatic canary judges the HTTP answers of each step, and a consumers-only app gives none',
        `Step it by hand: depl canary ${version} --weight <pct>, then depl canary --promote or --abort.`, 'NOT_ROUTABLE');
    }
    for (const weight of options.steps) {
      const { live } = await canaryIn(session, control, version, weight);
      const since = clock();
      control.log.step(`canary ${version} at ${weight}%: watching for ${Math.round(options.intervalMs / 1000)}s`);
      await sleep(options.intervalMs);
      const report = computeStats(await readSiteLogs(control.site, since), { sinceMs: since, untilMs: clock() });
      const decision = decideCanaryStep(report, version, live, options.thresholds);
      steps.push({ weight, decision });
      control.log.info(`  ${decision.action === 'continue' ? 'ok' : 'ABORT'}: ${decision.reason}`);
      if (decision.action === 'abort') {
        await abortIn(session, control, decision.reason);
        return { outcome: 'aborted', version, steps, reason: decision.reason };
      }
    }
    await switchIn(session, control, { kind: 'promote' });
    return { outcome: 'promoted', version, steps, reason: steps.at(-1)?.decision.reason ?? '' };
  });
}

async function canaryIn(session: ReleaseSession, control: ClusterPort, version: string, weight: number): Promise<CanaryResult> {
  const change = await session.change({ kind: 'canary', version, weight }, {
    precheck: async (after, installed, planned) => {
      // a consumers-only app's canary is its share of the consumers: started and awaited, as a switch's are
      if (consumersOnly(installed)) await startConsumers(control, planned.consumers?.start ?? []);
      else if (after.canary !== null) await requireHealthy(control, after.canary.version);
    },
  });
  const live = change.after.live!;
  if (!session.dryRun) {
    control.log.step(change.after.canary ? `canary ${version} gets ${weight}% of ${control.domain}, ${live} the rest` : `all of ${control.domain} goes to ${live} again`);
  }
  return { live, canary: change.after.canary, change };
}

async function abortIn(session: ReleaseSession, control: ClusterPort, note?: string): Promise<CanaryResult> {
  const change = await session.change({ kind: 'abort', ...(note !== undefined ? { note } : {}) });
  const live = change.after.live!;
  if (!session.dryRun) control.log.step(`all of ${control.domain} goes to ${live} again`);
  return { live, canary: null, change };
}

function assertWeight(weight: number): void {
  if (!Number.isFinite(weight) || weight < 0 || weight > 100) throw new UserError(`canary weight ${weight} is outside 0..100`, 'Give a percentage like --weight 10.', 'BAD_WEIGHT');
}
