import { OperationError } from '../errors.js';
import {
  jobFilter, jobProgress, jobWait, splitFrames, unprintedFrames, type Frame, type InspectedServiceSpec, type JobEnd, type JobListing, type JobSpec,
} from '../plan/jobs.js';
import { pollUntil } from '../util/poll.js';
import type { Engine } from './docker.js';
import { createService, listServices, serviceTasks } from './swarm.js';

/**
 * One-off jobs on the swarm (`depl run`, and buildinst's release phase): read a version's service spec, run a
 * job to its end while streaming its output, list jobs.
 */

/**
 * The one way depl runs a job: creates the job service, writes its output as it comes, waits until its task
 * has ended, its timeout has run out or no node started it in time (jobWait), then writes whatever the followed
 * stream had not delivered yet. The caller removes the job afterwards (in a finally: also on Ctrl-C), which
 * stops a task still running (SIGTERM, then SIGKILL after its grace period). `signal` ends the wait early.
 */
export async function runJobService(engine: Engine, spec: JobSpec, options: { timeoutMs: number | null; write: (frame: Frame) => void; signal?: AbortSignal }): Promise<JobEnd> {
  await createService(engine, spec);
  const follow = new AbortController();
  const stop = () => follow.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    const following = followJobOutput(engine, spec.Name, options.write, follow.signal);
    let ended: JobEnd;
    try {
      ended = await waitForJob(engine, spec.Name, options.timeoutMs, follow.signal);
    } finally {
      follow.abort();
    }
    const printed = await following;
    // the followed stream may lag behind the task's end: the whole output, read now, has the rest
    for (const frame of unprintedFrames(await readJobOutput(engine, spec.Name), printed)) options.write(frame);
    return ended;
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
}

/** Polls the job's task until it has ended, its timeout has run out, or no node started it in time (see jobWait). */
async function waitForJob(engine: Engine, name: string, timeoutMs: number | null, signal: AbortSignal): Promise<JobEnd> {
  const created = Date.now();
  return pollUntil(async () => {
    const next = jobWait(jobProgress(await serviceTasks(engine, name)), Date.now() - created, timeoutMs);
    return next.kind === 'wait' ? undefined : next;
  }, { timeoutMs: Number.POSITIVE_INFINITY, intervalMs: 100, maxIntervalMs: 1_000, signal, onTimeout: () => { throw new Error('unreachable'); } });
}

function apiMessage(error: unknown): string {
  return ((error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error)).trim();
}

/** The service's spec as the swarm holds it (what buildinst created, plus the engine's defaults). */
export async function inspectServiceSpec(engine: Engine, nameOrId: string): Promise<InspectedServiceSpec> {
  try {
    const inspected = await engine.docker.getService(nameOrId).inspect() as { Spec?: InspectedServiceSpec };
    if (inspected.Spec === undefined) throw new Error('the engine returned no spec');
    return inspected.Spec;
  } catch (error) {
    throw new OperationError(`${engine.name}: cannot inspect service ${nameOrId}: ${apiMessage(error)}`, undefined, 'SWARM_API', { cause: error });
  }
}

/** Every `depl run` job of the app on the swarm, with where its task stands. */
export async function listJobs(engine: Engine, app: string): Promise<JobListing[]> {
  const services = await listServices(engine, jobFilter(app));
  return Promise.all(services.map(async (s) => ({ name: s.name, labels: s.labels, progress: jobProgress(await serviceTasks(engine, s.name)) })));
}

/** Bytes written so far per stream (1 stdout, 2 stderr). */
export type Printed = { 1: number; 2: number };

/**
 * Follows a job's output as the swarm gathers it from the task's node, writing each frame as it arrives, until
 * `signal` aborts (the swarm's log stream does not end by itself when the task exits). Returns the bytes written
 * per stream, so that a last full read can add whatever the stream had not delivered yet.
 */
export async function followJobOutput(engine: Engine, service: string, write: (frame: Frame) => void, signal: AbortSignal): Promise<Printed> {
  const printed: Printed = { 1: 0, 2: 0 };
  let stream: NodeJS.ReadableStream;
  try {
    stream = await engine.docker.getService(service).logs({ stdout: true, stderr: true, follow: true, abortSignal: signal } as object) as unknown as NodeJS.ReadableStream;
  } catch (error) {
    if (signal.aborted) return printed;
    throw new OperationError(`cannot follow the output of ${service}: ${apiMessage(error)}`, undefined, 'LOGS_FAILED', { cause: error });
  }
  const destroy = () => (stream as unknown as { destroy?: () => void }).destroy?.();
  if (signal.aborted) {
    destroy();
    return printed;
  }
  await new Promise<void>((resolve) => {
    let pending: Uint8Array = new Uint8Array(0);
    const finish = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      destroy();
      finish();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      if (signal.aborted) return;
      const joined = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const { frames, rest } = splitFrames(joined);
      pending = Buffer.from(rest);
      for (const frame of frames) {
        write(frame);
        printed[frame.stream] += frame.payload.length;
      }
    });
    stream.on('end', finish);
    stream.on('error', finish);
  });
  return printed;
}

/** The job's whole output, read once its task has ended. */
export async function readJobOutput(engine: Engine, service: string): Promise<Frame[]> {
  try {
    const raw = await engine.docker.getService(service).logs({ stdout: true, stderr: true, follow: false } as object) as unknown as Buffer | NodeJS.ReadableStream;
    const buffer = Buffer.isBuffer(raw) ? raw : await collect(raw);
    return splitFrames(buffer).frames;
  } catch (error) {
    throw new OperationError(`cannot read the output of ${service}: ${apiMessage(error)}`, undefined, 'LOGS_FAILED', { cause: error });
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}
