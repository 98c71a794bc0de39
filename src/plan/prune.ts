import type { ErrorCode } from '../error-codes.js';
import { autoscaleStateFile } from './autoscale.js';
import { autoscaleGateDir } from './autoscale-gate.js';
import { branchDatabaseJob, branchDatabaseScript, DATABASE_GONE_EXIT, isRedisRecord, recordName, type BranchDatabaseRecord, type SharedDatabase } from './branch-database.js';
import { redisBranchScript, slotText, unsafeSlot, type SharedRedis } from './branch-redis.js';
import { planBranchPrune, type BranchKeepReason } from './branch-prune.js';
import type { ChangePlan } from './change-plan.js';
import { leftoverJobs, type InspectedServiceSpec, type JobListing, type JobSpec } from './jobs.js';
import { planRelease, type InstalledVersion, type ReleaseRequest, type ReleaseState } from './release-state.js';
import { marksOfState } from './releases.js';

/**
 * `depl prune --keep N` / `--branches a,b`: which versions go and why the others stay, and everything that goes
 * with them, as a plan computed from what was read on the cluster. The steps are ordered so that what marks a
 * version as installed (its services) goes after it left the edge, and what outlives the services (autoscale
 * state, configs, secrets, image tags) is found by reading: whatever no remaining version uses is removed by
 * this run or, when a run was killed, by the next one.
 */

/** A config, secret or version network (src/plan/names.ts versionNetworkName) of the app on the swarm and the services that use it now. */
export interface SwarmObject {
  kind: 'config' | 'secret' | 'network';
  name: string;
  usedBy: string[];
  /** A secret node-up keeps for the renewal task before any task mounts it (src/plan/tls/renewer-credential.ts): node-up and node-down retire it. */
  heldForRenewer?: boolean;
}

export type PruneSelection = { keep: number } | { branches: string[] };

export interface PruneRead {
  app: string;
  selection: PruneSelection;
  state: ReleaseState;
  installed: InstalledVersion[];
  /** Image tags of the app's builds on each node (`<app>/<service>:<version>`, registry prefix included). */
  imageTags: Record<string, string[]>;
  /** The app's `depl run` jobs on the swarm. */
  jobs: JobListing[];
  configs: SwarmObject[];
  /** Versions with an autoscale controller's state file on the manager. */
  autoscaleStates: string[];
  /** The state root the autoscale files live under. */
  stateRoot: string;
  /** The edge's certificates follow the routing (the removed versions' hosts' certificates go). */
  certificates: boolean;
  /**
   * The app's branch databases (src/plan/branch-database.ts), each with its accessory's shared database and swarm
   * spec (null when depl.yaml or the swarm no longer has them: such a database is reported, not dropped).
   */
  branchDatabases?: readonly BranchDatabaseFound[];
  /** Where a dropped branch database's backup is written (the operator's .depl/backups), and the time in its name. */
  backups?: { dir: string; at: string };
  /** Who runs the jobs (their labels). */
  by?: string;
}

export interface BranchDatabaseFound {
  record: BranchDatabaseRecord;
  shared: SharedDatabase | SharedRedis | null;
  accessorySpec: InspectedServiceSpec | null;
}

export type PruneKeepReason = 'live' | 'canary' | 'previous' | 'recent' | BranchKeepReason;

export type PruneStep =
  | { kind: 'release-change'; describe: string; request: ReleaseRequest }
  | { kind: 'sync-certificates'; describe: string }
  /** `files`: the versions' controller records and engine gate folders (removed with rm -rf). */
  | { kind: 'remove-autoscale-state'; describe: string; files: string[] }
  | { kind: 'remove-services'; describe: string; version: string; services: string[] }
  | { kind: 'remove-jobs'; describe: string; jobs: string[] }
  /** `networks`: versions' own networks no service is attached to (absent when there are none). */
  | { kind: 'remove-unused'; describe: string; configs: string[]; secrets: string[]; networks?: string[] }
  | { kind: 'remove-image-tags'; describe: string; node: string; tags: string[] }
  /** A branch database whose version is gone: dumped to `file` first (a job whose stdout is the dump); a database already gone is skipped. */
  | { kind: 'backup-branch-database'; describe: string; database: string; accessory: string; file: string; job: JobSpec }
  | { kind: 'drop-branch-database'; describe: string; database: string; accessory: string; job: JobSpec }
  /** Its record (the password secret) goes last: until then the next prune finds the database and finishes. */
  | { kind: 'forget-branch-database'; describe: string; database: string; secret: string };

export interface PrunePlan extends ChangePlan<PruneStep> {
  removed: string[];
  kept: { version: string; why: PruneKeepReason }[];
}

export type PrunePlanned = { ok: true; plan: PrunePlan } | { ok: false; message: string; hint: string; code: ErrorCode };

export function pruneCommand(selection: PruneSelection): string {
  return 'branches' in selection ? `depl prune --branches ${selection.branches.join(',')}` : `depl prune --keep ${selection.keep}`;
}

/** The version a tag names: what follows the last `:` after the last `/` (a registry host may carry a port). */
export function tagVersion(tag: string): string | null {
  const name = tag.slice(tag.lastIndexOf('/') + 1);
  const colon = name.lastIndexOf(':');
  return colon < 0 ? null : name.slice(colon + 1);
}

export function planPruneChange(read: PruneRead): PrunePlanned {
  const { selection } = read;
  const command = pruneCommand(selection);
  const decided = decide(read);
  if (!decided.ok) return decided;
  const { remove, keep, requests } = decided;
  const removed = new Set(remove.map((v) => v.label));
  const remaining = new Set(read.installed.filter((v) => !removed.has(v.label)).map((v) => v.label));
  const goneServices = new Set(remove.flatMap((v) => v.services));
  const steps: PruneStep[] = [];

  for (const request of requests) {
    steps.push({
      kind: 'release-change',
      request,
      describe: request.kind === 'prune'
        ? `take ${remove.map((v) => v.label).join(', ')} off the edge and record the prune`
        : `take ${request.kind === 'remove' ? request.version : '?'} off the edge and record its removal (branch gone)`,
    });
  }
  if (requests.length > 0 && read.certificates) steps.push({ kind: 'sync-certificates', describe: 'drop the certificates no remaining version needs from the edge' });

  const staleStates = read.autoscaleStates.filter((label) => !remaining.has(label)).sort();
  if (staleStates.length > 0) {
    steps.push({
      kind: 'remove-autoscale-state',
      // each version's controller record, and its engine gate's socket folder
      files: staleStates.flatMap((label) => [autoscaleStateFile(read.app, label, read.stateRoot), autoscaleGateDir(read.app, label, read.stateRoot)]),
      describe: `remove the autoscale state and engine gate folder of ${staleStates.join(', ')}`,
    });
  }
  for (const version of remove) {
    if (version.services.length === 0) continue;
    steps.push({ kind: 'remove-services', version: version.label, services: [...version.services], describe: `remove version ${version.label}'s services (${version.services.join(', ')})` });
  }
  const records = new Set((read.branchDatabases ?? []).map((b) => b.record.secret));
  const dropNotes = planBranchDatabaseDrops(read, remaining, steps);
  const jobs = leftoverJobs(read.jobs).map((j) => j.name).sort();
  if (jobs.length > 0) steps.push({ kind: 'remove-jobs', jobs, describe: `remove the finished jobs a killed depl run left (${jobs.join(', ')})` });

  // a branch database's record goes with its database (above), never as an unused secret
  const unused = read.configs.filter((c) => c.usedBy.every((s) => goneServices.has(s)) && !(c.kind === 'secret' && (records.has(c.name) || c.heldForRenewer === true)));
  const configs = unused.filter((c) => c.kind === 'config').map((c) => c.name).sort();
  const secrets = unused.filter((c) => c.kind === 'secret').map((c) => c.name).sort();
  const networks = unused.filter((c) => c.kind === 'network').map((c) => c.name).sort();
  if (configs.length + secrets.length + networks.length > 0) {
    const what = [configs.length > 0 ? `configs ${configs.join(', ')}` : '', secrets.length > 0 ? `secrets ${secrets.join(', ')}` : '', networks.length > 0 ? `networks ${networks.join(', ')}` : '']
      .filter((s) => s !== '').join(' and ');
    steps.push({ kind: 'remove-unused', configs, secrets, ...(networks.length > 0 ? { networks } : {}), describe: `remove the ${what} no remaining service uses` });
  }
  for (const node of Object.keys(read.imageTags).sort()) {
    const tags = read.imageTags[node]!.filter((tag) => {
      const version = tagVersion(tag);
      return version !== null && !remaining.has(version);
    }).sort();
    if (tags.length > 0) steps.push({ kind: 'remove-image-tags', node, tags, describe: `untag ${tags.join(', ')} on ${node}` });
  }

  const notes = [
    ...keep.map((k) => `keep ${k.version}: ${keepReason(k.why, selection)}`),
    ...remove.map((v) => `remove ${v.label}: ${'branches' in selection ? `its branch ${v.branch ?? '?'} is not among ${selection.branches.join(', ')}` : `older than the ${selection.keep} newest not live, canary or previous`}`),
  ];
  notes.push(...dropNotes);
  if (remove.length === 0) notes.push('no version to remove');
  return { ok: true, plan: { command, notes, steps, removed: [...removed], kept: keep } };
}

/**
 * The branch databases of versions that are gone (removed by this prune, or earlier by one that was killed, or
 * never finished installing): each is dumped to a file beside depl.yaml, dropped, and its record removed. The
 * steps come after the versions' services are gone (their connections end with them).
 */
function planBranchDatabaseDrops(read: PruneRead, remaining: Set<string>, steps: PruneStep[]): string[] {
  const notes: string[] = [];
  for (const found of read.branchDatabases ?? []) {
    const { record } = found;
    if (remaining.has(record.version)) continue;
    const name = recordName(record);
    const redis = isRedisRecord(record);
    const kept = found.shared === null ? `accessory ${record.accessory} is no longer perBranch: ${redis ? record.redis.mode : 'database'} in depl.yaml`
      : found.accessorySpec === null ? `accessory ${record.accessory} is not on the swarm`
        : redis !== (found.shared.engine === 'redis') ? `accessory ${record.accessory} is no longer the kind of server the record was made on`
          : redis && found.shared.engine === 'redis' ? unsafeSlot(found.shared, record.redis) : null;
    if (kept !== null) {
      notes.push(`branch database ${name} (version ${record.version}) is not dropped: ${kept}; ${redis ? 'empty it' : 'drop it'} by hand, then \`docker secret rm ${record.secret}\``);
      continue;
    }
    if (read.backups === undefined) throw new Error('planPruneChange: branch databases to drop need a backup folder');
    const base = { app: read.app, accessorySpec: found.accessorySpec!, by: read.by ?? 'depl', at: read.backups.at };
    let job: (action: 'dump' | 'drop') => JobSpec;
    if (isRedisRecord(record)) {
      const shared = found.shared as SharedRedis;
      const db = { version: record.version, secret: record.secret, database: slotText(record.redis), shared: { accessory: record.accessory } };
      job = (action) => branchDatabaseJob({ ...base, db, action, redis: record.redis.mode, script: redisBranchScript({ shared, slot: record.redis }, action, { goneExit: DATABASE_GONE_EXIT }) });
    } else {
      const db = { shared: found.shared as SharedDatabase, database: record.database, user: record.user, version: record.version, secret: record.secret };
      job = (action) => branchDatabaseJob({ ...base, db, action, script: branchDatabaseScript(db, action) });
    }
    const file = `${read.backups.dir}/${read.app}-${record.accessory}-${record.version}-${read.backups.at.replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-')}.${redis ? 'redis' : 'sql'}`;
    steps.push(
      { kind: 'backup-branch-database', database: name, accessory: record.accessory, file, job: job('dump'), describe: `back up branch database ${name} (version ${record.version}) from ${record.accessory} to ${file}${redis ? ' (RESTORE lines: redis-cli < file loads them back)' : ''}` },
      {
        kind: 'drop-branch-database', database: name, accessory: record.accessory, job: job('drop'),
        describe: isRedisRecord(record) ? `empty ${name} (${record.redis.mode === 'database' ? 'FLUSHDB' : 'its keys'})` : `drop branch database ${record.database} and user ${record.user} on ${record.accessory}`,
      },
      { kind: 'forget-branch-database', database: name, secret: record.secret, describe: `remove its record${redis ? ', which frees it for another branch' : ' and password'} (swarm secret ${record.secret})` },
    );
    notes.push(`branch database ${name} on ${record.accessory}: version ${record.version} is gone, so it is backed up to ${file}, then ${redis ? 'emptied' : 'dropped'}`);
  }
  return notes;
}

type Decided =
  | { ok: true; remove: InstalledVersion[]; keep: { version: string; why: PruneKeepReason }[]; requests: ReleaseRequest[] }
  | { ok: false; message: string; hint: string; code: ErrorCode };

function decide(read: PruneRead): Decided {
  const { selection, state, installed } = read;
  if ('branches' in selection) {
    const byBranch = planBranchPrune(installed, marksOfState(state), selection.branches);
    return {
      ok: true,
      remove: byBranch.remove,
      keep: byBranch.keep.map((k) => ({ version: k.label, why: k.why })),
      requests: byBranch.remove.map((v) => ({ kind: 'remove', version: v.label, note: 'branch gone' })),
    };
  }
  // the release transition decides (and refuses a bad --keep); it is planned again under the lock when applied
  const planned = planRelease(state, { kind: 'prune', keep: selection.keep }, { installed, at: new Date(0).toISOString(), by: '' });
  if (!planned.ok) return { ok: false, message: planned.refusal.message, hint: planned.refusal.hint ?? 'See depl prune --help.', code: planned.refusal.code };
  const prune = planned.prune!;
  return {
    ok: true,
    remove: prune.remove,
    keep: prune.keep.map((k) => ({ version: k.label, why: k.why })),
    requests: prune.remove.length > 0 ? [{ kind: 'prune', keep: selection.keep }] : [],
  };
}

function keepReason(why: PruneKeepReason, selection: PruneSelection): string {
  switch (why) {
    case 'live': return 'live';
    case 'canary': return 'the canary';
    case 'previous': return 'previous (what a rollback goes back to)';
    case 'recent': return `among the ${'keep' in selection ? selection.keep : 0} newest others (--keep)`;
    case 'branch exists': return 'its branch still exists';
    case 'not a branch deploy': return 'not a branch deploy';
    default: return why;
  }
}
