import type { ErrorCode } from '../error-codes.js';
import type { ChangePlan } from './change-plan.js';
import type { PlanRefusal } from './backup-plan.js';

/**
 * `depl hibernate` and `depl wake` as plans, from the hibernation record in the operator's folder and the
 * instances as their provider reports them (Nova's servers, or the local provider's node containers).
 * Hibernate: record that the deployment hibernates -> keep the release document and a backup of every
 * accessory with data in the operator's folder -> shelve every instance (a shelved instance burns no Service
 * Units; a node container is stopped) -> wait until all are at rest -> mark the record complete.
 * Wake: mark the record waking -> unshelve (start) -> wait until they run and every swarm node is Ready -> put
 * back what is missing (an accessory whose data is gone, from the hibernate backup; the release document,
 * from its copy) -> wait until the live version answers healthy on its hostnames -> remove the record.
 *
 * Each step is safe to run again and each plan is made from what is there now, so a run killed after any
 * step is finished by the next run of the same command: what was done is not planned again.
 */

/** One instance of the cluster as its provider lists it: a Nova server, or a local node container. */
export interface CloudServer {
  id: string;
  name: string;
  /**
   * Nova's status (ACTIVE, SHUTOFF, SHELVED, SHELVED_OFFLOADED, BUILD, ERROR...), or a node container's Docker
   * state (running, exited, created, paused, restarting, dead).
   */
  status: string;
  /** Nova's OS-EXT-STS:task_state (`shelving`, `unshelving`...): null when no action is under way (always, for containers). */
  taskState: string | null;
}

/**
 * What the instances are: Nova servers, put to rest by shelving (a shelved instance burns no SUs), or the
 * local provider's node containers, put to rest by stopping them (their /var/lib/docker volume is kept). The
 * plan's steps are the same for both (`shelve-server` is Nova's word for "put to rest"); what differs is
 * which states mean "at rest" and "running", and the words people read.
 */
export type InstanceKind = 'nova' | 'node-containers';

interface InstanceWords {
  /** States of an instance at rest. */
  atRest: ReadonlySet<string>;
  /** The state of a running instance. */
  running: string;
  /** States it can be put to rest from (the provider's preconditions). */
  canRest: ReadonlySet<string>;
  /** A state it will not leave by itself. */
  failed: string;
  rest: string;
  wake: string;
  restState: string;
  keeps: string;
  instances: string;
  /** Where an operator looks at them. */
  look: string;
}

export const INSTANCE_WORDS: Record<InstanceKind, InstanceWords> = {
  nova: {
    atRest: new Set(['SHELVED', 'SHELVED_OFFLOADED']), running: 'ACTIVE', canRest: new Set(['ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED']), failed: 'ERROR',
    rest: 'shelve', wake: 'unshelve', restState: 'SHELVED or SHELVED_OFFLOADED', keeps: 'a shelved instance burns no SUs, its disk is kept',
    instances: 'instance', look: 'openstack server list',
  },
  'node-containers': {
    atRest: new Set(['exited', 'created']), running: 'running', canRest: new Set(['running', 'paused', 'restarting']), failed: 'dead',
    rest: 'stop', wake: 'start', restState: 'stopped (exited)', keeps: 'its /var/lib/docker volume, with the swarm and the accessories\' data, is kept',
    instances: 'node container', look: 'docker ps -a',
  },
};

export const isAtRest = (server: Pick<CloudServer, 'status'>, kind: InstanceKind = 'nova') => INSTANCE_WORDS[kind].atRest.has(server.status);
export const isRunning = (server: Pick<CloudServer, 'status'>, kind: InstanceKind = 'nova') => server.status === INSTANCE_WORDS[kind].running;
export const hasFailed = (server: Pick<CloudServer, 'status'>, kind: InstanceKind = 'nova') => server.status === INSTANCE_WORDS[kind].failed;

/**
 * Where hibernate keeps its backups. Always the operator's folder (`.depl/backups/`); with the openstack provider
 * and an object store in the Keystone catalog, ALSO a private Swift container of the cluster's own, so the
 * backups outlive this machine and another operator's depl wake can fetch them.
 */
export type BackupStore =
  | { kind: 'folder'; folder: string }
  | { kind: 'swift'; folder: string; container: string; endpoint: string };

/** A backup uploaded to Swift: its object and the MD5 Swift confirmed (its ETag). */
export interface StoredBackup {
  object: string;
  md5: string;
}

/** The hibernation record (`.depl/hibernation.json`): the one place that says the deployment hibernates. */
export interface HibernationRecord {
  app: string;
  /** `hibernating`: hibernate began (`complete` once every instance is shelved); `waking`: a wake began. */
  phase: 'hibernating' | 'waking';
  /** When hibernate began (ISO time): what `depl status` shows as "hibernating since". */
  since: string;
  by: string;
  complete: boolean;
  /** The live version when hibernate kept the release document (what wake brings back); null: none was live. */
  live: string | null;
  /** The copy of the release document in the operator's folder; null until it is kept. */
  releaseCopy: string | null;
  /** Accessory -> its hibernate backup (a `depl backup` file), once written. */
  backups: Record<string, string>;
  /** When the wake began, while waking. */
  wakeStartedAt?: string;
  /** What was put to rest; absent: Nova servers (records written before the local provider could hibernate). */
  instances?: InstanceKind;
  /**
   * The Swift container the backups were uploaded to, and each uploaded file (by its path in this record) -> its
   * object. `recordShared`: this record has a copy in the container too (HIBERNATION_RECORD_OBJECT), written after
   * the backups and before any instance is put to rest; from then on every change is written to both copies.
   */
  swift?: { container: string; endpoint: string; objects: Record<string, StoredBackup>; recordShared?: boolean; inventory?: StoredBackup };
}

export const HIBERNATION_RECORD = 'hibernation.json';
/** The record's copy in the backups' Swift container: where another operator's depl wake and status find it. */
export const HIBERNATION_RECORD_OBJECT = 'hibernation.json';

export function parseHibernationRecord(text: string): HibernationRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const r = value as Partial<HibernationRecord> | null;
  if (r === null || typeof r !== 'object') return null;
  if (typeof r.app !== 'string' || (r.phase !== 'hibernating' && r.phase !== 'waking') || typeof r.since !== 'string' || typeof r.by !== 'string') return null;
  if (typeof r.complete !== 'boolean' || (r.live !== null && typeof r.live !== 'string') || (r.releaseCopy !== null && typeof r.releaseCopy !== 'string')) return null;
  if (r.backups === null || typeof r.backups !== 'object' || Object.values(r.backups).some((f) => typeof f !== 'string')) return null;
  if (r.instances !== undefined && !(r.instances in INSTANCE_WORDS)) return null;
  if (r.swift !== undefined && !validSwift(r.swift)) return null;
  return r as HibernationRecord;
}

function validSwift(swift: unknown): boolean {
  const s = swift as Partial<NonNullable<HibernationRecord['swift']>> | null;
  if (s === null || typeof s !== 'object' || typeof s.container !== 'string' || typeof s.endpoint !== 'string') return false;
  if (s.objects === null || typeof s.objects !== 'object' || (s.recordShared !== undefined && typeof s.recordShared !== 'boolean')) return false;
  if (s.inventory !== undefined && !validStored(s.inventory)) return false;
  return Object.values(s.objects).every(validStored);
}

const validStored = (o: unknown) => o !== null && typeof o === 'object' && typeof (o as StoredBackup).object === 'string' && /^[0-9a-f]{32}$/.test((o as StoredBackup).md5);

/** The inventory's object beside the record: another machine's wake needs the nodes' addresses to reach them. */
export const INVENTORY_OBJECT = 'inventory.json';

export function renderHibernationRecord(record: HibernationRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/** The line `depl status` (and a no-op hibernate) shows. */
export function describeHibernation(record: HibernationRecord): string {
  if (record.phase === 'waking') return `waking since ${record.wakeStartedAt ?? record.since} (hibernating since ${record.since}); a wake that is not running any more is finished by depl wake`;
  if (!record.complete) return `hibernating since ${record.since} (by ${record.by}), but depl hibernate did not finish: run depl hibernate again to finish it, or depl wake`;
  const resting = record.instances === 'node-containers' ? 'every node container is stopped' : 'every instance is shelved and burns no SUs';
  return `hibernating since ${record.since} (by ${record.by}): ${resting}; live version ${record.live ?? '(none)'}; depl wake brings it back`;
}

// ---- hibernate ----

export interface HibernateRead {
  app: string;
  record: HibernationRecord | null | 'unreadable';
  /** The record file (for messages). */
  recordFile: string;
  servers: CloudServer[];
  /** The accessories of depl.yaml that have a volume, in order. */
  accessories: string[];
  /** The recorded backups and release copy that are still there and readable. */
  present: { backups: Record<string, boolean>; releaseCopy: boolean };
  /** Where a new backup of each accessory goes, and the release document's copy (free names in .depl/). */
  files: { backups: Record<string, string>; releaseCopy: string };
  /** Where the backups go (default: the operator's folder only). */
  store?: BackupStore;
  /** With Swift: the recorded uploads whose object Swift still holds with the recorded MD5 (by file). */
  uploaded?: Record<string, boolean>;
  /**
   * With Swift: whether each copy of the record is the record planned from (src/plan/hibernation-copies.ts), and
   * whether a wake removed Swift's copy. Unset: both current.
   */
  copies?: { localCurrent: boolean; cloudCurrent: boolean; cloudGone: boolean };
  /** The inventory (.depl/inventory.json) when this machine has one: shared in Swift with the record. */
  inventoryFile?: string;
  now: string;
  by: string;
  waitTimeoutMs: number;
  /** What the instances are (default: Nova servers). */
  instances?: InstanceKind;
}

export type HibernateStep =
  | { kind: 'record-hibernation'; describe: string; record: HibernationRecord }
  | { kind: 'keep-release-state'; describe: string; file: string }
  | { kind: 'backup-accessory'; describe: string; accessory: string; file: string }
  | { kind: 'upload-backup'; describe: string; file: string; container: string; object: string }
  | { kind: 'share-record'; describe: string; container: string; object: string; inventory: string | null }
  | { kind: 'shelve-server'; describe: string; server: string; name: string }
  | { kind: 'wait-shelved'; describe: string; servers: string[]; timeoutMs: number }
  | { kind: 'complete-hibernation'; describe: string };

export type HibernatePlan = ChangePlan<HibernateStep>;
export type HibernatePlanned = { ok: true; plan: HibernatePlan } | PlanRefusal;

const refuse = (error: 'user' | 'operation', code: ErrorCode, message: string, hint?: string): PlanRefusal => ({ ok: false, error, code, message, ...(hint !== undefined ? { hint } : {}) });

function unreadable(recordFile: string, kind: InstanceKind): PlanRefusal {
  const words = INSTANCE_WORDS[kind];
  return refuse('operation', 'HIBERNATION_RECORD_UNREADABLE', `${recordFile} cannot be read as a hibernation record`,
    `Look at it: if the ${words.instances}s are all ${words.running} (${words.look}), the deployment is awake and the file can be removed.`);
}

function noServers(app: string, kind: InstanceKind): PlanRefusal {
  const where = kind === 'nova' ? 'on the cloud (no Heat stack, or it lists no servers)' : 'on this machine (no node containers)';
  return refuse('user', 'HIBERNATE_NO_SERVERS', `app ${app} has no ${INSTANCE_WORDS[kind].instances}s ${where}`, 'Run depl node-up first.');
}

/** Instances the provider cannot put to rest or wake now (ERROR, BUILD, RESIZE..., a dead container): refused, naming each. */
function stuck(servers: CloudServer[], verb: string, kind: InstanceKind): PlanRefusal {
  const words = INSTANCE_WORDS[kind];
  return refuse('operation', 'SERVER_STATE', `cannot ${verb}: ${servers.map((s) => `${s.name} is ${s.status}${s.taskState ? ` (${s.taskState})` : ''}`).join(', ')}`,
    `See ${words.look}; once the ${words.instances} is ${words.running} or ${words.restState} again, run the command again.`);
}

export function planHibernate(read: HibernateRead): HibernatePlanned {
  const { record, servers } = read;
  const kind = read.instances ?? 'nova';
  const words = INSTANCE_WORDS[kind];
  const store: BackupStore = read.store ?? { kind: 'folder', folder: '.depl/backups' };
  const atRest = (s: CloudServer) => isAtRest(s, kind);
  if (record === 'unreadable') return unreadable(read.recordFile, kind);
  if (record !== null && record.phase === 'waking') {
    return refuse('user', 'WAKE_INTERRUPTED', `a depl wake began at ${record.wakeStartedAt ?? '?'} and did not finish`,
      'Run depl wake to finish it (it puts back what is missing), then depl hibernate.');
  }
  if (servers.length === 0) return noServers(read.app, kind);
  if (record !== null && read.copies?.cloudGone === true) {
    return refuse('user', 'HIBERNATION_RECORD_STALE', `${read.recordFile} says ${read.app} hibernates since ${record.since}, but Swift's copy of the record is gone: a depl wake removed it (on another machine, or here, stopped before it removed this one)`,
      'Run depl wake first: it confirms the deployment is awake (or finishes waking it) and removes this record; then depl hibernate backs up the data as it is now.');
  }
  const command = 'depl hibernate';
  const shelved = servers.filter(atRest);
  const share = (r: HibernationRecord | null): Array<Extract<HibernateStep, { kind: 'share-record' }>> => {
    if (store.kind !== 'swift') return [];
    const copies = read.copies ?? { localCurrent: true, cloudCurrent: true, cloudGone: false };
    if (r?.swift?.recordShared === true && copies.localCurrent && copies.cloudCurrent) return [];
    const inventory = read.inventoryFile ?? null;
    return [{
      kind: 'share-record', container: store.container, object: HIBERNATION_RECORD_OBJECT, inventory,
      describe: `write the hibernation record to Swift as ${store.container}/${HIBERNATION_RECORD_OBJECT}${inventory !== null ? ` with the inventory (${INVENTORY_OBJECT})` : ''} (MD5 checked), and to ${read.recordFile}: another operator's depl status and wake find it there`,
    }];
  };
  if (record !== null && record.complete && shelved.length === servers.length) {
    // a run stopped between writing this machine's copy and Swift's: the copy behind is written again
    return { ok: true, plan: { command, notes: [`already ${describeHibernation(record)}`], steps: share(record) } };
  }
  if (record === null && shelved.length > 0) {
    return refuse('user', 'HIBERNATE_PARTLY_SHELVED', `${words.instances}${shelved.length === 1 ? '' : 's'} ${shelved.map((s) => s.name).join(', ')} ${shelved.length === 1 ? 'is' : 'are'} ${words.restState}, but depl did not hibernate this deployment, so nothing of it was backed up`,
      `Run depl wake to bring every ${words.instances} back, then depl hibernate.`);
  }
  const busy = servers.filter((s) => !atRest(s) && s.taskState === null && !words.canRest.has(s.status));
  if (busy.length > 0) return stuck(busy, words.rest, kind);

  const notes: string[] = [];
  const steps: HibernateStep[] = [];
  const since = record?.since ?? read.now;
  if (record === null) {
    steps.push({
      kind: 'record-hibernation', describe: `record in ${read.recordFile} that ${read.app} hibernates since ${since} (status and wake read it while the nodes are down)`,
      record: {
        app: read.app, phase: 'hibernating', since, by: read.by, complete: false, live: null, releaseCopy: null, backups: {},
        ...(kind === 'nova' ? {} : { instances: kind }),
        ...(store.kind === 'swift' ? { swift: { container: store.container, endpoint: store.endpoint, objects: {} } } : {}),
      },
    });
  } else {
    notes.push(`an earlier depl hibernate (since ${record.since}, by ${record.by}) did not finish: this run finishes it`);
  }
  const keep: Array<Extract<HibernateStep, { kind: 'keep-release-state' | 'backup-accessory' }>> = [];
  if (record?.releaseCopy == null || !read.present.releaseCopy) {
    keep.push({ kind: 'keep-release-state', describe: `copy the release document (live version, history) from the manager to ${read.files.releaseCopy}`, file: read.files.releaseCopy });
  }
  for (const accessory of read.accessories) {
    const done = record?.backups[accessory];
    if (done !== undefined && read.present.backups[accessory] === true) {
      notes.push(`${accessory} was backed up to ${done}`);
      continue;
    }
    const file = read.files.backups[accessory]!;
    keep.push({ kind: 'backup-accessory', describe: `back up ${accessory} to ${file} (depl backup ${accessory})`, accessory, file });
  }
  if (keep.length > 0 && shelved.length > 0) {
    // the cluster is already partly down: what is not kept yet cannot be read from it any more
    return refuse('operation', 'HIBERNATE_CANNOT_BACK_UP', `${keep.map((s) => (s.kind === 'backup-accessory' ? `the backup of ${s.accessory}` : 'the copy of the release document')).join(' and ')} is missing, and ${shelved.map((s) => s.name).join(', ')} ${shelved.length === 1 ? 'is' : 'are'} already ${words.restState}`,
      `Run depl wake (the data is still on the ${words.instances}s' disks), then depl hibernate again.`);
  }
  steps.push(...keep);
  notes.push(store.kind === 'swift'
    ? `the backups go to ${store.folder} and to the private Swift container ${store.container} (${store.endpoint}), where another operator's depl wake finds them`
    : `the backups go to ${store.folder} (no object store in the cloud's catalog${kind === 'nova' ? '' : ': the local provider keeps them on this machine'})`);
  if (store.kind === 'swift') {
    // every kept file, new or from an earlier run, that Swift does not hold yet with its recorded MD5
    const kept = [
      ...keep.map((k) => k.file),
      ...(record?.releaseCopy != null && read.present.releaseCopy ? [record.releaseCopy] : []),
      ...read.accessories.flatMap((a) => (record?.backups[a] !== undefined && read.present.backups[a] === true ? [record.backups[a]] : [])),
    ];
    for (const file of kept) {
      if (read.uploaded?.[file] === true) continue;
      const object = objectNameOf(file);
      steps.push({ kind: 'upload-backup', describe: `upload ${file} to Swift as ${store.container}/${object} (MD5 checked)`, file, container: store.container, object });
    }
    // after the backups it names are in Swift, before anything is put to rest
    steps.push(...share(record));
  }
  for (const server of servers) {
    if (atRest(server)) continue;
    if (server.taskState !== null) {
      notes.push(`${server.name} is ${server.status} (${server.taskState}): waited for, not asked again`);
      continue;
    }
    steps.push({ kind: 'shelve-server', describe: `${words.rest} ${server.name} (${server.status}; ${words.keeps})`, server: server.id, name: server.name });
  }
  steps.push(
    { kind: 'wait-shelved', describe: `wait until every ${words.instances} (${servers.map((s) => s.name).join(', ')}) is ${words.restState}`, servers: servers.map((s) => s.id), timeoutMs: read.waitTimeoutMs },
    { kind: 'complete-hibernation', describe: `mark the hibernation complete in ${read.recordFile}` },
  );
  return { ok: true, plan: { command, notes, steps } };
}

/** The object a backup file is stored as: its file name (they are unique per app and time in .depl/backups/). */
export function objectNameOf(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}

/** The Swift container of a cluster's hibernate backups: private (no ACL), named after its stack. */
export function backupContainerName(stack: string): string {
  return `${stack}-depl-backups`;
}

// ---- wake ----

export interface WakeRead {
  app: string;
  domain: string;
  record: HibernationRecord | null | 'unreadable';
  recordFile: string;
  servers: CloudServer[];
  now: string;
  timeouts: { activeMs: number; swarmMs: number; healthyMs: number };
  /** What the instances are (default: Nova servers). */
  instances?: InstanceKind;
  /**
   * Each file the record names (release copy, backups) -> where it is on this machine, or would go (another
   * operator's machine has none of them at the recorded paths). Unlisted: at the recorded path, present.
   */
  local?: Record<string, { file: string; present: boolean }>;
  /** This machine's inventory: fetched from Swift when it has none and the record shared one. */
  inventory?: { file: string; present: boolean };
}

export type WakeStep =
  | { kind: 'fetch-backup'; describe: string; container: string; object: string; md5: string; file: string }
  | { kind: 'record-wake'; describe: string; record: HibernationRecord }
  | { kind: 'unshelve-server'; describe: string; server: string; name: string }
  | { kind: 'wait-active'; describe: string; servers: string[]; timeoutMs: number }
  | { kind: 'wait-swarm'; describe: string; timeoutMs: number }
  | { kind: 'restore-release-state'; describe: string; file: string }
  | { kind: 'restore-accessory'; describe: string; accessory: string; file: string }
  | { kind: 'wait-live'; describe: string; version: string; hosts: string[]; timeoutMs: number }
  | { kind: 'clear-record'; describe: string };

export type WakePlan = ChangePlan<WakeStep>;
export type WakePlanned = { ok: true; plan: WakePlan } | PlanRefusal;

export function planWake(read: WakeRead): WakePlanned {
  const { record, servers } = read;
  const command = 'depl wake';
  const kind = read.instances ?? 'nova';
  const words = INSTANCE_WORDS[kind];
  if (record === 'unreadable') return unreadable(read.recordFile, kind);
  if (servers.length === 0) return noServers(read.app, kind);
  const shelved = servers.filter((s) => isAtRest(s, kind));
  if (record === null && shelved.length === 0) {
    return { ok: true, plan: { command, notes: [`${read.app} is awake: every ${words.instances} runs (${servers.map((s) => `${s.name} ${s.status}`).join(', ')}), and it is not hibernating`], steps: [] } };
  }
  const busy = servers.filter((s) => s.taskState === null && !isAtRest(s, kind) && !isRunning(s, kind));
  if (busy.length > 0) return stuck(busy, 'wake', kind);
  const notes: string[] = [];
  const steps: WakeStep[] = [];
  // the backups first, before anything changes: one that is neither here nor in Swift stops the wake here
  const here = (file: string) => read.local?.[file] ?? { file, present: true };
  const absent: string[] = [];
  for (const file of record === null ? [] : [...(record.releaseCopy !== null ? [record.releaseCopy] : []), ...Object.values(record.backups)]) {
    const local = here(file);
    if (local.present) continue;
    const stored = record?.swift?.objects[file];
    if (stored === undefined) {
      absent.push(file);
      continue;
    }
    steps.push({
      kind: 'fetch-backup', describe: `download ${record!.swift!.container}/${stored.object} from Swift to ${local.file} (MD5 ${stored.md5} checked)`,
      container: record!.swift!.container, object: stored.object, md5: stored.md5, file: local.file,
    });
  }
  const inventory = record?.swift?.inventory;
  if (inventory !== undefined && read.inventory !== undefined && !read.inventory.present) {
    steps.push({
      kind: 'fetch-backup', describe: `download the inventory ${record!.swift!.container}/${inventory.object} from Swift to ${read.inventory.file} (MD5 ${inventory.md5} checked): the nodes' addresses`,
      container: record!.swift!.container, object: inventory.object, md5: inventory.md5, file: read.inventory.file,
    });
  }
  if (absent.length > 0) {
    return refuse('operation', 'WAKE_BACKUP_MISSING', `the hibernate backup${absent.length === 1 ? '' : 's'} ${absent.join(', ')} ${absent.length === 1 ? 'is' : 'are'} not on this machine${record?.swift !== undefined ? ' and not in Swift' : ', and depl hibernate uploaded nothing to Swift (the cloud had no object store)'}`,
      `Copy ${absent.length === 1 ? 'it' : 'them'} from the machine that ran depl hibernate to ${absent.map((f) => here(f).file).join(', ')}, then run depl wake again. Nothing was changed.`);
  }
  if (record === null) {
    notes.push(`no hibernation record in ${read.recordFile}: ${shelved.map((s) => s.name).join(', ')} ${shelved.length === 1 ? 'was' : 'were'} ${kind === 'nova' ? 'shelved' : 'stopped'} by hand, so there is no backup to restore from`);
  } else if (record.phase === 'hibernating') {
    if (!record.complete) notes.push(`depl hibernate (since ${record.since}) did not finish: waking undoes what it did`);
    steps.push({ kind: 'record-wake', describe: `record in ${read.recordFile} that the wake began (a hibernate refuses until it finished)`, record: { ...record, phase: 'waking', wakeStartedAt: read.now } });
  } else {
    notes.push(`a depl wake began at ${record.wakeStartedAt ?? '?'} and did not finish: this run finishes it`);
  }
  for (const server of shelved) {
    if (server.taskState !== null) {
      notes.push(`${server.name} is ${server.status} (${server.taskState}): waited for, not asked again`);
      continue;
    }
    steps.push({ kind: 'unshelve-server', describe: `${words.wake} ${server.name} (${server.status})`, server: server.id, name: server.name });
  }
  steps.push(
    { kind: 'wait-active', describe: `wait until every ${words.instances} (${servers.map((s) => s.name).join(', ')}) is ${words.running}`, servers: servers.map((s) => s.id), timeoutMs: read.timeouts.activeMs },
    { kind: 'wait-swarm', describe: `wait until the swarm is whole: every node Ready (the swarm then restarts the services' tasks)`, timeoutMs: read.timeouts.swarmMs },
  );
  if (record !== null && record.releaseCopy !== null) {
    const file = here(record.releaseCopy).file;
    steps.push({ kind: 'restore-release-state', describe: `put the release document back from ${file} if the manager has lost it`, file });
  }
  for (const [accessory, recorded] of Object.entries(record?.backups ?? {})) {
    const file = here(recorded).file;
    steps.push({ kind: 'restore-accessory', describe: `check that ${accessory} still holds its data; if it does not, restore it from ${file}`, accessory, file });
  }
  if (record !== null && record.live !== null) {
    const hosts = [read.domain, `${record.live}.${read.domain}`];
    steps.push({ kind: 'wait-live', describe: `wait until the live version ${record.live} answers healthy through the edge at ${hosts.join(' and ')}`, version: record.live, hosts, timeoutMs: read.timeouts.healthyMs });
  }
  if (record !== null) {
    const shared = record.swift?.recordShared === true ? `Swift's copy ${record.swift.container}/${HIBERNATION_RECORD_OBJECT}, then ` : '';
    steps.push({ kind: 'clear-record', describe: `remove ${shared}${read.recordFile}: ${read.app} is awake` });
  }
  return { ok: true, plan: { command, notes, steps } };
}
