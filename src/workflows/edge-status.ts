import type { Cluster } from '../apply/cluster.js';
import { readState } from '../apply/cluster-state.js';
import { readEdgeState } from '../apply/edge.js';
import type { LoadedConfig } from '../config/load.js';
import type { ReleaseStatus } from './status.js';

/**
 * The release part of `depl status` from what is recorded on the cluster: live and canary from its state
 * file, versions from what the edge serves. Pass it to readStatus() so every operator sees the same truth.
 */
export async function readReleaseStatus(cluster: Cluster, loaded: LoadedConfig): Promise<ReleaseStatus> {
  const app = loaded.config.app;
  const [state, edge] = await Promise.all([readState(cluster.manager, app), readEdgeState(cluster, app)]);
  return {
    live: state.live,
    canary: state.canary,
    versions: (edge?.versions ?? []).map((v) => ({
      version: v.label,
      live: v.label === state.live,
      previous: v.label === state.previous,
      canary: state.canary?.version === v.label ? { weight: state.canary.weight } : null,
    })),
  };
}
