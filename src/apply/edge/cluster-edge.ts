import { posix } from 'node:path';
import { OperationError } from '../../errors.js';
import { clusterEdgeDir } from '../../plan/edge-apps.js';
import { CLUSTER_EDGE_NETWORK, CLUSTER_EDGE_SERVICE, type LegacyEdge } from '../../plan/cluster-edge.js';
import { edgeDir, edgeProbeCommand, EDGE_ROLE_LABEL } from '../../plan/edge-service.js';
import { appNetworkName } from '../../plan/names.js';
import { quote } from '../../plan/shell.js';
import type { ServiceSpec } from '../../plan/services.js';
import { LABELS } from '../../plan/services.js';
import { pollUntil } from '../../util/poll.js';
import { checkEdgeImage, runEdgeService } from './service.js';
import type { Cluster } from '../cluster.js';
import type { Engine } from '../docker.js';
import type { Remote } from '../remote.js';
import { listServices, removeService, serviceTasks } from '../swarm.js';
import { ensureVersionNetwork } from '../version-network.js';

/**
 * What making the cluster's edge (src/plan/cluster-edge.ts) needs of the cluster: what is there, and each step's
 * effect. The workflow (src/workflows/cluster-edge.ts) runs the plan through it; the fake cluster has its own.
 */
export interface ClusterEdgeHost {
  /** Earlier depl's per-app edges, whether depl_edge and its network exist. */
  observe(): Promise<{ legacy: LegacyEdge[]; edgeExists: boolean; networkExists: boolean }>;
  ensureNetwork(name: string): Promise<void>;
  /** Copies a file on the manager atomically (the earlier edge's routing table). */
  copyFile(from: string, to: string): Promise<void>;
  /** Removes the service and returns once none of its tasks runs (its host ports are free). */
  removeEdge(service: string): Promise<void>;
  /** Refuses (UserError) an image that cannot be depl's edge (src/apply/edge/service.ts checkEdgeImage). */
  checkImage(image: string): Promise<void>;
  /** Creates depl_edge (its folders first, and `nginxConf` where there is no configuration yet) and returns once its nginx answers. */
  createEdge(spec: ServiceSpec, nginxConf: string): Promise<void>;
}

const TASKS_GONE_MS = 60_000;

/** The cluster edge's host on a real swarm: the manager's Engine API and its files over the cluster's SSH connection. */
export function clusterEdgeHostOn(cluster: Pick<Cluster, 'engine' | 'manager' | 'network'>, manager: Remote, root?: string): ClusterEdgeHost {
  const engine = (): Promise<Engine> => cluster.engine();
  return {
    async observe() {
      const e = await engine();
      const edges = await listServices(e, { [EDGE_ROLE_LABEL]: 'edge' });
      const legacy = edges.filter((s) => s.name !== CLUSTER_EDGE_SERVICE && s.labels[LABELS.app] !== undefined);
      const files = legacy.map((s) => `${edgeDir(s.labels[LABELS.app]!)}/routing`);
      const texts = await Promise.all(files.map((f) => cluster.manager.readFile(f)));
      const networks = await e.docker.listNetworks({ filters: JSON.stringify({ name: [CLUSTER_EDGE_NETWORK] }) } as object) as { Name?: string }[];
      return {
        legacy: legacy.map((s, i) => ({ app: s.labels[LABELS.app]!, service: s.name, network: appNetworkName(s.labels[LABELS.app]!), routingFile: files[i]!, routing: texts[i] ?? null })),
        edgeExists: edges.some((s) => s.name === CLUSTER_EDGE_SERVICE),
        networkExists: networks.some((n) => n.Name === CLUSTER_EDGE_NETWORK),
      };
    },
    ensureNetwork: async (name) => ensureVersionNetwork(await engine(), cluster.network, name, { [EDGE_ROLE_LABEL]: 'edge' }),
    async copyFile(from, to) {
      const folder = posix.dirname(to);
      await manager.shell(`mkdir -p ${quote(folder)} && cp -p ${quote(from)} ${quote(`${to}.next`)} && mv -f ${quote(`${to}.next`)} ${quote(to)}`);
    },
    async removeEdge(service) {
      const e = await engine();
      await removeService(e, service);
      await pollUntil(async () => ((await serviceTasks(e, service).catch(() => [])).some((t) => t.state === 'running') ? undefined : true), {
        timeoutMs: TASKS_GONE_MS, intervalMs: 250,
        onTimeout: () => {
          throw new OperationError(`the earlier edge ${service} still runs ${TASKS_GONE_MS / 1000}s after it was removed`, `Check \`docker ps\` on the edge nodes; the next buildinst goes on from here.`, 'EDGE_NOT_RUNNING');
        },
      });
    },
    checkImage: async (image) => checkEdgeImage(manager, image),
    async createEdge(spec, nginxConf) {
      const dir = clusterEdgeDir(root);
      // the image was looked into by the plan's first step, before any earlier edge went
      await runEdgeService(manager, await engine(), {
        spec, folders: ['mkdir', '-p', `${dir}/logs`, `${dir}/routes`], configFile: `${dir}/nginx.conf`, firstConfig: nginxConf,
        probe: edgeProbeCommand(spec.Name), checkImage: false,
      });
    },
  };
}
