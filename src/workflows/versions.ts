import type { Cluster } from '../apply/cluster.js';
import { managerEngine, type Engine } from '../apply/docker.js';
import { readInstallIntent } from '../apply/install-intent.js';
import { listServices, type InstalledService } from '../apply/swarm.js';
import type { LoadedConfig } from '../config/load.js';
import { versionHost } from '../plan/names.js';
import type { InstalledVersion, ReleaseState } from '../plan/release-state.js';
import { versionsFromServices } from '../plan/releases.js';
import { LABELS } from '../plan/services.js';
import type { VersionRow } from '../plan/versions-table.js';
import type { Logger } from '../util/log.js';
import { openCluster } from './cluster.js';
import { clusterPortFor } from './cluster-port.js';
import { readRelease } from './release.js';

/** The app's versions as the swarm has them (service labels), with the marks recorded on the cluster. */
export async function installedVersions(engine: Engine, app: string): Promise<{ versions: InstalledVersion[]; services: InstalledService[] }> {
  const services = await listServices(engine, { [LABELS.app]: app });
  return { versions: versionsFromServices(app, services), services };
}

/**
 * Live, previous and canary as `depl status` must report them: from the release document, an interrupted
 * change resolved against what the edge actually serves (src/workflows/release.ts).
 */
export async function marksOf(cluster: Cluster, loaded: LoadedConfig, log: Logger): Promise<Pick<ReleaseState, 'live' | 'previous' | 'canary' | 'scale'> & { interrupted: boolean }> {
  const view = await readRelease(await clusterPortFor(cluster, loaded.config, log, true));
  return { live: view.state.live, previous: view.state.previous, canary: view.state.canary, scale: view.state.scale, interrupted: view.interrupted };
}

/** Opens the cluster and its manager's engine for a read or a change, and closes both afterwards. */
export async function withManagerEngine<T>(loaded: LoadedConfig, log: Logger, fn: (cluster: Cluster, engine: Engine) => Promise<T>, given?: Cluster): Promise<T> {
  const cluster = given ?? (await openCluster(loaded, log));
  let engine: Engine | undefined;
  try {
    engine = await managerEngine(loaded, cluster);
    return await fn(cluster, engine);
  } finally {
    await engine?.close();
    if (!given) await cluster.close();
  }
}

export async function listVersions(loaded: LoadedConfig, log: Logger, cluster?: Cluster): Promise<VersionRow[]> {
  const { app, domain } = loaded.config;
  return withManagerEngine(loaded, log, async (open, engine) => {
    const [{ versions, services }, marks, installing] = await Promise.all([installedVersions(engine, app), marksOf(open, loaded, log), readInstallIntent(open.manager, app)]);
    return versions.map((v) => ({
      ...(installing?.version === v.label ? { installing: { command: installing.command, by: installing.by, at: installing.at } } : {}),
      version: v.label,
      createdAt: v.createdAt,
      branch: v.branch ?? null,
      url: `http://${versionHost(v.label, domain)}/`,
      live: marks.live === v.label,
      previous: marks.previous === v.label,
      canary: marks.canary?.version === v.label ? { weight: marks.canary.weight } : null,
      services: v.services.map((name) => {
        const svc = services.find((s) => s.name === name);
        return { name, replicas: svc?.replicas ?? 0, running: svc?.running ?? null };
      }),
    }));
  }, cluster);
}

/**
 * The release part of `depl status` (a ReleaseStatusReader for src/workflows/status.ts): live and canary from
 * the cluster state, installed versions from the swarm.
 */
export async function readReleaseStatus(cluster: Cluster, loaded: LoadedConfig, log: Logger): Promise<{ live: string | null; canary: { version: string; weight: number } | null; scale: Record<string, number>; versions: VersionRow[] }> {
  const [versions, marks] = await Promise.all([listVersions(loaded, log, cluster), marksOf(cluster, loaded, log)]);
  return { live: marks.live, canary: marks.canary, scale: marks.scale, versions };
}
