import type { PlanRefusal } from './backup-plan.js';
import { renderHibernationRecord, type HibernationRecord } from './hibernation.js';

/**
 * The hibernation record has two copies when the cloud has an object store: this machine's
 * (`.depl/hibernation.json`) and Swift's (`<stack>-depl-backups/hibernation.json`), so an operator on another
 * machine (a teammate with the same depl.yaml and credentials, or after a lost laptop) can see and wake a
 * hibernating cluster. This decides which copy a command goes on from, and says so when they disagree.
 *
 * How they come to disagree, and which one wins:
 * - Every change writes this machine's copy first and Swift's second (hibernate's `share-record` step is the one
 *   exception: Swift first, so a local copy that says "shared" always had its Swift copy written). A run killed
 *   between the two writes leaves them one change apart, within the same hibernation (same `since`, `by`).
 * - Another machine's wake goes on from Swift's copy and writes both of its own: this machine's copy stays
 *   behind (hibernating, where Swift says waking), or outlives the record (a finished wake removed Swift's).
 * Within one hibernation the copy further along wins (waking > hibernated > shared > begun; on a tie, this
 * machine's, as it is written first): each command plans from the instances as Nova shows them now, so going on
 * from the further record repeats nothing that was done, whereas the earlier one would (a hibernate that
 * reuses backups a wake has since made stale). Both copies are then written again by the command's next write.
 * Of two different hibernations, a local one that reached Swift and is older than Swift's is a leftover (Swift
 * holds one record at a time and a wake removed it before the newer was written): Swift's wins, said so. Any
 * other pair is never chosen between: the command is refused, naming both.
 */

/** One copy as read: absent (null), or not a record ('unreadable'). */
export type RecordCopy = HibernationRecord | null | 'unreadable';

export interface RecordCopies {
  /** This machine's `.depl/hibernation.json`. */
  local: RecordCopy;
  /** Swift's copy; undefined when the cloud has no object store (the local copy is the only one). */
  cloud?: RecordCopy;
  /** Where each is, for messages. */
  localFile: string;
  cloudObject?: string;
}

export interface ChosenRecord {
  ok: true;
  record: RecordCopy;
  /** Which copy it is. */
  from: 'local' | 'swift' | 'none';
  /** Whether Swift's copy is the chosen record byte for byte (false: absent, older, or no object store). */
  cloudCurrent: boolean;
  /** Whether this machine's copy is the chosen record byte for byte. */
  localCurrent: boolean;
  /**
   * The local record says Swift had its copy, and Swift has none: a depl wake removed it (on another machine, or
   * here, killed between removing Swift's copy and this one).
   */
  cloudGone: boolean;
  /** What a reader should know: the source, a disagreement and the choice made. */
  notes: string[];
}

const progress = (r: HibernationRecord) => (r.phase === 'waking' ? 3 : r.complete ? 2 : r.swift?.recordShared === true ? 1 : 0);
const stage = (r: HibernationRecord) =>
  r.phase === 'waking' ? `waking since ${r.wakeStartedAt ?? '?'}` : r.complete ? 'hibernated (complete)' : r.swift?.recordShared === true ? 'hibernating, backups in Swift' : 'hibernating, begun';
const sameHibernation = (a: HibernationRecord, b: HibernationRecord) => a.app === b.app && a.since === b.since && a.by === b.by;

export function chooseRecord(copies: RecordCopies): ChosenRecord | PlanRefusal {
  const { local, cloud } = copies;
  const cloudName = copies.cloudObject ?? 'Swift';
  const chosen = (record: RecordCopy, from: ChosenRecord['from'], notes: string[], cloudGone = false): ChosenRecord => ({
    ok: true, record, from, notes, cloudGone,
    localCurrent: same(local, record),
    cloudCurrent: cloud !== undefined && same(cloud, record),
  });
  if (cloud === undefined || local === 'unreadable') return chosen(local, local === null ? 'none' : 'local', []);
  if (cloud === 'unreadable') {
    return {
      ok: false, error: 'operation', code: 'HIBERNATION_RECORD_UNREADABLE', message: `Swift's copy of the hibernation record (${cloudName}) cannot be read as a record`,
      hint: `Look at it (swift download); if ${copies.localFile} is right, remove Swift's copy and run the command again.`,
    };
  }
  if (local === null && cloud === null) return chosen(null, 'none', []);
  if (cloud === null) {
    if (local !== null && local.swift?.recordShared === true) {
      return chosen(local, 'local', [`${copies.localFile} says ${local.app} hibernates since ${local.since}, but Swift has no copy of the record any more: a depl wake removed it (on another machine, or here and was stopped before it removed this one); depl wake finishes or confirms it`], true);
    }
    return chosen(local, 'local', []);
  }
  if (local === null) return chosen(cloud, 'swift', [`the hibernation record comes from Swift (${cloudName}, MD5 checked): this machine has none`]);
  if (same(local, cloud)) return chosen(local, 'local', []);
  if (!sameHibernation(local, cloud)) {
    // Swift holds one record at a time, and a hibernate goes on from Swift's: a later one there means the wake of
    // this machine's (which reached Swift) finished and removed it first
    if (local.swift?.recordShared === true && cloud.since > local.since) {
      return chosen(cloud, 'swift', [`this machine's hibernation record is of an earlier hibernation (since ${local.since}, ${stage(local)}), which a depl wake finished: going on from Swift's (since ${cloud.since}, by ${cloud.by}); this machine's is replaced`]);
    }
    return {
      ok: false, error: 'operation', code: 'HIBERNATION_RECORD_CONFLICT',
      message: `this machine's hibernation record (${copies.localFile}: ${local.app} hibernating since ${local.since}, by ${local.by}) and Swift's (${cloudName}: since ${cloud.since}, by ${cloud.by}) are of two different hibernations`,
      hint: `Nothing was changed. Find out which is current (depl status on the other operator's machine, openstack server list); then remove the stale one (${copies.localFile}, or Swift's copy with swift delete) and run the command again.`,
    };
  }
  const winner = progress(cloud) > progress(local) ? 'swift' : 'local';
  const note = `this machine's hibernation record (${stage(local)}) and Swift's (${stage(cloud)}) disagree: going on from ${winner === 'swift' ? 'Swift\'s' : 'this machine\'s'}, which is further along (the other was not written yet, or by another machine's run); both are written again`;
  return chosen(winner === 'swift' ? cloud : local, winner, [note]);
}

function same(copy: RecordCopy, record: RecordCopy): boolean {
  if (copy === null || record === null || copy === 'unreadable' || record === 'unreadable') return copy === record;
  return renderHibernationRecord(copy) === renderHibernationRecord(record);
}
