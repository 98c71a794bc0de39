import type { Cluster } from '../apply/cluster.js';
import type { Engine } from '../apply/docker.js';
import { consumersOnly } from '../plan/consumers.js';
import { versionHost } from '../plan/names.js';
import type { ReleaseState } from '../plan/release-state.js';
import { releasesOf, type VersionRow } from '../plan/versions-table.js';
import type { Logger } from '../util/log.js';
import type { ClusterPort } from './cluster-port.js';
import type { ClusterAccess } from './command-inputs.js';
import { readRelease, type ReleaseView } from './release.js';

/** What `depl versions` and the release part of `depl status` report, from ONE read of the release state. */
export interface ReleaseReport extends Pick<ReleaseState, 'live' | 'previous' | 'canary' | 'scale'> {
  /** A change was interrupted and not repaired yet (the next command that takes the lock repairs it). */
  interrupted: boolean;
  versions: VersionRow[];
  /** The install intent's file is not one: the report is made without it, and says so (src/workflows/release.ts). */
  intentUnreadable?: ReleaseView['intentUnreadable'];
}

/**
 * Live, previous and canary from the release document (an interrupted change resolved against what the edge
 * serves, src/workflows/release.ts), the installed versions from the swarm's labels and their tasks: all
 * through the port, the installed versions read once (the port's `installed`, the one reader of them).
 */
export async function readReleaseReport(port: Pick<ClusterPort, 'app' | 'domain' | 'stateRemote' | 'stateRoot' | 'site' | 'noEdge' | 'installed' | 'swarm'>): Promise<ReleaseReport> {
  const view = await readRelease(port);
  const installing = view.installing;
  const services = view.installed.flatMap((v) => v.services);
  const tasks = port.swarm !== undefined && services.length > 0 ? await port.swarm.tasks(services) : {};
  const { live, previous, canary, scale } = view.state;
  const releases = releasesOf(view.state.history);
  const consumers = consumersOnly(view.installed);
  return {
    live, previous, canary, scale, interrupted: view.interrupted,
    ...(view.intentUnreadable !== undefined ? { intentUnreadable: view.intentUnreadable } : {}),
    versions: view.installed.map((v) => ({
      ...(installing?.version === v.label ? { installing: { command: installing.command, by: installing.by, at: installing.at } } : {}),
      version: v.label,
      createdAt: v.createdAt,
      branch: v.branch ?? null,
      url: `http://${versionHost(v.label, port.domain)}/`,
      live: live === v.label,
      previous: previous === v.label,
      canary: canary?.version === v.label ? { weight: canary.weight } : null,
      services: v.services.map((name) => ({ name, replicas: tasks[name]?.desired ?? 0, running: tasks[name]?.running ?? null })),
      ...(releases.has(v.label) ? { release: releases.get(v.label)! } : {}),
      ...(consumers ? { consumers: v.services.some((name) => (tasks[name]?.running ?? 0) > 0) ? 'running' as const : 'stopped' as const } : {}),
    })),
  };
}

/** Opens the cluster and its manager's engine (the cluster's one, over the same SSH connection) for a read or a change, and closes both afterwards. */
export async function withManagerEngine<T>(access: Pick<ClusterAccess, 'open'>, log: Logger, fn: (cluster: Cluster, engine: Engine) => Promise<T>, given?: Cluster): Promise<T> {
  const cluster = given ?? (await access.open(log));
  try {
    return await fn(cluster, await cluster.engine());
  } finally {
    if (!given) await cluster.close();
  }
}

/** `depl versions`: the installed versions with their marks and tasks. */
export async function listVersions(access: Pick<ClusterAccess, 'open' | 'readingPort'>, log: Logger, given?: Cluster): Promise<VersionRow[]> {
  const cluster = given ?? (await access.open(log));
  try {
    const report = await readReleaseReport(await access.readingPort(cluster, log));
    if (report.intentUnreadable !== undefined) log.warn(describeUnreadableIntent(report.intentUnreadable));
    return report.versions;
  } finally {
    if (!given) await cluster.close();
  }
}

/** The line status, stats and versions print when the install intent cannot be read: the file, why, what to do. */
export function describeUnreadableIntent(unreadable: NonNullable<ReleaseView['intentUnreadable']>): string {
  return `the install intent is unreadable: ${unreadable.problem}. ${unreadable.hint}`;
}
