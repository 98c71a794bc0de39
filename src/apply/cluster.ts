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
  close(): Promise<void>;
}
