import { OperationError, UserError } from '../../errors.js';
import { edgeDir, edgeDirsCommand, edgeImageProbe, edgeProbeCommand, edgeServiceName, EDGE_PROBE_MISSING_MODULE, EDGE_ROLE_LABEL, planEdgeService } from '../../plan/edge-service.js';
import { DEBIAN_NGINX_MODULES, renderNginxConfig } from '../../plan/nginx.js';
import type { ServiceSpec } from '../../plan/services.js';
import type { Argv } from '../../plan/shell.js';
import { pollUntil } from '../../util/poll.js';
import type { Remote } from '../remote.js';
import { LABELS } from '../../plan/services.js';
import type { Cluster } from '../cluster.js';
import type { Engine } from '../docker.js';
import { createService, listServices, serviceTasks, updateService, type InstalledService } from '../swarm.js';
import { liveConfigPath } from './config.js';
import { containerRenderOptions, edgeReport } from './site.js';

/**
 * The edge service (src/plan/edge-service.ts) on the cluster: created once, updated when its spec (image)
 * changed, and waited for until nginx answers. Idempotent.
 */
export async function ensureEdgeService(cluster: Cluster, engine: Engine, opts: { app: string; image: string; https?: boolean }): Promise<void> {
  const { app, image } = opts;
  const spec = planEdgeService(app, image, cluster.network, opts.https === true);
  const existing = (await listServices(engine, { [LABELS.app]: app, [EDGE_ROLE_LABEL]: 'edge' })).find((s) => s.name === spec.Name);
  // an edge made before tls: was turned on publishes 443 too (the task restarts once)
  const update = existing !== undefined && (existing.image !== image || (opts.https === true && existing.ports !== undefined && !existing.ports.includes(443)));
  await runEdgeService(cluster.manager, engine, {
    spec,
    folders: edgeDirsCommand(app),
    configFile: liveConfigPath({ dir: edgeDir(app) }),
    // Before the first routing table there is nothing to serve: every host gets a 404.
    firstConfig: renderNginxConfig({ app }, containerRenderOptions(app)),
    probe: edgeProbeCommand(edgeServiceName(app), containerRenderOptions(app).listen.port),
    checkImage: existing === undefined || existing.image !== image,
  }, existing !== undefined ? { existing, update } : undefined);
}

/** An edge's nginx service as it is made to run: what the swarm runs, its files, and how to ask it whether nginx answers. */
export interface EdgeLaunch {
  spec: ServiceSpec;
  /** Makes the folders the service bind-mounts (and its logs folder) on the manager, the edge node. */
  folders: Argv;
  /** Its nginx.conf, written with `firstConfig` only when there is none (a running edge's stays as it is). */
  configFile: string;
  firstConfig: string;
  /** The edge's probe, asked inside its container on the manager (edgeProbeCommand). */
  probe: Argv;
  /** Whether the image is looked into first (it is new here, or changes): false when it was checked already. */
  checkImage: boolean;
}

const EDGE_START_MS = 90_000;

/**
 * The one way an edge's nginx service is made to run, an app's `<app>-edge` and the cluster's `depl_edge` alike:
 * its image checked before anything is written (a refused image changes nothing), its folders and first
 * configuration, the service created (or updated, when `existing` must change), then waited for until nginx
 * answers its probe inside the container (a task that runs but whose nginx has not read its configuration yet, or
 * refused it, is not an edge that serves).
 */
export async function runEdgeService(manager: Remote, engine: Engine, edge: EdgeLaunch, present?: { existing: InstalledService; update: boolean }): Promise<void> {
  if (edge.checkImage) await checkEdgeImage(manager, edge.spec.TaskTemplate.ContainerSpec.Image);
  await manager.exec(edge.folders);
  if ((await manager.readFile(edge.configFile)) === null) await manager.writeFileAtomic(edge.configFile, edge.firstConfig);
  if (present === undefined) await createService(engine, edge.spec);
  else if (present.update) await updateService(engine, present.existing, edge.spec);
  await waitForEdgeNginx(manager, engine, edge.spec.Name, edge.probe);
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

async function waitForEdgeNginx(manager: Remote, engine: Engine, service: string, probe: Argv): Promise<void> {
  let state = '';
  await pollUntil(async () => {
    if ((await edgeReport({ url: '', remote: manager, probe }).catch(() => null))?.status === 200) return true;
    // the newest task's state and error, for the message if it never runs
    const latest = (await serviceTasks(engine, service).catch(() => [])).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    state = latest === undefined ? '' : [latest.state, latest.error].filter(Boolean).join(' ');
    return undefined;
  }, {
    timeoutMs: EDGE_START_MS, intervalMs: 500,
    onTimeout: () => {
      throw new OperationError(`the edge service ${service} did not start within ${EDGE_START_MS / 1000}s (${state || 'no task'})`, `Check \`docker service ps --no-trunc ${service}\` and \`docker service logs ${service}\` on ${manager.name}.`, 'EDGE_NOT_RUNNING');
    },
  });
}
