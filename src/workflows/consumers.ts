import { OperationError } from '../errors.js';
import type { ScaleTarget } from '../plan/scale.js';
import type { ClusterPort } from './cluster-port.js';
import { waitReplicas } from './replica-wait.js';

/**
 * The handover of a consumers-only app (src/plan/consumers.ts) on the swarm, through the port's replicas: the
 * new live version's consumers are started and awaited before anything is recorded, the old ones' stopped after.
 */

const DEFAULT_CONSUMERS_TIMEOUT_MS = 180_000;

/**
 * Starts the consumers and waits until every one of their tasks runs (with a `healthcheck:`, swarm counts a task
 * as running once it passes). Consumers that do not all run in time are stopped again (nothing was recorded yet:
 * the live version's consumers never stopped) and the switch is refused.
 */
export async function startConsumers(control: Pick<ClusterPort, 'swarm' | 'log'>, start: readonly ScaleTarget[], timeoutMs = DEFAULT_CONSUMERS_TIMEOUT_MS): Promise<void> {
  if (start.length === 0) return;
  const swarm = control.swarm;
  if (swarm === undefined) throw new OperationError('this cluster port has no swarm to start consumers on', undefined, 'NO_SWARM');
  control.log.step(`starting ${start.map((t) => `${t.service} (${t.replicas})`).join(', ')}`);
  await swarm.scale(start);
  const left = await waitReplicas(swarm, start, 'running', timeoutMs);
  if (left === null) return;
  await swarm.scale(start.map((t) => ({ service: t.service, replicas: t.from ?? 0 }))).catch((error: Error) => control.log.warn(`could not stop them again: ${error.message}`));
  throw new OperationError(
    `refusing: the new version's consumers did not all run within ${Math.round(timeoutMs / 1000)} s (${left}); they were stopped again and the live version's consumers kept running`,
    'See why with `depl logs <service> --version <version>` (a failing healthcheck: keeps a task from counting as running).',
    'CONSUMERS_NOT_RUNNING',
  );
}

/**
 * Waits until the stopped consumers have no task left running: swarm sent each its stop signal and gives it the
 * service's stop grace period to hand its work back. One still stopping after `timeoutMs` is reported, not fatal:
 * swarm ends it once its grace period is over.
 */
export async function awaitStopped(control: Pick<ClusterPort, 'swarm' | 'log'>, stopped: readonly ScaleTarget[], timeoutMs = DEFAULT_CONSUMERS_TIMEOUT_MS): Promise<void> {
  const swarm = control.swarm;
  if (stopped.length === 0 || swarm === undefined) return;
  const left = await waitReplicas(swarm, stopped, 'stopped', timeoutMs);
  if (left !== null) control.log.warn(`still stopping after ${Math.round(timeoutMs / 1000)} s (${left}); swarm ends them once their stop grace period is over`);
}
