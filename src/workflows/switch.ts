import { readState, type ClusterState, type HistoryEntry } from '../apply/cluster-state.js';
import { applyAndRecord, assertVersionLabel, confirmLive, historyEntry, loadEdgeState, requireHealthy, requireInstalled, underLock, type EdgeControl } from './edge-control.js';

export interface SwitchResult {
  live: string;
  previous: string | null;
  /** Command start to the edge serving every new request from `live`. */
  elapsedMs: number;
  /** Of which: new configuration in place to nginx's new workers answering. */
  reloadMs: number;
}

/**
 * Makes `version` live on <domain>: it must be installed and healthy; the edge's live server block is
 * rewritten (checked, swapped atomically, reloaded gracefully) and live/previous recorded on the cluster.
 */
export async function switchVersion(control: EdgeControl, version: string): Promise<SwitchResult> {
  assertVersionLabel(version);
  return switchTo(control, () => version, 'switch');
}

/**
 * The switch itself, under the lock; `pick` chooses the version from the cluster state read under that
 * lock (rollback and promote pick theirs from it).
 */
export async function switchTo(control: EdgeControl, pick: (state: ClusterState) => string, action: HistoryEntry['action']): Promise<SwitchResult> {
  const started = performance.now();
  return underLock(control, `depl ${action}`, async () => {
    const version = pick(await readState(control.stateRemote, control.app, control.stateRoot));
    const edge = await loadEdgeState(control);
    requireInstalled(edge, version);
    await requireHealthy(control, version);
    const { state, applied } = await applyAndRecord(control, { ...edge, live: version, canary: undefined }, (state) => ({
      ...state,
      live: version,
      previous: state.live !== null && state.live !== version ? state.live : state.previous,
      canary: null,
      history: [...state.history, historyEntry(action, version, state.live !== null ? { note: `was ${state.live}` } : {})],
    }));
    await confirmLive(control, version);
    control.log.step(`${version} is live on ${control.domain}${state.previous ? ` (previous: ${state.previous})` : ''}`);
    return { live: version, previous: state.previous, elapsedMs: performance.now() - started, reloadMs: applied.reloadMs };
  });
}
