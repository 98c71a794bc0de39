import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { OperationError } from '../errors.js';
import type { RecordCopies } from '../plan/hibernation-copies.js';
import { HIBERNATION_RECORD, HIBERNATION_RECORD_OBJECT, parseHibernationRecord, renderHibernationRecord, type HibernationRecord } from '../plan/hibernation.js';
import type { BackupObjects } from './hibernation-objects.js';
import { DEPL_FILE_MODE, deplDir, writeFileAtomicLocal, type ProjectFolder } from './inventory.js';

/**
 * The hibernation record in the operator's folder (`.depl/hibernation.json`): it says the deployment
 * hibernates, since when, and where its backups are. It lives on this machine, not on the manager, because
 * the manager is shelved while it matters; `depl status`, hibernate and wake read it before anything else.
 * With an object store it has a copy in Swift too, beside the backups (below), for other operators' machines.
 */
export function hibernationRecordPath(project: ProjectFolder): string {
  return path.join(deplDir(project), HIBERNATION_RECORD);
}

/** The record; null when the deployment is not hibernating; 'unreadable' when the file is not a record. */
export async function readHibernationRecord(project: ProjectFolder): Promise<HibernationRecord | null | 'unreadable'> {
  const text = await readFile(hibernationRecordPath(project), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (text === null) return null;
  return parseHibernationRecord(text) ?? 'unreadable';
}

export async function writeHibernationRecord(project: ProjectFolder, record: HibernationRecord): Promise<void> {
  await writeFileAtomicLocal(hibernationRecordPath(project), renderHibernationRecord(record), DEPL_FILE_MODE);
}

export async function removeHibernationRecord(project: ProjectFolder): Promise<void> {
  await rm(hibernationRecordPath(project), { force: true });
}

/**
 * Both copies of the record: this machine's and, with an object store, Swift's (MD5 checked against its ETag).
 * Which one a command goes on from is src/plan/hibernation-copies.ts's choice.
 */
export async function readRecordCopies(project: ProjectFolder, objects: BackupObjects | undefined): Promise<RecordCopies> {
  const local = await readHibernationRecord(project);
  const base = { local, localFile: hibernationRecordPath(project) };
  if (objects === undefined) return base;
  const text = await objects.readRecord();
  const cloud = text === null ? null : (parseHibernationRecord(text) ?? 'unreadable');
  return { ...base, cloud, cloudObject: `${objects.container}/${HIBERNATION_RECORD_OBJECT} (${objects.endpoint})` };
}

/**
 * Writes a change of the record: this machine's copy first, then Swift's when the record is shared there (a run
 * stopped between the two leaves this machine's copy the further one, which wins the next run's choice).
 */
export async function saveHibernationRecord(project: ProjectFolder, objects: BackupObjects | undefined, record: HibernationRecord): Promise<void> {
  await writeHibernationRecord(project, record);
  if (record.swift?.recordShared === true) await requireObjects(objects, record).writeRecord(renderHibernationRecord(record));
}

/** Shares the record in Swift: Swift's copy first, then this machine's, so a local copy that says "shared" always had its Swift copy written. */
export async function shareHibernationRecord(project: ProjectFolder, objects: BackupObjects | undefined, record: HibernationRecord): Promise<HibernationRecord> {
  if (record.swift === undefined) throw new Error('a record is shared only when its backups went to Swift');
  const shared: HibernationRecord = { ...record, swift: { ...record.swift, recordShared: true } };
  await requireObjects(objects, shared).writeRecord(renderHibernationRecord(shared));
  await writeHibernationRecord(project, shared);
  return shared;
}

/** The wake's last step: Swift's copy first (another machine then sees an awake deployment), then this machine's. */
export async function clearHibernationRecord(project: ProjectFolder, objects: BackupObjects | undefined, record: HibernationRecord | null): Promise<void> {
  if (record?.swift?.recordShared === true) await requireObjects(objects, record).removeRecord();
  await removeHibernationRecord(project);
}

function requireObjects(objects: BackupObjects | undefined, record: HibernationRecord): BackupObjects {
  const container = record.swift?.container;
  if (objects === undefined || objects.container !== container) {
    throw new OperationError(`the hibernation record is kept in the Swift container ${container ?? '?'} too, which depl cannot reach: this cloud's catalog has no object store${objects !== undefined ? ` (or its container is ${objects.container})` : ''}`,
      'Run the command where the cloud\'s object store is in the catalog (the same OS_* credentials as depl hibernate had).', 'OBJECT_STORE_ERROR');
  }
  return objects;
}
