import type { Cluster } from '../apply/cluster.js';
import { applyEdge, readEdgeState } from '../apply/edge.js';
import { describeHolder, withLock } from '../apply/lock.js';
import { removeService, removeUnusedConfigs, removeUnusedSecrets } from '../apply/swarm.js';
import type { LoadedConfig } from '../config/load.js';
import { imageTag } from '../plan/images.js';
import { planBranchPrune, type BranchKeepReason } from '../plan/branch-prune.js';
import { planPrune, type InstalledVersion } from '../plan/releases.js';
import type { Logger } from '../util/log.js';
import { installedVersions, marksOf, withManagerEngine } from './versions.js';

export interface PruneResult {
  removed: string[];
  kept: { version: string; why: 'live' | 'canary' | 'previous' | 'recent' | BranchKeepReason }[];
}

/**
 * Removes old versions of this app (only services labelled with its name), never the live, canary or previous
 * one: their services, their server blocks at the edge, their image tags on every node, and configs no
 * service uses any more. Holds the cluster lock.
 */
export async function prune(loaded: LoadedConfig, options: { keep: number; branches?: string[]; lockWaitMs?: number; cluster?: Cluster }, log: Logger): Promise<PruneResult> {
  const { app } = loaded.config;
  return withManagerEngine(loaded, log, (cluster, engine) => withLock(cluster.manager, app, {
    command: options.branches !== undefined ? 'prune --branches' : `prune --keep ${options.keep}`,
    waitMs: options.lockWaitMs ?? 0,
    log,
    onWait: (holder) => log.info(`waiting for the cluster lock, held by ${describeHolder(holder)}`),
  }, async () => {
    const { versions } = await installedVersions(engine, app);
    const marks = await marksOf(cluster, app);
    const plan: { remove: InstalledVersion[]; keep: { label: string; why: PruneResult['kept'][number]['why'] }[] } = options.branches !== undefined
      ? planBranchPrune(versions, marks, options.branches)
      : planPrune(versions, marks, options.keep);
    if (plan.remove.length === 0) return { removed: [], kept: plan.keep.map((k) => ({ version: k.label, why: k.why })) };
    const gone = new Set(plan.remove.map((v) => v.label));
    // the edge first: it must never route to a service that no longer exists
    const edge = await readEdgeState(cluster, app);
    if (edge !== null && edge.versions.some((v) => gone.has(v.label))) {
      await applyEdge(cluster, { ...edge, versions: edge.versions.filter((v) => !gone.has(v.label)) });
    }
    for (const version of plan.remove) {
      log.step(`removing version ${version.label} (${version.services.join(', ')})`);
      for (const service of version.services) await removeService(engine, service);
    }
    await removeUnusedConfigs(engine, app);
    await removeUnusedSecrets(engine, app);
    await removeImageTags(cluster, app, Object.keys(loaded.config.services), [...gone], log);
    return { removed: plan.remove.map((v) => v.label), kept: plan.keep.map((k) => ({ version: k.label, why: k.why })) };
  }), options.cluster);
}

/** Untags the versions' images on every node; layers still used by other versions stay. */
async function removeImageTags(cluster: Cluster, app: string, services: string[], versions: string[], log: Logger): Promise<void> {
  const tags = versions.flatMap((v) => services.map((s) => imageTag(app, s, v)));
  await Promise.all(cluster.nodes.map(async (node) => {
    const remote = await cluster.remote(node.name);
    const result = await remote.exec(['docker', 'image', 'rm', ...tags], { check: false });
    if (result.code !== 0 && !/No such image/.test(result.stderr)) log.debug(`${node.name}: docker image rm: ${result.stderr.trim()}`);
  }));
}
