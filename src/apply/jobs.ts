import { OperationError } from '../errors.js';
import { jobFilter, jobProgress, splitFrames, type Frame, type InspectedServiceSpec, type JobListing } from '../plan/jobs.js';
import type { Engine } from './docker.js';
import { listServices, serviceTasks } from './swarm.js';

/** `depl run`'s effects on the swarm: read a version's service spec, list jobs, stream a job's output. */

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
