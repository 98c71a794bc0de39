import { access, constants, stat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { ensureBackupsDir, verifyBackupFile, writeBackupFile, type PayloadFacts } from '../apply/backup-file.js';
import { DEFAULT_STATE_ROOT } from '../apply/release-store.js';
import type { AccessoryConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';
import {
  accessoryType, accessoryVolume, accessoryVolumeOnCluster, backupKind, backupOutputPath, checkManifestFor, FORMAT, FORMAT_VERSION, keyCount, parseRestoreJournal, payloadFile, rdbVersion,
  restoreJournalPath, type AccessoryVolume, type BackupKind, type BackupManifest, type RestoreJournal,
} from '../plan/backup.js';
import { backupCommand, planBackup, type BackupPlan, type BackupStep, type PlanRefusal } from '../plan/backup-plan.js';
import { onInterrupt } from '../util/interrupt.js';
import type { Logger } from '../util/log.js';
import { accessoryDataOn } from './accessory-data-target.js';
import { readRedisSettings, redisInfo, redisSnapshot } from './accessory-redis.js';
import { applyPlan, type ApplyPlanOptions, type StepApplier } from './apply-plan.js';
import type { AccessoryData, ClusterPort } from './cluster-port.js';
import { withPortLock } from './lock-session.js';
import type { AccessoryInputs } from './command-inputs.js';
import { withManagerEngine } from './versions.js';

/**
 * depl backup of an accessory's volume (the paths are described in src/plan/backup.ts): read -> plan
 * (src/plan/backup-plan.ts) -> apply that plan, under the cluster lock; `--dry-run` reads and plans only.
 * depl restore is in src/workflows/restore.ts; both reach the accessory through the port's `accessoryData`.
 */

/** What backup and restore need of the port: the lock's place, the clock, and the accessory's data. */
export type AccessoryPort = Pick<ClusterPort, 'app' | 'stateRemote' | 'stateRoot' | 'log' | 'lockWaitMs' | 'by' | 'now'> & { accessoryData: AccessoryData };

export interface BackupOptions {
  accessory: string;
  /** Default: `.depl/backups/<app>-<accessory>-<time>.tar` beside depl.yaml (src/plan/backup.ts: backupOutputPath). */
  output?: string;
  lockWaitMs?: number;
  now?: Date;
  cwd?: string;
  /** How long a BGSAVE may take. */
  saveTimeoutMs?: number;
  /** Read and plan only: nothing is written or changed. */
  dryRun?: boolean;
}

export interface BackupResult {
  file: string;
  /** Absent for a dry run. */
  manifest?: BackupManifest;
  /** The plan that ran (for a dry run, all that happened). */
  plan: BackupPlan;
}

/** An accessory of depl.yaml that has data: its name, config, volume and type. */
export interface AccessoryTarget {
  name: string;
  accessory: AccessoryConfig;
  volume: AccessoryVolume;
  type: string;
  kind: BackupKind;
}

export function accessoryTarget(declared: Pick<AccessoryInputs, 'file' | 'config'>, name: string, verb: string): AccessoryTarget {
  const accessory = declared.config.accessories[name];
  const names = Object.keys(declared.config.accessories);
  if (accessory === undefined) {
    throw new UserError(`no accessory named "${name}" in ${declared.file}`, names.length > 0 ? `Accessories: ${names.join(', ')}.` : 'depl.yaml declares no accessories.', 'NO_SUCH_ACCESSORY');
  }
  const volume = accessoryVolume(accessory);
  if (volume === null) {
    throw new UserError(`accessory ${name} has no volume, so there is no data to ${verb}`, `Give it one in depl.yaml (accessories.${name}.volume: "<name>:/path").`, 'ACCESSORY_NO_VOLUME');
  }
  return { name, accessory, volume, type: accessoryType(accessory), kind: backupKind(accessory) };
}

export const operatorName = (port: Pick<ClusterPort, 'by'>) => port.by ?? `${userInfo().username}@${hostname()}`;

export const journalPath = (port: Pick<ClusterPort, 'app' | 'stateRoot'>, accessory: string) => restoreJournalPath(port.stateRoot ?? DEFAULT_STATE_ROOT, port.app, accessory);

/** The record a restore that did not finish left on the manager. */
export async function readRestoreJournal(port: Pick<ClusterPort, 'app' | 'stateRoot' | 'stateRemote'>, accessory: string): Promise<RestoreJournal | null | 'unreadable'> {
  const text = await port.stateRemote.readFile(journalPath(port, accessory));
  if (text === null) return null;
  return parseRestoreJournal(text) ?? 'unreadable';
}

export function throwRefusal(refusal: PlanRefusal): never {
  if (refusal.error === 'user') throw new UserError(refusal.message, refusal.hint, refusal.code);
  throw new OperationError(refusal.message, refusal.hint, refusal.code);
}

/** The manifest's fields that do not depend on the payload. */
export function manifestBase(port: AccessoryPort, t: AccessoryTarget, image: string, node: string, at: Date): Omit<BackupManifest, 'payload' | 'redis'> {
  return { format: FORMAT, formatVersion: FORMAT_VERSION, app: port.app, accessory: t.name, type: t.type, image, createdAt: at.toISOString(), createdBy: operatorName(port), node, volume: t.volume };
}

export function volumeManifest(base: Omit<BackupManifest, 'payload' | 'redis'>, facts: PayloadFacts): BackupManifest {
  return { ...base, payload: { kind: 'volume-tar', file: payloadFile('volume-tar'), size: facts.size, sha256: facts.sha256 } };
}

function checkOutput(file: string, dryRun: boolean): Promise<void> {
  return stat(file).then(
    () => { throw new UserError(`${file} already exists`, 'Choose another --output, or move that file away; a backup never overwrites one.', 'BACKUP_OUTPUT_EXISTS'); },
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw new UserError(`cannot write ${file}: ${error.message}`, undefined, 'BACKUP_OUTPUT');
      // a dry run does not make .depl/backups/, so the default folder may not be there yet
      if (dryRun) return;
      await access(path.dirname(file), constants.W_OK).catch(() => {
        throw new UserError(`cannot write ${file}: its folder ${path.dirname(file)} does not exist or is not writable`, 'Choose another --output.', 'BACKUP_OUTPUT');
      });
    },
  );
}

/** `depl backup <accessory>` from depl.yaml: the output checked, the cluster opened, the accessory backed up. */
export async function backup(inputs: AccessoryInputs, options: BackupOptions, log: Logger): Promise<BackupResult> {
  const t = accessoryTarget(inputs, options.accessory, 'back up');
  const now = options.now ?? new Date();
  const dryRun = options.dryRun === true;
  if (options.output === undefined && !dryRun) await ensureBackupsDir(inputs.root);
  const file = backupOutputPath({ root: inputs.root, cwd: options.cwd ?? process.cwd(), ...(options.output !== undefined ? { output: options.output } : {}), app: inputs.config.app, accessory: t.name, at: now });
  await checkOutput(file, dryRun);
  return withAccessoryPort(inputs, log, options.lockWaitMs, (port) => backupAccessory(port, t, { file, now, dryRun, ...(options.saveTimeoutMs !== undefined ? { saveTimeoutMs: options.saveTimeoutMs } : {}) }));
}

/** Opens the cluster and builds backup and restore's port on it (the manager's Engine API, the accessory's node). */
export async function withAccessoryPort<T>(inputs: Pick<AccessoryInputs, 'config' | 'cluster'>, log: Logger, lockWaitMs: number | undefined, fn: (port: AccessoryPort, managerNode: string) => Promise<T>): Promise<T> {
  return withManagerEngine(inputs.cluster, log, async (cluster, manager) => {
    const accessoryData = accessoryDataOn(cluster, manager, inputs.config, log);
    try {
      return await fn({ app: inputs.config.app, stateRemote: cluster.manager, log, lockWaitMs: lockWaitMs ?? 0, accessoryData }, cluster.managerNode.name);
    } finally {
      await accessoryData.close();
    }
  });
}

export interface BackupRun {
  file: string;
  now: Date;
  dryRun?: boolean;
  saveTimeoutMs?: number;
  afterStep?: ApplyPlanOptions['afterStep'];
}

/** Under the lock: read -> plan -> apply; a dry run reads and plans without the lock. */
export async function backupAccessory(port: AccessoryPort, t: AccessoryTarget, run: BackupRun): Promise<BackupResult> {
  const readAndPlan = async (): Promise<BackupPlan> => {
    const planned = planBackup(await readForBackup(port, t, run.file));
    if (!planned.ok) throwRefusal(planned);
    return planned.plan;
  };
  if (run.dryRun) return { file: run.file, plan: await readAndPlan() };
  return withPortLock(port, backupCommand(t.name), async () => {
    const plan = await readAndPlan();
    for (const note of plan.notes) port.log.step(note);
    const applier = backupApplier(port, t, run);
    await applyPlan(plan, applier, { log: port.log, ...(run.afterStep !== undefined ? { afterStep: run.afterStep } : {}) });
    if (applier.manifest === undefined) throw new Error('backup: the plan wrote no backup file');
    return { file: run.file, manifest: applier.manifest, plan };
  });
}

async function readForBackup(port: AccessoryPort, t: AccessoryTarget, file: string) {
  const data = port.accessoryData;
  const [earlierRestore, place] = await Promise.all([readRestoreJournal(port, t.name), data.place(t.name)]);
  // Redis is asked where it keeps its files; a paused one cannot answer (docker exec refuses) until the plan resumed it
  const redis = t.kind === 'redis' && place !== null && place.running && !place.paused && earlierRestore === null
    ? await readRedisSettings(data, t.name, t.volume, port.log)
    : undefined;
  return { app: port.app, accessory: t.name, kind: t.kind, volume: accessoryVolumeOnCluster(port.app, t.volume, place?.volume), file, place, earlierRestore, ...(redis !== undefined ? { redis } : {}) };
}

function backupApplier(port: AccessoryPort, t: AccessoryTarget, run: BackupRun): StepApplier<BackupStep> & { manifest?: BackupManifest } {
  const data = port.accessoryData;
  let unregisterResume: (() => void) | undefined;
  let image = '';
  const applier: StepApplier<BackupStep> & { manifest?: BackupManifest } = {
    async run(step) {
      switch (step.kind) {
        case 'resume-accessory':
          await data.resume(step.accessory);
          unregisterResume?.();
          unregisterResume = undefined;
          return;
        case 'redis-snapshot':
          await redisSnapshot(data, step.accessory, run.saveTimeoutMs ?? 600_000, port.log);
          return;
        case 'copy-redis-snapshot': {
          // the settings again: this run may have resumed a Redis that could not answer when it planned
          const { settings } = await readRedisSettings(data, step.accessory, t.volume, port.log);
          const keys = keyCount(await redisInfo(data, step.accessory, 'keyspace'));
          image = (await data.place(step.accessory))?.image ?? t.accessory.image;
          const base = manifestBase(port, t, image, step.node, run.now);
          const rdbPath = step.path ?? `${settings.dir.replace(/\/+$/, '')}/${settings.dbfilename}`;
          applier.manifest = await writeBackupFile(step.file, payloadFile('redis-rdb'), await data.readFile(step.accessory, rdbPath), (facts) => {
            const rdb = rdbVersion(facts.head);
            if (rdb === null) throw new OperationError(`the copied ${rdbPath} is not an RDB file`, undefined, 'BACKUP_PAYLOAD');
            return { ...base, payload: { kind: 'redis-rdb', file: payloadFile('redis-rdb'), size: facts.size, sha256: facts.sha256 }, redis: { version: settings.version, keys, aof: settings.aof, rdbVersion: rdb } };
          }, run.now);
          return;
        }
        case 'pause-accessory':
          await data.pause(step.accessory);
          // Ctrl-C while the copy runs must not leave the accessory frozen
          unregisterResume = onInterrupt(() => data.resume(step.accessory), `resuming accessory ${step.accessory}`);
          return;
        case 'copy-volume': {
          image = (await data.place(step.accessory))?.image ?? t.accessory.image;
          const base = manifestBase(port, t, image, step.node, run.now);
          applier.manifest = await data.withVolume(step.accessory, step.node, async (volume) =>
            writeBackupFile(step.file, payloadFile('volume-tar'), await volume.read(), (facts) => volumeManifest(base, facts), run.now));
          return;
        }
      }
    },
    async undo(step) {
      if (step.kind === 'pause-accessory') {
        await data.resume(step.accessory);
        unregisterResume?.();
        unregisterResume = undefined;
      }
    },
  };
  return applier;
}

/**
 * The backup file checked against the accessory it would go into (before anyone is asked anything, and again
 * by restore): a damaged file or one of another kind of accessory is refused with exit 2, nothing changed.
 */
export async function checkBackupFor(inputs: Pick<AccessoryInputs, 'file' | 'config'>, accessory: string, file: string): Promise<{ manifest: BackupManifest; warnings: string[] }> {
  const t = accessoryTarget(inputs, accessory, 'restore');
  const { manifest, head } = await verifyBackupFile(file);
  const { refusals, warnings } = checkManifestFor(manifest, { app: inputs.config.app, accessory: t.name, type: t.type, volume: t.volume });
  if (manifest.payload.kind === 'redis-rdb' && rdbVersion(head) === null) refusals.push('its dump.rdb is not an RDB file');
  if (refusals.length > 0) {
    throw new UserError(`${file} cannot be restored into ${t.name}: ${refusals.join('; ')}`, 'Nothing was changed. Pick a backup of this kind of accessory (manifest.json in the file says what it holds).', 'BACKUP_WRONG_TYPE');
  }
  return { manifest, warnings };
}
