import { OperationError } from '../errors.js';
import { describeStatefulHandover, handoverIsEmpty, type StatefulHandover } from '../plan/stateful-handover.js';
import { pollUntil } from '../util/poll.js';
import { requireHealthy, type ClusterPort } from './cluster-port.js';
import { waitReplicas } from './replica-wait.js';

/**
 * The handover of a stateful service's volume to the version a switch or rollback makes live
 * (src/plan/stateful-handover.ts), on the swarm through the port's replicas: stop the versions running it and wait
 * until their tasks are gone (two tasks never share the data files), start the target's, wait until it runs and
 * answers its health check. Anything short of that puts the swarm back as it was and refuses the switch.
 */

const DEFAULT_STATEFUL_TIMEOUT_MS = 180_000;

type Swarm = NonNullable<ClusterPort['swarm']>;

/**
 * The stop-first order on the swarm: the services on the volume scaled to 0 and awaited until no task runs,
 * then the target's scaled up. Stops that do not finish in time start nothing: what still runs is returned.
 */
export async function stopThenStart(swarm: Swarm, handover: StatefulHandover, timeoutMs: number): Promise<string | null> {
  if (handover.stop.length > 0) {
    await swarm.scale(handover.stop);
    const left = await waitReplicas(swarm, handover.stop, 'stopped', timeoutMs);
    if (left !== null) return left;
  }
  if (handover.start.length > 0) await swarm.scale(handover.start);
  return null;
}

/** Puts the swarm back: the target's started services stopped (and gone), the versions stopped for it started again. */
export async function undoStatefulHandover(control: Pick<ClusterPort, 'swarm' | 'log'>, handover: StatefulHandover, timeoutMs = DEFAULT_STATEFUL_TIMEOUT_MS): Promise<void> {
  const swarm = control.swarm;
  if (swarm === undefined || handoverIsEmpty(handover)) return;
  const started = handover.start.map((t) => ({ service: t.service, replicas: t.from ?? 0 }));
  if (started.length > 0) {
    await swarm.scale(started);
    const left = await waitReplicas(swarm, started, 'stopped', timeoutMs);
    if (left !== null) {
      // never two tasks on one volume: the next depl command starts the live version's once these are gone
      control.log.warn(`still stopping: ${left}; the next depl command starts ${handover.stop.map((t) => t.service).join(', ')} again once they are gone`);
      return;
    }
  }
  const restarted = handover.stop.filter((t) => (t.from ?? 1) > 0).map((t) => ({ service: t.service, replicas: t.from ?? 1 }));
  if (restarted.length > 0) await swarm.scale(restarted);
  control.log.warn(`put back: ${[...started, ...restarted].map((t) => `${t.service}=${t.replicas}`).join(', ')}`);
}

/**
 * Runs the handover before `version` goes live. Returns once the target runs its stateful services and answers
 * its health check through the edge; on a timeout or an unhealthy answer the swarm is put back and the switch
 * refused (nothing was recorded: the live version is what it was, running again).
 */
export async function handOverVolumes(control: ClusterPort, version: string, handover: StatefulHandover, timeoutMs = DEFAULT_STATEFUL_TIMEOUT_MS): Promise<void> {
  const swarm = control.swarm;
  if (handoverIsEmpty(handover)) return;
  if (swarm === undefined) throw new OperationError('this cluster port has no swarm to hand a stateful service over on', undefined, 'NO_SWARM');
  control.log.step(`stateful services of ${version}: ${describeStatefulHandover(handover)} (one version at a time runs a volume; the live domain fails until ${version} answers)`);
  const refuse = async (why: string): Promise<never> => {
    await undoStatefulHandover(control, handover, timeoutMs).catch((error: Error) => control.log.warn(`could not put everything back: ${error.message}`));
    throw new OperationError(
      `refusing: ${why}; the stateful services were put back as they were`,
      `See why with \`depl logs <service> --version ${version}\`; the volume's data was not touched.`,
      'STATEFUL_HANDOVER_FAILED',
    );
  };
  const stopsLeft = await stopThenStart(swarm, handover, timeoutMs);
  if (stopsLeft !== null) return refuse(`the versions running the volume did not stop within ${Math.round(timeoutMs / 1000)} s (${stopsLeft})`);
  if (handover.start.length > 0) {
    const left = await waitReplicas(swarm, handover.start, 'running', timeoutMs);
    if (left !== null) return refuse(`${version}'s stateful services did not run within ${Math.round(timeoutMs / 1000)} s (${left})`);
  }
  // a stateful app opens its data files before it answers: give it the same time to become healthy
  let unhealthy = '';
  const healthy = await pollUntil(async () => {
    try {
      await requireHealthy(control, version);
      return true;
    } catch (error) {
      unhealthy = (error as Error).message;
      return undefined;
    }
  }, { timeoutMs, intervalMs: 250, maxIntervalMs: 2_000, onTimeout: () => false });
  if (!healthy) await refuse(unhealthy.replace(/^refusing: /, ''));
}
