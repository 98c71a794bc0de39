import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ensureBackupsDir, verifyBackupFile } from '../apply/backup-file.js';
import type { BackupObjects } from '../apply/hibernation-objects.js';
import { clearHibernationRecord, hibernationRecordPath, readRecordCopies, saveHibernationRecord, shareHibernationRecord } from '../apply/hibernation-record.js';
import { inventoryPath, writeFileAtomicLocal, DEPL_FILE_MODE } from '../apply/inventory.js';
import { withFileLock } from '../apply/local/file-lock.js';
import type { StackServers } from '../apply/providers/types.js';
import { DEFAULT_STATE_ROOT, readReleaseDocument, releaseDocumentPath } from '../apply/release-store.js';
import { requestThroughEdge } from '../apply/edge/site.js';
import { OperationError, UserError } from '../errors.js';
import { checkManifestFor, keyCount, type BackupManifest } from '../plan/backup.js';
import { chooseRecord, type ChosenRecord } from '../plan/hibernation-copies.js';
import {
  hasFailed, INSTANCE_WORDS, INVENTORY_OBJECT, isAtRest, isRunning, objectNameOf, planHibernate, type BackupStore, planWake, type CloudServer, type HibernatePlan, type HibernateStep, type HibernationRecord, type WakePlan, type WakeStep,
} from '../plan/hibernation.js';
import { BACKUPS_FOLDER, DEPL_FOLDER } from '../plan/operator-files.js';
import type { Logger } from '../util/log.js';
import { pollUntil } from '../util/poll.js';
import { redisInfo } from './accessory-redis.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';
import { backupAccessory, throwRefusal, type AccessoryTarget } from './backup.js';
import type { AccessoryData, ClusterPort, SwarmNodes } from './cluster-port.js';
import { withPortLock } from './lock-session.js';
import { restoreAccessory } from './restore.js';

/**
 * depl hibernate and depl wake: read (the record in .depl/, Nova's instances) -> plan (src/plan/hibernation.ts)
 * -> apply that plan. The cluster is reached only by the steps that need it, through a port opened when the
 * step runs (its nodes are down for part of the way). One run at a time on this machine (a lock in .depl/);
 * each accessory's backup and restore takes the cluster's own lock as `depl backup` and `restore` do.
 */

/** The cluster as hibernate and wake use it: its manager's files, the accessories' data, the swarm's nodes, the edge. */
export type HibernationPort = ClusterPort & { accessoryData: AccessoryData; nodes: SwarmNodes };

export interface HibernationTarget {
  app: string;
  domain: string;
  /** depl.yaml's folder: the record, the backups and the release document's copy go under its .depl/. */
  root: string;
  servers: StackServers;
  /** The accessories of depl.yaml that have a volume. */
  accessories: AccessoryTarget[];
  /**
   * Opens the cluster (fails while its manager cannot be reached); `edge`: with the edge's address, for the
   * health checks (else its files only). The caller closes it.
   */
  openPort(mode: 'files' | 'edge'): Promise<{ port: HibernationPort; close(): Promise<void> }>;
  /** The cloud's object store (Swift, when the Keystone catalog has one): hibernate uploads its backups there too, wake fetches missing ones. */
  objects?: BackupObjects;
  log: Logger;
  by: string;
  now?: () => Date;
  /** Pause between two looks at the instances, the swarm or the edge (default 5 s). */
  pollMs?: number;
  timeouts?: Partial<{ shelveMs: number; activeMs: number; swarmMs: number; healthyMs: number }>;
}

export interface HibernationRun {
  dryRun?: boolean;
  afterStep?: ApplyPlanOptions['afterStep'];
}

const DEFAULT_TIMEOUTS = { shelveMs: 20 * 60_000, activeMs: 20 * 60_000, swarmMs: 10 * 60_000, healthyMs: 5 * 60_000 };

const lockDir = (target: Pick<HibernationTarget, 'root'>) => path.join(target.root, DEPL_FOLDER, 'hibernation.lock');
const exists = (file: string) => stat(file).then(() => true, () => false);
const isInside = (root: string, file: string) => !path.relative(path.resolve(root), path.resolve(file)).startsWith('..');
const stamp = (at: Date) => at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

/**
 * The record to plan from: this machine's copy, or Swift's (another machine's hibernate), chosen by
 * src/plan/hibernation-copies.ts, whose notes (a disagreement, the copy's source) are logged.
 */
async function readRecord(target: HibernationTarget): Promise<ChosenRecord> {
  const chosen = chooseRecord(await readRecordCopies(target, target.objects));
  if (!chosen.ok) throwRefusal(chosen);
  for (const note of chosen.notes) target.log.warn(note);
  return chosen;
}

/** Runs fn with this machine's hibernation lock held (a dry run takes none). */
function locked<T>(target: HibernationTarget, what: string, run: HibernationRun, fn: () => Promise<T>): Promise<T> {
  return run.dryRun === true ? fn() : withFileLock(lockDir(target), what, target.log, fn);
}

/** The cluster port of the steps that need it, opened at the first and closed before the instances go down. */
class PortSession {
  private opened: { port: HibernationPort; close(): Promise<void> } | undefined;
  constructor(private readonly target: HibernationTarget) {}
  async port(): Promise<HibernationPort> {
    this.opened ??= await this.target.openPort('files');
    return this.opened.port;
  }
  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    await opened?.close().catch((error: Error) => this.target.log.debug(`closing the cluster's connections: ${error.message}`));
  }
}

// ---- hibernate ----

export interface HibernateResult {
  plan: HibernatePlan;
  record: HibernationRecord | null;
  dryRun: boolean;
}

export async function hibernate(target: HibernationTarget, run: HibernationRun = {}): Promise<HibernateResult> {
  return locked(target, 'depl hibernate', run, async () => {
    const now = (target.now ?? (() => new Date()))();
    const chosen = await readRecord(target);
    const { record } = chosen;
    const servers = await target.servers.list();
    const present = { backups: {} as Record<string, boolean>, releaseCopy: false };
    if (record !== null && record !== 'unreadable') {
      present.releaseCopy = record.releaseCopy !== null && (await exists(record.releaseCopy));
      for (const [accessory, file] of Object.entries(record.backups)) present.backups[accessory] = await verifyBackupFile(file).then(() => true, () => false);
    }
    const folder = (name: string) => path.join(target.root, BACKUPS_FOLDER, name);
    const objects = target.objects;
    const store: BackupStore = objects === undefined
      ? { kind: 'folder', folder: path.join(target.root, BACKUPS_FOLDER) }
      : { kind: 'swift', folder: path.join(target.root, BACKUPS_FOLDER), container: objects.container, endpoint: objects.endpoint };
    const uploaded: Record<string, boolean> = {};
    if (objects !== undefined && record !== null && record !== 'unreadable') {
      for (const [file, stored] of Object.entries(record.swift?.objects ?? {})) uploaded[file] = await objects.has(stored.object, stored.md5);
    }
    const planned = planHibernate({
      app: target.app, record, recordFile: hibernationRecordPath(target), servers,
      accessories: target.accessories.map((a) => a.name),
      present,
      files: {
        backups: Object.fromEntries(target.accessories.map((a) => [a.name, folder(`${target.app}-${a.name}-hibernate-${stamp(now)}.tar`)])),
        releaseCopy: folder(`${target.app}-release-hibernate-${stamp(now)}.json`),
      },
      now: now.toISOString(), by: target.by,
      waitTimeoutMs: target.timeouts?.shelveMs ?? DEFAULT_TIMEOUTS.shelveMs,
      instances: target.servers.instances,
      store, uploaded,
      copies: { localCurrent: chosen.localCurrent, cloudCurrent: chosen.cloudCurrent, cloudGone: chosen.cloudGone },
      ...((await exists(inventoryPath(target))) ? { inventoryFile: inventoryPath(target) } : {}),
    });
    if (!planned.ok) throwRefusal(planned);
    const { plan } = planned;
    if (run.dryRun) return { plan, record: record === 'unreadable' ? null : record, dryRun: true };
    for (const note of plan.notes) target.log.info(note);
    const session = new PortSession(target);
    let current = record === 'unreadable' ? null : record;
    const update = async (change: (r: HibernationRecord) => HibernationRecord) => {
      if (current === null) throw new Error('hibernate: the record is written by the plan\'s first step');
      current = change(current);
      await saveHibernationRecord(target, objects, current);
    };
    try {
      await applyPlan(plan, {
        run: async (step: HibernateStep) => {
          switch (step.kind) {
            case 'record-hibernation':
              current = step.record;
              await saveHibernationRecord(target, objects, current);
              return;
            case 'keep-release-state': {
              const port = await session.port();
              const doc = await readReleaseDocument(port.stateRemote, target.app, port.stateRoot ?? DEFAULT_STATE_ROOT);
              await writeFileAtomicLocal(step.file, `${JSON.stringify(doc, null, 2)}\n`, DEPL_FILE_MODE);
              await update((r) => ({ ...r, releaseCopy: step.file, live: doc.live }));
              return;
            }
            case 'backup-accessory': {
              const accessory = target.accessories.find((a) => a.name === step.accessory)!;
              await ensureBackupsDir(target.root);
              await backupAccessory(await session.port(), accessory, { file: step.file, now });
              await update((r) => ({ ...r, backups: { ...r.backups, [step.accessory]: step.file } }));
              return;
            }
            case 'upload-backup': {
              const md5 = await objects!.upload(step.file, step.object);
              await update((r) => ({
                ...r,
                swift: { container: step.container, endpoint: objects!.endpoint, objects: { ...r.swift?.objects, [step.file]: { object: step.object, md5 } } },
              }));
              return;
            }
            case 'share-record':
              if (current === null) throw new Error('hibernate: the record is written by the plan\'s first step');
              if (step.inventory !== null && current.swift !== undefined) {
                const md5 = await objects!.upload(step.inventory, INVENTORY_OBJECT);
                current = { ...current, swift: { ...current.swift, inventory: { object: INVENTORY_OBJECT, md5 } } };
              }
              current = await shareHibernationRecord(target, objects, current);
              return;
            case 'shelve-server':
              // the manager goes down with the instances: its connection is closed first
              await session.close();
              await target.servers.shelve({ id: step.server, name: step.name });
              return;
            case 'wait-shelved':
              await waitForServers(target, step.servers, step.timeoutMs, 'rest', (s) => isAtRest(s, target.servers.instances));
              return;
            case 'complete-hibernation':
              await update((r) => ({ ...r, complete: true }));
              return;
          }
        },
      }, { log: target.log, ...(run.afterStep !== undefined ? { afterStep: run.afterStep } : {}) });
    } finally {
      await session.close();
    }
    return { plan, record: current, dryRun: false };
  });
}

/** Until every one of the servers is in the wanted state with no task under way; a failed state (Nova's ERROR, a dead container) ends the wait. */
async function waitForServers(target: HibernationTarget, ids: string[], timeoutMs: number, goal: 'rest' | 'running', done: (s: CloudServer) => boolean): Promise<void> {
  const kind = target.servers.instances;
  const words = INSTANCE_WORDS[kind];
  const wanted = goal === 'rest' ? words.restState : words.running;
  let last: CloudServer[] = [];
  await pollUntil(async () => {
    last = (await target.servers.list()).filter((s) => ids.includes(s.id));
    const failed = last.filter((s) => hasFailed(s, kind));
    if (failed.length > 0) {
      throw new OperationError(`${failed.map((s) => s.name).join(', ')} went to ${words.failed} on the way to ${wanted}`, `See ${words.look} (and its fault or logs); once it is fixed, run the command again.`, 'SERVER_STATE');
    }
    return last.length === ids.length && last.every((s) => done(s) && s.taskState === null) ? true : undefined;
  }, {
    timeoutMs, intervalMs: target.pollMs ?? 5_000,
    onTimeout: () => {
      const waiting = last.filter((s) => !done(s) || s.taskState !== null).map((s) => `${s.name} ${s.status}${s.taskState ? ` (${s.taskState})` : ''}`);
      throw new OperationError(`${words.instances}s not ${wanted} after ${Math.round(timeoutMs / 1000)} s: ${waiting.join(', ') || 'some are no longer listed'}`,
        `See ${words.look}; run the command again to keep waiting.`, goal === 'rest' ? 'HIBERNATE_TIMEOUT' : 'WAKE_TIMEOUT');
    },
  });
}

// ---- wake ----

export interface WakeResult {
  plan: WakePlan;
  /** What was restored from the hibernate backups (accessories whose data was gone, the release document). */
  restored: string[];
  dryRun: boolean;
}

export async function wake(target: HibernationTarget, run: HibernationRun = {}): Promise<WakeResult> {
  return locked(target, 'depl wake', run, async () => {
    const now = (target.now ?? (() => new Date()))();
    const { record } = await readRecord(target);
    const timeouts = { ...DEFAULT_TIMEOUTS, ...target.timeouts };
    const local: Record<string, { file: string; present: boolean }> = {};
    if (record !== null && record !== 'unreadable') {
      for (const file of [...(record.releaseCopy !== null ? [record.releaseCopy] : []), ...Object.values(record.backups)]) {
        // another operator's machine has the record (from Swift, or copied with the project) but not the files at
        // its paths: only this project's own folder is looked in, never the other machine's path
        const here = path.join(target.root, BACKUPS_FOLDER, objectNameOf(file));
        local[file] = isInside(target.root, file) && (await exists(file)) ? { file, present: true } : { file: here, present: await exists(here) };
      }
    }
    const planned = planWake({
      app: target.app, domain: target.domain, record, recordFile: hibernationRecordPath(target), servers: await target.servers.list(), now: now.toISOString(),
      timeouts: { activeMs: timeouts.activeMs, swarmMs: timeouts.swarmMs, healthyMs: timeouts.healthyMs },
      instances: target.servers.instances,
      local,
      inventory: { file: inventoryPath(target), present: await exists(inventoryPath(target)) },
    });
    if (!planned.ok) throwRefusal(planned);
    const { plan } = planned;
    const restored: string[] = [];
    if (run.dryRun) return { plan, restored, dryRun: true };
    for (const note of plan.notes) target.log.info(note);
    const session = new PortSession(target);
    try {
      await applyPlan(plan, {
        run: async (step: WakeStep) => {
          switch (step.kind) {
            case 'fetch-backup':
              if (target.objects === undefined || target.objects.container !== step.container) {
                throw new OperationError(`the hibernate backups are in the Swift container ${step.container}, which depl cannot reach: this cloud's catalog has no object store${target.objects !== undefined ? ` (or it is ${target.objects.container})` : ''}`,
                  `Copy ${step.object} from the machine that ran depl hibernate to ${step.file}, then run depl wake again. Nothing was changed.`, 'WAKE_BACKUP_MISSING');
              }
              await ensureBackupsDir(target.root);
              await target.objects.download(step.object, step.md5, step.file);
              target.log.step(`${step.object} downloaded from Swift (MD5 checked)`);
              return;
            case 'record-wake': await saveHibernationRecord(target, target.objects, step.record); return;
            case 'unshelve-server': await target.servers.unshelve({ id: step.server, name: step.name }); return;
            case 'wait-active': await waitForServers(target, step.servers, step.timeoutMs, 'running', (s) => isRunning(s, target.servers.instances)); return;
            case 'wait-swarm': await waitForSwarm(target, session, step.timeoutMs); return;
            case 'restore-release-state':
              if (await restoreReleaseDocument(target, await session.port(), step.file)) restored.push('the release document');
              return;
            case 'restore-accessory':
              if (await restoreIfMissing(target, await session.port(), step.accessory, step.file, now, timeouts.healthyMs)) restored.push(step.accessory);
              return;
            case 'wait-live': await waitForLive(target, step); return;
            case 'clear-record': await clearHibernationRecord(target, target.objects, record === 'unreadable' ? null : record); return;
          }
        },
      }, { log: target.log, ...(run.afterStep !== undefined ? { afterStep: run.afterStep } : {}) });
    } finally {
      await session.close();
    }
    return { plan, restored, dryRun: false };
  });
}

/** Until the manager answers and lists as many nodes as there are instances, every one Ready. */
async function waitForSwarm(target: HibernationTarget, session: PortSession, timeoutMs: number): Promise<void> {
  const expected = (await target.servers.list()).length;
  let last = 'the manager does not answer yet';
  await pollUntil(async () => {
    try {
      const nodes = await (await session.port()).nodes.list();
      const notReady = nodes.filter((n) => n.state.toLowerCase() !== 'ready');
      if (nodes.length >= expected && notReady.length === 0) return true;
      last = notReady.length > 0 ? `${notReady.map((n) => `${n.name} ${n.state}`).join(', ')}` : `${nodes.length} of ${expected} nodes listed`;
    } catch (error) {
      // a manager still booting: its SSH or Docker is not up yet, so the next look opens the port again
      last = `the manager does not answer yet (${(error as Error).message})`;
      await session.close();
    }
    target.log.debug(`swarm not whole yet: ${last}`);
    return undefined;
  }, {
    timeoutMs, intervalMs: target.pollMs ?? 5_000,
    onTimeout: () => {
      throw new OperationError(`the swarm is not whole after ${Math.round(timeoutMs / 1000)} s: ${last}`, 'See docker node ls on the manager; run depl wake again to keep waiting (it goes on from here).', 'WAKE_TIMEOUT');
    },
  });
}

/** The manager lost its release document (it should not: shelving keeps the disk): the copy goes back, under the cluster's lock. */
async function restoreReleaseDocument(target: HibernationTarget, port: HibernationPort, file: string): Promise<boolean> {
  const where = releaseDocumentPath(target.app, port.stateRoot ?? DEFAULT_STATE_ROOT);
  if ((await port.stateRemote.readFile(where)) !== null) return false;
  const copy = await readFile(file, 'utf8').catch((error: Error) => {
    throw new OperationError(`the manager has no release document, and its copy ${file} cannot be read: ${error.message}`, 'Put the copy back in place and run depl wake again.', 'WAKE_RELEASE_COPY');
  });
  await withPortLock(port, 'depl wake', async (lock) => {
    target.log.warn(`the manager has no release document: putting back the copy kept by depl hibernate (${file})`);
    await lock.fenced(port.stateRemote).writeFileAtomic(where, copy, 0o644);
  });
  return true;
}

/**
 * The accessory runs again; when its data is gone (Redis with no keys where the backup had some, a volume with
 * no files) it is restored from the hibernate backup. Returns whether it was.
 */
async function restoreIfMissing(target: HibernationTarget, port: HibernationPort, name: string, file: string, now: Date, timeoutMs: number): Promise<boolean> {
  const accessory = target.accessories.find((a) => a.name === name);
  if (accessory === undefined) {
    target.log.warn(`${name} was backed up by depl hibernate but is no longer an accessory with a volume in depl.yaml: not checked (its backup: ${file})`);
    return false;
  }
  const { manifest } = await verifyBackupFile(file);
  const { refusals, warnings } = checkManifestFor(manifest, { app: target.app, accessory: name, type: accessory.type, volume: accessory.volume });
  if (refusals.length > 0) throw new UserError(`${file} cannot be restored into ${name}: ${refusals.join('; ')}`, 'Nothing was changed. Put the hibernate backup back, or remove it from .depl/hibernation.json.', 'BACKUP_WRONG_TYPE');
  const data = port.accessoryData;
  const place = await pollUntil(async () => {
    const found = await data.place(name);
    if (found === null) {
      throw new OperationError(`accessory ${name} is not on the swarm any more, so its data cannot be checked`, `Run depl buildinst to create it, then depl restore ${name} ${file}.`, 'WAKE_ACCESSORY');
    }
    return found.running && !found.paused && found.node !== null ? found : undefined;
  }, {
    timeoutMs, intervalMs: target.pollMs ?? 5_000,
    onTimeout: () => { throw new OperationError(`accessory ${name} has no running task after the wake`, `See docker service ps ${name}; run depl wake again once it runs.`, 'WAKE_TIMEOUT'); },
  });
  const missing = await dataMissing(target, data, name, place.node!, manifest, timeoutMs);
  if (missing === null) {
    target.log.step(`${name} holds its data: nothing to restore`);
    return false;
  }
  target.log.warn(`${name} ${missing}: restoring it from ${file}`);
  await restoreAccessory(port, accessory, { file, manifest, warnings, force: true, now, root: target.root, pinnedNode: place.node! });
  return true;
}

/** Why the accessory's data is gone, or null when it is there. */
async function dataMissing(target: HibernationTarget, data: AccessoryData, name: string, node: string, manifest: BackupManifest, timeoutMs: number): Promise<string | null> {
  if (manifest.payload.kind === 'redis-rdb') {
    // a Redis that is still loading its files has not said how many keys it holds
    const info = await pollUntil(async () => {
      const fields = await redisInfo(data, name).catch(() => undefined);
      return fields !== undefined && fields.loading !== '1' ? fields : undefined;
    }, { timeoutMs, intervalMs: target.pollMs ?? 5_000, onTimeout: () => { throw new OperationError(`${name} does not answer after the wake`, `See docker service logs ${name}.`, 'WAKE_TIMEOUT'); } });
    // INFO's default sections include the keyspace
    const keys = keyCount(info);
    const backedUp = manifest.redis?.keys ?? 0;
    return keys === 0 && backedUp > 0 ? `holds no keys (the hibernate backup has ${backedUp})` : null;
  }
  const files = await data.withVolume(name, node, async (volume) => countFiles(await volume.read()));
  return files === 0 ? `has an empty volume (${manifest.volume.name})` : null;
}

/** Files (not folders) in a tar stream. */
async function countFiles(archive: NodeJS.ReadableStream): Promise<number> {
  let files = 0;
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    if (header.type !== 'directory') files += 1;
    stream.on('end', () => next());
    stream.resume();
  });
  await pipeline(archive, extract);
  return files;
}

/** Until the live version answers its health path with 200 from itself at each host, through the edge. */
async function waitForLive(target: HibernationTarget, step: Extract<WakeStep, { kind: 'wait-live' }>): Promise<void> {
  let last = 'the edge does not answer yet';
  let opened: { port: HibernationPort; close(): Promise<void> } | undefined;
  try {
    await pollUntil(async () => {
      try {
        opened ??= await target.openPort('edge');
        const { port } = opened;
        const doc = await readReleaseDocument(port.stateRemote, target.app, port.stateRoot ?? DEFAULT_STATE_ROOT);
        if (doc.live !== step.version) {
          throw new OperationError(`the live version is now ${doc.live ?? '(none)'}, not ${step.version} as when depl hibernate ran`, 'Someone changed it since; see depl status, and depl switch if that was not meant.', 'WAKE_LIVE_CHANGED');
        }
        for (const host of step.hosts) {
          const answer = await requestThroughEdge(port.site, host, port.healthPath, 5_000);
          if (answer.status !== 200 || answer.version !== step.version) {
            last = `http://${host}${port.healthPath} answered ${answer.status} from ${answer.version ?? 'no version'}`;
            return undefined;
          }
        }
        return true;
      } catch (error) {
        if (error instanceof OperationError && error.code === 'WAKE_LIVE_CHANGED') throw error;
        last = (error as Error).message;
        await opened?.close().catch(() => undefined);
        opened = undefined;
        return undefined;
      }
    }, {
      timeoutMs: step.timeoutMs, intervalMs: target.pollMs ?? 5_000,
      onTimeout: () => {
        throw new OperationError(`version ${step.version} is not healthy after ${Math.round(step.timeoutMs / 1000)} s: ${last}`, `See depl status and docker service ps ${target.app}-${step.version}-<service>; run depl wake again to keep waiting.`, 'WAKE_TIMEOUT');
      },
    });
  } finally {
    await opened?.close().catch(() => undefined);
  }
}
