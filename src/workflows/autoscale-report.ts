import type { Cluster } from '../apply/cluster.js';
import { autoscaleStateFile, parseControllerState, type ControllerState } from '../plan/autoscale.js';
import type { Logger } from '../util/log.js';

/**
 * What the live version's autoscale controller last saw and decided (its state file on the manager, beside the
 * release document), for `depl status`; null when nothing is live or the version has no controller.
 */
export async function readAutoscaleStatus(cluster: Cluster, app: string, live: string | null, log: Logger): Promise<ControllerState | null> {
  if (live === null) return null;
  const file = autoscaleStateFile(app, live);
  const text = await cluster.manager.readFile(file);
  if (text === null) return null;
  let state: ControllerState | null = null;
  try {
    state = parseControllerState(JSON.parse(text) as unknown);
  } catch {
    state = null;
  }
  if (state === null) log.warn(`${cluster.manager.name}:${file} is not an autoscale controller's state; ignoring it`);
  return state;
}
