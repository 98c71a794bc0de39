import path from 'node:path';
import type { Cluster } from '../apply/cluster.js';
import type { Engine } from '../apply/docker.js';
import { operatorHooks, type HookRunner } from '../apply/hooks.js';
import type { DesignateClient } from '../apply/openstack/designate.js';
import { readProjectFiles } from '../apply/project-files.js';
import type { Provider } from '../apply/providers/types.js';
import { resolveSecrets, type ResolvedSecret } from '../apply/secrets-store.js';
import { checkSeedFiles } from '../apply/seed-file.js';
import type { SshPool } from '../apply/ssh.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import type { DeplConfig } from '../config/schema.js';
import { BACKUPS_FOLDER } from '../plan/operator-files.js';
import type { ProjectFile } from '../plan/services.js';
import type { Logger } from '../util/log.js';
import { buildSource, crawlInputsFor, designateCloud, projectFilesSource, projectPaths, secretsSource, seedFileSource } from './adapter-slices.js';
import { openCluster, providerFor, sshPoolFor } from './cluster.js';
import { clusterPortFor, withClusterPort, type ClusterPort, type InstallTarget, type PortOpener, type PortOptions } from './cluster-port.js';
import type { CrawlInputs } from './crawl.js';
import { designateFor } from './domain.js';
import { installTargetOn } from './install-target.js';
import { resolveBuildInputs, type BuildInput } from './release-target.js';
import { readCertificateFiles } from './tls/certificates.js';
import type { TlsRenewInputs } from './tls/renew.js';

/**
 * What a command cuts out of depl.yaml for its workflow, once, before calling it. Workflows take these narrow,
 * typed inputs (the app's name, how to open its cluster...), never depl.yaml's loaded form, so what a workflow
 * reads of depl.yaml shows in its signature. With adapter-slices.ts (what the adapters take), cluster.ts (the
 * cluster) and cluster-port.ts (the port), this is where LoadedConfig stops in src/workflows
 * (test/unit/workflows-config-imports.test.ts lists the files that still take it).
 */

/** A workflow that works on the cluster: the app's name and how to open the cluster node-up made. */
export interface ClusterAccess {
  app: string;
  /** Opens the cluster from the inventory with one SSH connection to its manager; the caller closes it. */
  open(log: Logger): Promise<Cluster>;
  /** A port for reading only on an open cluster: no edge container, and the HTTPS settings not read (a read renders nothing). */
  readingPort(cluster: Cluster, log: Logger): Promise<ClusterPort>;
  /** The port on an open cluster (clusterPortFor with depl.yaml's app, domain, services and TLS settings). */
  portOn(cluster: Cluster, log: Logger, options?: Omit<PortOptions, 'issuing'>): Promise<ClusterPort>;
}

export function clusterAccessFor(loaded: LoadedConfig): ClusterAccess {
  return {
    app: loaded.config.app,
    open: (log) => openCluster(loaded, log),
    readingPort: (cluster, log) => clusterPortFor(cluster, loaded.config, log, { filesOnly: true, tls: { render: undefined } }),
    portOn: (cluster, log, options) => clusterPortFor(cluster, loaded.config, log, options),
  };
}

/** depl backup and restore: the accessories depl.yaml declares, where the backups go, and the cluster. */
export interface AccessoryInputs {
  /** depl.yaml's path, named when it declares no such accessory. */
  file: string;
  /** depl.yaml's folder: backups and safety copies go to its .depl/backups/. */
  root: string;
  config: Pick<DeplConfig, 'app' | 'accessories'>;
  cluster: Pick<ClusterAccess, 'open'>;
}

export function accessoryInputsFor(loaded: LoadedConfig): AccessoryInputs {
  const { app, accessories } = loaded.config;
  return { file: loaded.file, root: loaded.root, config: { app, accessories }, cluster: clusterAccessFor(loaded) };
}

/** depl prune: depl.yaml's content (which image repositories, which branch databases), where dumps go, and the cluster. */
export interface PruneInputs {
  config: DeplConfig;
  /** Where a branch database's dump goes before it is dropped: depl.yaml's .depl/backups/. */
  backupsDir: string;
  cluster: Pick<ClusterAccess, 'open' | 'portOn'>;
}

export function pruneInputsFor(loaded: LoadedConfig): PruneInputs {
  return { config: loaded.config, backupsDir: path.resolve(loaded.root, BACKUPS_FOLDER), cluster: clusterAccessFor(loaded) };
}

/**
 * depl buildinst: depl.yaml's content (what the pure install plan is made from), what it names in the project
 * (read and checked before the cluster is reached: a problem there is exit 2 with nothing changed), the cluster,
 * and the port's slices buildinst adds on it.
 */
export interface BuildinstInputs {
  config: DeplConfig;
  project: InstallProject;
  cluster: Pick<ClusterAccess, 'open' | 'portOn'>;
  /** The operator's hooks and the port's install slice (src/workflows/install-target.ts) on an open cluster. */
  installOn(cluster: Cluster, engine: Engine, builds: readonly BuildInput[], log: Logger): { hooks: HookRunner; install: InstallTarget };
}

/** What buildinst reads from the operator's project folder. */
export interface InstallProject {
  /** The services' build contexts, read as they will be sent (a private key or secrets file in one is refused). */
  buildInputs(): Promise<BuildInput[]>;
  /** The declared secrets' values (the local secrets file; DEPL_SECRET_<NAME> in env overrides). */
  secrets(env?: NodeJS.ProcessEnv): Promise<ResolvedSecret[]>;
  /** depl.yaml's `files:`, read. */
  files(): Promise<ProjectFile[]>;
  /** perBranch accessories' seed files, checked: accessory -> absolute path. */
  seedFiles(): Promise<Record<string, string>>;
  /** tls: files that would be refused later (expired, a key others may read) refuse now. */
  checkCertificateFiles(): Promise<void>;
}

export function buildinstInputsFor(loaded: LoadedConfig): BuildinstInputs {
  return {
    config: loaded.config,
    project: {
      buildInputs: () => resolveBuildInputs(buildSource(loaded)),
      secrets: (env) => resolveSecrets(secretsSource(loaded), env),
      files: () => readProjectFiles(projectFilesSource(loaded)),
      seedFiles: () => checkSeedFiles(seedFileSource(loaded)),
      async checkCertificateFiles() {
        await readCertificateFiles(loaded);
      },
    },
    cluster: clusterAccessFor(loaded),
    installOn: (cluster, engine, builds, log) => ({ hooks: operatorHooks(loaded.root, loaded.config, log), install: installTargetOn(loaded, cluster, engine, builds, log) }),
  };
}

/**
 * depl node-up (and its --dry-run), node-down and status: depl.yaml's content (node-up's swarm, pool and domain
 * plans are made from it), its folder (the inventory files node-up writes beside it), and what it names of the
 * machines: the provider, SSH and provider.dns's Designate, each reached when the workflow asks.
 */
export interface NodeInputs {
  config: DeplConfig;
  /** depl.yaml's folder: .depl/inventory.json, .depl/known_hosts, ansible/generated_hosts.ini and the pool hand-off beside it; Ansible runs there. */
  root: string;
  /** ssh.key resolved against depl.yaml's folder (the Ansible inventory names it). */
  sshKey: string;
  /** The provider depl.yaml names; the cluster's key pair is made when missing (local nodes authorise it). */
  provider(log: Logger, options?: { interactive?: boolean }): Promise<Provider>;
  /** One SSH connection per node (reused), host keys pinned in .depl/known_hosts. */
  sshPool(log: Logger, waitMs?: number): Promise<SshPool>;
  /** Designate through the provider's cloud: asked only for provider.dns (managedDomain), so only of an OpenStack provider. */
  designate(options?: { interactive?: boolean; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<DesignateClient>;
  cluster: ClusterAccess;
}

export function nodeInputsFor(loaded: LoadedConfig): NodeInputs {
  return {
    config: loaded.config,
    root: loaded.root,
    sshKey: projectPaths(loaded).sshKey,
    provider: (log, options) => providerFor(loaded, log, options),
    sshPool: (log, waitMs) => sshPoolFor(loaded, log, waitMs),
    designate: (options) => designateFor(designateCloud(loaded), options),
    cluster: clusterAccessFor(loaded),
  };
}

/** depl hibernate and wake: as node-up's, with depl.yaml's path (src/workflows/hibernation-target.ts). */
export function hibernationInputsFor(loaded: LoadedConfig): NodeInputs & { file: string } {
  return { ...nodeInputsFor(loaded), file: loaded.file };
}

/** depl tls renew (src/workflows/tls/renew.ts). */
export function tlsRenewInputsFor(loaded: LoadedConfig): TlsRenewInputs {
  return {
    config: loaded.config,
    certificateFiles: () => readCertificateFiles(loaded),
    withPort: (log, fn) => withClusterPort(loaded, log, fn),
  };
}

/** depl demo: the depl.yaml it wrote or found, cut into the inputs of each command it runs. */
export interface DemoInputs {
  /** Named in what the demo prints; the demo refuses any provider but the local one. */
  config: Pick<DeplConfig, 'domain' | 'provider'>;
  nodes: NodeInputs;
  buildinst: BuildinstInputs;
  prune: PruneInputs;
  crawl: CrawlInputs;
  /** The port for the switch, over one SSH connection (withClusterPort). */
  withPort: PortOpener;
}

/** Reads depl.yaml at `file` (after the demo made sure it is there) and cuts it for each of the demo's steps. */
export async function demoInputsAt(file: string): Promise<DemoInputs> {
  const loaded = await loadConfig(file);
  return {
    config: loaded.config,
    nodes: nodeInputsFor(loaded),
    buildinst: buildinstInputsFor(loaded),
    prune: pruneInputsFor(loaded),
    crawl: crawlInputsFor(loaded),
    withPort: (log, fn) => withClusterPort(loaded, log, fn),
  };
}
