import type { Cluster } from '../apply/cluster.js';
import { removeService, removeUnusedConfigs, removeUnusedSecrets } from '../apply/swarm.js';
import type { LoadedConfig } from '../config/load.js';
import { autoscaleStateFile } from '../plan/autoscale.js';
import { removeImagesCommand, versionImageTags } from '../plan/images.js';
import { planBranchPrune, type BranchKeepReason } from '../plan/branch-prune.js';
import { marksOfState } from '../plan/releases.js';
import type { Logger } from '../util/log.js';
import { clusterPortFor } from './cluster-port.js';
import { withRelease, type ReleaseChange, type ReleaseSession } from './release.js';
import { withManagerEngine } from './versions.js';
import { removeLeftoverJobs } from './run.js';

export interface PruneResult {
  removed: string[];
  kept: { version: string; why: 'live' | 'canary' | 'previous' | 'recent' | BranchKeepReason }[];
  change: ReleaseChange;
}

export interface PruneOptions {
  keep: number;
  /** Remove the per-branch deploys of branches not in this list instead (see src/plan/branch-prune.ts). */
  branches?: string[];
  dryRun?: boolean;
  lockWaitMs?: number;
  cluster?: Cluster;
}

/**
 * Removes old versions of this app (only services labelled with its name), never the live, canary or previous
 * one: their server blocks at the edge first (it must never route to a service that no longer exists), then
 * their services, their image tags on every node (under the registry's name when one is configured), and
 * configs no service uses any more. Holds the cluster lock.
 */
export async function prune(loaded: LoadedConfig, options: PruneOptions, log: Logger): Promise<PruneResult> {
  const { config } = loaded;
  return withManagerEngine(loaded, log, async (cluster, engine) => {
    const control = { ...(await clusterPortFor(cluster, config, log, { syncCertificates: true })), lockWaitMs: options.lockWaitMs ?? 0 };
    const command = options.branches !== undefined ? `depl prune --branches ${options.branches.join(',')}` : `depl prune --keep ${options.keep}`;
    return withRelease(control, command, { dryRun: options.dryRun }, async (session) => {
      // --branches decides which versions go by branch; the release transition then removes exactly those.
      const byBranch = options.branches !== undefined ? planBranchPrune(session.installed, marksOfState(session.state), options.branches) : undefined;
      const change = byBranch === undefined
        ? await session.change({ kind: 'prune', keep: options.keep })
        : await removeAll(session, byBranch.remove.map((v) => v.label));
      const plan = byBranch ?? change.prune!;
      const result = { removed: plan.remove.map((v) => v.label), kept: plan.keep.map((k) => ({ version: k.label, why: k.why })), change };
      // finished `depl run` jobs a killed run left behind go too (running ones may still be streamed)
      if (!session.dryRun) await removeLeftoverJobs(engine, config.app, log);
      if (session.dryRun || plan.remove.length === 0) return result;
      // the removed versions' certificates go too (the edge no longer names them)
      await session.syncCertificates();
      for (const version of plan.remove) {
        log.step(`removing version ${version.label} (${version.services.join(', ')})`);
        for (const service of version.services) await removeService(engine, service);
      }
      // what the removed versions' autoscale controllers recorded (src/plan/autoscale.ts)
      await cluster.manager.exec(['rm', '-f', ...plan.remove.map((v) => autoscaleStateFile(config.app, v.label))]);
      await removeUnusedConfigs(engine, config.app);
      await removeUnusedSecrets(engine, config.app);
      const tags = plan.remove.flatMap((v) => versionImageTags(config, v.label));
      if (tags.length > 0) await removeImageTags(cluster, tags, log);
      return result;
    });
  }, options.cluster);
}

/** Takes each version off the edge and the installed list, in one recorded change per version. */
async function removeAll(session: ReleaseSession, labels: string[]): Promise<ReleaseChange> {
  let change: ReleaseChange | undefined;
  for (const version of labels) change = await session.change({ kind: 'remove', version, note: 'branch gone' });
  return change ?? session.change({ kind: 'prune', keep: Number.MAX_SAFE_INTEGER });
}

/** Untags the versions' images on every node; layers still used by other versions stay. */
async function removeImageTags(cluster: Cluster, tags: string[], log: Logger): Promise<void> {
  await Promise.all(cluster.nodes.map(async (node) => {
    const remote = await cluster.remote(node.name);
    const result = await remote.exec(removeImagesCommand(tags), { check: false });
    if (result.code !== 0 && !/No such image/.test(result.stderr)) log.debug(`${node.name}: docker image rm: ${result.stderr.trim()}`);
  }));
}
