import { OperationError } from '../errors.js';
import type { PresentService } from '../plan/install-plan.js';
import type { ServiceSpec } from '../plan/services.js';
import { repointedSpec, type VolumeLocation } from '../plan/volume-move.js';
import { pollUntil } from '../util/poll.js';
import type { Cluster } from './cluster.js';
import { nodeEngine, type Engine } from './docker.js';
import { inspectServiceSpec, listServices, updateService, type InstalledService } from './swarm.js';

/**
 * The effects of moving a volume into its app-scoped name (src/plan/volume-move.ts plans it): the manager's
 * Engine API for the services, each node's engine (over its SSH connection) for its volumes and containers.
 */

const apiMessage = (error: unknown) => ((error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error)).trim();
const statusOf = (error: unknown) => (error as { statusCode?: number }).statusCode;

/** Runs fn with the node's engine, closed after. */
async function onNode<T>(cluster: Cluster, name: string, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const node = cluster.nodes.find((n) => n.name === name);
  if (node === undefined) {
    throw new OperationError(`node ${name} is not in this cluster's inventory (have: ${cluster.nodes.map((n) => n.name).join(', ')})`, "Run 'depl node-up' to refresh the inventory.", 'NO_SUCH_NODE');
  }
  const engine = await nodeEngine(cluster, node);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

export async function servicesMounting(manager: Engine, volumes: readonly string[]): Promise<PresentService[]> {
  return (await listServices(manager, {}))
    .filter((s) => (s.volumes ?? []).some((v) => volumes.includes(v)))
    .map((s) => ({ name: s.name, labels: s.labels, createdAt: s.createdAt, replicas: s.replicas, image: s.image, ...(s.volumes !== undefined ? { volumes: s.volumes } : {}) }));
}

/** Every node's engine is asked which of the volumes it has; a node that cannot be asked is listed as such. */
export async function locateVolumes(cluster: Cluster, volumes: readonly string[]): Promise<Record<string, VolumeLocation>> {
  const found: Record<string, VolumeLocation> = Object.fromEntries(volumes.map((v) => [v, { nodes: [], unreachable: [] }]));
  await Promise.all(cluster.nodes.map(async (node) => {
    try {
      const listed = await onNode(cluster, node.name, async (engine) => (await engine.docker.listVolumes({ filters: JSON.stringify({ name: volumes }) } as object)) as { Volumes?: { Name: string }[] | null });
      // the name filter matches substrings: only exact names count
      for (const volume of listed.Volumes ?? []) found[volume.Name]?.nodes.push(node.name);
    } catch {
      for (const volume of volumes) found[volume]!.unreachable.push(node.name);
    }
  }));
  for (const location of Object.values(found)) {
    location.nodes.sort();
    location.unreachable.sort();
  }
  return found;
}

export async function awaitVolumeFree(cluster: Cluster, node: string, volume: string, timeoutMs: number): Promise<void> {
  await onNode(cluster, node, (engine) => pollUntil(async () => {
    const holding = await engine.docker.listContainers({ filters: JSON.stringify({ volume: [volume] }) } as object);
    return holding.length === 0 ? true : undefined;
  }, {
    timeoutMs, intervalMs: 500, maxIntervalMs: 2000,
    onTimeout: () => {
      throw new OperationError(`a container on ${node} still holds volume ${volume} after ${timeoutMs / 1000} s`, `See \`docker ps --filter volume=${volume}\` on ${node}, stop it, then run buildinst again.`, 'VOLUME_BUSY');
    },
  }));
}

export async function repointServices(manager: Engine, services: readonly string[], from: string, to: string): Promise<void> {
  for (const name of services) {
    const found = await inspectServiceSpec(manager, name);
    // a service removed meanwhile mounts nothing any more
    if (found === null) continue;
    await updateService(manager, { id: found.id, specVersion: found.version } as InstalledService, repointedSpec(found.spec, from, to) as unknown as ServiceSpec);
  }
}

/**
 * Removes the volume on the node. Containers that ended still name it (the swarm keeps a few of each service's ended
 * tasks, and the copy job's container goes a moment after its service): those are removed first; one that runs
 * keeps the volume, and after `timeoutMs` the engine's refusal is the reason returned.
 */
export async function removeVolume(cluster: Cluster, node: string, volume: string, timeoutMs = 30_000): Promise<{ removed: true } | { removed: false; reason: string }> {
  return onNode(cluster, node, async (engine) => {
    let reason = '';
    const done = await pollUntil(async () => {
      const holding = await engine.docker.listContainers({ all: true, filters: JSON.stringify({ volume: [volume] }) } as object) as { Id: string; State?: string }[];
      for (const container of holding.filter((c) => c.State !== 'running' && c.State !== 'paused' && c.State !== 'restarting')) {
        await engine.docker.getContainer(container.Id).remove({ v: false }).catch(() => undefined);
      }
      try {
        await engine.docker.getVolume(volume).remove();
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return true;
        reason = apiMessage(error);
        return undefined;
      }
    }, { timeoutMs, intervalMs: 500, maxIntervalMs: 2000, onTimeout: () => false });
    return done ? { removed: true as const } : { removed: false as const, reason };
  });
}
