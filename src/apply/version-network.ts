import { OperationError } from '../errors.js';
import type { ScaleTarget } from '../plan/scale.js';
import { pollUntil } from '../util/poll.js';
import type { Engine } from './docker.js';
import { scaleServices, serviceTasks } from './swarm.js';

/**
 * A version's own overlay network (src/plan/names.ts versionNetworkName) and the stop-first takeover of a
 * stateful service's volume, on the manager's Engine API. The network is encrypted when the app's network is
 * (node-up decided that from the nodes' kernels), so a version's traffic is as protected as the app's.
 */

type NetworkInfo = { Name?: string; Id?: string; Options?: Record<string, string> };

const statusOf = (error: unknown) => (error as { statusCode?: number }).statusCode;

async function networkNamed(engine: Engine, name: string): Promise<NetworkInfo | undefined> {
  const listed = await engine.docker.listNetworks({ filters: JSON.stringify({ name: [name] }) } as object) as NetworkInfo[];
  // the name filter matches substrings: only the exact name is this network
  return listed.find((n) => n.Name === name);
}

export async function ensureVersionNetwork(engine: Engine, appNetwork: string, name: string, labels: Record<string, string>): Promise<void> {
  if (await networkNamed(engine, name) !== undefined) return;
  const app = await networkNamed(engine, appNetwork);
  const encrypted = app?.Options !== undefined && 'encrypted' in app.Options;
  try {
    await engine.docker.createNetwork({ Name: name, Driver: 'overlay', Attachable: true, Labels: labels, ...(encrypted ? { Options: { encrypted: '' } } : {}) });
  } catch (error) {
    // made meanwhile by another run: what this step wants
    if (statusOf(error) === 409 && await networkNamed(engine, name) !== undefined) return;
    throw new OperationError(`cannot create network ${name}: ${(error as Error).message}`, 'Check the swarm with `docker network ls` on the manager, then run the command again.', 'NETWORK_CREATE_FAILED');
  }
}

/**
 * Removes the network once no task is attached to it: the services just removed stop their containers on their
 * own time, and until then the engine refuses ("has active endpoints").
 */
export async function removeVersionNetwork(engine: Engine, name: string, timeoutMs = 60_000): Promise<void> {
  let last = '';
  await pollUntil(async () => {
    const found = await networkNamed(engine, name);
    if (found === undefined) return true;
    try {
      // removed from the swarm, the manager may still list it until its tasks' endpoints are gone: the next
      // round looks again, and this returns once it is no longer listed
      await engine.docker.getNetwork(found.Id ?? name).remove();
      last = 'still listed after its removal';
    } catch (error) {
      if (statusOf(error) === 404) return true;
      last = (error as Error).message;
    }
    return undefined;
  }, {
    timeoutMs, intervalMs: 500, maxIntervalMs: 4000,
    onTimeout: () => {
      throw new OperationError(`network ${name} is still in use after ${timeoutMs / 1000} s: ${last}`, `Remove it later on the manager: docker network rm ${name} (depl prune leaves it alone).`, 'NETWORK_IN_USE');
    },
  });
}

/** A task in one of these states holds (or is about to hold) its container, and so the volume. */
const ENDED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove']);

/** Scales the services to 0 and waits until none of their tasks holds a container: the volume is free. */
export async function stopServices(engine: Engine, services: readonly string[], timeoutMs: number): Promise<void> {
  if (services.length === 0) return;
  await scaleServices(engine, services.map((service) => ({ service, replicas: 0 })));
  let holding: string[] = [];
  await pollUntil(async () => {
    holding = [];
    for (const service of services) {
      if ((await serviceTasks(engine, service)).some((t) => !ENDED.has(t.state))) holding.push(service);
    }
    return holding.length === 0 ? true : undefined;
  }, {
    timeoutMs, intervalMs: 500, maxIntervalMs: 2000,
    onTimeout: () => {
      throw new OperationError(`${holding.join(', ')} still ${holding.length === 1 ? 'runs' : 'run'} ${timeoutMs / 1000} s after being scaled to 0`, `Look at \`docker service ps ${holding[0]}\` on the manager, then run the command again.`, 'SERVICE_STOP_TIMEOUT');
    },
  });
}

/** Scales the services back (returns at once: the install's wait or the operator's status shows them start). */
export async function startServices(engine: Engine, targets: readonly ScaleTarget[]): Promise<void> {
  await scaleServices(engine, targets);
}
