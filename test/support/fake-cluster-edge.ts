import path from 'node:path';
import { UserError } from '../../src/errors.js';
import { quote } from '../../src/plan/shell.js';
import type { ClusterEdgeHost } from '../../src/apply/edge/cluster-edge.js';
import type { Remote } from '../../src/apply/remote.js';
import { CLUSTER_EDGE_NETWORK, CLUSTER_EDGE_SERVICE } from '../../src/plan/cluster-edge.js';
import { appNetworkName } from '../../src/plan/names.js';
import type { ServiceSpec } from '../../src/plan/services.js';

/** The swarm as the cluster edge's takeover sees it: edge services, networks, and who holds the edge node's port 80. */
export interface FakeEdgeSwarm {
  /** Edge services by name: the app an earlier depl ran it for (none for depl_edge), its networks. */
  edges: Map<string, { app?: string; networks: string[] }>;
  networks: Set<string>;
  calls: string[];
  /** The step names that fail once (then succeed), as a swarm that refuses a call would. */
  failOnce: Set<string>;
}

export function fakeEdgeSwarm(): FakeEdgeSwarm {
  return { edges: new Map(), networks: new Set(), calls: [], failOnce: new Set() };
}

/** An edge an earlier depl ran for `app`, its routing table where that depl wrote it (`<root>/<app>/edge/routing`). */
export async function legacyEdge(swarm: FakeEdgeSwarm, manager: Remote, root: string, app: string, routing: string | null): Promise<void> {
  swarm.edges.set(`${app}-edge`, { app, networks: [appNetworkName(app)] });
  if (routing !== null) await manager.writeFileAtomic(`${root}/${app}/edge/routing`, routing);
}

/**
 * ClusterEdgeHost on a fake swarm and the manager's real files under `root`: ports 80/443 in host mode are held by one
 * edge task at a time, so creating depl_edge while another edge service exists fails as the real swarm's task would.
 */
export function fakeClusterEdgeHost(swarm: FakeEdgeSwarm, manager: Remote, root: string): ClusterEdgeHost {
  const call = (name: string) => {
    swarm.calls.push(name);
    if (swarm.failOnce.delete(name.split(' ')[0]!)) throw new Error(`${name}: the swarm refused (fake)`);
  };
  return {
    async observe() {
      const legacy = [...swarm.edges].filter(([name]) => name !== CLUSTER_EDGE_SERVICE);
      const files = legacy.map(([, e]) => `${root}/${e.app!}/edge/routing`);
      const texts = await Promise.all(files.map((f) => manager.readFile(f)));
      return {
        legacy: legacy.map(([name, e], i) => ({ app: e.app!, service: name, network: e.networks[0]!, routingFile: files[i]!, routing: texts[i] ?? null })),
        edgeExists: swarm.edges.has(CLUSTER_EDGE_SERVICE),
        networkExists: swarm.networks.has(CLUSTER_EDGE_NETWORK),
      };
    },
    async ensureNetwork(name) {
      call(`ensure-network ${name}`);
      swarm.networks.add(name);
    },
    async copyFile(from, to) {
      call(`copy ${from.slice(root.length + 1)} ${to.slice(root.length + 1)}`);
      await manager.shell(`mkdir -p ${quote(path.dirname(to))} && cp -p ${quote(from)} ${quote(`${to}.next`)} && mv -f ${quote(`${to}.next`)} ${quote(to)}`);
    },
    async removeEdge(service) {
      call(`remove-edge ${service}`);
      swarm.edges.delete(service);
    },
    async checkImage(image) {
      call(`check-image ${image}`);
      if (image.startsWith('no-lua/')) throw new UserError(`the edge image ${image} has no nginx Lua module (fake)`, undefined, 'EDGE_IMAGE_NO_LUA');
    },
    async createEdge(spec: ServiceSpec, nginxConf: string) {
      call(`create-edge ${spec.Name}`);
      const holder = [...swarm.edges.keys()].find((name) => name !== spec.Name);
      if (holder !== undefined) throw new Error(`${spec.Name}: port 80 is already held by ${holder}'s task on the edge node`);
      for (const network of spec.TaskTemplate.Networks) if (network.Target === CLUSTER_EDGE_NETWORK && !swarm.networks.has(network.Target)) throw new Error(`network ${network.Target} not found`);
      if ((await manager.readFile(`${root}/_edge/nginx.conf`)) === null) await manager.writeFileAtomic(`${root}/_edge/nginx.conf`, nginxConf);
      swarm.edges.set(spec.Name, { networks: spec.TaskTemplate.Networks.map((n) => n.Target) });
    },
  };
}
