import { OperationError } from '../errors.js';
import { describeScale, type ScaleTarget } from '../plan/scale.js';
import { pollUntil } from '../util/poll.js';
import { assertVersionLabel, type ClusterPort } from './cluster-port.js';
import { withRelease, type ReleaseChange } from './release.js';

export interface ScaleOptions {
  /** A version other than the live one: its services are scaled, the app's scale is not recorded. */
  version?: string;
  dryRun?: boolean;
  /** How long to wait for the tasks to reach their count; default 2 min. */
  waitMs?: number;
}

export interface ScaleResult {
  version: string;
  /** The replicas became the app's scale (the version is live), so versions installed later get them. */
  recorded: boolean;
  /** The app's scale after the command. */
  scale: Record<string, number>;
  services: (ScaleTarget & { running?: number })[];
  change: ReleaseChange;
}

/**
 * depl scale worker=5 [--version V]: lock -> read -> plan (src/plan/release-state.ts planScale) -> set the
 * replicas (the intent recorded first, as every change, src/workflows/release.ts) -> record -> wait until the
 * swarm runs that many tasks. On the live version the replicas become the app's scale.
 */
export async function scaleServices(control: ClusterPort, replicas: Record<string, number>, options: ScaleOptions = {}): Promise<ScaleResult> {
  if (options.version !== undefined) assertVersionLabel(options.version);
  const command = `depl scale ${Object.entries(replicas).map(([s, n]) => `${s}=${n}`).join(' ')}${options.version !== undefined ? ` --version ${options.version}` : ''}`;
  return withRelease(control, command, { dryRun: options.dryRun }, async (session) => {
    const change = await session.change({ kind: 'scale', replicas, ...(options.version !== undefined ? { version: options.version } : {}) });
    const version = options.version ?? change.before.live!;
    const targets = change.scale ?? [];
    const result: ScaleResult = { version, recorded: version === change.before.live, scale: change.after.scale, services: targets, change };
    if (session.dryRun) return result;
    for (const t of targets) control.log.step(`${t.service}: ${t.from ?? '?'} -> ${t.replicas} replicas`);
    const running = await waitForReplicas(control, targets, options.waitMs ?? 120_000);
    result.services = targets.map((t) => ({ ...t, running: running[t.service] ?? 0 }));
    if (!result.recorded) control.log.info(`not recorded as the app's scale: ${version} is not live (the app's scale stays ${describeScale(change.after.scale) || "depl.yaml's"})`);
    return result;
  });
}

/** Until every target runs exactly its count of tasks; the swarm keeps trying after a timeout, which says what is short. */
async function waitForReplicas(control: ClusterPort, targets: ScaleTarget[], timeoutMs: number): Promise<Record<string, number>> {
  const swarm = control.swarm!;
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
