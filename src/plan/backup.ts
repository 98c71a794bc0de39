import path from 'node:path';
import * as z from 'zod';
import type { AccessoryConfig } from '../config/schema.js';
import { LABELS, parseVolume } from './services.js';
import { appVolumeName } from './names.js';
import { BACKUPS_FOLDER } from './operator-files.js';
import { secretPath } from './secrets.js';
import type { Argv } from './shell.js';

/**
 * `depl backup` / `depl restore` of an accessory's volume, as data: which path a kind of accessory takes,
 * the commands run inside its container, the backup file's manifest and its checks, the files a Redis
 * restore writes, the helper container that reads and writes the volume, and who uses the accessory.
 *
 * Two kinds:
 * - `redis`: online. BGSAVE makes Redis write a point-in-time snapshot (fork + copy-on-write, written to a
 *   temporary file and renamed), so the RDB copied afterwards is consistent while clients keep writing. That
 *   holds with AOF on too: the AOF directory is appended to while it would be copied, the RDB is not.
 *   Restore writes the RDB where the server loads it from: dump.rdb, and with AOF on the AOF's base file
 *   and manifest (Redis >= 7), or the single appendonly file (an RDB-preamble AOF, Redis < 7); a Redis
 *   with AOF on and no AOF starts EMPTY, whatever dump.rdb holds.
 * - `volume` (anything else, e.g. PostgreSQL): stop-the-world. The container is paused (the cgroup freezer
 *   stops every process at once, so the files are what a power cut at that instant would leave, which a
 *   database with a write-ahead log recovers from), the volume is copied, and it is resumed.
 */

export type BackupKind = 'redis' | 'volume';
export type PayloadKind = 'redis-rdb' | 'volume-tar';

export const MANIFEST_NAME = 'manifest.json';
export const FORMAT = 'depl-backup';
export const FORMAT_VERSION = 1;

/** `redis`, `redis:7`, `docker.io/library/redis:7.2@sha256:...` -> `redis`; `depl-test/postgres:abc` -> `postgres`. */
export function imageRepositoryName(image: string): string {
  const withoutDigest = image.split('@')[0]!;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const last = withoutDigest.slice(lastSlash + 1);
  const colon = last.indexOf(':');
  return (colon >= 0 ? last.slice(0, colon) : last).toLowerCase();
}

/**
 * What the accessory is, for refusing a file made from another kind of accessory: `redis`, else the image's
 * repository name as written in depl.yaml (`postgres:16` -> `postgres`), which survives `images:` mapping.
 */
export function accessoryType(accessory: Pick<AccessoryConfig, 'image' | 'backup'>): string {
  if (accessory.backup?.kind === 'redis') return 'redis';
  return imageRepositoryName(accessory.image);
}

export function backupKind(accessory: Pick<AccessoryConfig, 'image' | 'backup'>): BackupKind {
  if (accessory.backup?.kind !== undefined) return accessory.backup.kind;
  return ['redis', 'valkey'].includes(imageRepositoryName(accessory.image)) ? 'redis' : 'volume';
}

/**
 * The secret holding Redis's password (`requirepass`): `backup.passwordSecret`, else the accessory's only
 * secret, else the one whose name says password; null when it has none (Redis without a password).
 */
export function redisPasswordSecret(accessory: Pick<AccessoryConfig, 'secrets' | 'backup'>): string | null {
  if (accessory.backup?.passwordSecret !== undefined) return accessory.backup.passwordSecret;
  if (accessory.secrets.length === 1) return accessory.secrets[0]!;
  return accessory.secrets.find((s) => /pass/.test(s)) ?? null;
}

export interface AccessoryVolume {
  /** The named volume, on the node the accessory is pinned to. */
  name: string;
  /** Where it is mounted in the container. */
  target: string;
}

/** depl.yaml's volume of an accessory: its name there and where it is mounted. */
export function accessoryVolume(accessory: Pick<AccessoryConfig, 'volume'>): AccessoryVolume | null {
  if (accessory.volume === undefined) return null;
  const { source, target } = parseVolume(accessory.volume);
  return { name: source, target: target.replace(/\/+$/, '') || '/' };
}

/**
 * The accessory's volume on the cluster: the one its service mounts (`mounted`: app-scoped, or the unscoped name an
 * app deployed before volume names were app-scoped keeps), else the app-scoped name a new install gives it.
 */
export function accessoryVolumeOnCluster(app: string, volume: AccessoryVolume, mounted: string | undefined): AccessoryVolume {
  return { ...volume, name: mounted ?? appVolumeName(app, volume.name) };
}

/**
 * redis-cli in the accessory's container, on its node. The password is read from the swarm secret's file
 * inside the container into REDISCLI_AUTH (redis-cli's own variable), so it is on no command line.
 */
export function redisCliCommand(containerId: string, port: number, passwordSecret: string | null, args: readonly string[]): Argv {
  const script = 'f=$1; p=$2; shift 2; if [ -n "$f" ]; then REDISCLI_AUTH=$(cat "$f") || exit 1; export REDISCLI_AUTH; fi; exec redis-cli -p "$p" "$@"';
  return ['docker', 'exec', containerId, 'sh', '-c', script, 'redis-cli', passwordSecret === null ? '' : secretPath(passwordSecret), String(port), ...args];
}

/** `INFO` text -> field map (`# Section` lines and blanks skipped). */
export function parseRedisInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

/** Keys in all databases, from `INFO keyspace` (`db0:keys=3,expires=0,avg_ttl=0`). */
export function keyCount(info: Record<string, string>): number {
  let total = 0;
  for (const [field, value] of Object.entries(info)) {
    if (!/^db\d+$/.test(field)) continue;
    const match = /(?:^|,)keys=(\d+)/.exec(value);
    if (match) total += Number(match[1]);
  }
  return total;
}

/** An error reply of redis-cli (it exits 0 on them): `ERR ...`, `NOAUTH ...`, `WRONGPASS ...`. */
export function redisError(output: string): string | null {
  const line = (output.trim().split('\n')[0] ?? '').replace(/^\(error\) /, '');
  return /^(ERR|NOAUTH|WRONGPASS|NOPERM|LOADING|BUSY|MISCONF|READONLY|WRONGTYPE)\b/.test(line) ? line : null;
}

/** Where Redis keeps its files, from `CONFIG GET` pairs (one per line: name, value, name, value...). */
export interface RedisSettings {
  version: string;
  /** Absolute directory of dump.rdb and appendonlydir. */
  dir: string;
  dbfilename: string;
  aof: boolean;
  appendfilename: string;
  /** Redis >= 7 keeps a multi-part AOF in this folder under `dir`. */
  appenddirname: string;
}

export function parseConfigGet(text: string): Record<string, string> {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  const pairs: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) pairs[lines[i]!] = lines[i + 1]!;
  return pairs;
}

export function redisSettings(info: Record<string, string>, config: Record<string, string>): RedisSettings {
  return {
    version: info.redis_version ?? 'unknown',
    dir: config.dir ?? '/data',
    dbfilename: config.dbfilename ?? 'dump.rdb',
    aof: (config.appendonly ?? (info.aof_enabled === '1' ? 'yes' : 'no')) === 'yes',
    appendfilename: config.appendfilename ?? 'appendonly.aof',
    appenddirname: config.appenddirname ?? 'appendonlydir',
  };
}

export function majorVersion(version: string): number {
  const major = Number(version.split('.')[0]);
  return Number.isFinite(major) ? major : 0;
}

/**
 * Where the snapshot stands after asking for one: `done` once a save that started after the request has
 * finished (`rdb_saves` counts them, Redis >= 7; before that `rdb_last_save_time` moves), `failed` when it
 * ended badly, else `waiting`.
 */
export function bgsaveProgress(before: Record<string, string>, now: Record<string, string>): 'done' | 'failed' | 'waiting' {
  if (now.rdb_bgsave_in_progress !== '0') return 'waiting';
  const finished = before.rdb_saves !== undefined && now.rdb_saves !== undefined
    ? Number(now.rdb_saves) > Number(before.rdb_saves)
    : now.rdb_last_save_time !== before.rdb_last_save_time;
  if (!finished) return now.rdb_last_bgsave_status === 'err' && now.rdb_last_bgsave_status !== before.rdb_last_bgsave_status ? 'failed' : 'waiting';
  return now.rdb_last_bgsave_status === 'ok' ? 'done' : 'failed';
}

/** BGSAVE's answer: started or scheduled (after a running AOF rewrite), or another save is running (ask again after it). */
export function bgsaveReply(reply: string): 'started' | 'busy' | { error: string } {
  const text = reply.trim();
  if (/^Background saving (started|scheduled)/i.test(text)) return 'started';
  if (/already in progress/i.test(text)) return 'busy';
  return { error: text || '(no answer)' };
}

/** `REDIS0010...` -> 10; null when the bytes are not an RDB file. */
export function rdbVersion(header: Uint8Array): number | null {
  if (header.length < 9) return null;
  const text = String.fromCharCode(...header.subarray(0, 9));
  const match = /^REDIS(\d{4})$/.exec(text);
  return match ? Number(match[1]) : null;
}

const manifestSchema = z.object({
  format: z.literal(FORMAT),
  formatVersion: z.literal(FORMAT_VERSION),
  app: z.string(),
  accessory: z.string(),
  /** `redis`, or the image's repository name (`postgres`): a file restores only into the same type. */
  type: z.string().min(1),
  image: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
  node: z.string(),
  volume: z.object({ name: z.string(), target: z.string().startsWith('/') }),
  payload: z.object({
    kind: z.enum(['redis-rdb', 'volume-tar']),
    file: z.string().regex(/^[a-z][a-z0-9.-]*$/),
    size: z.number().int().min(0),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  redis: z.object({ version: z.string(), keys: z.number().int().min(0), aof: z.boolean(), rdbVersion: z.number().int() }).optional(),
});

export type BackupManifest = z.infer<typeof manifestSchema>;

export function parseManifest(text: string): { ok: true; manifest: BackupManifest } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: `${MANIFEST_NAME} is not JSON` };
  }
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return { ok: false, problem: `${MANIFEST_NAME}: ${issue.path.join('.') || '(document)'}: ${issue.message}` };
  }
  return { ok: true, manifest: result.data };
}

export function renderManifest(manifest: BackupManifest): string {
  return JSON.stringify(manifest, null, 2) + '\n';
}

/** The payload's file name inside the backup file. */
export function payloadFile(kind: PayloadKind): string {
  return kind === 'redis-rdb' ? 'dump.rdb' : 'volume.tar';
}

/**
 * Where `depl backup` writes: `--output` as given (against the working folder), else `.depl/backups/` beside
 * depl.yaml, the operator's own folder (0700): a backup holds the accessory's data, and nothing there is
 * committed or sent to an image builder.
 */
export function backupOutputPath(options: { root: string; cwd: string; output?: string; app: string; accessory: string; at: Date }): string {
  if (options.output !== undefined) return path.resolve(options.cwd, options.output);
  return path.resolve(options.root, BACKUPS_FOLDER, defaultBackupFileName(options.app, options.accessory, options.at));
}

/** `crawler-redis-20261130-031500.tar`: sorts by time, one per second. */
export function defaultBackupFileName(app: string, accessory: string, at: Date): string {
  const stamp = at.toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-');
  return `${app}-${accessory}-${stamp}.tar`;
}

export interface RestoreTarget {
  app: string;
  accessory: string;
  type: string;
  volume: AccessoryVolume;
}

/**
 * Whether a (checksum-verified) backup can go into this accessory: refusals for another type or a payload
 * this path cannot place; warnings for another app or accessory name (restoring production data into a
 * staging app is legitimate).
 */
export function checkManifestFor(manifest: BackupManifest, target: RestoreTarget): { refusals: string[]; warnings: string[] } {
  const refusals: string[] = [];
  const warnings: string[] = [];
  if (manifest.type !== target.type) {
    refusals.push(`the file holds a ${manifest.type} accessory's data (${manifest.app}/${manifest.accessory}, image ${manifest.image}); ${target.accessory} is a ${target.type} accessory`);
  }
  if (manifest.payload.kind === 'redis-rdb' && target.type !== 'redis') refusals.push('the file holds a Redis snapshot (RDB)');
  if (manifest.payload.kind === 'redis-rdb' && manifest.payload.file !== 'dump.rdb') refusals.push(`a Redis snapshot is named dump.rdb, not ${manifest.payload.file}`);
  if (manifest.payload.kind === 'volume-tar' && basename(manifest.volume.target) !== basename(target.volume.target)) {
    refusals.push(`the file holds a copy of a volume mounted at ${manifest.volume.target}; ${target.accessory}'s is mounted at ${target.volume.target} (the last path element must match)`);
  }
  if (manifest.app !== target.app) warnings.push(`the file was made from app ${manifest.app}, not ${target.app}`);
  if (manifest.accessory !== target.accessory) warnings.push(`the file was made from accessory ${manifest.accessory}, not ${target.accessory}`);
  return { refusals, warnings };
}

function basename(p: string): string {
  const parts = p.split('/').filter((s) => s.length > 0);
  return parts.at(-1) ?? '';
}

function dirname(p: string): string {
  const parts = p.split('/').filter((s) => s.length > 0);
  return '/' + parts.slice(0, -1).join('/');
}

/** A volume copy (Docker's archive of the mount point: `<basename>/...`) goes back in at the mount point's parent. */
export function volumeArchiveParent(target: string): string {
  return dirname(target);
}

/** One entry of the archive a Redis restore puts into the volume, relative to the volume's mount point. */
export interface RestoreEntry {
  name: string;
  type: 'directory' | 'file';
  mode: number;
  /** For files: the RDB itself, or a small text. */
  content?: { rdb: true } | { text: string };
}

/**
 * What a Redis restore writes under the volume, for the settings of the Redis it restores into: the RDB as
 * dump.rdb (loaded when AOF is off), and with AOF on the files Redis loads instead: a one-part AOF whose base
 * is the RDB (Redis >= 7: `<appenddirname>/<appendfilename>.1.base.rdb` and its manifest), or the RDB as the
 * appendonly file itself (Redis < 7 reads an AOF that starts with an RDB preamble).
 */
export function redisRestoreEntries(settings: RedisSettings, volumeTarget: string): RestoreEntry[] | { error: string } {
  const target = volumeTarget.replace(/\/+$/, '');
  const dir = settings.dir.replace(/\/+$/, '');
  if (dir !== target && !dir.startsWith(`${target}/`)) {
    return { error: `Redis keeps its files in ${settings.dir}, which is not on the volume mounted at ${volumeTarget}` };
  }
  const prefix = dir === target ? '' : `${dir.slice(target.length + 1)}/`;
  const entries: RestoreEntry[] = [];
  if (prefix !== '') {
    const parts = prefix.split('/').filter(Boolean);
    parts.forEach((_, i) => entries.push({ name: parts.slice(0, i + 1).join('/'), type: 'directory', mode: 0o755 }));
  }
  entries.push({ name: `${prefix}${settings.dbfilename}`, type: 'file', mode: 0o644, content: { rdb: true } });
  if (settings.aof) {
    if (majorVersion(settings.version) >= 7) {
      const base = `${settings.appendfilename}.1.base.rdb`;
      entries.push({ name: `${prefix}${settings.appenddirname}`, type: 'directory', mode: 0o755 });
      entries.push({ name: `${prefix}${settings.appenddirname}/${base}`, type: 'file', mode: 0o644, content: { rdb: true } });
      entries.push({ name: `${prefix}${settings.appenddirname}/${settings.appendfilename}.manifest`, type: 'file', mode: 0o644, content: { text: `file ${base} seq 1 type b\n` } });
    } else {
      entries.push({ name: `${prefix}${settings.appendfilename}`, type: 'file', mode: 0o644, content: { rdb: true } });
    }
  }
  return entries;
}

/** A service of the app as listed by the swarm, as far as "who uses the accessory" needs it. */
export interface AppService {
  name: string;
  labels: Record<string, string>;
  replicas: number;
}

/**
 * Installed versions with at least one replica wanted: they share every accessory of the app (one overlay
 * network, one config document), so they would read and write it while it is replaced.
 */
export function accessoryUsers(services: readonly AppService[]): { version: string; services: string[] }[] {
  const byVersion = new Map<string, string[]>();
  for (const svc of services) {
    const version = svc.labels[LABELS.version];
    if (version === undefined || svc.labels[LABELS.accessory] !== undefined || svc.replicas === 0) continue;
    byVersion.set(version, [...(byVersion.get(version) ?? []), svc.name]);
  }
  return [...byVersion.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([version, names]) => ({ version, services: names.sort() }));
}

export function describeUsers(users: { version: string; services: string[] }[]): string {
  return users.map((u) => `${u.version} (${u.services.join(', ')})`).join('; ');
}

/**
 * The helper container that reads and writes the volume on the accessory's node: the accessory's own image
 * (the node has it), never started to read or write (Docker's archive API mounts the volume for the copy),
 * started only to empty the volume before a restore, as root and without a network.
 */
export interface HelperContainerSpec {
  Image: string;
  Entrypoint: string[];
  Cmd: string[];
  User: string;
  Labels: Record<string, string>;
  NetworkDisabled: boolean;
  HostConfig: { Mounts: { Type: 'volume'; Source: string; Target: string }[]; NetworkMode: 'none' };
}

export function helperContainerSpec(app: string, accessory: string, image: string, volume: AccessoryVolume): HelperContainerSpec {
  return {
    Image: image,
    // `find` is in every image with a shell (Debian, Alpine's busybox): empties the mount point, keeps it
    Entrypoint: ['find'],
    Cmd: [volume.target, '-xdev', '-mindepth', '1', '-delete'],
    User: '0',
    Labels: { [LABELS.app]: app, [LABELS.accessory]: accessory, 'depl.helper': 'backup' },
    NetworkDisabled: true,
    HostConfig: { Mounts: [{ Type: 'volume', Source: volume.name, Target: volume.target }], NetworkMode: 'none' },
  };
}

/** The record of a restore in progress, on the manager: a depl that dies mid-restore leaves it for the next run. */
export function restoreJournalPath(root: string, app: string, accessory: string): string {
  return `${root}/${app}/accessories/${accessory}.restore.json`;
}

export const restoreJournalSchema = z.object({
  accessory: z.string(),
  file: z.string(),
  safetyCopy: z.string(),
  startedAt: z.string(),
  by: z.string(),
});
export type RestoreJournal = z.infer<typeof restoreJournalSchema>;

export function parseRestoreJournal(text: string): RestoreJournal | null {
  try {
    const result = restoreJournalSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : null;
  } catch {
    return null;
  }
}
