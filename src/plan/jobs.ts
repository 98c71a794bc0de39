import { checkServiceName, checkVersionLabel } from '../names.js';
import { UserError } from '../errors.js';
import { parseDuration } from './duration.js';
import { LABELS } from './services.js';

/**
 * `depl run` and `depl exec`: what to ask the swarm for. A one-off job is a `replicated-job` service made from
 * the version's own service spec as the swarm holds it (the spec src/plan/services.ts planned at buildinst), so
 * it has the same image, config, secrets, env, mounts and network; only its command, labels and modes differ.
 */

/** Labels that mark a service as a `depl run` job (besides `depl.app`), so leftovers are found by label. */
export const JOB_LABELS = {
  /** `run` or `release` (JobPurpose): the mark that tells a job from a version's service or an accessory. */
  job: 'depl.job',
  service: 'depl.job.service',
  version: 'depl.job.version',
  /** `user@host` of the operator who started it. */
  by: 'depl.job.by',
  /** ISO time it was started. */
  started: 'depl.job.started',
} as const;

/**
 * What a job is for: `run` (an operator's `depl run`), `release` (depl.yaml's release phase, run by buildinst) or
 * `database` (a branch database made, dumped or dropped: src/plan/branch-database.ts) or `volume` (a volume copied
 * into its app-scoped name: src/plan/volume-move.ts).
 * It is the value of the `depl.job` label, so `depl run`'s clean-up of leftover jobs never takes a release job
 * that a buildinst is waiting on.
 */
export type JobPurpose = 'run' | 'release' | 'database' | 'volume';

/** A job name fits Docker's 63 characters: app (<= 20) + `-release-` + service (<= 20) + `-` + 6 hex. */
export function jobName(app: string, service: string, id: string, purpose: JobPurpose = 'run'): string {
  return `${app}-${purpose}-${service}-${id}`;
}

/** The parts of an Engine API ServiceSpec (as `docker service inspect` returns it) that a job copies. */
export interface InspectedServiceSpec {
  Name?: string;
  Labels?: Record<string, string>;
  TaskTemplate?: {
    ContainerSpec?: { Image?: string; Args?: string[]; Labels?: Record<string, string>; HealthCheck?: unknown } & Record<string, unknown>;
    Networks?: { Target: string; Aliases?: string[]; DriverOpts?: Record<string, string> }[];
    Placement?: { Constraints?: string[]; Preferences?: unknown[]; Platforms?: unknown[]; MaxReplicas?: number };
    Resources?: unknown;
    LogDriver?: unknown;
  } & Record<string, unknown>;
}

export interface JobSpec {
  Name: string;
  Labels: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: { Image: string; Args: string[]; Labels: Record<string, string> } & Record<string, unknown>;
    RestartPolicy: { Condition: 'none'; Delay: number; MaxAttempts: number; Window: number };
    Networks: { Target: string }[];
    Placement?: { Constraints?: string[]; Preferences?: unknown[]; Platforms?: unknown[] };
    Resources?: unknown;
    LogDriver?: unknown;
  };
  Mode: { ReplicatedJob: { MaxConcurrent: 1; TotalCompletions: 1 } };
  EndpointSpec: { Mode: 'dnsrr' };
}

export interface RunJobInput {
  app: string;
  version: string;
  service: string;
  /** The version's service spec as the swarm holds it. */
  spec: InspectedServiceSpec;
  /**
   * Replaces the service's command (its Args); the image's ENTRYPOINT, if any, stays, as with `docker run`.
   * With `entrypoint`, these are the entrypoint's arguments (possibly none).
   */
  command: readonly string[];
  /** Replaces the image's ENTRYPOINT (the swarm's Command), as `docker run --entrypoint` does. */
  entrypoint?: string;
  /** A few random hex characters, passed in: plan/ makes none. */
  id: string;
  /** Default `run`. */
  purpose?: JobPurpose;
  by: string;
  startedAt: string;
}

/** A job needs something to run: a command after `--`, or an `--entrypoint` (whose arguments may be none). */
export function checkJobCommand(service: string, command: readonly string[], entrypoint: string | undefined): void {
  if (entrypoint === '') throw new UserError('--entrypoint is empty', `Name a program, e.g. depl run --entrypoint sh ${service} -- -c 'echo hi'`, 'BAD_USAGE');
  if (command.length === 0 && entrypoint === undefined) {
    throw new UserError('no command to run', `Give one after --, e.g. depl run ${service} -- node --version`, 'BAD_USAGE');
  }
}

/**
 * The job's spec: the service's container spec (image, env, configs, secrets, mounts, user, dir...) with the
 * operator's command; its network, placement, resources and log driver. No health check (a job is not a
 * server), no restart (the exit code is the answer, not a reason to try again), no network alias (the job must
 * not answer for the service's name), exactly one task.
 */
export function planRunJob(input: RunJobInput): JobSpec {
  const { app, version, service, spec } = input;
  checkJobCommand(service, input.command, input.entrypoint);
  const template = spec.TaskTemplate ?? {};
  const { Args: _args, Labels: _labels, HealthCheck: _health, ...copied } = template.ContainerSpec ?? {};
  const container = input.entrypoint === undefined ? copied : { ...copied, Command: [input.entrypoint] };
  const image = container.Image;
  if (typeof image !== 'string' || image.length === 0) throw new Error(`service ${spec.Name ?? service} has no image in its spec`);
  const labels = {
    [LABELS.app]: app,
    [JOB_LABELS.job]: input.purpose ?? 'run',
    [JOB_LABELS.service]: service,
    [JOB_LABELS.version]: version,
    [JOB_LABELS.by]: input.by,
    [JOB_LABELS.started]: input.startedAt,
  };
  const placement = template.Placement;
  const keptPlacement = placement === undefined ? undefined : {
    ...(placement.Constraints !== undefined ? { Constraints: [...placement.Constraints] } : {}),
    ...(placement.Preferences !== undefined ? { Preferences: placement.Preferences } : {}),
    ...(placement.Platforms !== undefined ? { Platforms: placement.Platforms } : {}),
  };
  return {
    Name: jobName(app, service, input.id, input.purpose),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: { ...container, Image: image, Args: [...input.command], Labels: labels },
      RestartPolicy: { Condition: 'none', Delay: 0, MaxAttempts: 0, Window: 0 },
      Networks: (template.Networks ?? []).map((n) => ({ Target: n.Target, ...(n.DriverOpts !== undefined ? { DriverOpts: n.DriverOpts } : {}) })),
      ...(keptPlacement !== undefined && Object.keys(keptPlacement).length > 0 ? { Placement: keptPlacement } : {}),
      ...(template.Resources !== undefined ? { Resources: template.Resources } : {}),
      ...(template.LogDriver !== undefined ? { LogDriver: template.LogDriver } : {}),
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

/** How long a job may run before depl stops it, unless `--timeout` says otherwise: a server is not a job. */
export const DEFAULT_JOB_TIMEOUT = '1h';

/** `--timeout`: a duration (`30s`, `2h`), or `none` for a job that may run as long as it takes. Null: no limit. */
export function jobTimeoutMs(text: string | undefined): number | null {
  const value = text ?? DEFAULT_JOB_TIMEOUT;
  return value === 'none' ? null : parseDuration(value, '--timeout');
}

/** How long a job may wait for a node to start it (no node fits, an image missing) before depl gives up. */
export const JOB_START_TIMEOUT_MS = 300_000;

/** What `depl run` does next, from its job's progress and the time since it created the job. */
export type JobWait =
  | { kind: 'wait' }
  | { kind: 'ended'; progress: Extract<JobProgress, { kind: 'exited' | 'failed' }> }
  /** Still waiting for a node after JOB_START_TIMEOUT_MS. */
  | { kind: 'not-started'; detail: string }
  /** Still not finished when its --timeout ran out: to be stopped. */
  | { kind: 'timed-out' };

/** How a job ended, as the one runner of jobs (src/apply/jobs.ts runJobService) reports it. */
export type JobEnd = Exclude<JobWait, { kind: 'wait' }>;

export function jobWait(progress: JobProgress, elapsedMs: number, timeoutMs: number | null): JobWait {
  if (progress.kind === 'exited' || progress.kind === 'failed') return { kind: 'ended', progress };
  if (timeoutMs !== null && elapsedMs >= timeoutMs) return { kind: 'timed-out' };
  if (progress.kind === 'waiting' && elapsedMs > JOB_START_TIMEOUT_MS) return { kind: 'not-started', detail: progress.detail };
  return { kind: 'wait' };
}

/** How a job that did not exit 0 ended, for an error that names the job: "its job <this>". */
export function describeJobEnd(end: JobEnd, timeoutMs: number): string {
  if (end.kind === 'timed-out') return `did not finish within ${timeoutMs / 60_000} minutes`;
  if (end.kind === 'not-started') return `was not started (${end.detail})`;
  const progress = end.progress;
  if (progress.kind === 'failed') return `did not run (${progress.reason})`;
  return `exited with ${progress.exitCode}`;
}

/** The exit code of a job that ran to its end, else null. */
export function jobExitCode(end: JobEnd): number | null {
  return end.kind === 'ended' && end.progress.kind === 'exited' ? end.progress.exitCode : null;
}

/** The labels that find every job of an app (the Engine API's `label` filter). */
export function jobFilter(app: string): Record<string, string> {
  return { [LABELS.app]: app, [JOB_LABELS.job]: 'run' };
}

/** A task as the job's progress needs it. */
export interface JobTask {
  state: string;
  error: string;
  message: string;
  exitCode?: number;
}

export type JobProgress =
  | { kind: 'waiting'; detail: string }
  | { kind: 'running' }
  /** The command ran and exited: its exit code is the answer. `note` is the swarm's reason when it says more than the code. */
  | { kind: 'exited'; exitCode: number; note?: string }
  /** The command never ran (rejected, no container) or the task was taken away (service removed, node lost). */
  | { kind: 'failed'; reason: string };

const WAITING = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

/** Where a job stands, from its tasks (one, since it runs once and is never restarted). */
export function jobProgress(tasks: readonly JobTask[]): JobProgress {
  const task = tasks[tasks.length - 1];
  if (task === undefined) return { kind: 'waiting', detail: 'no task scheduled yet' };
  if (WAITING.has(task.state)) return { kind: 'waiting', detail: [task.state, task.error || task.message].filter(Boolean).join(': ') };
  if (task.state === 'running') return { kind: 'running' };
  if (task.state === 'complete') return { kind: 'exited', exitCode: task.exitCode ?? 0 };
  if (task.state === 'failed' && task.exitCode !== undefined && task.exitCode !== 0) {
    const plain = task.error === '' || /^task: non-zero exit \(\d+\)$/.test(task.error);
    return plain ? { kind: 'exited', exitCode: task.exitCode } : { kind: 'exited', exitCode: task.exitCode, note: task.error };
  }
  return { kind: 'failed', reason: [task.state, task.error || task.message].filter(Boolean).join(': ') };
}

/** A job service as listed: its name, labels and the progress of its task. */
export interface JobListing {
  name: string;
  labels: Record<string, string>;
  progress: JobProgress;
}

/** One line of `depl status`'s jobs. */
export interface JobRow {
  name: string;
  service: string;
  version: string;
  by: string;
  startedAt: string;
  state: 'waiting' | 'running' | 'exited' | 'failed';
  exitCode: number | null;
}

export function jobRow(job: JobListing): JobRow {
  return {
    name: job.name,
    service: job.labels[JOB_LABELS.service] ?? '',
    version: job.labels[JOB_LABELS.version] ?? '',
    by: job.labels[JOB_LABELS.by] ?? '',
    startedAt: job.labels[JOB_LABELS.started] ?? '',
    state: job.progress.kind,
    exitCode: job.progress.kind === 'exited' ? job.progress.exitCode : null,
  };
}

/**
 * Jobs whose `depl run` is gone (killed before it could remove them): every finished one. A job still waiting
 * or running may belong to another operator's `depl run` that is still streaming it, so it is left alone
 * (and shown by `depl status`).
 */
export function leftoverJobs(jobs: readonly JobListing[]): JobListing[] {
  return jobs.filter((j) => j.progress.kind === 'exited' || j.progress.kind === 'failed');
}

/** One frame of Docker's multiplexed stream (stdout 1, stderr 2; 0 is stdin, written as stdout). */
export interface Frame {
  stream: 1 | 2;
  payload: Uint8Array;
}

/**
 * Splits Docker's multiplexed framing (8-byte header: stream, 0, 0, 0, big-endian length) into frames, and
 * returns the bytes of an incomplete last frame to be prepended to the next chunk.
 */
export function splitFrames(data: Uint8Array): { frames: Frame[]; rest: Uint8Array } {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset + 8 <= data.length) {
    const size = ((data[offset + 4]! << 24) >>> 0) + (data[offset + 5]! << 16) + (data[offset + 6]! << 8) + data[offset + 7]!;
    if (offset + 8 + size > data.length) break;
    frames.push({ stream: data[offset] === 2 ? 2 : 1, payload: data.subarray(offset + 8, offset + 8 + size) });
    offset += 8 + size;
  }
  return { frames, rest: data.subarray(offset) };
}

/**
 * The part of a job's whole output (all its frames, read once it ended) not yet printed while following it:
 * `printed` counts the bytes already written per stream, and each stream's output is in order in both reads.
 */
export function unprintedFrames(frames: readonly Frame[], printed: { 1: number; 2: number }): Frame[] {
  const skip = { ...printed };
  const out: Frame[] = [];
  for (const frame of frames) {
    const drop = Math.min(skip[frame.stream], frame.payload.length);
    skip[frame.stream] -= drop;
    if (drop < frame.payload.length) out.push({ stream: frame.stream, payload: frame.payload.subarray(drop) });
  }
  return out;
}

/** The service and version names an operator typed, checked before they reach a filter or a name. */
export function checkJobTarget(service: string, version: string | undefined): void {
  const s = checkServiceName(service);
  if (!s.ok) throw new UserError(`service "${service}" ${s.reason}`, 'Name a service of depl.yaml, e.g. depl run api -- node --version.', 'BAD_USAGE');
  if (version !== undefined) {
    const v = checkVersionLabel(version);
    if (!v.ok) throw new UserError(`version "${version}" ${v.reason}`, 'Name an installed version (see depl versions).', 'BAD_USAGE');
  }
}

/** A running task to exec into, with where its container is. */
export interface ExecTask {
  id: string;
  slot: number;
  state: string;
  desired: string;
  nodeId: string;
  containerId: string;
}

/** The running task with the lowest slot (a stable choice), or null when none runs. */
export function pickExecTask(tasks: readonly ExecTask[]): ExecTask | null {
  const running = tasks.filter((t) => t.state === 'running' && t.desired === 'running' && t.containerId !== '' && t.nodeId !== '');
  running.sort((a, b) => a.slot - b.slot || a.id.localeCompare(b.id));
  return running[0] ?? null;
}

/** The Engine API's exec create body: with a TTY stdout and stderr are one stream, as `docker exec -it` does. */
export function planExec(command: readonly string[], tty: boolean, term: string | undefined): { Cmd: string[]; AttachStdin: true; AttachStdout: true; AttachStderr: true; Tty: boolean; Env?: string[] } {
  if (command.length === 0) throw new UserError('no command to run', 'Give one after --, e.g. depl exec api -- sh', 'BAD_USAGE');
  return {
    Cmd: [...command],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: tty,
    ...(tty && term !== undefined && term !== '' ? { Env: [`TERM=${term}`] } : {}),
  };
}
