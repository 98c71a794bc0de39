import { OperationError, UserError } from '../../errors.js';
import { edgeDir, edgeDirsCommand, edgeImageProbe, edgeServiceName, EDGE_PROBE_MISSING_MODULE, EDGE_ROLE_LABEL, planEdgeService } from '../../plan/edge-service.js';
import { DEBIAN_NGINX_MODULES, renderNginxConfig } from '../../plan/nginx.js';
import { pollUntil } from '../../util/poll.js';
import type { Remote } from '../remote.js';
import { LABELS } from '../../plan/services.js';
import type { Cluster } from '../cluster.js';
import type { Engine } from '../docker.js';
import { createService, listServices, serviceTasks, updateService } from '../swarm.js';
import { liveConfigPath } from './config.js';
import { clusterEdgeSite, containerRenderOptions, edgeReport } from './site.js';

/**
 * The edge service (src/plan/edge-service.ts) on the cluster: created once, updated when its spec (image)
 * changed, and waited for until nginx answers. Idempotent.
 */
export async function ensureEdgeService(cluster: Cluster, engine: Engine, opts: { app: string; image: string; https?: boolean }): Promise<void> {
  const { app, image } = opts;
  const manager = cluster.manager;
  const spec = planEdgeService(app, image, cluster.network, opts.https === true);
  const existing = (await listServices(engine, { [LABELS.app]: app, [EDGE_ROLE_LABEL]: 'edge' })).find((s) => s.name === spec.Name);
  // before anything is written: a refused image changes nothing
  if (existing === undefined || existing.image !== image) await checkEdgeImage(manager, image);
  await manager.exec(edgeDirsCommand(app));
  const site = { dir: edgeDir(app) };
  if ((await manager.readFile(liveConfigPath(site))) === null) {
    // Before the first routing table there is nothing to serve: every host gets a 404.
    await manager.writeFileAtomic(liveConfigPath(site), renderNginxConfig({ app }, containerRenderOptions(app)));
  }
  if (existing === undefined) await createService(engine, spec);
  // an edge made before tls: was turned on publishes 443 too (the task restarts once)
  else if (existing.image !== image || (opts.https === true && existing.ports !== undefined && !existing.ports.includes(443))) await updateService(engine, existing, spec);
  await waitForEdgeContainer(cluster, engine, app);
}

/** Refuses an image that cannot be depl's edge before it replaces (or becomes) the running one. */
export async function checkEdgeImage(manager: Remote, image: string): Promise<void> {
  const probe = await manager.shell(edgeImageProbe(image, DEBIAN_NGINX_MODULES), { check: false, timeoutMs: 300_000 });
  if (probe.code === 0) return;
  const said = (probe.stdout + probe.stderr).trim();
  const fix = 'Remove images.nginx from depl.yaml to use depl\'s edge image (Debian\'s nginx with libnginx-mod-http-lua), or name an image built like templates/edge.Dockerfile.';
  if (probe.code === EDGE_PROBE_MISSING_MODULE) {
    throw new UserError(`the edge image ${image} has no nginx Lua module (${said}); the edge routes with it`, fix, 'EDGE_IMAGE_NO_LUA');
  }
  throw new UserError(`the edge image ${image} could not be checked on ${manager.name} (exit ${probe.code}): ${said}`, `It must be pullable from the manager or loaded on it. ${fix}`, 'EDGE_IMAGE_UNUSABLE');
}

async function waitForEdgeContainer(cluster: Cluster, engine: Engine, app: string): Promise<void> {
  const name = edgeServiceName(app);
  let state = '';
  await pollUntil(async () => {
    const site = await clusterEdgeSite(cluster, app).catch(() => null);
    if (site !== null && (await edgeReport(site).catch(() => null))?.status === 200) return true;
    // the newest task's state and error, for the message if it never runs
    const latest = (await serviceTasks(engine, name).catch(() => [])).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    state = latest === undefined ? '' : [latest.state, latest.error].filter(Boolean).join(' ');
    return undefined;
  }, {
    timeoutMs: 90_000, intervalMs: 500,
    onTimeout: () => {
      throw new OperationError(`the edge service ${name} did not start within 90s (${state || 'no task'})`, `Check \`docker service ps --no-trunc ${name}\` and \`docker service logs ${name}\` on ${cluster.manager.name}.`, 'EDGE_NOT_RUNNING');
    },
  });
}
