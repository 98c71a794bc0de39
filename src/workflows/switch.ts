import type { HookCommand, HookFacts } from '../plan/hooks.js';
import { consumersOnly } from '../plan/consumers.js';
import type { ReleaseRequest } from '../plan/release-state.js';
import { describeStatefulHandover, handoverIsEmpty, statefulHandover, type StatefulHandover } from '../plan/stateful-handover.js';
import { awaitStopped, startConsumers } from './consumers.js';
import { handOverVolumes, undoStatefulHandover } from './stateful-handover.js';
import { assertVersionLabel, confirmLive, operator, requireHealthy, type ClusterPort } from './cluster-port.js';
import { withRelease, type ReleaseChange, type ReleaseSession } from './release.js';

export interface SwitchResult {
  live: string;
  previous: string | null;
  /** Command start to the edge serving every new request from `live`. */
  elapsedMs: number;
  /** Of which: new configuration in place to nginx's new workers answering. */
  reloadMs: number;
  /**
   * Where the time went (ms): lock, read (release document, installed versions, what the edge serves; repair),
   * plan, checks (health), recordIntent, routingWrite (the routing table in place; nginxCheck + reload when
   * the settings changed too), edgeConfirm (the edge reports the new generation), record, confirm (a request
   * to <domain> answered by the new version) and, once the lock is given back, unlock. Where the intent is
   * written by the routing table's own command there is no recordIntent: routingWrite holds both, and the
   * edge's first answer when the manager asks it in that command (edgeConfirm then only what was left).
   */
  phases: Record<string, number>;
  /** The state change and the nginx diff (a dry run stops there). */
  change: ReleaseChange;
  /** Post-hooks that failed (`post-switch exited with 3`): reported, nothing undone. */
  hookFailures?: string[];
}

export interface SwitchOptions {
  dryRun?: boolean;
  /** A consumers-only app: how long the new version's consumers may take to run, and the old ones' to stop. */
  consumersTimeoutMs?: number;
  /** A stateful service handed back to the version (src/plan/stateful-handover.ts): how long each stage may take. */
  statefulTimeoutMs?: number;
}

/**
 * Makes `version` live on <domain>: it must be installed and healthy; the edge's live server block is
 * rewritten (checked, swapped atomically, reloaded gracefully) and live/previous recorded on the cluster.
 */
export async function switchVersion(control: ClusterPort, version: string, options: SwitchOptions = {}): Promise<SwitchResult> {
  assertVersionLabel(version);
  return withRelease(control, `depl switch ${version}`, options, (session) => switchIn(session, control, { kind: 'switch', version }, options));
}

/** A switch-like change (switch, rollback, promote) inside an open release session: health gate, apply, confirm. */
export async function switchIn(session: ReleaseSession, control: ClusterPort, request: Extract<ReleaseRequest, { kind: 'switch' | 'rollback' | 'promote' }>, options: Pick<SwitchOptions, 'consumersTimeoutMs' | 'statefulTimeoutMs'> = {}): Promise<SwitchResult> {
  const before = session.state;
  const hookFacts = (version: string, live: string | null): HookFacts => ({
    app: control.app, domain: control.domain, command: request.kind as HookCommand, version, previous: before.live, live, performer: operator(control),
  });
  // Hooks run for a change only: a switch to what is already live (and no canary) runs none.
  let changes = false;
  let consumers = false;
  // the volumes handed to the new live version before its health gate, put back if the switch goes no further
  let handedOver: StatefulHandover | undefined;
  const change = await session.change(request, {
    precheck: async (after, installed, planned) => {
      if (after.live === null) return;
      consumers = consumersOnly(installed);
      const handover = statefulHandover(after.live, installed, after.scale);
      if (handover.stop.length > 0 || handover.start.length > 0) {
        // its health gate is part of the handover (which puts the swarm back itself when it refuses)
        await handOverVolumes(control, after.live, handover, options.statefulTimeoutMs);
        handedOver = handover;
      } else if (!consumers) {
        // a consumers-only app has no edge: its gate is the new version's consumers running (src/workflows/consumers.ts)
        await requireHealthy(control, after.live);
      }
      changes = planned.unchanged !== true;
      if (planned.consumers !== undefined) await startConsumers(control, planned.consumers.start, options.consumersTimeoutMs);
      // the lock is held: nothing changes between the hook and the switch
      if (changes) await control.hooks?.run('pre-switch', hookFacts(after.live, before.live));
    },
  }).catch(async (error: unknown) => {
    // a refused hook or edge change after the handover: the version that was live gets its volume back
    if (handedOver !== undefined) {
      await undoStatefulHandover(control, handedOver, options.statefulTimeoutMs).catch((undoError: Error) => control.log.warn(`could not put the stateful services back: ${undoError.message}`));
    }
    throw error;
  });
  const live = change.after.live!;
  // a dry run shows the volumes the switch would hand over, as the precheck then does
  if (session.dryRun) {
    const handover = statefulHandover(live, change.installed, change.after.scale);
    if (!handoverIsEmpty(handover)) change.changes.push(`stateful: ${describeStatefulHandover(handover)} (stop-first; ${live} must then answer its health check)`);
  }
  // the session's own record: withRelease adds the unlock to it once the lock is given back
  const phases = session.phases;
  if (!session.dryRun && consumers) {
    const handover = change.scale?.filter((t) => t.replicas === 0) ?? [];
    const stopStart = performance.now();
    await awaitStopped(control, handover, options.consumersTimeoutMs);
    phases.stopConsumers = Math.round(performance.now() - stopStart);
    control.log.step(`${live}'s consumers run${handover.length > 0 ? `; stopped ${handover.map((t) => t.service).join(', ')}` : ''}`);
  } else if (!session.dryRun) {
    const confirmStart = performance.now();
    await confirmLive(control, live);
    phases.confirm = Math.round(performance.now() - confirmStart);
    control.log.debug(`${request.kind} ${live}: ${Object.entries(phases).map(([k, v]) => `${k} ${v}ms`).join(', ')}`);
    control.log.step(`${live} is live on ${control.domain}${change.after.previous ? ` (previous: ${change.after.previous})` : ''}`);
  }
  const elapsedMs = performance.now() - session.startedAt;
  const hookFailures: string[] = [];
  // the precheck runs for every change that is applied (not for a dry run), so `changes` is its verdict
  if (!session.dryRun && changes) {
    const outcome = await control.hooks?.run('post-switch', hookFacts(live, live));
    if (outcome?.failure !== undefined) hookFailures.push(outcome.failure);
  }
  if (change.applied?.reloaded) {
    phases.nginxCheck = Math.round(change.applied.checkMs);
    phases.reload = Math.round(change.applied.reloadMs);
  }
  return {
    live, previous: change.after.previous, elapsedMs, reloadMs: change.applied?.reloadMs ?? 0, phases, change,
    ...(hookFailures.length > 0 ? { hookFailures } : {}),
  };
}
