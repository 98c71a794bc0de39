import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { OperationError } from '../errors.js';
import { redisCliCommand, redisError, type HelperContainerSpec } from '../plan/backup.js';
import { LABELS } from '../plan/services.js';
import { legacyAccessoryOf } from '../plan/accessory-rename.js';
import { accessoryServiceName } from '../plan/names.js';
import { pollUntil } from '../util/poll.js';
import type { Engine } from './docker.js';
import type { Remote } from './remote.js';
import { demux, listServices, type InstalledService } from './swarm.js';

/**
 * Effects on an accessory's data (what src/plan/backup.ts plans): find its task and node, run redis-cli in
 * its container, scale it, pause it, and read, empty and fill its volume through a helper container and
 * Docker's archive API on the accessory's node.
 */

export interface AccessoryPlace {
  service: InstalledService;
  /** The node its running task is on, else the node of its latest task; null when it never ran. */
  node: string | null;
  /** The running task's container, null when none runs. */
  containerId: string | null;
  taskIds: string[];
}

interface RawTask {
  ID: string;
  NodeID?: string;
  CreatedAt?: string;
  DesiredState?: string;
  Status?: { State?: string; ContainerStatus?: { ContainerID?: string } };
}

function apiMessage(error: unknown): string {
  return ((error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error)).trim();
}

/** The app's accessory `name`: its service `<app>-<name>`, or under its old name until buildinst has moved it. */
export async function findAccessory(engine: Engine, app: string, name: string): Promise<AccessoryPlace | null> {
  const listed = await listServices(engine, { [LABELS.app]: app, [LABELS.accessory]: name });
  const service = listed.find((s) => s.name === accessoryServiceName(app, name)) ?? legacyAccessoryOf(listed, app, name);
  if (service === undefined) return null;
  const [tasks, nodes] = await Promise.all([
    engine.docker.listTasks({ filters: JSON.stringify({ service: [service.id] }) } as object) as Promise<RawTask[]>,
    engine.docker.listNodes() as Promise<Array<{ ID: string; Description?: { Hostname?: string } }>>,
  ]);
  const hostname = (id: string | undefined) => nodes.find((n) => n.ID === id)?.Description?.Hostname ?? null;
  const running = tasks.find((t) => t.DesiredState === 'running' && t.Status?.State === 'running' && t.Status.ContainerStatus?.ContainerID);
  const latest = [...tasks].filter((t) => t.NodeID).sort((a, b) => (b.CreatedAt ?? '').localeCompare(a.CreatedAt ?? ''))[0];
  return {
    service,
    node: hostname(running?.NodeID ?? latest?.NodeID),
    containerId: running?.Status?.ContainerStatus?.ContainerID ?? null,
    taskIds: tasks.map((t) => t.ID),
  };
}

/** Runs redis-cli in the accessory's container; an error reply or a failed exec is an OperationError. */
export async function redisCli(remote: Remote, containerId: string, port: number, passwordSecret: string | null, args: readonly string[]): Promise<string> {
  const result = await remote.exec(redisCliCommand(containerId, port, passwordSecret, args), { check: false, timeoutMs: 60_000 });
  const error = redisError(result.stdout) ?? (result.code !== 0 ? (result.stderr.trim() || result.stdout.trim() || `exit ${result.code}`) : null);
  if (error !== null) {
    throw new OperationError(`${remote.name}: redis-cli ${args.join(' ')} in the accessory's container: ${error}`,
      /NOAUTH|WRONGPASS/.test(error) ? 'Redis refused the password from the accessory\'s secret: set backup.passwordSecret in depl.yaml to the secret it uses.' : undefined, 'REDIS_COMMAND');
  }
  return result.stdout;
}

/** Sets the service's replica count (the rest of its spec as it is). */
export async function scaleService(engine: Engine, name: string, replicas: number): Promise<void> {
  try {
    const service = engine.docker.getService(name);
    const info = await service.inspect() as { Spec: Record<string, unknown>; Version: { Index: number } };
    await service.update({ ...info.Spec, Mode: { Replicated: { Replicas: replicas } }, version: info.Version.Index } as never);
  } catch (error) {
    throw new OperationError(`${engine.name}: cannot scale ${name} to ${replicas}: ${apiMessage(error)}`, undefined, 'SWARM_API', { cause: error });
  }
}

const ENDED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove']);

/** Waits until none of the service's tasks runs any more (its containers have exited). */
export async function waitStopped(engine: Engine, name: string, timeoutMs: number): Promise<void> {
  await pollUntil(async () => {
    const tasks = await engine.docker.listTasks({ filters: JSON.stringify({ service: [name] }) } as object) as RawTask[];
    return tasks.every((t) => ENDED.has(t.Status?.State ?? '')) ? true : undefined;
  }, {
    timeoutMs,
    intervalMs: 500,
    onTimeout: () => { throw new OperationError(`${name} did not stop within ${Math.round(timeoutMs / 1000)} s`, `See \`docker service ps ${name}\` on the manager.`, 'ACCESSORY_STOP'); },
  });
}

export async function isPaused(engine: Engine, containerId: string): Promise<boolean> {
  const info = await engine.docker.getContainer(containerId).inspect();
  return Boolean(info.State?.Paused);
}

export async function pauseContainer(engine: Engine, containerId: string): Promise<void> {
  await engine.docker.getContainer(containerId).pause().catch((error) => {
    throw new OperationError(`${engine.name}: cannot pause the accessory's container: ${apiMessage(error)}`, undefined, 'DOCKER_API', { cause: error });
  });
}

export async function unpauseContainer(engine: Engine, containerId: string): Promise<void> {
  await engine.docker.getContainer(containerId).unpause().catch((error) => {
    if (/is not paused/.test(apiMessage(error))) return;
    throw new OperationError(`${engine.name}: cannot resume the accessory's container ${containerId.slice(0, 12)}: ${apiMessage(error)}`, `Resume it by hand: docker unpause ${containerId.slice(0, 12)} on ${engine.name}.`, 'DOCKER_API', { cause: error });
  });
}

/** Docker's archive of one path in a container (a tar stream), the running accessory's or a helper's. */
export async function readArchive(engine: Engine, containerId: string, path: string): Promise<Readable> {
  try {
    return await engine.docker.getContainer(containerId).getArchive({ path }) as unknown as Readable;
  } catch (error) {
    throw new OperationError(`${engine.name}: cannot copy ${path} out of the container: ${apiMessage(error)}`, undefined, 'DOCKER_ARCHIVE', { cause: error });
  }
}

/** The single file of an archive of one file (GET archive of a file path), as a stream with its size. */
export function singleFile(archive: Readable): Promise<{ size: number; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    let found = false;
    extract.on('entry', (header, stream, next) => {
      if (found || header.type !== 'file') {
        stream.resume();
        stream.on('end', () => next());
        return;
      }
      found = true;
      stream.on('end', () => next());
      resolve({ size: header.size ?? 0, stream });
    });
    extract.on('finish', () => { if (!found) reject(new OperationError('the copied archive held no file', undefined, 'DOCKER_ARCHIVE')); });
    extract.on('error', reject);
    archive.on('error', (error) => extract.destroy(error));
    archive.pipe(extract);
  });
}

/** Runs fn with a helper container (created, not started) that mounts the accessory's volume; removed after. */
export async function withHelper<T>(engine: Engine, spec: HelperContainerSpec, fn: (containerId: string) => Promise<T>): Promise<T> {
  let id: string;
  try {
    id = (await engine.docker.createContainer(spec as never)).id;
  } catch (error) {
    throw new OperationError(`${engine.name}: cannot create a helper container with the accessory's volume ${spec.HostConfig.Mounts[0]?.Source}: ${apiMessage(error)}`, undefined, 'DOCKER_API', { cause: error });
  }
  try {
    return await fn(id);
  } finally {
    await engine.docker.getContainer(id).remove({ force: true, v: false }).catch(() => undefined);
  }
}

/** Starts the helper (which empties the volume) and waits for it to exit 0. */
export async function runHelper(engine: Engine, containerId: string, what: string): Promise<void> {
  const container = engine.docker.getContainer(containerId);
  try {
    await container.start();
    const result = await container.wait() as { StatusCode?: number };
    if (result.StatusCode !== 0) {
      const logs = await container.logs({ stdout: true, stderr: true, tail: 10 } as never) as unknown as Buffer;
      throw new OperationError(`${engine.name}: ${what} failed (exit ${result.StatusCode}): ${demux(Buffer.from(logs)).trim().slice(-500)}`, undefined, 'HELPER_FAILED');
    }
  } catch (error) {
    if (error instanceof OperationError) throw error;
    throw new OperationError(`${engine.name}: ${what} failed: ${apiMessage(error)}`, undefined, 'HELPER_FAILED', { cause: error });
  }
}

/** Extracts a tar stream into the container's filesystem at `path` (the volume, through the helper). */
export async function writeArchive(engine: Engine, containerId: string, path: string, archive: Readable): Promise<void> {
  try {
    const response = await engine.docker.getContainer(containerId).putArchive(archive as never, { path }) as unknown;
    if (response && typeof (response as Readable).resume === 'function') {
      await new Promise<void>((resolve, reject) => {
        (response as Readable).on('end', resolve).on('error', reject).resume();
      });
    }
  } catch (error) {
    throw new OperationError(`${engine.name}: cannot copy the data into ${path}: ${apiMessage(error)}`, undefined, 'DOCKER_ARCHIVE', { cause: error });
  }
}
