import type { Engine } from './docker.js';
import type { Remote } from './remote.js';

export interface ClusterNode {
  name: string;
  address: string;
  role: 'manager' | 'worker';
}

/**
 * An open connection to a bootstrapped swarm, made by `openCluster` in src/workflows/cluster.ts from the
 * inventory node-up wrote. Adapters that deploy (images, services, edge, state, lock) work through it.
 */
export interface Cluster {
  nodes: ClusterNode[];
  /** The first manager; it is also the edge node (label depl.edge=true). */
  manager: Remote;
  managerNode: ClusterNode;
  /** SSH to any node by name, connections reused. */
  remote(nodeName: string): Promise<Remote>;
  /** Name of the attachable overlay network the app's services share. */
  network: string;
  /**
   * The manager's Docker Engine API over the manager's connection: one per open cluster, made on first use
   * and closed with the cluster (callers do not close it). The swarm adapter (src/apply/swarm.ts) works on it.
   */
  engine(): Promise<Engine>;
  close(): Promise<void>;
}
