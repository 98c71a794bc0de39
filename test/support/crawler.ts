import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { workerConnection } from '../../crawler/src/redis.js';
import type { ServiceConfig } from '../../crawler/src/config.js';
import type { JobDocument, JobStore } from '../../crawler/src/jobs.js';
import { CrawlWorker } from '../../crawler/src/worker/crawl-worker.js';
import { pollUntil } from '../../src/util/poll.js';
import { repoRoot } from './cli.js';

export const workerEntry = path.join(repoRoot, 'crawler', 'dist', 'worker', 'main.js');
export const apiEntry = path.join(repoRoot, 'crawler', 'dist', 'api', 'server.js');

export function requireBuilt(entry: string): void {
  if (!existsSync(entry)) throw new Error(`${path.relative(repoRoot, entry)} is missing: run 'npm run build' first (npm test does)`);
}

/** Writes a service config JSON to a temp file and returns its file:// URL. */
export async function writeServiceConfig(config: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'crawler-config-'));
  const file = path.join(dir, 'config.json');
  await writeFile(file, JSON.stringify(config, null, 2));
  return pathToFileURL(file).href;
}

export interface ServiceProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnService(entry: string, configUrl: string, env: Record<string, string> = {}): ServiceProcess {
  requireBuilt(entry);
  const child = spawn(process.execPath, [entry, '--config', configUrl], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => output, exited };
}

export async function waitForJob(store: JobStore, id: string, timeoutMs: number, until: (doc: JobDocument) => boolean = (d) => d.status !== 'running'): Promise<JobDocument> {
  let doc: JobDocument | null = null;
  return pollUntil(async () => {
    doc = await store.get(id);
    return doc !== null && until(doc) ? doc : undefined;
  }, { timeoutMs, intervalMs: 50, onTimeout: () => { throw new Error(`job ${id} not there in ${timeoutMs} ms: ${JSON.stringify(doc)}`); } });
}

/**
 * One crawl worker in this process on the test's Redis (its own command and blocking-read connections, as
 * the deployed worker has); `onStop` receives what stops it and closes the connections, for the test's cleanups.
 */
export async function startInProcessWorker(redisUrl: string, config: ServiceConfig, onStop: (stop: () => Promise<void>) => void, graceMs = 300): Promise<CrawlWorker> {
  // the deployed worker's connections: its commands pipelined, its blocking reads on a connection of their own
  const commands = workerConnection(redisUrl, undefined, { pipelined: true });
  const reader = workerConnection(redisUrl);
  for (const connection of [commands, reader]) connection.on('error', () => undefined);
  const worker = new CrawlWorker({ config, redis: commands, reader, log: { info: () => undefined, warn: () => undefined } });
  await worker.start();
  onStop(async () => {
    await worker.stop(graceMs);
    commands.disconnect();
    reader.disconnect();
  });
  return worker;
}
