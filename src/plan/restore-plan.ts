import {
  accessoryUsers, describeUsers, redisRestoreEntries, redisSettings, volumeArchiveParent,
  type AccessoryVolume, type AppService, type BackupManifest, type RedisSettings, type RestoreEntry, type RestoreJournal,
} from './backup.js';
import { accessoryMissing, resumeStep, type AccessoryPlacement, type PlanRefusal } from './backup-plan.js';
import type { ChangePlan } from './change-plan.js';

/**
 * `depl restore <accessory> <file>` as a plan, from the (checked) backup file and what was read on the
 * cluster: refuse while installed versions use the accessory (unless forced) -> record the restore on the
 * manager -> stop the accessory -> keep a copy of what it holds -> empty its volume and load the backup ->
 * start it -> verify (Redis: it answers, with keys) -> clear the record.
 *
 * Undo, when a step fails: the copy's undo stops the accessory and puts what it held back, the stop's undo
 * starts it again, the record is removed. A depl killed midway leaves the record: the next backup refuses
 * and says what to run, the next restore plans from it. The copy of what the accessory held before the FIRST,
 * interrupted, restore is what that next restore puts back on failure and reports (a fresh copy then would
 * be of half-replaced data); when the interrupted run died before that copy was complete, a fresh one is taken.
 */

export interface RestoreRead {
  app: string;
  accessory: string;
  volume: AccessoryVolume;
  /** The backup file (absolute), already checked against this accessory (src/workflows/backup.ts checkBackupFor). */
  file: string;
  manifest: BackupManifest;
  /** What the check warned about (another app or accessory name). */
  warnings: string[];
  force: boolean;
  place: AccessoryPlacement | null;
  /** The node the accessory is on when none of its tasks ever ran (its `node:` in depl.yaml, or the manager). */
  pinnedNode: string;
  /** The app's services now (who uses the accessory). */
  services: AppService[];
  /** A restore that did not finish; `copyExists`: its copy of what the accessory held is on this machine. */
  earlier: { journal: RestoreJournal; copyExists: boolean } | 'unreadable' | null;
  /** Redis backups: the running server's settings; null when it does not run or answer. */
  liveRedis: RedisSettings | null;
  /** Where a fresh copy of what the accessory holds goes (a free name in .depl/backups/). */
  freshCopy: string;
  startedAt: string;
  by: string;
}

/** How the backup goes into the emptied volume. */
export type RestoreLoad =
  | { kind: 'volume-tar'; at: string }
  /** The files Redis loads, each holding the backup's RDB (or a small text), written at the mount point. */
  | { kind: 'redis-files'; at: string; entries: RestoreEntry[] };

export type RestoreStep =
  | { kind: 'resume-accessory'; describe: string; accessory: string; node: string }
  | { kind: 'record-restore'; describe: string; undo: string; journal: RestoreJournal }
  | { kind: 'stop-accessory'; describe: string; undo: string; accessory: string }
  | { kind: 'copy-volume'; describe: string; undo: string; accessory: string; node: string; volume: AccessoryVolume; copy: string }
  | { kind: 'check-earlier-copy'; describe: string; undo: string; accessory: string; node: string; volume: AccessoryVolume; copy: string }
  | { kind: 'replace-volume'; describe: string; accessory: string; node: string; volume: AccessoryVolume; file: string; load: RestoreLoad }
  | { kind: 'start-accessory'; describe: string; accessory: string }
  | { kind: 'verify-redis'; describe: string; accessory: string; expectedKeys: number }
  | { kind: 'clear-record'; describe: string; accessory: string };

export interface RestorePlan extends ChangePlan<RestoreStep> {
  accessory: string;
  file: string;
  /** The copy of what the accessory held before (a backup file: `depl restore` takes it back). */
  safetyCopy: string;
}

export type RestorePlanned = { ok: true; plan: RestorePlan } | PlanRefusal;

export const restoreCommand = (accessory: string, file: string) => `depl restore ${accessory} ${file}`;

export function planRestore(read: RestoreRead): RestorePlanned {
  const { accessory, volume, manifest } = read;
  if (read.place === null) return accessoryMissing(read.app, accessory);
  const users = accessoryUsers(read.services);
  if (users.length > 0 && !read.force) {
    return {
      ok: false, error: 'user', code: 'ACCESSORY_IN_USE',
      message: `accessory ${accessory} is in use by version${users.length === 1 ? '' : 's'} ${describeUsers(users)}; they would read and write it while its data is replaced`,
      hint: `Nothing was changed. Remove them (depl prune) or scale them to 0 first, or pass --force to restore under them (they lose ${accessory} for a moment and then see the restored data).`,
    };
  }
  const notes = [...read.warnings];
  if (users.length > 0) notes.push(`--force: restoring under version(s) ${describeUsers(users)}`);
  let load: RestoreLoad = { kind: 'volume-tar', at: volumeArchiveParent(volume.target) };
  if (manifest.payload.kind === 'redis-rdb') {
    let settings = read.liveRedis;
    if (settings === null) {
      // one that does not run or answer (broken data?) is assumed to be as it was when the backup was made
      notes.push(`${accessory} does not answer: assuming the settings it had when the backup was made (Redis ${manifest.redis?.version ?? '?'}, AOF ${manifest.redis?.aof ? 'on' : 'off'}, files in ${volume.target})`);
      settings = redisSettings({ redis_version: manifest.redis?.version ?? '7.0.0' }, { dir: volume.target, appendonly: manifest.redis?.aof ? 'yes' : 'no' });
    }
    const entries = redisRestoreEntries(settings, volume.target);
    if ('error' in entries) return { ok: false, error: 'operation', code: 'RESTORE_LAYOUT', message: `cannot restore ${accessory}: ${entries.error}` };
    load = { kind: 'redis-files', at: volume.target, entries };
  }
  const node = read.place.node ?? read.pinnedNode;
  const earlier = read.earlier;
  const keepsEarlier = earlier !== null && earlier !== 'unreadable' && earlier.copyExists;
  const safetyCopy = keepsEarlier ? earlier.journal.safetyCopy : read.freshCopy;
  if (earlier === 'unreadable') notes.push(`an earlier restore of ${accessory} did not finish (its record cannot be read); this restore replaces its leftovers`);
  else if (earlier !== null) {
    notes.push(`an earlier restore of ${accessory} did not finish (from ${earlier.journal.file}, by ${earlier.journal.by} at ${earlier.journal.startedAt}); this restore replaces its leftovers`);
    if (keepsEarlier) notes.push(`what ${accessory} held before it is in ${safetyCopy}: that copy is kept and put back if this restore fails`);
  }
  const putBack = `stop ${accessory} and put back what it held, from ${safetyCopy}`;
  const steps: RestoreStep[] = [];
  if (read.place.paused && read.place.node !== null) steps.push(resumeStep(accessory, read.place.node));
  steps.push(
    {
      kind: 'record-restore', describe: `record this restore of ${accessory} on the manager (what the next depl reads if this one dies)`, undo: 'remove the record',
      journal: { accessory, file: read.file, safetyCopy, startedAt: read.startedAt, by: read.by },
    },
    { kind: 'stop-accessory', describe: `stop ${accessory} (scale to 0) and wait until its task has exited`, undo: `start ${accessory} again`, accessory },
    keepsEarlier
      ? { kind: 'check-earlier-copy', describe: `check ${safetyCopy}, the copy of what ${accessory} held before the interrupted restore`, undo: putBack, accessory, node, volume, copy: safetyCopy }
      : { kind: 'copy-volume', describe: `copy what ${accessory} holds (volume ${volume.name} on ${node}) to ${safetyCopy}`, undo: putBack, accessory, node, volume, copy: safetyCopy },
    { kind: 'replace-volume', describe: `empty volume ${volume.name} on ${node} and load ${read.file} into it`, accessory, node, volume, file: read.file, load },
    { kind: 'start-accessory', describe: `start ${accessory} (scale to 1) and wait until it runs`, accessory },
  );
  if (load.kind === 'redis-files') {
    const expectedKeys = manifest.redis?.keys ?? 0;
    steps.push({ kind: 'verify-redis', describe: `wait until ${accessory} has loaded its data${expectedKeys > 0 ? ` (the backup was made with ${expectedKeys} keys)` : ''}`, accessory, expectedKeys });
  }
  steps.push({ kind: 'clear-record', describe: `remove the record of this restore of ${accessory}`, accessory });
  return { ok: true, plan: { command: restoreCommand(accessory, read.file), notes, steps, accessory, file: read.file, safetyCopy } };
}
