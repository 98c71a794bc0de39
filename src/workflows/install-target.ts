import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureAutoscalerImage } from '../apply/autoscaler-image.js';
import type { Cluster } from '../apply/cluster.js';
import { distributeImage } from '../apply/distribute.js';
import type { Engine } from '../apply/docker.js';
import { clusterEdgeSite } from '../apply/edge/site.js';
import { clusterEdgeHostOn } from '../apply/edge/cluster-edge.js';
import { ensureClusterEdge } from './cluster-edge.js';
import { ensureEdgeImage } from '../apply/edge-image.js';
import { ensureEdgeService } from '../apply/edge/service.js';
import { runJobService } from '../apply/jobs.js';
import { waitForHealthy } from '../apply/health.js';
import {
  createService, ensureSwarmConfig, ensureSwarmSecret, inspectServiceSpec, labelledSecrets, listServices, removeSwarmSecret, pinnedImageReference, removeService, restoreServices,
  serviceLogTail, serviceTasks, updateService, waitForServices, type AwaitedService, type InstalledService,
} from '../apply/swarm.js';
import { ensureRenewalTask, removeRenewalTask } from '../apply/tls/renewal-task.js';
import { awaitVolumeFree, locateVolumes, removeVolume, repointServices, servicesMounting } from '../apply/volume-move.js';
import { ensureVersionNetwork, removeVersionNetwork, startServices, stopServices } from '../apply/version-network.js';
import { tlsStoreFor } from '../apply/tls/store.js';
import type { DeplConfig } from '../config/schema.js';
import { isDeplError, OperationError } from '../errors.js';
import { autoscalerFoldersLine } from '../plan/autoscale.js';
import { BRANCH_DATABASE_LABELS, recordFromLabels } from '../plan/branch-database.js';
import type { ServiceRestore } from '../plan/install-intent.js';
import type { PresentService } from '../plan/install-plan.js';
import { LABELS, pinnedSpec, specImageId, type ServiceSpec, type SwarmSecretRef } from '../plan/services.js';
import { EDGE_ROLE_LABEL } from '../plan/edge-service.js';
import { certificateCovers, describeWithheld, directoryUrl, tlsSettings } from '../plan/tls/certificates.js';
import { renewalTimes, renewerDnsCredential, type RenewerDnsCredential, type RenewerSettings } from '../plan/tls/renewal.js';
import { resolveCloudCredentials } from '../config/clouds.js';
import { swarmCredentialHolder } from '../apply/tls/renewer-secret.js';
import { renewerCredentialWanted } from '../plan/tls/renewer-credential.js';
import type { Logger } from '../util/log.js';
import { clusterPortFor, type InstallTarget } from './cluster-port.js';
import type { BuildInput } from './release-target.js';
import { issueEdgeCertificates, type TlsProject } from './tls/certificates.js';
import { syncEdgeCertificates } from './tls/edge-sync.js';
import { keepRenewerCredential, operatorDesignate } from './tls/renewer-credential.js';

const present = (s: InstalledService): PresentService => ({ name: s.name, labels: s.labels, createdAt: s.createdAt, replicas: s.replicas, image: s.image, ...(s.volumes !== undefined ? { volumes: s.volumes } : {}) });
const presentEdge = (s: InstalledService): PresentService & { ports?: number[] } => ({ ...present(s), ...(s.ports !== undefined ? { ports: s.ports } : {}) });

/** Only the tasks of this spec count as the service's (a service updated in place still runs old tasks for a while). */
function awaitedService(spec: ServiceSpec): AwaitedService {
  const container = spec.TaskTemplate.ContainerSpec;
  return {
    name: spec.Name,
    replicas: spec.Mode.Replicated.Replicas,
    spec: { image: container.Image, configs: (container.Configs ?? []).map((c) => c.ConfigName), labels: container.Labels ?? {} },
  };
}

/**
 * buildinst's slice of the port on a real cluster: the manager's Engine API over SSH, the nodes, the edge. It
 * takes depl.yaml's content (the port it repairs with is made from it) and the TLS slice's folder and path
 * (certificates and the renewal task read tls.caBundle and the DNS cloud's credentials beside depl.yaml).
 */
export function installTargetOn(project: TlsProject & { config: DeplConfig }, cluster: Cluster, engine: Engine, inputs: readonly BuildInput[], log: Logger): InstallTarget {
  const { config } = project;
  const app = config.app;
  const registry = config.registry?.url;
  return {
    async appServices() {
      return (await listServices(engine, { [LABELS.app]: app })).map(present);
    },
    async servicesNamed(names) {
      if (names.length === 0) return [];
      return (await listServices(engine, {})).filter((s) => names.includes(s.name)).map(present);
    },
    async edgesOfOtherApps() {
      return (await listServices(engine, { [EDGE_ROLE_LABEL]: 'edge' })).filter((s) => s.labels[LABELS.app] !== app).map(presentEdge);
    },
    async earlierSpecs(names) {
      const restores: ServiceRestore[] = [];
      for (const name of names) {
        const found = await inspectServiceSpec(engine, name);
        if (found === null) throw new OperationError(`service ${name} went away while it was being read for a redeploy`, 'Run the command again.', 'SERVICE_GONE');
        const id = specImageId(found.spec);
        const image = id === undefined ? undefined : await pinnedImageReference(engine, id, registry);
        if (id !== undefined && image === undefined) {
          log.warn(`${name}: the manager no longer has the image it runs (${id}); if this redeploy fails, its earlier spec comes back with the branch's image tag, which then names the new build`);
        }
        restores.push({ name, spec: pinnedSpec(found.spec, () => image) });
      }
      return restores;
    },
    async repairPort() {
      // this run has the Engine API, which can put an interrupted redeploy's services back to their recorded specs
      const withRestore = <T extends { swarm?: object }>(port: T) => ({ ...port, swarm: { ...(port.swarm as object), restore: (services: readonly ServiceRestore[]) => restoreServices(engine, services) } });
      const running = await clusterPortFor(cluster, config, log).catch(() => undefined);
      if (running !== undefined) return { port: withRestore(running) as typeof running, edgeRunning: true };
      const files = await clusterPortFor(cluster, config, log, { filesOnly: true });
      return { port: withRestore(files) as typeof files, edgeRunning: false };
    },
    async ensureEdge(edge) {
      const image = edge.image ?? (await ensureEdgeImage(engine, config.provider.type === 'local', log));
      if (edge.cluster) {
        // the plan refused HTTPS here: the cluster's edge carries none yet
        await ensureClusterEdge(clusterEdgeHostOn(cluster, cluster.manager), cluster.manager, { image, https: false, command: `depl buildinst (app ${app})` }, log);
        return clusterEdgeSite(cluster, app);
      }
      await ensureEdgeService(cluster, engine, { app, image, https: edge.https });
      // the edge answers ACME challenges before any order is placed: HTTPS settings as the store has them
      if (edge.https) await syncEdgeCertificates(tlsStoreFor(cluster.manager, app), config, edge.certificateVersions);
      return clusterEdgeSite(cluster, app);
    },
    async buildImage(build) {
      const input = inputs.find((i) => i.service === build.service);
      if (input === undefined) throw new OperationError(`no build context was read for service ${build.service}`, undefined, 'BUILD_INPUT_MISSING');
      // no version label: an unchanged tree then builds the same image id, which nodes already have
      return engine.build({ context: input.context, dockerfile: input.dockerfile, tag: build.tag, args: build.args, ...(build.target !== undefined ? { target: build.target } : {}), labels: { [LABELS.app]: app } }, log);
    },
    async distributeImage(image, nodes, via) {
      const targets = nodes === 'all' ? cluster.nodes : cluster.nodes.filter((n) => nodes.includes(n.name));
      const result = await distributeImage(cluster, engine, image, targets, log, via);
      return result.pushed ? 'pushed to the registry' : `loaded on ${result.loaded.length}, tagged on ${result.tagged.length}, already on ${result.skipped.length} node(s)`;
    },
    ensureConfig: (doc) => ensureSwarmConfig(engine, doc),
    ensureSecret: (doc) => ensureSwarmSecret(engine, doc),
    async ensureAutoscalerImage(nodeImage, version) {
      const image = await ensureAutoscalerImage(engine, nodeImage, log);
      await cluster.manager.shell(autoscalerFoldersLine(app, version));
      return image;
    },
    async createService(spec) {
      await createService(engine, spec);
    },
    async updateService(spec) {
      const current = await inspectServiceSpec(engine, spec.Name);
      if (current === null) throw new OperationError(`service ${spec.Name} went away before it could be updated`, 'Run the command again.', 'SERVICE_GONE');
      await updateService(engine, { id: current.id, specVersion: current.version } as InstalledService, spec);
    },
    removeService: (name) => removeService(engine, name),
    restoreServices: (services) => restoreServices(engine, services),
    async taskIds(services) {
      const ids = new Set<string>();
      for (const service of services) for (const task of await serviceTasks(engine, service)) ids.add(task.id);
      return ids;
    },
    awaitServices: (specs, options) => waitForServices(engine, specs.map(awaitedService), options, log),
    async healthy(host, urlPath, timeoutMs) {
      const result = await waitForHealthy(`http://${cluster.managerNode.address}:80`, host, urlPath, timeoutMs);
      return result.ok ? { ok: true, last: '200' } : { ok: false, last: result.last };
    },
    logTail: (service, lines) => serviceLogTail(engine, service, lines),
    async issueCertificates(versions, host) {
      try {
        const certs = await issueEdgeCertificates(cluster, project, log, [...versions]);
        const withheld = certs.withheld.find((w) => certificateCovers(w.names, host));
        let httpsMissing = certs.failed.find((f) => f.names.some((name) => certificateCovers([name], host)))?.reason;
        if (httpsMissing === undefined && withheld !== undefined) httpsMissing = describeWithheld(withheld);
        if (httpsMissing === undefined && !certs.installed.some((c) => certificateCovers(c.names, host))) httpsMissing = 'no certificate covers this host';
        return {
          ...(certs.renderChanged ? { site: await clusterEdgeSite(cluster, app) } : {}),
          ...(httpsMissing !== undefined ? { httpsMissing } : {}),
          tlsWithheld: certs.withheld.map(describeWithheld),
        };
      } catch (error) {
        if (!isDeplError(error)) throw error;
        return { httpsMissing: error.message, tlsWithheld: [] };
      }
    },
    renewalTask: (mode, nodeImage) => renewalTaskFor(project, cluster, engine, mode, nodeImage, log),
    async runJob(spec, options) {
      try {
        return await runJobService(engine, spec, options);
      } finally {
        // a task still running (a timeout, an interrupt) is stopped by the removal
        await removeService(engine, spec.Name).catch((error: Error) => log.warn(`could not remove job ${spec.Name}: ${error.message} (remove it on the manager: docker service rm ${spec.Name})`));
      }
    },
    branchDatabases: async () => (await labelledSecrets(engine, app, BRANCH_DATABASE_LABELS.accessory)).flatMap((s) => recordFromLabels(s.name, s.labels) ?? []),
    removeSecret: (name) => removeSwarmSecret(engine, name),
    ensureNetwork: (name, labels) => ensureVersionNetwork(engine, cluster.network, name, labels),
    removeNetwork: (name) => removeVersionNetwork(engine, name),
    stopServices: (services, timeoutMs) => stopServices(engine, services, timeoutMs),
    startServices: (targets) => startServices(engine, targets),
    volumes: {
      mounting: (volumes) => servicesMounting(engine, volumes),
      locate: (volumes) => locateVolumes(cluster, volumes),
      awaitFree: (node, volume, timeoutMs) => awaitVolumeFree(cluster, node, volume, timeoutMs),
      repoint: (services, from, to) => repointServices(engine, services, from, to),
      remove: (node, volume) => removeVolume(cluster, node, volume),
    },
  };
}

/**
 * tls: acme keeps a renewal task on the cluster (src/tls-renewer/main.ts) so certificates are renewed without an
 * operator; any other mode removes it. A task that cannot be installed is reported, not fatal: the version is in.
 */
async function renewalTaskFor(project: TlsProject, cluster: Cluster, engine: Engine, mode: 'ensure' | 'remove', nodeImage: string, log: Logger): Promise<string | undefined> {
  const { config } = project;
  const tls = tlsSettings(config);
  try {
    if (mode === 'remove' || tls.mode !== 'acme') return (await removeRenewalTask(engine, config.app)) ? 'removed' : undefined;
    const caBundle = tls.caBundle === undefined ? undefined : await readFile(path.resolve(project.root, tls.caBundle), 'utf8');
    const settings: RenewerSettings = {
      app: config.app,
      domain: config.domain,
      directory: directoryUrl(tls.directory),
      ...(tls.email !== undefined ? { email: tls.email } : {}),
      ...(caBundle !== undefined ? { caBundle } : {}),
      challenge: tls.challenge,
      ...(tls.hstsMaxAge !== undefined ? { hstsMaxAge: tls.hstsMaxAge } : {}),
      ...renewalTimes(tls),
      edgeUrl: `http://${cluster.managerNode.address}:80`,
    };
    const dns = tls.challenge === 'dns-01' && !renewerCredentialWanted(config) ? await renewerDnsFor(project, tls, log) : undefined;
    const install = (dnsSecret?: SwarmSecretRef) => ensureRenewalTask(cluster.manager, engine, { settings, image: nodeImage, log, ...(dns !== undefined ? { dns } : dnsSecret !== undefined ? { dnsSecret } : {}) });
    if (tls.challenge !== 'dns-01' || !renewerCredentialWanted(config)) return await install();
    // the zero-config domain's DNS-01: node-up's credential, kept current by the plan tls renew and node-up --plan show
    let outcome: Awaited<ReturnType<typeof install>> | undefined;
    const kept = await keepRenewerCredential({
      command: 'depl buildinst', app: config.app, holder: swarmCredentialHolder(engine, config.app), signIn: () => operatorDesignate(project), now: Date.now, log,
      mount: { how: 'install', give: async (ref) => { outcome = await install(ref); } },
    });
    if (outcome === undefined) outcome = await install(kept.ref);
    return outcome;
  } catch (error) {
    if (!isDeplError(error)) throw error;
    log.warn(`the certificate renewal task is not installed: ${error.message}; certificates are renewed by depl commands only`);
    return `not installed: ${error.message}`;
  }
}

/**
 * DNS-01: the application credential of tls.dnsCloud for the renewal task (src/plan/tls/renewal.ts
 * renewerDnsCredential says what it may be), or undefined when there is none to give, and the log says who
 * renews the wildcard then. Never asks for a password: none is ever handed to the cluster.
 */
async function renewerDnsFor(project: Pick<TlsProject, 'root'>, tls: Extract<ReturnType<typeof tlsSettings>, { mode: 'acme' }>, log: Logger): Promise<RenewerDnsCredential | undefined> {
  let credentials;
  let caCert: string | undefined;
  try {
    credentials = tls.dnsCloud === undefined ? undefined : await resolveCloudCredentials({ cloud: tls.dnsCloud, configRoot: project.root, interactive: false });
    if (credentials?.caCertFile !== undefined) caCert = await readFile(credentials.caCertFile, 'utf8');
  } catch (error) {
    if (!isDeplError(error) && !(error instanceof Error && 'code' in error)) throw error;
    log.info(`the renewal task cannot renew the DNS-01 wildcard: ${(error as Error).message}; run depl tls renew before it is due`);
    return undefined;
  }
  const given = renewerDnsCredential(tls, credentials, caCert);
  if ('none' in given) {
    log.info(`the renewal task cannot renew the DNS-01 wildcard: ${given.none}; run depl tls renew before it is due`);
    return undefined;
  }
  return given.credential;
}
