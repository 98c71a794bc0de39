import { readState, type ClusterState, type HistoryEntry } from '../apply/cluster-state.js';
import { applyAndRecord, assertVersionLabel, confirmLive, historyEntry, loadEdgeState, requireHealthy, requireInstalled, underLock, type EdgeControl } from './edge-control.js';

export interface SwitchResult {
  live: string;
  previous: string | null;
  /** Command start to the edge serving every new request from `live`. */
  elapsedMs: number;
  /** Of which: the routing table written to the edge's node, to the edge reporting it serves it. */
  edgeMs: number;
  /** A reload happens only when the edge's nginx settings changed; 0 otherwise. */
  reloadMs: number;
  /**
   * Where the time went: lock, checks (state, health), apply (of which routingWrite and edgeConfirm, and
   * nginxCheck and reload when the settings changed), confirm (a request to <domain> answered by `live`).
   */
  phases: Record<string, number>;
}

/**
 * Makes `version` live on <domain>: it must be installed and healthy; the edge's routing table is rewritten
 * and confirmed by the edge (no reload, see src/plan/edge-lua.ts) and live/previous recorded on the cluster.
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
  const phases: Record<string, number> = {};
  let mark = started;
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = Math.round(now - mark);
    mark = now;
  };
  return underLock(control, `depl ${action}`, async () => {
    phase('lock');
    const [clusterState, edge] = await Promise.all([readState(control.stateRemote, control.app, control.stateRoot), loadEdgeState(control)]);
    const version = pick(clusterState);
    requireInstalled(edge, version);
    await requireHealthy(control, version);
    phase('checks');
    const { state, applied } = await applyAndRecord(control, { ...edge, live: version, canary: undefined }, (state) => ({
      ...state,
      live: version,
      previous: state.live !== null && state.live !== version ? state.live : state.previous,
      canary: null,
      history: [...state.history, historyEntry(action, version, state.live !== null ? { note: `was ${state.live}` } : {})],
    }));
    phase('apply');
    await confirmLive(control, version);
    phase('confirm');
    phases.routingWrite = Math.round(applied.writeMs);
    phases.edgeConfirm = Math.round(applied.confirmMs);
    phases.nginxCheck = Math.round(applied.checkMs);
    phases.reload = Math.round(applied.reloadMs);
    control.log.debug(`${action} ${version}: ${Object.entries(phases).map(([k, v]) => `${k} ${v}ms`).join(', ')}`);
    control.log.step(`${version} is live on ${control.domain}${state.previous ? ` (previous: ${state.previous})` : ''}`);
    return { live: version, previous: state.previous, elapsedMs: performance.now() - started, edgeMs: applied.writeMs + applied.confirmMs, reloadMs: applied.reloadMs, phases };
  });
}
