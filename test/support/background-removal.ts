import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../../src/util/poll.js';
import { isAlive } from '../../src/apply/host/docker-engine.js';

/**
 * Each cluster file of the integration project's serial lane removed its nodes, their volumes and bridge in its
 * afterAll, and the next file waited for that: 1.6-5.5 s a cluster at load ~25 (three node containers killed, and
 * their engines' image stores deleted). Here a file hands the ids of what it made to a detached process
 * (remove-docker-objects.mjs) and ends; the project's global teardown waits for every such job before the run
 * ends (and before it stops a dockerd it started) and fails the run when one left something.
 * Only ids the file listed by its own cluster's unique label are removed, never names another run may share.
 */
export interface DockerObjects {
  containers: string[];
  volumes: string[];
  networks: string[];
}

const REMOVER = fileURLToPath(new URL('./remove-docker-objects.mjs', import.meta.url));
/** How long the end of the run waits for the removals still going (each took under 6 s at load ~25). */
const FINAL_WAIT_MS = 600_000;

interface RemovalResult {
  label: string;
  seconds: number;
  failed: string[];
}

/** The run's folder of removal jobs (global setup makes it), in a vitest worker; undefined elsewhere (bench). */
async function runJobsDir(): Promise<string | undefined> {
  if (process.env.VITEST_WORKER_ID === undefined) return undefined;
  const { inject } = await import('vitest');
  return inject('backgroundRemovals');
}

function socketPath(): string {
  return process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') || '/var/run/docker.sock';
}

/**
 * Removes the objects by id. In a vitest run with the integration project's global setup it returns once the
 * removal has started in the background (`wait: false`, the default); `wait: true`, or outside such a run, it
 * returns when they are gone and throws when something was left.
 */
export async function removeDockerObjects(label: string, objects: DockerObjects, options: { wait?: boolean } = {}): Promise<void> {
  if (objects.containers.length + objects.volumes.length + objects.networks.length === 0) return;
  const shared = options.wait === true ? undefined : await runJobsDir();
  const dir = shared ?? await mkdtemp(path.join(os.tmpdir(), 'depl-removal-'));
  const job = path.join(dir, `${label}-${process.pid}-${Date.now()}.json`);
  await writeFile(job, JSON.stringify({ label, socketPath: socketPath(), ...objects }));
  const log = await open(`${job}.log`, 'w');
  try {
    const child = spawn(process.execPath, [REMOVER, job], { detached: shared !== undefined, stdio: ['ignore', log.fd, log.fd] });
    if (shared !== undefined) {
      // the end of the run checks on it by this pid when it has written no result
      await writeFile(`${job}.pid`, String(child.pid ?? ''));
      child.unref();
      return;
    }
    await new Promise<void>((resolve, reject) => child.once('error', reject).once('exit', () => resolve()));
  } finally {
    await log.close();
  }
  try {
    const problems = await problemsOf(job);
    if (problems.length > 0) throw new Error(`could not remove test cluster ${label}'s Docker objects:\n${problems.join('\n')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function resultOf(job: string): Promise<RemovalResult | undefined> {
  const text = await readFile(`${job}.result.json`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as RemovalResult);
}

/** What a finished job left, with its log when it ended without a result (it crashed or was killed). */
async function problemsOf(job: string): Promise<string[]> {
  const result = await resultOf(job);
  if (result !== undefined) return result.failed;
  const log = await readFile(`${job}.log`, 'utf8').catch(() => '');
  return [`${path.basename(job)} ended without a result; its output:\n${log.trim() || '(none)'}`];
}

/** For global setup: the folder the run's workers put their removal jobs in. */
export function makeRemovalJobsDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'depl-test-removals-'));
}

/**
 * For global teardown: waits until every job of the run has ended, says how long they took, removes the folder,
 * and throws naming whatever a job could not remove (or a job that did not end in time).
 */
export async function awaitRemovalJobs(dir: string): Promise<void> {
  const started = Date.now();
  const jobs = (await readdir(dir)).filter((f) => /\.json$/.test(f) && !/\.result\.json$/.test(f)).map((f) => path.join(dir, f));
  const running = async (job: string) => {
    if (await resultOf(job)) return false;
    const pid = Number(await readFile(`${job}.pid`, 'utf8').catch(() => ''));
    return pid > 0 && isAlive(pid);
  };
  const unfinished = await pollUntil(async () => {
    const still = (await Promise.all(jobs.map(async (job) => ((await running(job)) ? job : undefined)))).filter((j) => j !== undefined);
    return still.length === 0 ? [] : undefined;
  }, { timeoutMs: FINAL_WAIT_MS, intervalMs: 250, maxIntervalMs: 2_000, onTimeout: async () => {
    const still = await Promise.all(jobs.map(async (job) => ((await running(job)) ? job : undefined)));
    return still.filter((j): j is string => j !== undefined);
  } });
  const problems = unfinished.map((job) => `${path.basename(job)} still running after ${FINAL_WAIT_MS / 1000} s`);
  const results: RemovalResult[] = [];
  for (const job of jobs.filter((j) => !unfinished.includes(j))) {
    const result = await resultOf(job);
    if (result !== undefined) results.push(result);
    problems.push(...await problemsOf(job));
  }
  if (jobs.length > 0) {
    const total = results.reduce((sum, r) => sum + r.seconds, 0);
    const each = results.map((r) => `${r.label} ${r.seconds.toFixed(0)} s`).join(', ');
    process.stderr.write(`test clusters removed in the background: ${results.length} of ${jobs.length}, ${total.toFixed(0)} s in all (${each}); the run waited ${((Date.now() - started) / 1000).toFixed(1)} s for them at its end\n`);
  }
  if (problems.length > 0) {
    throw new Error(`the test clusters' Docker objects were not all removed (the run fails; remove them by these ids):\n${problems.join('\n')}`);
  }
  await rm(dir, { recursive: true, force: true });
}
