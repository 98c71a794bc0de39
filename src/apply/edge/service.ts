import { OperationError } from '../../errors.js';
import { edgeDir, edgeDirsCommand, edgeServiceName, EDGE_ROLE_LABEL, planEdgeService } from '../../plan/edge-service.js';
import { renderNginxConfig } from '../../plan/nginx.js';
import { LABELS } from '../../plan/services.js';
import type { Cluster } from '../cluster.js';
import type { Engine } from '../docker.js';
import { createService, listServices, updateService } from '../swarm.js';
import { liveConfigPath } from './config.js';
import { clusterEdgeSite, containerRenderOptions, edgeReport } from './site.js';

/**
 * The edge service (src/plan/edge-service.ts) on the cluster: created once, updated when its spec (image)
 * changed, and waited for until nginx answers. Idempotent.
 */
export async function ensureEdgeService(cluster: Cluster, engine: Engine, opts: { app: string; image: string; https?: boolean }): Promise<void> {
  const { app, image } = opts;
  const manager = cluster.manager;
  await manager.exec(edgeDirsCommand(app));
  const site = { dir: edgeDir(app) };
  if ((await manager.readFile(liveConfigPath(site))) === null) {
    // Before the first routing table there is nothing to serve: every host gets a 404.
    await manager.writeFileAtomic(liveConfigPath(site), renderNginxConfig({ app }, containerRenderOptions(app)));
  }
  const spec = planEdgeService(app, image, cluster.network, opts.https === true);
  const existing = (await listServices(engine, { [LABELS.app]: app, [EDGE_ROLE_LABEL]: 'edge' })).find((s) => s.name === spec.Name);
  if (existing === undefined) await createService(engine, spec);
  // an edge made before tls: was turned on publishes 443 too (the task restarts once)
  else if (existing.image !== image || (opts.https === true && existing.ports !== undefined && !existing.ports.includes(443))) await updateService(engine, existing, spec);
  await waitForEdgeContainer(cluster, app);
}

async function waitForEdgeContainer(cluster: Cluster, app: string): Promise<void> {
  const name = edgeServiceName(app);
  const deadline = Date.now() + 90_000;
  let state = '';
  while (Date.now() < deadline) {
    const site = await clusterEdgeSite(cluster, app).catch(() => null);
    if (site !== null && (await edgeReport(site).catch(() => null))?.status === 200) return;
    const tasks = await cluster.manager.exec(['docker', 'service', 'ps', '--no-trunc', '--format', '{{.CurrentState}} {{.Error}}', name], { check: false });
    state = tasks.stdout.trim().split('\n')[0] ?? '';
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new OperationError(`the edge service ${name} did not start within 90s (${state || 'no task'})`, `Check \`docker service ps --no-trunc ${name}\` on ${cluster.manager.name}.`, 'EDGE_NOT_RUNNING');
}
