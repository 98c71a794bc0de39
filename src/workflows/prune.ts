import { appLeftoversOn } from '../apply/app-leftovers.js';
import type { Engine } from '../apply/docker.js';
import { openDumpFile } from '../apply/dump-file.js';
import { inspectServiceSpec, runJobService } from '../apply/jobs.js';
import { labelledSecrets, removeService, removeSwarmSecret } from '../apply/swarm.js';
import type { DeplConfig } from '../config/schema.js';
import { BRANCH_DATABASE_LABELS, DATABASE_GONE_EXIT, recordFromLabels } from '../plan/branch-database.js';
import { branchSharedOf } from '../plan/branch-shared.js';
import { jobExitCode, type JobEnd } from '../plan/jobs.js';
import type { Cluster } from '../apply/cluster.js';
import { OperationError, UserError } from '../errors.js';
import { autoscaleStateDir } from '../plan/autoscale.js';
import { versionImageTags } from '../plan/images.js';
import { planPruneChange, pruneCommand, type BranchDatabaseFound, type PruneKeepReason, type PrunePlan, type PruneSelection, type PruneStep } from '../plan/prune.js';
import type { Logger } from '../util/log.js';
import { accessoryServiceName, legacyAccessoryServiceName } from '../plan/names.js';
import { LABELS } from '../plan/services.js';
import { applyPlan, type ApplyPlanOptions, type StepApplier } from './apply-plan.js';
import { operator, type BranchDatabasePort, type ClusterPort } from './cluster-port.js';
import { withRelease, type ReleaseSession } from './release.js';
import type { PruneInputs } from './command-inputs.js';
import { withManagerEngine } from './versions.js';

export interface PruneResult {
  removed: string[];
  kept: { version: string; why: PruneKeepReason }[];
  /** The plan that ran (or, for a dry run, would run). */
  plan: PrunePlan;
  dryRun: boolean;
  /** A dry run's unified diff of the edge's files as its routing change would write them ('' when unchanged). */
  edgeDiff: string;
}

export interface PruneOptions {
  keep: number;
  /** Remove the per-branch deploys of branches not in this list instead (see src/plan/branch-prune.ts). */
  branches?: string[];
  dryRun?: boolean;
  lockWaitMs?: number;
  cluster?: Cluster;
}

/**
 * Removes old versions of this app (only services labelled with its name), never the live, canary or previous
 * one, with what goes with them (src/plan/prune.ts). Holds the cluster lock. The port is the command's (cut
 * from depl.yaml by pruneInputsFor), with prune's own slices: the manager's Engine API for the swarm's objects,
 * each node's docker CLI for its image tags.
 */
export async function prune(inputs: PruneInputs, options: PruneOptions, log: Logger): Promise<PruneResult> {
  const { config } = inputs;
  // `<app>/<service>` (under the registry when one is set): the repositories the app's builds are tagged in
  const repositories = versionImageTags(config, 'v').map((tag) => tag.slice(0, tag.lastIndexOf(':')));
  const selection: PruneSelection = options.branches !== undefined ? { branches: options.branches } : { keep: options.keep };
  return withManagerEngine(inputs.cluster, log, async (cluster, engine) => {
    const control: ClusterPort = {
      ...(await inputs.cluster.portOn(cluster, log, { syncCertificates: true })),
      lockWaitMs: options.lockWaitMs ?? 0,
      leftovers: appLeftoversOn(cluster, engine, config.app, repositories, log),
      branchDatabases: branchDatabasesOn(engine, config, inputs.backupsDir, log),
    };
    return pruneVersions(control, selection, { dryRun: options.dryRun });
  }, options.cluster);
}

/** Under the lock: read -> plan (src/plan/prune.ts) -> apply that plan; a dry run reads and plans only. */
export async function pruneVersions(control: ClusterPort, selection: PruneSelection, options: { dryRun?: boolean; afterStep?: ApplyPlanOptions['afterStep'] } = {}): Promise<PruneResult> {
  return withRelease(control, pruneCommand(selection), { dryRun: options.dryRun }, async (session) => {
    const planned = planPruneChange(await readForPrune(control, session, selection));
    if (!planned.ok) throw new UserError(planned.message, planned.hint, planned.code);
    const { plan } = planned;
    if (session.dryRun) return { removed: plan.removed, kept: plan.kept, plan, dryRun: true, edgeDiff: await edgeDiffOf(plan, session) };
    await applyPlan(plan, pruneApplier(control, session), { log: control.log, ...(options.afterStep ? { afterStep: options.afterStep } : {}) });
    return { removed: plan.removed, kept: plan.kept, plan, dryRun: false, edgeDiff: '' };
  });
}

/** What the plan's routing change would write on the edge: a dry-run session plans it and diffs, writing nothing. */
async function edgeDiffOf(plan: PrunePlan, session: ReleaseSession): Promise<string> {
  const change = plan.steps.find((step) => step.kind === 'release-change');
  return change === undefined ? '' : (await session.change(change.request)).nginxDiff;
}

/** How long a branch database's dump or drop may take. */
const DATABASE_JOB_TIMEOUT_MS = 30 * 60_000;

const jobSucceeded = (end: JobEnd) => jobExitCode(end) === 0;

function jobEndText(end: JobEnd): string {
  if (end.kind === 'timed-out') return 'it did not finish in time';
  if (end.kind === 'not-started') return `not started: ${end.detail}`;
  return end.progress.kind === 'failed' ? `did not run: ${end.progress.reason}` : `exit ${end.progress.exitCode}`;
}

/**
 * The dump streams into a file beside depl.yaml; the database is dropped (the next step) only once the file is
 * whole. A database already gone (a prune killed after its drop) has nothing to back up: the step says so.
 */
async function backupBranchDatabase(port: BranchDatabasePort, step: Extract<PruneStep, { kind: 'backup-branch-database' }>, log: Logger): Promise<void> {
  const file = await port.openDump(step.file);
  const errors: string[] = [];
  let end: JobEnd;
  try {
    end = await port.runJob(step.job, { timeoutMs: DATABASE_JOB_TIMEOUT_MS, write: (frame) => (frame.stream === 1 ? file.write(frame.payload) : errors.push(Buffer.from(frame.payload).toString('utf8'))) });
  } catch (error) {
    await file.discard();
    throw error;
  }
  if (end.kind === 'ended' && end.progress.kind === 'exited' && end.progress.exitCode === DATABASE_GONE_EXIT) {
    await file.discard();
    log.step(`branch database ${step.database} has nothing to back up (empty, or dropped by an earlier prune after writing its backup)`);
    return;
  }
  if (!jobSucceeded(end)) {
    await file.discard();
    throw new OperationError(
      `the backup of branch database ${step.database} on ${step.accessory} failed (${jobEndText(end)}), so it is not dropped: ${errors.join('').trim().slice(-2000)}`,
      `Check ${step.accessory} (depl logs ${step.accessory}), then run depl prune again.`, 'BRANCH_DATABASE_BACKUP',
    );
  }
  await file.commit();
  log.step(`backed up branch database ${step.database} to ${step.file}`);
}

/** The real port: records from the swarm's secrets, the accessory's spec as the swarm holds it, jobs through the one runner. */
function branchDatabasesOn(engine: Engine, config: DeplConfig, backupDir: string, log: Logger): BranchDatabasePort {
  return {
    backupDir,
    async found() {
      const records = (await labelledSecrets(engine, config.app, BRANCH_DATABASE_LABELS.accessory)).flatMap((s) => recordFromLabels(s.name, s.labels) ?? []);
      return Promise.all(records.map(async (record): Promise<BranchDatabaseFound> => {
        // the accessory's app-scoped service, or its old name until buildinst has moved it
        const spec = await inspectServiceSpec(engine, accessoryServiceName(config.app, record.accessory)).catch(() => null)
          ?? await inspectServiceSpec(engine, legacyAccessoryServiceName(record.accessory)).then((s) => (s.Labels?.[LABELS.app] === config.app ? s : null), () => null);
        return { record, shared: branchSharedOf(config, record.accessory), accessorySpec: spec };
      }));
    },
    async runJob(spec, options) {
      try {
        return await runJobService(engine, spec, options);
      } finally {
        await removeService(engine, spec.Name).catch((error: Error) => log.warn(`could not remove job ${spec.Name}: ${error.message} (docker service rm ${spec.Name} on the manager)`));
      }
    },
    removeRecord: (name) => removeSwarmSecret(engine, name),
    openDump: openDumpFile,
  };
}

async function readForPrune(control: ClusterPort, session: ReleaseSession, selection: PruneSelection) {
  const stateRoot = control.stateRoot ?? '/var/lib/depl';
  const leftovers = control.leftovers;
  const [imageTags, jobs, configs, autoscaleStates] = await Promise.all([
    leftovers?.imageTags() ?? {},
    leftovers?.jobs() ?? [],
    leftovers?.configs() ?? [],
    readAutoscaleStates(control, stateRoot),
  ]);
  const branchDatabases = await control.branchDatabases?.found() ?? [];
  return {
    app: control.app, selection, state: session.state, installed: session.installed,
    imageTags, jobs, configs, autoscaleStates, stateRoot, certificates: control.certificates !== undefined,
    branchDatabases, by: operator(control),
    ...(control.branchDatabases !== undefined ? { backups: { dir: control.branchDatabases.backupDir, at: (control.now?.() ?? new Date()).toISOString() } } : {}),
  };
}

/** The versions whose autoscale controller left a state file on the manager (src/plan/autoscale.ts). */
async function readAutoscaleStates(control: ClusterPort, stateRoot: string): Promise<string[]> {
  const dir = autoscaleStateDir(control.app, stateRoot);
  const listed = await control.stateRemote.exec(['sh', '-c', 'ls -1 "$1" 2>/dev/null || true', 'sh', dir], { timeoutMs: 30_000 });
  return listed.stdout.split('\n').map((l) => l.trim()).filter((l) => l.endsWith('.json')).map((l) => l.slice(0, -'.json'.length));
}

function pruneApplier(control: ClusterPort, session: ReleaseSession): StepApplier<PruneStep> {
  const leftovers = () => {
    if (control.leftovers === undefined) throw new OperationError('this cluster port cannot remove images, jobs or configs', undefined, 'NO_SWARM');
    return control.leftovers;
  };
  const databases = () => {
    if (control.branchDatabases === undefined) throw new OperationError('this cluster port cannot drop branch databases', undefined, 'NO_SWARM');
    return control.branchDatabases;
  };
  return {
    async run(step) {
      switch (step.kind) {
        case 'release-change': await session.change(step.request); return;
        case 'sync-certificates': await session.syncCertificates(); return;
        case 'remove-autoscale-state': await control.stateRemote.exec(['rm', '-rf', '--', ...step.files]); return;
        case 'remove-services':
          if (control.swarm === undefined) throw new OperationError('this edge has no swarm whose services could be removed', undefined, 'NO_SWARM');
          await control.swarm.remove(step.services);
          return;
        case 'remove-jobs': await leftovers().removeJobs(step.jobs); return;
        case 'remove-unused': await leftovers().removeConfigs(step.configs, step.secrets, step.networks ?? []); return;
        case 'remove-image-tags': await leftovers().removeImageTags(step.node, step.tags); return;
        case 'backup-branch-database': await backupBranchDatabase(databases(), step, control.log); return;
        case 'drop-branch-database': {
          const output: string[] = [];
          const end = await databases().runJob(step.job, { timeoutMs: DATABASE_JOB_TIMEOUT_MS, write: (frame) => output.push(Buffer.from(frame.payload).toString('utf8')) });
          if (!jobSucceeded(end)) {
            throw new OperationError(`dropping branch database ${step.database} on ${step.accessory} failed (${jobEndText(end)}): ${output.join('').trim().slice(-2000)}`, `Its backup is written; check ${step.accessory} (depl logs ${step.accessory}), then run depl prune again.`, 'BRANCH_DATABASE_FAILED');
          }
          control.log.step(`dropped branch database ${step.database} on ${step.accessory}`);
          return;
        }
        case 'forget-branch-database': await databases().removeRecord(step.secret); return;
      }
    },
  };
}
