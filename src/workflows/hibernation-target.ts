import type { LoadedConfig } from '../config/load.js';
import { swiftBackupObjects, type BackupObjects } from '../apply/hibernation-objects.js';
import type { Provider } from '../apply/providers/types.js';
import { ensureDockerEngine } from '../apply/host/docker-engine.js';
import { UserError } from '../errors.js';
import { accessoryVolume } from '../plan/backup.js';
import { backupContainerName } from '../plan/hibernation.js';
import { openStackProviderSettings } from './adapter-slices.js';
import type { Logger } from '../util/log.js';
import { accessoryDataOn } from './accessory-data-target.js';
import { accessoryTarget, operatorName } from './backup.js';
import { clusterPortFor, swarmNodesOn } from './cluster-port.js';
import { openCluster, providerFor } from './cluster.js';
import type { HibernationTarget } from './hibernation.js';

/** The cluster's backups container in Swift, when the provider's cloud has an object store (the local provider has none). */
export async function backupObjectsOf(loaded: LoadedConfig, provider: Provider): Promise<BackupObjects | undefined> {
  const auth = await provider.objectStore?.();
  return auth === undefined ? undefined : swiftBackupObjects(auth, backupContainerName(openStackProviderSettings(loaded).stack));
}

/** For depl status: the same container, found through depl.yaml's provider (openstack only: nothing to log in to otherwise). */
export async function backupObjectsFor(loaded: LoadedConfig, log: Logger, options: { interactive?: boolean } = {}): Promise<BackupObjects | undefined> {
  if (loaded.config.provider.type !== 'openstack') return undefined;
  return backupObjectsOf(loaded, await providerFor(loaded, log, options));
}

/**
 * What depl hibernate and wake work on, from depl.yaml: the provider's instances (Nova's servers, shelved; or
 * the local provider's node containers, stopped), the accessories with data, and the cluster, opened by the
 * steps that need it.
 */
export async function hibernationTargetFor(loaded: LoadedConfig, log: Logger, command: 'hibernate' | 'wake', options: { interactive?: boolean; lockWaitMs?: number } = {}): Promise<HibernationTarget> {
  const { config } = loaded;
  // the local nodes are containers of this machine's engine: started first when it is not answering (after a reboot)
  if (config.provider.type === 'local') await ensureDockerEngine(log);
  const provider = await providerFor(loaded, log, { interactive: options.interactive });
  if (provider.servers === undefined) {
    throw new UserError(`depl ${command}: the ${provider.kind} provider cannot put its instances to rest`, 'Nothing was changed.', 'HIBERNATE_UNSUPPORTED_PROVIDER');
  }
  // Swift when the cloud's catalog has an object store: the backups outlive this machine (else .depl/backups/ only)
  const objects = await backupObjectsOf(loaded, provider);
  const accessories = Object.entries(config.accessories).filter(([, a]) => accessoryVolume(a) !== null).map(([name]) => accessoryTarget(loaded, name, 'back up'));
  return {
    app: config.app,
    domain: config.domain,
    root: loaded.root,
    servers: provider.servers,
    ...(objects !== undefined ? { objects } : {}),
    accessories,
    log,
    by: operatorName({}),
    async openPort(mode) {
      const cluster = await openCluster(loaded, log);
      try {
        const port = await clusterPortFor(cluster, config, log, { filesOnly: mode === 'files', tls: { render: undefined } });
        const accessoryData = accessoryDataOn(cluster, await cluster.engine(), config, log);
        return {
          // the backups and restores take the cluster lock as depl backup and restore do (--lock-wait)
          port: { ...port, lockWaitMs: options.lockWaitMs ?? 0, accessoryData, nodes: swarmNodesOn(cluster) },
          async close() {
            await accessoryData.close();
            await cluster.close();
          },
        };
      } catch (error) {
        await cluster.close();
        throw error;
      }
    },
  };
}
