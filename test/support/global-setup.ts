import type { TestProject } from 'vitest/node';
import { ensureDockerEngine, type DockerEngine } from '../../src/apply/host/docker-engine.js';
import { createLogger } from '../../src/util/log.js';

/**
 * Integration tests talk to a real Docker Engine. Use the running one; otherwise install docker.io and
 * start dockerd here, and stop it (by its pid) when the run ends.
 */
let engine: DockerEngine | undefined;

export async function setup(project: TestProject): Promise<void> {
  const log = createLogger();
  engine = await ensureDockerEngine(log);
  if (engine.startedHere) log.info(`integration tests: started dockerd (pid ${engine.pid}); it stops when the run ends`);
  project.provide('dockerSocket', engine.socketPath);
}

export async function teardown(): Promise<void> {
  await engine?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    dockerSocket: string;
  }
}
