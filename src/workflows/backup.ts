import { access, constants, stat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import {
  findAccessory, isPaused, pauseContainer, readArchive, redisCli, runHelper, scaleService, singleFile, unpauseContainer, waitStopped, withHelper, writeArchive,
  type AccessoryPlace,
} from '../apply/accessory-data.js';
import { ensureBackupsDir, openPayload, verifyBackupFile, volumeRootOwner, writeBackupFile, type PayloadFacts } from '../apply/backup-file.js';
import type { Cluster, ClusterNode } from '../apply/cluster.js';
import { nodeEngine, type Engine } from '../apply/docker.js';
import { describeHolder, withLock } from '../apply/lock.js';
import { quote } from '../plan/shell.js';
import { DEFAULT_STATE_ROOT } from '../apply/release-store.js';
import type { Remote } from '../apply/remote.js';
import { listServices, waitForServices } from '../apply/swarm.js';
import type { LoadedConfig } from '../config/load.js';
import type { AccessoryConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';
import {
  accessoryType, accessoryUsers, accessoryVolume, backupKind, backupOutputPath, bgsaveProgress, bgsaveReply, checkManifestFor, defaultBackupFileName, describeUsers,
  FORMAT, FORMAT_VERSION, helperContainerSpec, keyCount, parseConfigGet, parseRedisInfo, parseRestoreJournal, payloadFile, rdbVersion,
  redisPasswordSecret, redisRestoreEntries, redisSettings, restoreJournalPath, volumeArchiveParent,
  type AccessoryVolume, type BackupManifest, type RedisSettings, type RestoreEntry, type RestoreJournal,
} from '../plan/backup.js';
import { LABELS } from '../plan/services.js';
import { onInterrupt } from '../util/interrupt.js';
import type { Logger } from '../util/log.js';
import { pollUntil } from '../util/poll.js';
import { withManagerEngine } from './versions.js';

/**
 * depl backup / depl restore of an accessory's volume (the paths are described in src/plan/backup.ts).
 * Both hold the cluster lock. Restore: check the file (nothing changes when it is wrong) -> lock -> refuse
 * while versions use the accessory (unless forced) -> record the restore on the manager -> stop the
 * accessory -> keep a copy of what it held (.depl/backups/) -> empty the volume -> put the backup in ->
 * start -> wait healthy -> verify. A failure after the copy was taken puts the copy back; a depl that dies
 * midway leaves the record, which the next backup or restore reports.
 */

export interface BackupOptions {
  accessory: string;
  /** Default: `.depl/backups/<app>-<accessory>-<time>.tar` beside depl.yaml (src/plan/backup.ts: backupOutputPath). */
  output?: string;
  lockWaitMs?: number;
  now?: Date;
  cwd?: string;
  /** How long a BGSAVE may take. */
  saveTimeoutMs?: number;
}

export interface BackupResult {
  file: string;
  manifest: BackupManifest;
}

export interface RestoreOptions {
  accessory: string;
  file: string;
  force?: boolean;
  lockWaitMs?: number;
  now?: Date;
  startTimeoutMs?: number;
}

export interface RestoreResult {
  accessory: string;
  file: string;
  /** The copy of what the accessory held before, as a backup file (restorable with depl restore). */
  safetyCopy: string;
  /** Keys after the restore (Redis). */
  keys?: number;
  warnings: string[];
}

interface Target {
  name: string;
  accessory: AccessoryConfig;
  volume: AccessoryVolume;
  type: string;
}

function target(loaded: LoadedConfig, name: string, verb: string): Target {
  const accessory = loaded.config.accessories[name];
  const names = Object.keys(loaded.config.accessories);
  if (accessory === undefined) {
    throw new UserError(`no accessory named "${name}" in ${loaded.file}`, names.length > 0 ? `Accessories: ${names.join(', ')}.` : 'depl.yaml declares no accessories.', 'NO_SUCH_ACCESSORY');
  }
  const volume = accessoryVolume(accessory);
  if (volume === null) {
    throw new UserError(`accessory ${name} has no volume, so there is no data to ${verb}`, `Give it one in depl.yaml (accessories.${name}.volume: "<name>:/path").`, 'ACCESSORY_NO_VOLUME');
  }
  return { name, accessory, volume, type: accessoryType(accessory) };
}

const by = () => `${userInfo().username}@${hostname()}`;
const journalPath = (app: string, accessory: string) => restoreJournalPath(DEFAULT_STATE_ROOT, app, accessory);

async function readJournal(manager: Remote, app: string, accessory: string): Promise<RestoreJournal | null | 'unreadable'> {
  const text = await manager.readFile(journalPath(app, accessory));
  if (text === null) return null;
  return parseRestoreJournal(text) ?? 'unreadable';
}

function lockOptions(loaded: LoadedConfig, command: string, lockWaitMs: number | undefined, log: Logger) {
  return {
    command,
    waitMs: lockWaitMs ?? 0,
    log,
    onWait: (holder: Parameters<typeof describeHolder>[0]) => log.info(`waiting for the cluster lock, held by ${describeHolder(holder)}`),
  };
}

function clusterNode(cluster: Cluster, name: string): ClusterNode {
  const node = cluster.nodes.find((n) => n.name === name);
  if (!node) throw new OperationError(`the accessory's node ${name} is not in this cluster's inventory (have: ${cluster.nodes.map((n) => n.name).join(', ')})`, "Run 'depl node-up' to refresh the inventory.", 'NO_SUCH_NODE');
  return node;
}

async function placed(engine: Engine, loaded: LoadedConfig, t: Target): Promise<AccessoryPlace> {
  const place = await findAccessory(engine, loaded.config.app, t.name);
  if (place === null) {
    throw new OperationError(`accessory ${t.name} is not on this cluster (no service ${t.name} of app ${loaded.config.app})`, 'Install it first: depl buildinst creates the accessories.', 'ACCESSORY_MISSING');
  }
  return place;
}

/** A container left paused by a backup that died mid-copy is resumed before anything else. */
async function resumeIfPaused(engine: Engine, containerId: string, name: string, log: Logger): Promise<void> {
  if (await isPaused(engine, containerId)) {
    log.warn(`accessory ${name} was paused (an interrupted depl backup?); resuming it`);
    await unpauseContainer(engine, containerId);
  }
}

interface RedisConn {
  remote: Remote;
  containerId: string;
  port: number;
  password: string | null;
}

async function redisInfo(conn: RedisConn, section?: string): Promise<Record<string, string>> {
  return parseRedisInfo(await redisCli(conn.remote, conn.containerId, conn.port, conn.password, section === undefined ? ['INFO'] : ['INFO', section]));
}

async function readRedisSettings(conn: RedisConn, volume: AccessoryVolume, log: Logger): Promise<{ settings: RedisSettings; info: Record<string, string> }> {
  const info = await redisInfo(conn);
  let config: Record<string, string> = {};
  try {
    config = parseConfigGet(await redisCli(conn.remote, conn.containerId, conn.port, conn.password, ['CONFIG', 'GET', '*']));
  } catch (error) {
    log.warn(`CONFIG GET is not allowed (${(error as Error).message}); assuming Redis keeps its files in ${volume.target}`);
    config = { dir: volume.target };
  }
  return { settings: redisSettings(info, config), info };
}

/** BGSAVE, then wait (on INFO persistence, not on time) until a save that began after the request has ended. */
async function snapshot(conn: RedisConn, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = await redisInfo(conn, 'persistence');
    const reply = bgsaveReply(await redisCli(conn.remote, conn.containerId, conn.port, conn.password, ['BGSAVE', 'SCHEDULE']));
    if (typeof reply === 'object') throw new OperationError(`Redis refused BGSAVE: ${reply.error}`, undefined, 'REDIS_BGSAVE');
    if (reply === 'busy') {
      log.step('a snapshot is already being written; waiting for it to finish, then asking for one of our own');
      await pollUntil(async () => ((await redisInfo(conn, 'persistence')).rdb_bgsave_in_progress === '0' ? true : undefined), {
        timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 200, onTimeout: () => { throw new OperationError('the running BGSAVE did not finish in time', undefined, 'REDIS_BGSAVE'); },
      });
      continue;
    }
    log.step('BGSAVE: Redis is writing a snapshot');
    const outcome = await pollUntil(async () => {
      const state = bgsaveProgress(before, await redisInfo(conn, 'persistence'));
      return state === 'waiting' ? undefined : state;
    }, {
      timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 200, maxIntervalMs: 2_000,
      onTimeout: () => { throw new OperationError(`Redis's snapshot did not finish within ${Math.round(timeoutMs / 1000)} s`, 'See the accessory\'s log (docker service logs) for the save\'s progress.', 'REDIS_BGSAVE'); },
    });
    if (outcome === 'failed') throw new OperationError('Redis could not write its snapshot (rdb_last_bgsave_status:err)', 'See the accessory\'s log (docker service logs): often a full disk or a volume Redis cannot write.', 'REDIS_BGSAVE');
    return;
  }
}

function checkOutput(file: string): Promise<void> {
  return stat(file).then(
    () => { throw new UserError(`${file} already exists`, 'Choose another --output, or move that file away; a backup never overwrites one.', 'BACKUP_OUTPUT_EXISTS'); },
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw new UserError(`cannot write ${file}: ${error.message}`, undefined, 'BACKUP_OUTPUT');
      await access(path.dirname(file), constants.W_OK).catch(() => {
        throw new UserError(`cannot write ${file}: its folder ${path.dirname(file)} does not exist or is not writable`, 'Choose another --output.', 'BACKUP_OUTPUT');
      });
    },
  );
}

export async function backup(loaded: LoadedConfig, options: BackupOptions, log: Logger): Promise<BackupResult> {
  const t = target(loaded, options.accessory, 'back up');
  const now = options.now ?? new Date();
  if (options.output === undefined) await ensureBackupsDir(loaded.root);
  const file = backupOutputPath({ root: loaded.root, cwd: options.cwd ?? process.cwd(), ...(options.output !== undefined ? { output: options.output } : {}), app: loaded.config.app, accessory: t.name, at: now });
  await checkOutput(file);
  const { app } = loaded.config;
  return withManagerEngine(loaded, log, (cluster, manager) => withLock(cluster.manager, app, lockOptions(loaded, `depl backup ${t.name}`, options.lockWaitMs, log), async () => {
    const journal = await readJournal(cluster.manager, app, t.name);
    if (journal !== null) {
      const what = journal === 'unreadable' ? '' : ` (from ${journal.file}, by ${journal.by} at ${journal.startedAt})`;
      throw new OperationError(`a restore of ${t.name}${what} did not finish, so its data may be half replaced`,
        journal === 'unreadable' ? `Run depl restore ${t.name} <file> again.` : `Run \`depl restore ${t.name} ${journal.file}\` again, or put the data it replaced back: depl restore ${t.name} ${journal.safetyCopy}.`, 'RESTORE_INTERRUPTED');
    }
    const place = await placed(manager, loaded, t);
    if (place.containerId === null || place.node === null) {
      throw new OperationError(`accessory ${t.name} has no running task to copy from`, `See \`docker service ps ${t.name}\` on the manager; depl backup copies from a running accessory.`, 'ACCESSORY_NOT_RUNNING');
    }
    const engine = await nodeEngine(cluster, clusterNode(cluster, place.node));
    try {
      await resumeIfPaused(engine, place.containerId, t.name, log);
      const base = {
        format: FORMAT, formatVersion: FORMAT_VERSION, app, accessory: t.name, type: t.type, image: place.service.image,
        createdAt: now.toISOString(), createdBy: by(), node: place.node, volume: t.volume,
      } as const;
      if (backupKind(t.accessory) === 'redis') {
        const conn: RedisConn = { remote: await cluster.remote(place.node), containerId: place.containerId, port: t.accessory.port ?? 6379, password: redisPasswordSecret(t.accessory) };
        const { settings, info } = await readRedisSettings(conn, t.volume, log);
        if (info.loading === '1') throw new OperationError(`Redis (${t.name}) is still loading its data`, 'Try again once it has started.', 'REDIS_LOADING');
        await snapshot(conn, options.saveTimeoutMs ?? 600_000, log);
        const keys = keyCount(await redisInfo(conn, 'keyspace'));
        const rdbPath = `${settings.dir.replace(/\/+$/, '')}/${settings.dbfilename}`;
        log.step(`copying ${rdbPath} from ${t.name} on ${place.node} (${keys} keys)`);
        const { stream } = await singleFile(await readArchive(engine, place.containerId, rdbPath));
        const manifest = await writeBackupFile(file, payloadFile('redis-rdb'), stream, (facts) => {
          const rdb = rdbVersion(facts.head);
          if (rdb === null) throw new OperationError(`the copied ${rdbPath} is not an RDB file`, undefined, 'BACKUP_PAYLOAD');
          return {
            ...base, payload: { kind: 'redis-rdb', file: payloadFile('redis-rdb'), size: facts.size, sha256: facts.sha256 },
            redis: { version: settings.version, keys, aof: settings.aof, rdbVersion: rdb },
          };
        }, now);
        return { file, manifest };
      }
      // volume: pause every process of the accessory at once, copy, resume
      log.step(`pausing ${t.name} on ${place.node} to copy its volume ${t.volume.name}`);
      const containerId = place.containerId;
      await pauseContainer(engine, containerId);
      const unregister = onInterrupt(() => unpauseContainer(engine, containerId), `resuming accessory ${t.name}`);
      try {
        const manifest = await withHelper(engine, helperContainerSpec(app, t.name, place.service.image, t.volume), async (helper) =>
          writeBackupFile(file, payloadFile('volume-tar'), await readArchive(engine, helper, t.volume.target), (facts) => volumeManifest(base, facts), now));
        return { file, manifest };
      } finally {
        await unpauseContainer(engine, containerId);
        unregister();
        log.step(`${t.name} resumed`);
      }
    } finally {
      await engine.close();
    }
  }));
}

function volumeManifest(base: Omit<BackupManifest, 'payload' | 'redis'>, facts: PayloadFacts): BackupManifest {
  return { ...base, payload: { kind: 'volume-tar', file: payloadFile('volume-tar'), size: facts.size, sha256: facts.sha256 } };
}

/** A tar of the files a Redis restore writes, each file's content streamed from the backup's RDB. */
function redisRestoreArchive(entries: RestoreEntry[], backupFile: string, manifest: BackupManifest, owner: { uid: number; gid: number }, mtime: Date): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  void (async () => {
    for (const entry of entries) {
      const header = { name: entry.name, mode: entry.mode, uid: owner.uid, gid: owner.gid, mtime };
      if (entry.type === 'directory') {
        pack.entry({ ...header, type: 'directory' });
      } else if (entry.content !== undefined && 'text' in entry.content) {
        pack.entry({ ...header, type: 'file' }, entry.content.text);
      } else {
        const rdb = await openPayload(backupFile, manifest.payload.file);
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ ...header, type: 'file', size: manifest.payload.size }, (error) => (error ? reject(error) : resolve()));
          rdb.on('error', reject);
          rdb.pipe(sink);
        });
      }
    }
    pack.finalize();
  })().catch((error: Error) => out.destroy(error));
  return out;
}

export async function checkBackupFor(loaded: LoadedConfig, accessory: string, file: string, log: Logger): Promise<{ manifest: BackupManifest; warnings: string[] }> {
  const t = target(loaded, accessory, 'restore');
  const { manifest, head } = await verifyBackupFile(file);
  const { refusals, warnings } = checkManifestFor(manifest, { app: loaded.config.app, accessory: t.name, type: t.type, volume: t.volume });
  if (manifest.payload.kind === 'redis-rdb' && rdbVersion(head) === null) refusals.push('its dump.rdb is not an RDB file');
  if (refusals.length > 0) {
    throw new UserError(`${file} cannot be restored into ${t.name}: ${refusals.join('; ')}`, 'Nothing was changed. Pick a backup of this kind of accessory (manifest.json in the file says what it holds).', 'BACKUP_WRONG_TYPE');
  }
  for (const warning of warnings) log.warn(warning);
  return { manifest, warnings };
}

export async function restore(loaded: LoadedConfig, options: RestoreOptions, log: Logger): Promise<RestoreResult> {
  const t = target(loaded, options.accessory, 'restore');
  const file = path.resolve(options.file);
  const { manifest, warnings } = await checkBackupFor(loaded, t.name, file, log);
  const { app } = loaded.config;
  const now = options.now ?? new Date();
  return withManagerEngine(loaded, log, (cluster, manager) => withLock(cluster.manager, app, lockOptions(loaded, `depl restore ${t.name}`, options.lockWaitMs, log), async (lock) => {
    // the restore journal is written and cleared only while this run still holds the lock
    const journalStore = lock.fenced(cluster.manager);
    const earlier = await readJournal(cluster.manager, app, t.name);
    if (earlier !== null) log.warn(`an earlier restore of ${t.name} did not finish${earlier === 'unreadable' ? '' : ` (from ${earlier.file}; what it replaced is in ${earlier.safetyCopy})`}; this restore replaces its leftovers`);
    const place = await placed(manager, loaded, t);
    const users = accessoryUsers(await listServices(manager, { [LABELS.app]: app }));
    if (users.length > 0 && !options.force) {
      throw new UserError(`accessory ${t.name} is in use by version${users.length === 1 ? '' : 's'} ${describeUsers(users)}; they would read and write it while its data is replaced`,
        `Nothing was changed. Remove them (depl prune) or scale them to 0 first, or pass --force to restore under them (they lose ${t.name} for a moment and then see the restored data).`, 'ACCESSORY_IN_USE');
    }
    if (users.length > 0) log.warn(`--force: restoring under version(s) ${describeUsers(users)}`);
    const node = place.node ?? (t.accessory.node === 'manager' ? cluster.managerNode.name : t.accessory.node);
    const engine = await nodeEngine(cluster, clusterNode(cluster, node));
    const password = redisPasswordSecret(t.accessory);
    const port = t.accessory.port ?? 6379;
    try {
      if (place.containerId !== null) await resumeIfPaused(engine, place.containerId, t.name, log);
      let entries: RestoreEntry[] | undefined;
      if (manifest.payload.kind === 'redis-rdb') {
        // from the Redis it restores into; one that does not run or answer (broken data?) is assumed to be as it was
        const containerId = place.containerId;
        const live = containerId === null ? null : await readRedisSettings({ remote: await cluster.remote(node), containerId, port, password }, t.volume, log)
          .then((r) => r.settings, (error: Error) => {
            log.warn(`${t.name} does not answer (${error.message})`);
            return null;
          });
        let settings: RedisSettings;
        if (live !== null) {
          settings = live;
        } else {
          log.warn(`assuming ${t.name} has the settings it had when the backup was made (Redis ${manifest.redis?.version ?? '?'}, AOF ${manifest.redis?.aof ? 'on' : 'off'}, files in ${t.volume.target})`);
          settings = redisSettings({ redis_version: manifest.redis?.version ?? '7.0.0' }, { dir: t.volume.target, appendonly: manifest.redis?.aof ? 'yes' : 'no' });
        }
        const planned = redisRestoreEntries(settings, t.volume.target);
        if ('error' in planned) throw new OperationError(`cannot restore ${t.name}: ${planned.error}`, undefined, 'RESTORE_LAYOUT');
        entries = planned;
      }
      const backups = await ensureBackupsDir(loaded.root);
      const safetyCopy = await freeName(path.join(backups, defaultBackupFileName(app, t.name, now).replace(/\.tar$/, '-before-restore')), '.tar');
      const image = place.service.image;
      const helper = helperContainerSpec(app, t.name, image, t.volume);
      await journalStore.writeFileAtomic(journalPath(app, t.name), JSON.stringify({ accessory: t.name, file, safetyCopy, startedAt: now.toISOString(), by: by() } satisfies RestoreJournal) + '\n', 0o600);

      const start = async () => {
        const before = new Set((await findAccessory(manager, app, t.name))?.taskIds ?? []);
        await scaleService(manager, t.name, 1);
        await waitForServices(manager, [{ name: t.name, replicas: 1 }], { timeoutMs: options.startTimeoutMs ?? 180_000, ignoreTasks: before, stableMs: 1_000 }, log);
      };
      log.step(`stopping ${t.name}`);
      await scaleService(manager, t.name, 0);
      let copied = false;
      try {
        await waitStopped(manager, t.name, 120_000);
        log.step(`keeping a copy of what ${t.name} held: ${safetyCopy}`);
        const base = { format: FORMAT, formatVersion: FORMAT_VERSION, app, accessory: t.name, type: t.type, image, createdAt: now.toISOString(), createdBy: by(), node, volume: t.volume } as const;
        await withHelper(engine, helper, async (id) =>
          writeBackupFile(safetyCopy, payloadFile('volume-tar'), await readArchive(engine, id, t.volume.target), (facts) => volumeManifest(base, facts), now));
        copied = true;
        await replaceVolume(engine, helper, t.volume, async () => {
          if (entries === undefined) return { path: volumeArchiveParent(t.volume.target), archive: await openPayload(file, manifest.payload.file) };
          const owner = await volumeRootOwner(safetyCopy, payloadFile('volume-tar'));
          return { path: t.volume.target, archive: redisRestoreArchive(entries, file, manifest, owner, now) };
        }, `restoring ${path.basename(file)} into ${t.volume.name} on ${node}`, log);
        log.step(`starting ${t.name}`);
        await start();
        let keys: number | undefined;
        if (entries !== undefined) keys = await verifyRedis(manager, cluster, loaded, t, password, port, manifest, options.startTimeoutMs ?? 180_000);
        await journalStore.shell(`rm -f ${quote(journalPath(app, t.name))}`);
        return { accessory: t.name, file, safetyCopy, ...(keys !== undefined ? { keys } : {}), warnings };
      } catch (error) {
        log.warn(`restore of ${t.name} failed: ${(error as Error).message}`);
        if (copied) {
          log.warn(`putting back what ${t.name} held (${safetyCopy})`);
          try {
            await scaleService(manager, t.name, 0);
            await waitStopped(manager, t.name, 120_000);
            await replaceVolume(engine, helper, t.volume, async () => ({ path: volumeArchiveParent(t.volume.target), archive: await openPayload(safetyCopy, payloadFile('volume-tar')) }), 'putting the previous data back', log);
            await start();
            await journalStore.shell(`rm -f ${quote(journalPath(app, t.name))}`);
          } catch (undoError) {
            throw new OperationError(`restore of ${t.name} failed (${(error as Error).message}), and putting its previous data back failed too: ${(undoError as Error).message}`,
              `Its previous data is in ${safetyCopy}: depl restore ${t.name} ${safetyCopy} --force.`, 'RESTORE_UNDO_FAILED', { cause: error });
          }
        } else {
          await start().catch((startError: Error) => log.warn(`could not start ${t.name} again: ${startError.message}`));
          await journalStore.shell(`rm -f ${quote(journalPath(app, t.name))}`).catch(() => undefined);
        }
        throw error;
      }
    } finally {
      await engine.close();
    }
  }));
}

/** `<base>.tar`, or `<base>-2.tar`... when taken (two restores within a second). */
async function freeName(base: string, ext: string): Promise<string> {
  for (let n = 1; ; n += 1) {
    const candidate = `${base}${n === 1 ? '' : `-${n}`}${ext}`;
    if (!(await stat(candidate).then(() => true, () => false))) return candidate;
  }
}

/** Empties the volume (the helper runs `find -delete`) and extracts the archive into it. */
async function replaceVolume(engine: Engine, helper: ReturnType<typeof helperContainerSpec>, volume: AccessoryVolume, content: () => Promise<{ path: string; archive: Readable }>, what: string, log: Logger): Promise<void> {
  await withHelper(engine, helper, async (id) => {
    log.step(`emptying volume ${volume.name}`);
    await runHelper(engine, id, `emptying volume ${volume.name}`);
    log.step(what);
    const { path: at, archive } = await content();
    await writeArchive(engine, id, at, archive);
  });
}

/** Redis answers and has loaded its data; with a backup of keys, there must be keys. */
async function verifyRedis(manager: Engine, cluster: Cluster, loaded: LoadedConfig, t: Target, password: string | null, port: number, manifest: BackupManifest, timeoutMs: number): Promise<number> {
  const place = await placed(manager, loaded, t);
  if (place.containerId === null || place.node === null) throw new OperationError(`${t.name} has no running task after the restore`, undefined, 'RESTORE_VERIFY');
  const conn: RedisConn = { remote: await cluster.remote(place.node), containerId: place.containerId, port, password };
  const info = await pollUntil(async () => {
    try {
      const fields = await redisInfo(conn);
      return fields.loading === '0' ? fields : undefined;
    } catch {
      return undefined;
    }
  }, { timeoutMs, intervalMs: 300, onTimeout: () => { throw new OperationError(`${t.name} did not answer (or kept loading) after the restore`, `See docker service logs ${t.name}.`, 'RESTORE_VERIFY'); } });
  const keys = keyCount(info);
  const expected = manifest.redis?.keys ?? 0;
  if (expected > 0 && keys === 0) {
    throw new OperationError(`${t.name} started with no keys, but the backup was made with ${expected}`, 'The data did not load: see docker service logs for what Redis said about its files.', 'RESTORE_VERIFY');
  }
  return keys;
}
