import type { ChangePlan } from './change-plan.js';
import { claimEdgeHosts, clusterEdgeDir, edgeAppsPath, type EdgeApp } from './edge-apps.js';
import { CLUSTER_EDGE_SETTINGS, renderNginxConfig, type NginxRenderOptions } from './nginx.js';
import { edgeContainerRenderOptions, nginxEdgeServiceSpec } from './edge-service.js';
import { appNetworkName } from './names.js';
import type { ErrorCode } from '../error-codes.js';
import type { ServiceSpec } from './services.js';

/**
 * The cluster's one edge (docs/ARCHITECTURE.md, "The edge: one per cluster") as data: the swarm service
 * `depl_edge` (no app can make that name: app names are DNS labels), its network `depl_edge-net` that the apps'
 * http services join, and the takeover of the edges an earlier depl ran per app (`<app>-edge`). Planned from what
 * is there now, so a run killed after any step is finished by the next one (each step's effect is seen and not
 * planned again), and once the earlier edges are gone there is nothing left to take over: it runs once.
 */
export const CLUSTER_EDGE_SERVICE = 'depl_edge';
export const CLUSTER_EDGE_NETWORK = 'depl_edge-net';

/** App `app`'s routing table on the cluster's edge (today's format, src/plan/edge-routing.ts), written under the app's lock. */
export function clusterRoutesFile(app: string, root?: string): string {
  return `${clusterEdgeDir(root)}/routes/${app}`;
}

/** nginx in the cluster edge's container: Docker's DNS, every listed app's table read from `_edge/routes`. */
export function clusterEdgeRenderOptions(root?: string): NginxRenderOptions {
  const dir = clusterEdgeDir(root);
  return edgeContainerRenderOptions(dir, { apps: edgeAppsPath(root), routes: `${dir}/routes` });
}

/** An edge an earlier depl ran for one app: its service, network and routing table as that edge reads it. */
export interface LegacyEdge {
  app: string;
  service: string;
  /** The app's overlay network, which that edge was on (the cluster's edge joins it to reach the app's versions). */
  network: string;
  /** Where its routing table is, and its text (null: it never routed anything). */
  routingFile: string;
  routing: string | null;
}

export interface ClusterEdgeFacts {
  /** Earlier depl's per-app edges on the swarm (labelled depl.role=edge with a depl.app). */
  legacy: readonly LegacyEdge[];
  /** Whether `depl_edge` is a service of the swarm. */
  edgeExists: boolean;
  networkExists: boolean;
  /** The cluster edge's app list as read (src/plan/edge-apps.ts). */
  apps: readonly EdgeApp[];
  image: string;
  https: boolean;
  root?: string;
  command: string;
}

export type ClusterEdgeStep =
  /** The image looked into before anything changes: a refused one must not cost an earlier edge its place. */
  | { kind: 'check-edge-image'; image: string; describe: string }
  | { kind: 'ensure-edge-network'; name: string; describe: string }
  /** The earlier edge's table copied to the app's file on the cluster's edge, before that edge goes. */
  | { kind: 'copy-routing'; app: string; from: string; to: string; describe: string }
  /** The earlier edge's app claims its domain (compare-and-set, src/apply/edge/apps.ts). */
  | { kind: 'claim-hosts'; app: string; domain: string; describe: string }
  /** Removed, and waited for until no task of it holds ports 80/443. Forward only: the next run creates the cluster's edge. */
  | { kind: 'remove-legacy-edge'; app: string; service: string; describe: string }
  /** `nginxConf`: its configuration, written first when the folder has none (every app's table, src/plan/nginx.ts). */
  | { kind: 'create-cluster-edge'; spec: ServiceSpec; nginxConf: string; describe: string };

export type ClusterEdgePlan = ChangePlan<ClusterEdgeStep>;

export type ClusterEdgeRefusal = { message: string; hint: string; code: ErrorCode };

/** The domain an earlier edge's routing table routes (its `domain` line); null when it has none to read. */
export function routedDomain(routing: string): string | null {
  return /^domain (\S+)$/m.exec(routing)?.[1] ?? null;
}

/**
 * What makes the cluster's edge run from what is there: its network, then per earlier edge its routing copied and
 * its domain claimed, that edge removed, then `depl_edge` created on the networks of the apps it took over and its
 * own. Refused (nothing done) when an earlier edge's table cannot be read, or its domain is another app's.
 */
export function planClusterEdge(facts: ClusterEdgeFacts): { ok: true; plan: ClusterEdgePlan } | { ok: false; refusal: ClusterEdgeRefusal } {
  const steps: ClusterEdgeStep[] = [];
  const notes: string[] = [];
  if (!facts.edgeExists) steps.push({ kind: 'check-edge-image', image: facts.image, describe: `check that ${facts.image} has nginx's Lua module (the edge routes with it) before anything changes` });
  if (!facts.networkExists) steps.push({ kind: 'ensure-edge-network', name: CLUSTER_EDGE_NETWORK, describe: `create the overlay network ${CLUSTER_EDGE_NETWORK} that the apps' http services join` });
  let apps = [...facts.apps];
  const legacy = [...facts.legacy].sort((a, b) => a.app.localeCompare(b.app));
  for (const edge of legacy) {
    if (edge.routing !== null) {
      const domain = routedDomain(edge.routing);
      if (domain === null) {
        return {
          ok: false,
          refusal: {
            message: `the routing table of app ${edge.app}'s earlier edge (${edge.routingFile}) names no domain (torn, or written by another depl): the cluster's edge cannot take it over`,
            hint: `Run a release command of app ${edge.app} (depl rollback, depl switch) with the depl that installed it, so that it writes its table again; then run this again.`,
            code: 'EDGE_TAKEOVER_UNREADABLE',
          },
        };
      }
      steps.push({ kind: 'copy-routing', app: edge.app, from: edge.routingFile, to: clusterRoutesFile(edge.app, facts.root), describe: `copy app ${edge.app}'s routing from its earlier edge ${edge.service} to the cluster's edge` });
      const claim = claimEdgeHosts(apps, edge.app, domain);
      if (!claim.ok) return { ok: false, refusal: claim.refusal };
      if (claim.changed) steps.push({ kind: 'claim-hosts', app: edge.app, domain, describe: `claim ${domain} and its version hosts for app ${edge.app} in the edge's app list` });
      apps = claim.apps;
    }
    steps.push({ kind: 'remove-legacy-edge', app: edge.app, service: edge.service, describe: `remove app ${edge.app}'s earlier edge ${edge.service} and wait until it lets go of ports 80/443` });
  }
  if (legacy.length > 0) {
    notes.push(`the cluster's edge ${CLUSTER_EDGE_SERVICE} takes over from ${legacy.map((e) => e.service).join(', ')}: ports 80/443 are held by one task at a time, so requests arriving between the earlier edge's graceful stop and ${CLUSTER_EDGE_SERVICE}'s start (a second or two) are refused; this happens once`);
  }
  if (!facts.edgeExists) {
    // the networks of every app it routes, the ones taken over included: versions an earlier depl installed are on
    // their app's network only, and a run killed after removing an earlier edge knows that app from its claim alone
    const networks = [CLUSTER_EDGE_NETWORK, ...legacy.map((e) => e.network), ...apps.map((a) => appNetworkName(a.app))];
    const spec = planClusterEdgeService(facts.image, networks, facts.https, facts.root);
    steps.push({ kind: 'create-cluster-edge', spec, nginxConf: renderNginxConfig(CLUSTER_EDGE_SETTINGS, clusterEdgeRenderOptions(facts.root)), describe: `create the cluster's edge ${CLUSTER_EDGE_SERVICE} (${facts.image}) on ${spec.TaskTemplate.Networks.map((n) => n.Target).join(', ')} and wait until it answers` });
  }
  return { ok: true, plan: { command: facts.command, notes, steps } };
}

/**
 * nginx as `depl_edge` on the edge nodes, ports in host mode, files in `_edge` bind-mounted at the same path. It
 * carries no depl.app label: no app lists it as its own, so no app's prune or removal takes it away.
 */
export function planClusterEdgeService(image: string, networks: readonly string[], https: boolean, root?: string): ServiceSpec {
  return nginxEdgeServiceSpec({ name: CLUSTER_EDGE_SERVICE, labels: {}, dir: clusterEdgeDir(root), image, networks, https });
}
