import { claimEdgeApp, readEdgeApps } from '../apply/edge/apps.js';
import type { ClusterEdgeHost } from '../apply/edge/cluster-edge.js';
import type { Remote } from '../apply/remote.js';
import { UserError } from '../errors.js';
import { planClusterEdge, type ClusterEdgePlan, type ClusterEdgeStep } from '../plan/cluster-edge.js';
import type { Logger } from '../util/log.js';
import { applyPlan, type ApplyPlanOptions } from './apply-plan.js';

export interface ClusterEdgeRequest {
  image: string;
  https: boolean;
  command: string;
  /** The manager's state root (the fake cluster's temporary one in tests). */
  root?: string;
}

/** Reads what is there and plans the cluster's edge (src/plan/cluster-edge.ts); a refusal is a UserError, nothing done. */
export async function planClusterEdgeOn(host: ClusterEdgeHost, manager: Remote, request: ClusterEdgeRequest): Promise<ClusterEdgePlan> {
  const [seen, { apps }] = await Promise.all([host.observe(), readEdgeApps(manager, request.root)]);
  const planned = planClusterEdge({ ...seen, apps, image: request.image, https: request.https, command: request.command, ...(request.root !== undefined ? { root: request.root } : {}) });
  if (!planned.ok) throw new UserError(planned.refusal.message, planned.refusal.hint, planned.refusal.code);
  return planned.plan;
}

/**
 * Makes the cluster's edge run, taking over the per-app edges an earlier depl ran: planned from what is there and
 * applied in order. Forward only: a run killed or failed after any step leaves what the next run's plan, made from
 * what it sees, finishes (the routing is copied and the domain claimed before an earlier edge goes, so none is lost).
 * `manager`: the manager as this run writes to it (its lock's fenced view).
 */
export async function ensureClusterEdge(host: ClusterEdgeHost, manager: Remote, request: ClusterEdgeRequest, log: Logger, afterStep?: ApplyPlanOptions['afterStep']): Promise<ClusterEdgePlan> {
  const plan = await planClusterEdgeOn(host, manager, request);
  for (const note of plan.notes) log.warn(note);
  const run = async (step: ClusterEdgeStep): Promise<void> => {
    switch (step.kind) {
      case 'check-edge-image':
        return host.checkImage(step.image);
      case 'ensure-edge-network':
        return host.ensureNetwork(step.name);
      case 'copy-routing':
        return host.copyFile(step.from, step.to);
      case 'claim-hosts':
        await claimEdgeApp(manager, request.root, step.app, step.domain);
        return;
      case 'remove-legacy-edge':
        return host.removeEdge(step.service);
      case 'create-cluster-edge':
        return host.createEdge(step.spec, step.nginxConf);
    }
  };
  await applyPlan(plan, { run }, { log, ...(afterStep !== undefined ? { afterStep } : {}) });
  return plan;
}
