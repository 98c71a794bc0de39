import type { Cluster } from '../apply/cluster.js';
import { readState, writeState, DEFAULT_STATE_ROOT, type ClusterState, type HistoryEntry } from '../apply/cluster-state.js';
import { applyEdgeConfig, clusterEdgeFiles, clusterEdgeSite, readSiteState, requestThroughEdge, type AppliedEdge, type EdgeSite } from '../apply/edge.js';
import { withLock } from '../apply/lock.js';
import type { Remote } from '../apply/remote.js';
import type { LoadedConfig } from '../config/load.js';
import type { DeplConfig } from '../config/schema.js';
import { OperationError, UserError } from '../errors.js';
import type { EdgeState } from '../plan/edge-state.js';
import { checkVersionLabel } from '../names.js';
import { versionHost } from '../plan/names.js';
import type { Logger } from '../util/log.js';
import { hostname, userInfo } from 'node:os';

/**
 * Everything switch, rollback, canary and stats work on: the edge, and the manager holding the cluster
 * state and the lock. Built from a cluster (`edgeControlFor`), or by tests from a loopback nginx.
 */
export interface EdgeControl {
  app: string;
  domain: string;
  site: EdgeSite;
  /** The manager: state.json and the lock live there. */
  stateRemote: Remote;
  stateRoot?: string;
  /** Path each version answers 200 on when healthy. */
  healthPath: string;
  log: Logger;
  /** How long to wait for another depl run holding the lock. */
  lockWaitMs?: number;
}

/** `filesOnly`: for reading state and logs, which works while the edge container is down. */
export async function edgeControlFor(cluster: Cluster, config: DeplConfig, log: Logger, filesOnly = false): Promise<EdgeControl> {
  const http = Object.values(config.services).find((s) => s.http);
  return {
    app: config.app,
    domain: config.domain,
    site: filesOnly ? await clusterEdgeFiles(cluster, config.app) : await clusterEdgeSite(cluster, config.app),
    stateRemote: cluster.manager,
    healthPath: http?.health ?? '/healthz',
    log,
    lockWaitMs: 0,
  };
}

/** For commands: opens the cluster from the inventory, runs fn on its edge, closes the connections. */
export async function withEdgeControl<T>(loaded: LoadedConfig, log: Logger, fn: (control: EdgeControl) => Promise<T>, filesOnly = false): Promise<T> {
  const { openCluster } = await import('./cluster.js');
  const cluster = await openCluster(loaded, log);
  try {
    if (!filesOnly) {
      // every command that touches the edge renews certificates that are due; the change it makes next
      // renders them, so the swap is the same graceful reload
      const { readEdgeState } = await import('../apply/edge.js');
      const { refreshEdgeCertificates } = await import('./tls.js');
      const versions = (await readEdgeState(cluster, loaded.config.app))?.versions.map((v) => v.label) ?? [];
      await refreshEdgeCertificates(cluster, loaded, log, versions);
    }
    return await fn(await edgeControlFor(cluster, loaded.config, log, filesOnly));
  } finally {
    await cluster.close();
  }
}

export function assertVersionLabel(version: string): void {
  const check = checkVersionLabel(version);
  if (!check.ok) throw new UserError(`version "${version}" ${check.reason}`, 'Run `depl versions` to list installed versions.', 'BAD_VERSION');
}

/** Runs an edge change holding the cluster lock. */
export function underLock<T>(control: EdgeControl, command: string, fn: () => Promise<T>): Promise<T> {
  return withLock(control.stateRemote, control.app, {
    command,
    waitMs: control.lockWaitMs ?? 0,
    root: control.stateRoot ?? DEFAULT_STATE_ROOT,
    log: control.log,
    onWait: (holder) => control.log.info(`waiting for the cluster lock held by ${holder?.holder ?? 'unknown'} (${holder?.command ?? '?'})`),
  }, () => fn());
}

export async function loadEdgeState(control: EdgeControl): Promise<EdgeState> {
  const state = await readSiteState(control.site);
  if (state === null || state.versions.length === 0) {
    throw new UserError('no version is installed on this cluster yet', 'Run `depl buildinst` first.', 'NO_VERSIONS');
  }
  return state;
}

export function requireInstalled(edge: EdgeState, version: string): void {
  if (!edge.versions.some((v) => v.label === version)) {
    throw new UserError(
      `version "${version}" is not installed (installed: ${edge.versions.map((v) => v.label).join(', ')})`,
      'Run `depl versions` to list them, or `depl buildinst --version ' + version + '` to install it.',
      'NOT_INSTALLED',
    );
  }
}

/** The version must answer its health path with 200 through the edge, at its own hostname. */
export async function requireHealthy(control: EdgeControl, version: string): Promise<void> {
  const host = versionHost(version, control.domain);
  let detail: string;
  try {
    const answer = await requestThroughEdge(control.site, host, control.healthPath, 10_000);
    if (answer.status === 200 && answer.version === version) return;
    detail = `answered ${answer.status}${answer.version !== version ? ` from version ${answer.version ?? 'none'}` : ''}: ${answer.body.slice(0, 200).trim()}`;
  } catch (error) {
    detail = (error as Error).message;
  }
  throw new OperationError(`refusing: version ${version} is not healthy (http://${host}${control.healthPath} through the edge ${detail})`, `Check its services: docker service ps ${control.app}-${version}-<service>.`, 'UNHEALTHY');
}

export async function applyAndRecord(
  control: EdgeControl,
  edge: EdgeState,
  update: (state: ClusterState) => ClusterState,
): Promise<{ state: ClusterState; applied: AppliedEdge }> {
  const [before, applied] = await Promise.all([readState(control.stateRemote, control.app, control.stateRoot), applyEdgeConfig(control.site, edge)]);
  const state = update(before);
  await writeState(control.stateRemote, control.app, state, control.stateRoot);
  return { state, applied };
}

export function historyEntry(action: HistoryEntry['action'], version: string | null, extra: Partial<HistoryEntry> = {}): HistoryEntry {
  return { at: new Date().toISOString(), action, version, by: `${userInfo().username}@${hostname()}`, ...extra };
}

/** Waits until a fresh request to <domain> is served by `version` (after a reload this is immediate). */
export async function confirmLive(control: EdgeControl, version: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const answer = await requestThroughEdge(control.site, control.domain, control.healthPath).catch((error: Error) => ({ status: 0, version: null, body: error.message }));
    if (answer.status === 200 && answer.version === version) return;
    last = `${answer.status} from ${answer.version ?? 'no version'}`;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new OperationError(`the edge applied the change but ${control.domain} does not answer from ${version} (${last})`, undefined, 'SWITCH_UNCONFIRMED');
}
