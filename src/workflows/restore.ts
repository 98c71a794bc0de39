import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ensureBackupsDir, openPayload, redisRestoreArchive, verifyBackupFile, volumeRootOwner, writeBackupFile } from '../apply/backup-file.js';
import type { Remote } from '../apply/remote.js';
import { isDeplError, OperationError, UserError } from '../errors.js';
import { accessoryVolumeOnCluster, defaultBackupFileName, payloadFile, volumeArchiveParent, type BackupManifest, type RedisSettings } from '../plan/backup.js';
import { BACKUPS_FOLDER } from '../plan/operator-files.js';
import { planRestore, restoreCommand, type RestorePlan, type RestoreStep } from '../plan/restore-plan.js';
import { quote } from '../plan/shell.js';
import type { Logger } from '../util/log.js';
import { readRedisSettings, verifyRedisLoaded } from './accessory-redis.js';
import { applyPlan, type ApplyPlanOptions, type StepApplier } from './apply-plan.js';
import type { AccessoryInputs } from './command-inputs.js';
import { withPortLock } from './lock-session.js';
import {
  accessoryTarget, checkBackupFor, journalPath, manifestBase, operatorName, readRestoreJournal, throwRefusal, volumeManifest, withAccessoryPort,
  type AccessoryPort, type AccessoryTarget,
} from './backup.js';

/**
 * depl restore of an accessory's data from a backup file: the file is checked (nothing changes when it is
 * wrong) -> lock -> read -> plan (src/plan/restore-plan.ts: refusals, then record, stop, copy, replace,
 * start, verify, clear) -> apply that plan, whose undo puts back what the accessory held. `--dry-run` checks,
 * reads and plans only.
 */

export interface RestoreOptions {
  accessory: string;
  file: string;
  force?: boolean;
  lockWaitMs?: number;
  now?: Date;
  startTimeoutMs?: number;
  dryRun?: boolean;
}

export interface RestoreResult {
  accessory: string;
  file: string;
  /** The copy of what the accessory held before, as a backup file (restorable with depl restore). */
  safetyCopy: string;
  /** Keys after the restore (Redis). */
  keys?: number;
  warnings: string[];
  /** The plan that ran (for a dry run, all that happened). */
  plan: RestorePlan;
  dryRun: boolean;
}

/** `depl restore <accessory> <file>` from depl.yaml. */
export async function restore(inputs: AccessoryInputs, options: RestoreOptions, log: Logger): Promise<RestoreResult> {
  const t = accessoryTarget(inputs, options.accessory, 'restore');
  const file = path.resolve(options.file);
  const { manifest, warnings } = await checkBackupFor(inputs, t.name, file);
  return withAccessoryPort(inputs, log, options.lockWaitMs, (port, managerNode) => restoreAccessory(port, t, {
    file, manifest, warnings, force: options.force === true, now: options.now ?? new Date(), root: inputs.root,
    pinnedNode: t.accessory.node === 'manager' ? managerNode : t.accessory.node, dryRun: options.dryRun === true,
    ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
  }));
}

export interface RestoreRun {
  /** The backup file (absolute), checked against the accessory (checkBackupFor). */
  file: string;
  manifest: BackupManifest;
  warnings: string[];
  force: boolean;
  now: Date;
  /** depl.yaml's folder: the copy of what the accessory holds goes to its `.depl/backups/`. */
  root: string;
  /** The node the accessory is pinned to (when none of its tasks ever ran). */
  pinnedNode: string;
  startTimeoutMs?: number;
  dryRun?: boolean;
  afterStep?: ApplyPlanOptions['afterStep'];
}

/** Under the lock: read -> plan -> apply; a dry run reads and plans without the lock. */
export async function restoreAccessory(port: AccessoryPort, t: AccessoryTarget, run: RestoreRun): Promise<RestoreResult> {
  const readAndPlan = async (): Promise<RestorePlan> => {
    const planned = planRestore(await readForRestore(port, t, run));
    if (!planned.ok) throwRefusal(planned);
    return planned.plan;
  };
  const result = (plan: RestorePlan, keys?: number): RestoreResult => ({
    accessory: t.name, file: run.file, safetyCopy: plan.safetyCopy, ...(keys !== undefined ? { keys } : {}), warnings: run.warnings, plan, dryRun: run.dryRun === true,
  });
  if (run.dryRun) return result(await readAndPlan());
  return withPortLock(port, restoreCommand(t.name, run.file), async (lock) => {
    const plan = await readAndPlan();
    for (const note of plan.notes) port.log.warn(note);
    // the record of the restore is written and cleared only while this run still holds the lock
    const applier = restoreApplier(port, lock.fenced(port.stateRemote), t, run, plan);
    try {
      await applyPlan(plan, applier, { log: port.log, ...(run.afterStep !== undefined ? { afterStep: run.afterStep } : {}) });
    } catch (error) {
      if (isDeplError(error) && error.code === 'PLAN_UNDO_FAILED') {
        throw new OperationError(`restore of ${t.name} failed, and putting its previous data back failed too: ${error.message}`,
          `Its previous data is in ${plan.safetyCopy}: depl restore ${t.name} ${plan.safetyCopy} --force.`, 'RESTORE_UNDO_FAILED', { cause: error });
      }
      throw error;
    }
    return result(plan, applier.keys);
  });
}

async function readForRestore(port: AccessoryPort, t: AccessoryTarget, run: RestoreRun) {
  const data = port.accessoryData;
  const [journal, place, services] = await Promise.all([readRestoreJournal(port, t.name), data.place(t.name), data.appServices()]);
  const earlier = journal === null || journal === 'unreadable' ? journal : { journal, copyExists: await exists(journal.safetyCopy) };
  let liveRedis: RedisSettings | null = null;
  if (run.manifest.payload.kind === 'redis-rdb' && place !== null && place.running && !place.paused) {
    // one that does not answer (broken data?) is planned from the settings the backup was made with
    liveRedis = await readRedisSettings(data, t.name, t.volume, port.log).then((r) => r.settings, (error: Error) => {
      port.log.warn(`${t.name} does not answer (${error.message})`);
      return null;
    });
  }
  return {
    app: port.app, accessory: t.name, volume: accessoryVolumeOnCluster(port.app, t.volume, place?.volume), file: run.file, manifest: run.manifest, warnings: run.warnings, force: run.force,
    place, pinnedNode: run.pinnedNode, services, earlier, liveRedis,
    freshCopy: await freeName(path.resolve(run.root, BACKUPS_FOLDER, defaultBackupFileName(port.app, t.name, run.now).replace(/\.tar$/, '-before-restore')), '.tar'),
    startedAt: run.now.toISOString(), by: operatorName(port),
  };
}

function restoreApplier(port: AccessoryPort, journalStore: Remote, t: AccessoryTarget, run: RestoreRun, plan: RestorePlan): StepApplier<RestoreStep> & { keys?: number } {
  const data = port.accessoryData;
  const startTimeoutMs = run.startTimeoutMs ?? 180_000;
  const clearRecord = () => journalStore.shell(`rm -f ${quote(journalPath(port, t.name))}`);
  const replace = (accessory: string, node: string, what: string, content: () => Promise<{ at: string; archive: Readable }>) =>
    data.withVolume(accessory, node, async (volume) => {
      port.log.step(`emptying volume ${t.volume.name}`);
      await volume.empty();
      port.log.step(what);
      const { at, archive } = await content();
      await volume.write(at, archive);
    });
  const putBack = async (step: Extract<RestoreStep, { kind: 'copy-volume' | 'check-earlier-copy' }>) => {
    await data.stop(step.accessory);
    await replace(step.accessory, step.node, `putting back what ${step.accessory} held, from ${step.copy}`, async () => ({ at: volumeArchiveParent(step.volume.target), archive: await openPayload(step.copy, payloadFile('volume-tar')) }));
  };
  const applier: StepApplier<RestoreStep> & { keys?: number } = {
    async run(step) {
      switch (step.kind) {
        case 'resume-accessory': await data.resume(step.accessory); return;
        case 'record-restore': await journalStore.writeFileAtomic(journalPath(port, t.name), JSON.stringify(step.journal) + '\n', 0o600); return;
        case 'stop-accessory': await data.stop(step.accessory); return;
        case 'copy-volume': {
          await ensureBackupsDir(run.root);
          const base = manifestBase(port, t, (await data.place(step.accessory))?.image ?? t.accessory.image, step.node, run.now);
          await data.withVolume(step.accessory, step.node, async (volume) =>
            writeBackupFile(step.copy, payloadFile('volume-tar'), await volume.read(), (facts) => volumeManifest(base, facts), run.now));
          return;
        }
        case 'check-earlier-copy': {
          const { manifest } = await verifyBackupFile(step.copy);
          if (manifest.payload.kind !== 'volume-tar') throw new UserError(`${step.copy} is not a copy of a volume`, `Move it away and run depl restore ${t.name} again.`, 'BACKUP_WRONG_TYPE');
          return;
        }
        case 'replace-volume': {
          const load = step.load;
          await replace(step.accessory, step.node, `restoring ${path.basename(step.file)} into ${step.volume.name} on ${step.node}`, async () => {
            if (load.kind === 'volume-tar') return { at: load.at, archive: await openPayload(step.file, run.manifest.payload.file) };
            const owner = await volumeRootOwner(plan.safetyCopy, payloadFile('volume-tar'));
            return { at: load.at, archive: redisRestoreArchive(load.entries, step.file, run.manifest, owner, run.now) };
          });
          return;
        }
        case 'start-accessory': await data.start(step.accessory, startTimeoutMs); return;
        case 'verify-redis': applier.keys = await verifyRedisLoaded(data, step.accessory, step.expectedKeys, startTimeoutMs); return;
        case 'clear-record': await clearRecord(); return;
      }
    },
    async undo(step) {
      switch (step.kind) {
        case 'record-restore': await clearRecord(); return;
        case 'stop-accessory': await data.start(step.accessory, startTimeoutMs); return;
        case 'copy-volume':
        case 'check-earlier-copy': await putBack(step); return;
        default: return;
      }
    },
  };
  return applier;
}

const exists = (file: string) => stat(file).then(() => true, () => false);

/** `<base>.tar`, or `<base>-2.tar`... when taken (two restores within a second). */
async function freeName(base: string, ext: string): Promise<string> {
  for (let n = 1; ; n += 1) {
    const candidate = `${base}${n === 1 ? '' : `-${n}`}${ext}`;
    if (!(await exists(candidate))) return candidate;
  }
}
