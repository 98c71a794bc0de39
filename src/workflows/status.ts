import type { Cluster } from '../apply/cluster.js';
import { requireInventory } from '../apply/inventory.js';
import type { LoadedConfig } from '../config/load.js';
import { nodeListCommand, parseNodeList } from '../plan/bootstrap.js';
import { nodeInspectCommand, nodeTableFromInspect, type NodeTableRow } from '../plan/node-table.js';
import type { Logger } from '../util/log.js';
import { openCluster } from './cluster.js';

/** What is deployed: filled by the release side (buildinst/switch/canary), read from the cluster's state. */
export interface ReleaseStatus {
  live: string | null;
  canary: { version: string; weight: number } | null;
  /** The app's scale recorded by `depl scale` (services not named run depl.yaml's replicas). */
  scale?: Record<string, number>;
  versions: unknown[];
}

export interface StatusReport extends ReleaseStatus {
  nodes: NodeTableRow[];
}

/** Reads the release part of `depl status` from an open cluster. */
export type ReleaseStatusReader = (cluster: Cluster, loaded: LoadedConfig, log: Logger) => Promise<ReleaseStatus>;

/** For a cluster with nothing deployed yet, and the default until a release reader is passed in. */
export const noReleases: ReleaseStatusReader = async () => ({ live: null, canary: null, versions: [] });

/** The node table as the swarm itself reports it (over SSH on the manager), in the inventory's order. */
export async function readNodeTable(cluster: Cluster, loaded: LoadedConfig): Promise<NodeTableRow[]> {
  const inventory = await requireInventory(loaded);
  const ids = parseNodeList((await cluster.manager.exec(nodeListCommand())).stdout).map((row) => row.id);
  if (ids.length === 0) return [];
  const inspected = await cluster.manager.exec(nodeInspectCommand(ids));
  return nodeTableFromInspect(inspected.stdout, inventory.nodes);
}

/** `depl status`: nodes from the swarm, then whatever `readReleases` reports about versions. */
export async function readStatus(loaded: LoadedConfig, log: Logger, readReleases: ReleaseStatusReader = noReleases): Promise<StatusReport> {
  const cluster = await openCluster(loaded, log);
  try {
    const nodes = await readNodeTable(cluster, loaded);
    return { nodes, ...(await readReleases(cluster, loaded, log)) };
  } finally {
    await cluster.close();
  }
}
