import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { HIBERNATION_RECORD, parseHibernationRecord, renderHibernationRecord, type HibernationRecord } from '../plan/hibernation.js';
import { DEPL_FILE_MODE, deplDir, writeFileAtomicLocal, type ProjectFolder } from './inventory.js';

/**
 * The hibernation record in the operator's folder (`.depl/hibernation.json`): it says the deployment
 * hibernates, since when, and where its backups are. It lives on this machine, not on the manager, because
 * the manager is shelved while it matters; `depl status`, hibernate and wake read it before anything else.
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
