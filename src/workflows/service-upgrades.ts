import type { Cluster } from '../apply/cluster.js';
import { appServiceSpecs, restoreServices } from '../apply/swarm.js';
import type { DeplConfig } from '../config/schema.js';
import { autoscalerFoldersLine } from '../plan/autoscale.js';
import { nodeImageOf } from '../plan/images.js';
import type { Logger } from '../util/log.js';
import type { ServiceUpgrades } from './cluster-port.js';

/**
 * The port's `upgrades` on a real cluster: the manager's Engine and files (src/plan/state-layout.ts says what to
 * do). What installs the renewal task and builds the controller's image is loaded only when a service is upgraded.
 */
export function serviceUpgradesOn(cluster: Pick<Cluster, 'engine' | 'manager'>, config: Pick<DeplConfig, 'app' | 'images'>, log: Logger): ServiceUpgrades {
  return {
    specs: async () => appServiceSpecs(await cluster.engine(), config.app),
    async renewer(upgrade) {
      const { ensureRenewalTask } = await import('../apply/tls/renewal-task.js');
      await ensureRenewalTask(cluster.manager, await cluster.engine(), { settings: upgrade.settings, image: upgrade.image, log, ...(upgrade.dnsSecret !== undefined ? { dnsSecret: upgrade.dnsSecret } : {}) });
    },
    async controllerImage(version) {
      const { ensureAutoscalerImage } = await import('../apply/autoscaler-image.js');
      const image = await ensureAutoscalerImage(await cluster.engine(), nodeImageOf(config), log);
      await cluster.manager.shell(autoscalerFoldersLine(config.app, version));
      return image;
    },
    // what puts an interrupted redeploy's services back: an update to the spec, or a create when it is gone
    put: async (spec) => restoreServices(await cluster.engine(), [{ name: spec.Name, spec: spec as unknown as Record<string, unknown> }]),
  };
}
