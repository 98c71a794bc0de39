import type { TestProject } from 'vitest/node';
import { ensureDockerEngine, type DockerEngine } from '../../src/apply/host/docker-engine.js';
import { createLogger } from '../../src/util/log.js';
import { awaitRemovalJobs, makeRemovalJobsDir } from './background-removal.js';

/**
 * Integration tests talk to a real Docker Engine. Use the running one; otherwise install docker.io and
 * start dockerd here, and stop it (by its pid) when the run ends.
 */
let engine: DockerEngine | undefined;
/** Where the files put the removals of their test clusters that run on after them (background-removal.ts). */
let removalJobs: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const log = createLogger();
  engine = await ensureDockerEngine(log);
  if (engine.startedHere) log.info(`integration tests: started dockerd (pid ${engine.pid}); it stops when the run ends`);
  project.provide('dockerSocket', engine.socketPath);
  removalJobs = await makeRemovalJobsDir();
  project.provide('backgroundRemovals', removalJobs);
}

/** Waits for the clusters' removals (failing the run on what one left), then stops a dockerd started here. */
export async function teardown(): Promise<void> {
  try {
    if (removalJobs !== undefined) await awaitRemovalJobs(removalJobs);
  } finally {
    await engine?.stop();
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    dockerSocket: string;
    backgroundRemovals: string;
  }
}
