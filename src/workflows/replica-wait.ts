import type { ScaleTarget } from '../plan/scale.js';
import { pollUntil } from '../util/poll.js';
import type { ClusterPort } from './cluster-port.js';

type Swarm = NonNullable<ClusterPort['swarm']>;

/** What a wait on scaled services waits for: every target's replicas running, or none of its tasks left running. */
export type ReplicaGoal = 'running' | 'stopped';

/**
 * Polls the swarm's task counts until every target reaches `goal` (a stop counts once swarm has ended the task,
 * after its stop grace period). Returns null when they did, else what was running at the timeout
 * (`web 1/2 running` or `web 2 still running`, for those short of it), for the caller's refusal or warning.
 */
export async function waitReplicas(swarm: Swarm, targets: readonly ScaleTarget[], goal: ReplicaGoal, timeoutMs: number): Promise<string | null> {
  if (targets.length === 0) return null;
  const reached = (running: number, target: ScaleTarget) => (goal === 'running' ? running >= target.replicas : running === 0);
  let last = '';
  const done = await pollUntil(async () => {
    const tasks = await swarm.tasks(targets.map((t) => t.service));
    const counts = targets.map((t) => ({ target: t, running: tasks[t.service]?.running ?? 0 }));
    last = counts.filter(({ target, running }) => !reached(running, target)).map(({ target, running }) => (goal === 'running' ? `${target.service} ${running}/${target.replicas} running` : `${target.service} ${running} still running`)).join(', ');
    return counts.every(({ target, running }) => reached(running, target)) ? true : undefined;
  }, { timeoutMs, intervalMs: 200, maxIntervalMs: 2_000, onTimeout: () => false });
  return done ? null : last;
}
