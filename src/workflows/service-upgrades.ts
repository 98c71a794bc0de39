import type { Cluster } from '../apply/cluster.js';
import { appServiceSpecs, restoreServices, scaleServices, serviceReplicas } from '../apply/swarm.js';
import type { DeplConfig } from '../config/schema.js';
import { autoscalerFoldersLine } from '../plan/autoscale.js';
import { nodeImageOf } from '../plan/images.js';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { pollUntil } from '../util/poll.js';
import type { ServiceUpgrades } from './cluster-port.js';

const STOP_WAIT_MS = 60_000;

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
    async stop(service) {
      const engine = await cluster.engine();
      await scaleServices(engine, [{ service, replicas: 0 }]);
      // its task gets SIGTERM and then SIGKILL after its stop grace period: a minute covers any an earlier depl set
      await pollUntil(async () => ((await serviceReplicas(engine, [service]))[service]?.running ?? 0) === 0 ? true : undefined, {
        timeoutMs: STOP_WAIT_MS,
        intervalMs: 500,
        onTimeout: () => {
          throw new OperationError(
            `${service} still runs ${STOP_WAIT_MS / 1000} s after it was scaled to 0 replicas, before the ACME account moves where it could read it`,
            `See why with \`docker service ps ${service}\` on the manager; the next depl command tries again (nothing moved).`,
            'SERVICE_STOP_TIMEOUT',
          );
        },
      });
    },
  };
}
