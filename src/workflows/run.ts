import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Cluster } from '../apply/cluster.js';
import type { Engine } from '../apply/docker.js';
import { inspectServiceSpec, listJobs, runJobService } from '../apply/jobs.js';
import { readReleaseDocument } from '../apply/release-store.js';
import { listServices, removeService, type InstalledService } from '../apply/swarm.js';
import { OperationError, UserError } from '../errors.js';
import {
  checkJobCommand, checkJobTarget, DEFAULT_JOB_TIMEOUT, JOB_START_TIMEOUT_MS, jobRow, jobTimeoutMs, leftoverJobs, planRunJob,
  type Frame, type JobRow,
} from '../plan/jobs.js';
import { LABELS } from '../plan/services.js';
import { onInterrupt } from '../util/interrupt.js';
import type { Logger } from '../util/log.js';
import type { ClusterAccess } from './command-inputs.js';
import { withManagerEngine } from './versions.js';

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
  /** Replaces the image's ENTRYPOINT; `command` is then its arguments. */
  entrypoint?: string;
  /** `--timeout`: a duration or `none`; default DEFAULT_JOB_TIMEOUT. */
  timeout?: string;
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
 * streamed as it comes, its exit code returned, the job removed afterwards (also on Ctrl-C, and when it outlives
 * its timeout, which fails the run). Jobs that an earlier, killed `depl run` left finished are removed first.
 */
export async function runJob(access: Pick<ClusterAccess, 'app' | 'open'>, options: RunOptions, log: Logger, io: RunIo): Promise<RunResult> {
  const { app } = access;
  // bad input is refused before any connection is made
  checkJobTarget(options.service, options.version);
  checkJobCommand(options.service, options.command, options.entrypoint);
  const timeoutMs = jobTimeoutMs(options.timeout);
  return withManagerEngine(access, log, async (cluster, engine) => {
    const { version, service } = await resolveVersionService(cluster, engine, app, { service: options.service, version: options.version, verb: 'run' });
    const spec = planRunJob({
      app, version, service: options.service, command: options.command,
      ...(options.entrypoint !== undefined ? { entrypoint: options.entrypoint } : {}),
      spec: await inspectServiceSpec(engine, service.id),
      id: randomBytes(3).toString('hex'),
      by: `${userInfo().username}@${hostname()}`,
      startedAt: new Date().toISOString(),
    });
    await removeLeftoverJobs(engine, app, log);
    log.debug(`job ${spec.Name}: ${[...(options.entrypoint !== undefined ? [`--entrypoint ${options.entrypoint}`] : []), ...options.command].join(' ')} (version ${version})`);
    const follow = new AbortController();
    const removeJob = async () => {
      follow.abort();
      await removeService(engine, spec.Name);
    };
    const unregister = onInterrupt(removeJob, `removing job ${spec.Name}`);
    try {
      const write = (frame: Frame) => (frame.stream === 2 ? io.stderr : io.stdout).write(frame.payload);
      const waited = await runJobService(engine, spec, { timeoutMs, write, signal: follow.signal });
      if (waited.kind === 'timed-out') {
        // the finally below removes the job, which stops its task (SIGTERM, then SIGKILL after its grace period)
        throw new OperationError(`job ${spec.Name} did not finish within --timeout ${options.timeout ?? DEFAULT_JOB_TIMEOUT}: stopped and removed`,
          'Pass a longer --timeout (or --timeout none); an image whose ENTRYPOINT is a server needs --entrypoint to run something else.', 'JOB_TIMEOUT');
      }
      if (waited.kind === 'not-started') {
        throw new OperationError(`job ${spec.Name} was not started within ${JOB_START_TIMEOUT_MS / 1000} s: ${waited.detail}`, 'Check the nodes (depl status) and that the image is on them.', 'JOB_NOT_STARTED');
      }
      const progress = waited.progress;
      if (progress.kind === 'exited') {
        if (progress.note !== undefined) log.warn(`job ${spec.Name}: ${progress.note}`);
        return { job: spec.Name, version, exitCode: progress.exitCode };
      }
      throw new OperationError(`job ${spec.Name} did not run: ${progress.reason}`,
        'Check that the version is healthy (depl status) and that a node can run it.', 'JOB_FAILED');
    } finally {
      unregister();
      await removeService(engine, spec.Name).catch((error: Error) => log.warn(`could not remove job ${spec.Name}: ${error.message}; the next depl run or depl prune removes it`));
    }
  });
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
export async function readJobs(access: Pick<ClusterAccess, 'app' | 'open'>, log: Logger, cluster?: Cluster): Promise<JobRow[]> {
  return withManagerEngine(access, log, async (_cluster, engine) => (await listJobs(engine, access.app)).map(jobRow), cluster);
}
