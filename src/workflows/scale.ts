import { OperationError, UserError } from '../errors.js';
import { planScaleChange, scaleCommandLine, type ScalePlan, type ScaleStep } from '../plan/scale-plan.js';
import { describeScale, type ScaleTarget } from '../plan/scale.js';
import { pollUntil } from '../util/poll.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';
import { assertVersionLabel, type ClusterPort } from './cluster-port.js';
import { withRelease, type ReleaseChange } from './release.js';

export interface ScaleOptions {
  /** A version other than the live one: its services are scaled, the app's scale is not recorded. */
  version?: string;
  dryRun?: boolean;
  /** How long to wait for the tasks to reach their count; default 2 min. */
  waitMs?: number;
  /** Tests: called after each step of the plan (src/workflows/apply-plan.ts). */
  afterStep?: ApplyPlanOptions['afterStep'];
}

export interface ScaleResult {
  version: string;
  /** The replicas became the app's scale (the version is live), so versions installed later get them. */
  recorded: boolean;
  /** The app's scale after the command. */
  scale: Record<string, number>;
  services: (ScaleTarget & { running?: number })[];
  /** The plan that ran (or, for a dry run, would run). */
  plan: ScalePlan;
  /** The release change the plan's first step made; absent for a dry run or a scale already in place. */
  change?: ReleaseChange;
}

/**
 * depl scale worker=5 [--version V]: lock -> read -> plan (src/plan/scale-plan.ts) -> apply that plan: one
 * release change (intent recorded first, src/workflows/release.ts) that sets the replicas and records them,
 * then a wait until the swarm runs that many tasks. On the live version the replicas become the app's scale.
 */
export async function scaleServices(control: ClusterPort, replicas: Record<string, number>, options: ScaleOptions = {}): Promise<ScaleResult> {
  if (options.version !== undefined) assertVersionLabel(options.version);
  const request = { replicas, ...(options.version !== undefined ? { version: options.version } : {}) };
  return withRelease(control, scaleCommandLine(request), { dryRun: options.dryRun }, async (session) => {
    const planned = planScaleChange({ state: session.state, installed: session.installed, request });
    if (!planned.ok) throw new UserError(planned.message, planned.hint, planned.code);
    const { plan } = planned;
    const result: ScaleResult = { version: plan.version, recorded: plan.recorded, scale: plan.scale, services: plan.targets, plan };
    if (session.dryRun) return result;
    const waitMs = options.waitMs ?? 120_000;
    await applyPlan<ScaleStep>(plan, {
      async run(step) {
        if (step.kind === 'release-change') {
          if (control.swarm === undefined) throw new OperationError('this edge has no swarm whose services could be scaled', undefined, 'NO_SWARM');
          result.change = await session.change(step.request);
          return;
        }
        const running = await waitForReplicas(control, step.targets, waitMs);
        result.services = step.targets.map((t) => ({ ...t, running: running[t.service] ?? 0 }));
      },
    }, { log: control.log, ...(options.afterStep ? { afterStep: options.afterStep } : {}) });
    if (!result.recorded) control.log.info(`not recorded as the app's scale: ${plan.version} is not live (the app's scale stays ${describeScale(plan.scale) || "depl.yaml's"})`);
    return result;
  });
}

/** Until every target runs exactly its count of tasks; the swarm keeps trying after a timeout, which says what is short. */
async function waitForReplicas(control: ClusterPort, targets: ScaleTarget[], timeoutMs: number): Promise<Record<string, number>> {
  const swarm = control.swarm;
  if (swarm === undefined) throw new OperationError('this edge has no swarm whose tasks could be counted', undefined, 'NO_SWARM');
  let last: Record<string, { running: number; desired: number }> = {};
  return pollUntil(async () => {
    last = await swarm.tasks(targets.map((t) => t.service));
    const done = targets.every((t) => last[t.service]?.running === t.replicas);
    return done ? Object.fromEntries(targets.map((t) => [t.service, last[t.service]!.running])) : undefined;
  }, {
    timeoutMs,
    intervalMs: 500,
    maxIntervalMs: 2_000,
    onTimeout: () => {
      const short = targets.filter((t) => last[t.service]?.running !== t.replicas).map((t) => `${t.service} runs ${last[t.service]?.running ?? 0} of ${t.replicas}`);
      throw new OperationError(
        `the replicas are set and recorded, but after ${Math.round(timeoutMs / 1000)} s ${short.join(', ')} tasks; the swarm keeps trying`,
        `See why on the manager: docker service ps --no-trunc ${targets[0]!.service}`,
        'SCALE_NOT_CONVERGED',
      );
    },
  });
}
