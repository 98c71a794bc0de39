import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Cluster } from '../apply/cluster.js';
import type { Engine } from '../apply/docker.js';
import { followJobOutput, inspectServiceSpec, listJobs, readJobOutput } from '../apply/jobs.js';
import { readReleaseDocument } from '../apply/release-store.js';
import { createService, listServices, removeService, serviceTasks, type InstalledService } from '../apply/swarm.js';
import type { LoadedConfig } from '../config/load.js';
import { OperationError, UserError } from '../errors.js';
import { checkJobTarget, jobProgress, jobRow, leftoverJobs, planRunJob, unprintedFrames, type Frame, type JobProgress, type JobRow } from '../plan/jobs.js';
import { LABELS } from '../plan/services.js';
import { onInterrupt } from '../util/interrupt.js';
import type { Logger } from '../util/log.js';
import { pollUntil } from '../util/poll.js';
import { withManagerEngine } from './versions.js';

/** How long a job may wait for a node to start it (no node fits, an image missing) before depl gives up. */
const START_TIMEOUT_MS = 300_000;

/**
 * The version's service a command targets: the live version by default. Input errors (no live version, a
 * version not installed, a service the version does not have) are the operator's to fix: exit 2, with a hint.
 */
export async function resolveVersionService(cluster: Cluster, engine: Engine, app: string, target: { service: string; version?: string; verb: string }): Promise<{ version: string; service: InstalledService }> {
  checkJobTarget(target.service, target.version);
  const version = target.version ?? (await readReleaseDocument(cluster.manager, app)).live;
  if (version === null || version === undefined) {
    throw new UserError('no version is live, so there is no default version to use', `Name one: depl ${target.verb} ${target.service} --version <version> -- ... (see depl versions).`, 'NO_LIVE');
  }
  const services = await listServices(engine, { [LABELS.app]: app, [LABELS.version]: version });
  if (services.length === 0) throw new UserError(`version ${version} is not installed on this cluster`, 'See the installed versions with `depl versions`.', 'NOT_INSTALLED');
  const found = services.find((s) => s.labels[LABELS.service] === target.service);
  if (found === undefined) {
    const have = services.map((s) => s.labels[LABELS.service]).filter((s): s is string => s !== undefined).sort();
    throw new UserError(`version ${version} has no service "${target.service}"`, `Its services: ${have.join(', ') || '(none)'}.`, 'NO_SUCH_SERVICE');
  }
  return { version, service: found };
}

export interface RunOptions {
  service: string;
  /** Default: the live version. */
  version?: string;
  command: string[];
}

export interface RunIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface RunResult {
  job: string;
  version: string;
  /** The command's own exit code. */
  exitCode: number;
}

/**
 * depl run: the command as a one-off `replicated-job` service made from the version's service spec, its output
 * streamed as it comes, its exit code returned, the job removed afterwards (also on Ctrl-C). Jobs that an
 * earlier, killed `depl run` left finished are removed first.
 */
export async function runJob(loaded: LoadedConfig, options: RunOptions, log: Logger, io: RunIo): Promise<RunResult> {
  const { app } = loaded.config;
  return withManagerEngine(loaded, log, async (cluster, engine) => {
    const { version, service } = await resolveVersionService(cluster, engine, app, { service: options.service, version: options.version, verb: 'run' });
    const spec = planRunJob({
      app, version, service: options.service, command: options.command,
      spec: await inspectServiceSpec(engine, service.id),
      id: randomBytes(3).toString('hex'),
      by: `${userInfo().username}@${hostname()}`,
      startedAt: new Date().toISOString(),
    });
    await removeLeftoverJobs(engine, app, log);
    log.debug(`job ${spec.Name}: ${options.command.join(' ')} (version ${version})`);
    const follow = new AbortController();
    const removeJob = async () => {
      follow.abort();
      await removeService(engine, spec.Name);
    };
    const unregister = onInterrupt(removeJob, `removing job ${spec.Name}`);
    try {
      await createService(engine, spec);
      const write = (frame: Frame) => (frame.stream === 2 ? io.stderr : io.stdout).write(frame.payload);
      const following = followJobOutput(engine, spec.Name, write, follow.signal);
      let progress: JobProgress;
      try {
        progress = await waitForJob(engine, spec.Name, follow.signal);
      } finally {
        follow.abort();
      }
      const printed = await following;
      // the followed stream may lag behind the task's end: the whole output, read now, has the rest
      for (const frame of unprintedFrames(await readJobOutput(engine, spec.Name), printed)) write(frame);
      if (progress.kind === 'exited') {
        if (progress.note !== undefined) log.warn(`job ${spec.Name}: ${progress.note}`);
        return { job: spec.Name, version, exitCode: progress.exitCode };
      }
      throw new OperationError(`job ${spec.Name} did not run: ${progress.kind === 'failed' ? progress.reason : 'it ended without a result'}`,
        'Check that the version is healthy (depl status) and that a node can run it.', 'JOB_FAILED');
    } finally {
      unregister();
      await removeService(engine, spec.Name).catch((error: Error) => log.warn(`could not remove job ${spec.Name}: ${error.message}; the next depl run or depl prune removes it`));
    }
  });
}

/** Polls the job's task until it has exited or failed; a job no node starts within START_TIMEOUT_MS fails. */
async function waitForJob(engine: Engine, name: string, signal: AbortSignal): Promise<Exclude<JobProgress, { kind: 'waiting' | 'running' }>> {
  const started = Date.now();
  let last: JobProgress = { kind: 'waiting', detail: 'no task scheduled yet' };
  return pollUntil(async () => {
    last = jobProgress(await serviceTasks(engine, name));
    if (last.kind === 'exited' || last.kind === 'failed') return last;
    if (last.kind === 'waiting' && Date.now() - started > START_TIMEOUT_MS) {
      throw new OperationError(`job ${name} was not started within ${START_TIMEOUT_MS / 1000} s: ${last.detail}`, 'Check the nodes (depl status) and that the image is on them.', 'JOB_NOT_STARTED');
    }
    return undefined;
  }, { timeoutMs: Number.POSITIVE_INFINITY, intervalMs: 100, maxIntervalMs: 1_000, signal, onTimeout: () => { throw new Error('unreachable'); } });
}

/** Removes the app's finished jobs whose `depl run` did not (it was killed); returns their names. */
export async function removeLeftoverJobs(engine: Engine, app: string, log: Logger): Promise<string[]> {
  const removed: string[] = [];
  for (const job of leftoverJobs(await listJobs(engine, app))) {
    const row = jobRow(job);
    log.step(`removing job ${row.name} left by an interrupted depl run (${row.service} of ${row.version}, started ${row.startedAt} by ${row.by}${row.exitCode !== null ? `, exit ${row.exitCode}` : ''})`);
    await removeService(engine, job.name);
    removed.push(job.name);
  }
  return removed;
}

/** The app's jobs now on the swarm (running ones, and finished ones a killed `depl run` left), for depl status. */
export async function readJobs(loaded: LoadedConfig, log: Logger, cluster?: Cluster): Promise<JobRow[]> {
  return withManagerEngine(loaded, log, async (_cluster, engine) => (await listJobs(engine, loaded.config.app)).map(jobRow), cluster);
}
