import { swiftBackupObjects, type BackupObjects } from '../apply/hibernation-objects.js';
import type { Provider } from '../apply/providers/types.js';
import type { DeplConfig } from '../config/schema.js';
import { ensureDockerEngine } from '../apply/host/docker-engine.js';
import { UserError } from '../errors.js';
import { accessoryVolume } from '../plan/backup.js';
import { backupContainerName } from '../plan/hibernation.js';
import { stackName } from '../plan/stack-name.js';
import type { Logger } from '../util/log.js';
import { accessoryDataOn } from './accessory-data-target.js';
import { accessoryTarget, operatorName } from './backup.js';
import { clusterPortFor, swarmNodesOn } from './cluster-port.js';
import type { NodeInputs } from './command-inputs.js';
import type { HibernationTarget } from './hibernation.js';

/** The cluster's backups container in Swift, when the provider's cloud has an object store (the local provider has none). */
export async function backupObjectsOf(config: DeplConfig, provider: Provider): Promise<BackupObjects | undefined> {
  const auth = await provider.objectStore?.();
  return auth === undefined ? undefined : swiftBackupObjects(auth, backupContainerName(stackName(config)));
}

/** For depl status: the same container, found through depl.yaml's provider (openstack only: nothing to log in to otherwise). */
export async function backupObjectsFor(inputs: Pick<NodeInputs, 'config' | 'provider'>, log: Logger, options: { interactive?: boolean } = {}): Promise<BackupObjects | undefined> {
  if (inputs.config.provider.type !== 'openstack') return undefined;
  return backupObjectsOf(inputs.config, await inputs.provider(log, options));
}

/** What depl hibernate and wake read of depl.yaml: its content and path (an accessory's errors name it), its folder, the provider and the cluster. */
export type HibernationInputs = Pick<NodeInputs, 'config' | 'root' | 'provider' | 'cluster'> & { file: string };

/**
 * What depl hibernate and wake work on, from depl.yaml: the provider's instances (Nova's servers, shelved; or
 * the local provider's node containers, stopped), the accessories with data, and the cluster, opened by the
 * steps that need it.
 */
export async function hibernationTargetFor(inputs: HibernationInputs, log: Logger, command: 'hibernate' | 'wake', options: { interactive?: boolean; lockWaitMs?: number } = {}): Promise<HibernationTarget> {
  const { config } = inputs;
  // the local nodes are containers of this machine's engine: started first when it is not answering (after a reboot)
  if (config.provider.type === 'local') await ensureDockerEngine(log);
  const provider = await inputs.provider(log, { interactive: options.interactive });
  if (provider.servers === undefined) {
    throw new UserError(`depl ${command}: the ${provider.kind} provider cannot put its instances to rest`, 'Nothing was changed.', 'HIBERNATE_UNSUPPORTED_PROVIDER');
  }
  // Swift when the cloud's catalog has an object store: the backups outlive this machine (else .depl/backups/ only)
  const objects = await backupObjectsOf(config, provider);
  const accessories = Object.entries(config.accessories).filter(([, a]) => accessoryVolume(a) !== null).map(([name]) => accessoryTarget(inputs, name, 'back up'));
  return {
    app: config.app,
    domain: config.domain,
    root: inputs.root,
    servers: provider.servers,
    ...(objects !== undefined ? { objects } : {}),
    accessories,
    log,
    by: operatorName({}),
    async openPort(mode) {
      const cluster = await inputs.cluster.open(log);
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
