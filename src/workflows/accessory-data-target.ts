import type { Readable } from 'node:stream';
import {
  findAccessory, isPaused, pauseContainer, readArchive, redisCli, runHelper, scaleService, singleFile, unpauseContainer, waitStopped, withHelper, writeArchive,
} from '../apply/accessory-data.js';
import type { Cluster, ClusterNode } from '../apply/cluster.js';
import { nodeEngine, type Engine } from '../apply/docker.js';
import { listServices, waitForServices } from '../apply/swarm.js';
import type { DeplConfig } from '../config/schema.js';
import { OperationError } from '../errors.js';
import { accessoryVolume, accessoryVolumeOnCluster, helperContainerSpec, redisPasswordSecret } from '../plan/backup.js';
import { LABELS } from '../plan/services.js';
import { accessoryServiceName } from '../plan/names.js';
import type { Logger } from '../util/log.js';
import type { AccessoryData } from './cluster-port.js';

/**
 * Backup and restore's slice of the port on a real cluster (src/apply/accessory-data.ts does the work): the
 * manager's Engine API for the swarm, the accessory's node's engine for its container and volume (opened once
 * per node, closed by `close`), redis-cli over the node's SSH connection.
 */
export function accessoryDataOn(cluster: Cluster, manager: Engine, config: Pick<DeplConfig, 'app' | 'accessories'>, log: Logger): AccessoryData & { close(): Promise<void> } {
  const app = config.app;
  const engines = new Map<string, Promise<Engine>>();
  const engineOf = (node: string): Promise<Engine> => {
    let engine = engines.get(node);
    if (engine === undefined) {
      engine = nodeEngine(cluster, clusterNode(cluster, node));
      engines.set(node, engine);
      engine.catch(() => engines.delete(node));
    }
    return engine;
  };
  const accessoryOf = (name: string) => {
    const accessory = config.accessories[name];
    if (accessory === undefined) throw new OperationError(`no accessory named ${name} in depl.yaml`, undefined, 'NO_SUCH_ACCESSORY');
    return accessory;
  };
  /** The accessory's swarm service (app-scoped, or its old name until buildinst moves it). */
  const serviceOf = async (name: string): Promise<string> => (await findAccessory(manager, app, name))?.service.name ?? accessoryServiceName(app, name);
  // the running task's container, looked up once (a snapshot's progress is polled) and again after a stop or start
  const containers = new Map<string, { node: string; containerId: string }>();
  /** The running task's container and node; throws when none runs. */
  const running = async (name: string): Promise<{ node: string; containerId: string; engine: Engine }> => {
    let found = containers.get(name);
    if (found === undefined) {
      const place = await findAccessory(manager, app, name);
      if (place === null || place.containerId === null || place.node === null) {
        throw new OperationError(`accessory ${name} has no running task`, `See \`docker service ps ${place?.service.name ?? accessoryServiceName(app, name)}\` on the manager.`, 'ACCESSORY_NOT_RUNNING');
      }
      found = { node: place.node, containerId: place.containerId };
      containers.set(name, found);
    }
    return { ...found, engine: await engineOf(found.node) };
  };
  return {
    async place(name) {
      containers.delete(name);
      const place = await findAccessory(manager, app, name);
      if (place === null) return null;
      const paused = place.containerId !== null && place.node !== null ? await isPaused(await engineOf(place.node), place.containerId) : false;
      // an accessory mounts one named volume (src/plan/services.ts planAccessory)
      const volume = place.service.volumes?.[0];
      return { image: place.service.image, node: place.node, running: place.containerId !== null, paused, ...(volume !== undefined ? { volume } : {}) };
    },
    async appServices() {
      return (await listServices(manager, { [LABELS.app]: app })).map((s) => ({ name: s.name, labels: s.labels, replicas: s.replicas }));
    },
    async redis(name, args) {
      const accessory = accessoryOf(name);
      const { node, containerId } = await running(name);
      return redisCli(await cluster.remote(node), containerId, accessory.port ?? 6379, redisPasswordSecret(accessory), args);
    },
    async pause(name) {
      const { engine, containerId } = await running(name);
      await pauseContainer(engine, containerId);
    },
    async resume(name) {
      const { engine, containerId } = await running(name);
      await unpauseContainer(engine, containerId);
    },
    async stop(name) {
      containers.delete(name);
      const service = await serviceOf(name);
      await scaleService(manager, service, 0);
      await waitStopped(manager, service, 120_000);
    },
    async start(name, timeoutMs) {
      containers.delete(name);
      const place = await findAccessory(manager, app, name);
      const service = place?.service.name ?? accessoryServiceName(app, name);
      await scaleService(manager, service, 1);
      await waitForServices(manager, [{ name: service, replicas: 1 }], { timeoutMs, ignoreTasks: new Set(place?.taskIds ?? []), stableMs: 1_000 }, log);
    },
    async readFile(name, path) {
      const { engine, containerId } = await running(name);
      return (await singleFile(await readArchive(engine, containerId, path))).stream;
    },
    async withVolume(name, node, fn) {
      const declared = accessoryVolume(accessoryOf(name));
      if (declared === null) throw new OperationError(`accessory ${name} has no volume`, undefined, 'ACCESSORY_NO_VOLUME');
      const place = await findAccessory(manager, app, name);
      // the volume its service mounts (app-scoped, or the unscoped one an older deploy keeps), never another app's
      const volume = accessoryVolumeOnCluster(app, declared, place?.service.volumes?.[0]);
      const image = place?.service.image ?? accessoryOf(name).image;
      const engine = await engineOf(node);
      return withHelper(engine, helperContainerSpec(app, name, image, volume), (helper) => fn({
        read: () => readArchive(engine, helper, volume.target),
        empty: () => runHelper(engine, helper, `emptying volume ${volume.name}`),
        write: (at: string, archive: Readable) => writeArchive(engine, helper, at, archive),
      }));
    },
    async close() {
      const opened = [...engines.values()];
      engines.clear();
      await Promise.all(opened.map(async (engine) => (await engine.catch(() => null))?.close()));
    },
  };
}

function clusterNode(cluster: Cluster, name: string): ClusterNode {
  const node = cluster.nodes.find((n) => n.name === name);
  if (!node) throw new OperationError(`the accessory's node ${name} is not in this cluster's inventory (have: ${cluster.nodes.map((n) => n.name).join(', ')})`, "Run 'depl node-up' to refresh the inventory.", 'NO_SUCH_NODE');
  return node;
}
