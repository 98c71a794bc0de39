import type { HeldLock } from '../apply/lock.js';
import { clearVolumeMoveRecord, readVolumeMoveRecord, writeVolumeMoveRecord } from '../apply/volume-move-record.js';
import type { DeplConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';
import { describeJobEnd, jobExitCode, type Frame } from '../plan/jobs.js';
import { legacyVolumeName } from '../plan/names.js';
import { LABELS, parseVolume } from '../plan/services.js';
import { COPY_EXIT, planVolumeMoves, VOLUME_COPY_TIMEOUT_MS, type VolumeMovePlan, type VolumeMoveStep } from '../plan/volume-move.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';
import { operator, type ClusterPort, type InstallTarget } from './cluster-port.js';

/**
 * buildinst's first change: volumes an earlier depl made under depl.yaml's name alone are moved into their
 * app-scoped names (src/plan/volume-move.ts says how and why), so that the install that follows plans with
 * app-scoped names only. Reads what the plan needs, plans, and applies it under the caller's lock.
 */

type Port = ClusterPort & { install: InstallTarget };

/** Reads the cluster (only as far as a volume is to be moved) and plans; a refusal is a UserError, nothing changed. */
export async function planVolumeMove(port: Port, config: Pick<DeplConfig, 'app' | 'services' | 'accessories'>, command: string): Promise<VolumeMovePlan> {
  const [present, record] = await Promise.all([port.install.appServices(), readVolumeMoveRecord(port.stateRemote, port.app, port.stateRoot)]);
  const sources = [...Object.values(config.accessories), ...Object.values(config.services)].flatMap((o) => (o.volume !== undefined ? [legacyVolumeName(parseVolume(o.volume).source)] : []));
  const candidates = record !== null
    ? record.moves.map((m) => m.from)
    : [...new Set(sources)].filter((from) => present.some((s) => (s.volumes ?? []).includes(from)));
  // where a volume is matters only for a move not yet recorded (a recorded one names its node)
  const [locations, mounting] = candidates.length === 0 ? [{}, []] : await Promise.all([
    record === null ? port.install.volumes.locate(candidates) : Promise.resolve({}),
    port.install.volumes.mounting(candidates),
  ]);
  const planned = planVolumeMoves({
    config, present, others: mounting.filter((s) => s.labels[LABELS.app] !== config.app), record, locations,
    by: operator(port), at: (port.now?.() ?? new Date()).toISOString(),
  }, command);
  if (!planned.ok) throw new UserError(planned.refusal.message, planned.refusal.hint, planned.refusal.code);
  return planned.plan;
}

export interface VolumeMoveOptions {
  /** How long stopped services and their containers may take to let go of a volume. */
  tasksTimeoutMs?: number;
  /** Fake-cluster tests stop the applier here, as a SIGKILL would. */
  afterStep?: ApplyPlanOptions['afterStep'];
}

/** Plans and applies the move (nothing to do: no step); returns the plan it applied. */
export async function moveLegacyVolumes(port: Port, lock: Pick<HeldLock, 'fenced'>, config: Pick<DeplConfig, 'app' | 'services' | 'accessories'>, command: string, options: VolumeMoveOptions = {}): Promise<VolumeMovePlan> {
  const plan = await planVolumeMove(port, config, command);
  if (plan.steps.length === 0) return plan;
  for (const note of plan.notes) port.log.step(note);
  await applyVolumeMove(port, lock, plan, options);
  return plan;
}

async function applyVolumeMove(port: Port, lock: Pick<HeldLock, 'fenced'>, plan: VolumeMovePlan, options: VolumeMoveOptions): Promise<void> {
  const target = port.install;
  const log = port.log;
  const manager = () => lock.fenced(port.stateRemote);
  const timeoutMs = options.tasksTimeoutMs ?? 180_000;
  // once a service mounts the new volume the move only goes forward: a failure leaves the record for the next buildinst
  let committed = false;
  const run = async (step: VolumeMoveStep): Promise<void> => {
    switch (step.kind) {
      case 'record-moves':
        await writeVolumeMoveRecord(manager(), step.record, port.stateRoot);
        return;
      case 'stop-users':
        await target.stopServices(step.services, timeoutMs);
        return;
      case 'await-free':
        await target.volumes.awaitFree(step.node, step.from, timeoutMs);
        return;
      case 'copy-volume': {
        let output = '';
        const write = (frame: Frame) => {
          output = (output + Buffer.from(frame.payload).toString('utf8')).slice(-8_192);
        };
        const end = await target.runJob(step.job, { timeoutMs: VOLUME_COPY_TIMEOUT_MS, write });
        const exit = jobExitCode(end);
        if (exit === 0) {
          log.step(`${step.from} -> ${step.to}: ${output.trim().split('\n').pop() ?? 'copied'}`);
          return;
        }
        // a copy that did not finish is removed (the old volume is as it was); files found in the new volume are someone's, kept
        if (exit !== COPY_EXIT.targetNotEmpty) {
          const gone = await target.volumes.remove(step.node, step.to).catch((error: Error) => ({ removed: false as const, reason: error.message }));
          if (!gone.removed) log.warn(`the partial copy ${step.to} on ${step.node} is left: ${gone.reason}`);
        }
        const what = describeJobEnd(end, VOLUME_COPY_TIMEOUT_MS);
        throw new OperationError(
          `volume ${step.from} could not be copied into ${step.to} on ${step.node}: the copy job ${what}${output.trim() !== '' ? `\n--- its output ---\n${output.trimEnd()}` : ''}`,
          exit === COPY_EXIT.targetNotEmpty
            ? `Volume ${step.to} on ${step.node} already holds files that no move of depl put there: look at them, remove the volume (docker volume rm ${step.to}) if they are not needed, then run buildinst again.`
            : `The services run on ${step.from} again, which is as it was. Check ${step.node} (disk space: docker system df), then run buildinst again.`,
          'VOLUME_COPY_FAILED',
        );
      }
      case 'repoint-users':
        committed = true;
        await target.volumes.repoint(step.services, step.from, step.to);
        return;
      case 'start-users':
        await target.startServices(step.targets);
        return;
      case 'remove-old-volume': {
        const gone = await target.volumes.remove(step.node, step.from);
        if (!gone.removed) log.warn(`volume ${step.from} on ${step.node} is kept (its data is copied into the app-scoped one): ${gone.reason}; remove it once nothing uses it: docker volume rm ${step.from}`);
        return;
      }
      case 'clear-record':
        await clearVolumeMoveRecord(manager(), port.app, port.stateRoot);
        return;
    }
  };
  const undo = async (step: VolumeMoveStep): Promise<void> => {
    if (committed) return;
    switch (step.kind) {
      case 'record-moves':
        await clearVolumeMoveRecord(manager(), port.app, port.stateRoot);
        return;
      case 'stop-users':
        await target.startServices(step.restart);
        return;
      case 'copy-volume': {
        const gone = await target.volumes.remove(step.node, step.to);
        if (!gone.removed) throw new OperationError(`cannot remove ${step.to} on ${step.node}: ${gone.reason}`, undefined, 'VOLUME_COPY_FAILED');
        return;
      }
      default:
        return;
    }
  };
  await applyPlan(plan, { run, undo }, { log, ...(options.afterStep !== undefined ? { afterStep: options.afterStep } : {}) });
}
