import type { ErrorCode } from '../error-codes.js';
import type { AccessoryVolume, BackupKind, RedisSettings, RestoreJournal } from './backup.js';
import type { ChangePlan } from './change-plan.js';

/**
 * `depl backup <accessory>` as a plan, from what was read on the cluster (src/plan/backup.ts says which path
 * a kind of accessory takes and why). Redis: BGSAVE, then its snapshot is copied, online. Anything else: the
 * container is paused, the volume copied through a helper container, the container resumed (undo of the
 * pause when the copy fails). A container left paused by a backup that died mid-copy is resumed first.
 */

/** Where the accessory runs now, as the swarm and its node's engine report it. */
export interface AccessoryPlacement {
  /** The service's image (the helper container that reaches the volume uses it: the node has it). */
  image: string;
  /** The node its running task is on, else that of its latest task; null when it never ran. */
  node: string | null;
  /** A task runs (there is a container to copy from or talk to). */
  running: boolean;
  /** Its running container is paused (a backup died while copying). */
  paused: boolean;
  /** The named volume its service mounts at the accessory's data path (absent: the swarm did not say). */
  volume?: string;
}

/** A refusal as data: the workflow throws it as a UserError (`user`) or an OperationError. */
export interface PlanRefusal {
  ok: false;
  error: 'user' | 'operation';
  message: string;
  hint?: string;
  code: ErrorCode;
}

export interface BackupRead {
  app: string;
  accessory: string;
  kind: BackupKind;
  volume: AccessoryVolume;
  /** The backup file to write (absolute). */
  file: string;
  /** null: the swarm has no such service of this app. */
  place: AccessoryPlacement | null;
  /** The record a restore that did not finish left on the manager. */
  earlierRestore: RestoreJournal | 'unreadable' | null;
  /** Redis only, asked of the running server: where it keeps its files, and whether it is still loading them. */
  redis?: { settings: RedisSettings; loading: boolean };
}

export type BackupStep =
  | { kind: 'resume-accessory'; describe: string; accessory: string; node: string }
  | { kind: 'redis-snapshot'; describe: string; accessory: string }
  /** `path`: the snapshot's file in the container; null when Redis was paused when planned (read once resumed). */
  | { kind: 'copy-redis-snapshot'; describe: string; accessory: string; node: string; path: string | null; file: string }
  | { kind: 'pause-accessory'; describe: string; undo: string; accessory: string; node: string }
  | { kind: 'copy-volume'; describe: string; accessory: string; node: string; volume: AccessoryVolume; file: string };

export interface BackupPlan extends ChangePlan<BackupStep> {
  accessory: string;
  kind: BackupKind;
  file: string;
}

export type BackupPlanned = { ok: true; plan: BackupPlan } | PlanRefusal;

export const backupCommand = (accessory: string) => `depl backup ${accessory}`;

/** The refusal shared by backup and restore: the accessory is not on this cluster. */
export function accessoryMissing(app: string, accessory: string): PlanRefusal {
  return { ok: false, error: 'operation', message: `accessory ${accessory} is not on this cluster (no service ${accessory} of app ${app})`, hint: 'Install it first: depl buildinst creates the accessories.', code: 'ACCESSORY_MISSING' };
}

/** A container left paused by a backup that died mid-copy: resumed before anything else (backup and restore). */
export function resumeStep(accessory: string, node: string): Extract<BackupStep, { kind: 'resume-accessory' }> {
  return { kind: 'resume-accessory', describe: `resume ${accessory} on ${node}: an interrupted depl backup left it paused`, accessory, node };
}

export function planBackup(read: BackupRead): BackupPlanned {
  const { accessory } = read;
  const earlier = read.earlierRestore;
  if (earlier !== null) {
    const what = earlier === 'unreadable' ? '' : ` (from ${earlier.file}, by ${earlier.by} at ${earlier.startedAt})`;
    return {
      ok: false, error: 'operation', code: 'RESTORE_INTERRUPTED',
      message: `a restore of ${accessory}${what} did not finish, so its data may be half replaced`,
      hint: earlier === 'unreadable' ? `Run depl restore ${accessory} <file> again.` : `Run \`depl restore ${accessory} ${earlier.file}\` again, or put the data it replaced back: depl restore ${accessory} ${earlier.safetyCopy}.`,
    };
  }
  if (read.place === null) return accessoryMissing(read.app, accessory);
  const { place } = read;
  if (!place.running || place.node === null) {
    return { ok: false, error: 'operation', code: 'ACCESSORY_NOT_RUNNING', message: `accessory ${accessory} has no running task to copy from`, hint: `See \`docker service ps ${accessory}\` on the manager; depl backup copies from a running accessory.` };
  }
  const node = place.node;
  const steps: BackupStep[] = place.paused ? [resumeStep(accessory, node)] : [];
  const notes: string[] = [];
  if (read.kind === 'redis') {
    // a paused Redis cannot be asked (docker exec refuses) until the plan's first step resumed it
    if (read.redis === undefined && !place.paused) throw new Error('planBackup: a Redis backup needs the server\'s settings');
    if (read.redis?.loading) return { ok: false, error: 'operation', code: 'REDIS_LOADING', message: `Redis (${accessory}) is still loading its data`, hint: 'Try again once it has started.' };
    const path = read.redis === undefined ? null : `${read.redis.settings.dir.replace(/\/+$/, '')}/${read.redis.settings.dbfilename}`;
    notes.push(read.redis === undefined ? `${accessory} is Redis: backed up online from a snapshot (BGSAVE)` : `${accessory} is Redis ${read.redis.settings.version}: backed up online from a snapshot (BGSAVE)`);
    steps.push(
      { kind: 'redis-snapshot', describe: `ask ${accessory} for a snapshot (BGSAVE) and wait until it is written`, accessory },
      { kind: 'copy-redis-snapshot', describe: `copy ${path ?? 'the snapshot (where its settings say)'} from ${accessory} on ${node} to ${read.file}`, accessory, node, path, file: read.file },
    );
  } else {
    notes.push(`${accessory} is paused while its volume ${read.volume.name} is copied (the files are what a power cut would leave)`);
    steps.push(
      { kind: 'pause-accessory', describe: `pause ${accessory} on ${node} to copy its volume ${read.volume.name}`, undo: `resume ${accessory}`, accessory, node },
      { kind: 'copy-volume', describe: `copy volume ${read.volume.name} (${read.volume.target}) on ${node} to ${read.file}`, accessory, node, volume: read.volume, file: read.file },
      { ...resumeStep(accessory, node), describe: `resume ${accessory} on ${node}` },
    );
  }
  return { ok: true, plan: { command: backupCommand(accessory), notes, steps, accessory, kind: read.kind, file: read.file } };
}
