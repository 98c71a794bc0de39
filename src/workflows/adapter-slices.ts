import path from 'node:path';
import type { ProjectFolder } from '../apply/inventory.js';
import type { ProjectFilesSource } from '../apply/project-files.js';
import type { LocalProviderSettings } from '../apply/providers/local.js';
import type { OpenStackProviderSettings } from '../apply/providers/openstack.js';
import type { SecretsSource } from '../apply/secrets-store.js';
import type { SeedFileSource } from '../apply/seed-file.js';
import type { LoadedConfig } from '../config/load.js';
import type { LocalProviderConfig } from '../config/schema.js';
import { managedKeyName, stackName } from '../plan/heat.js';
import { localPrefixOf } from '../plan/local-nodes.js';
import { projectFacts } from '../plan/operator-files.js';
import type { CrawlInputs } from './crawl.js';
import type { DesignateCloud } from './domain.js';
import type { BuildSource } from './release-target.js';

/**
 * The one place depl.yaml's loaded form is cut into what each adapter needs: the adapters in src/apply take
 * these narrow slices (paths, the app's name, their provider section...), never LoadedConfig, so what an
 * adapter reads is visible in its signature. Built next to the port and the cluster (src/workflows/cluster.ts).
 */

/** depl.yaml's folder and the cluster's SSH key (ssh.key resolved against it). */
export function projectPaths(loaded: LoadedConfig): ProjectFolder & { sshKey: string } {
  return { root: loaded.root, sshKey: path.resolve(loaded.root, loaded.config.ssh.key) };
}

export function secretsSource(loaded: LoadedConfig): SecretsSource {
  return { root: loaded.root, file: loaded.file, declared: loaded.config.secrets };
}

export function projectFilesSource(loaded: LoadedConfig): ProjectFilesSource {
  return {
    root: loaded.root,
    facts: projectFacts(loaded),
    owners: [...Object.entries(loaded.config.services), ...Object.entries(loaded.config.accessories)].map(([name, entry]) => [name, entry.files]),
  };
}

export function localProviderSettings(loaded: LoadedConfig): LocalProviderSettings {
  const provider = loaded.config.provider as LocalProviderConfig;
  return { prefix: localPrefixOf({ app: loaded.config.app, provider }), subnet: provider.subnet ?? '192.168.77.0/24', image: provider.image ?? 'docker', project: path.resolve(loaded.root) };
}

export function openStackProviderSettings(loaded: LoadedConfig): OpenStackProviderSettings {
  const provider = loaded.config.provider;
  if (provider.type !== 'openstack') throw new Error(`OpenStack settings asked of a ${provider.type} provider`);
  return {
    provider,
    root: loaded.root,
    stack: stackName(loaded.config),
    key: { name: managedKeyName(loaded.config), file: projectPaths(loaded).sshKey, configured: loaded.config.ssh.key },
  };
}

/** perBranch accessories' seed files and what they may not be (src/apply/seed-file.ts checkSeedFiles). */
export function seedFileSource(loaded: LoadedConfig): SeedFileSource {
  return { accessories: loaded.config.accessories, facts: projectFacts(loaded) };
}

/** Where the services' build contexts and Dockerfiles are read from (src/workflows/release-target.ts resolveBuildInputs). */
export function buildSource(loaded: LoadedConfig): BuildSource {
  return { root: loaded.root, services: loaded.config.services, facts: projectFacts(loaded) };
}

/** The OpenStack provider's cloud for Designate (src/workflows/domain.ts designateFor). */
export function designateCloud(loaded: LoadedConfig): DesignateCloud {
  const provider = loaded.config.provider;
  if (provider.type !== 'openstack') throw new Error('Designate asked of a local provider');
  return { root: loaded.root, ...(provider.cloud !== undefined ? { cloud: provider.cloud } : {}), ...(provider.region !== undefined ? { region: provider.region } : {}) };
}

/**
 * What depl crawl reads of depl.yaml (src/workflows/crawl.ts crawlerClientFor). Cut here, not in command-inputs.ts:
 * the crawl commands load none of the cluster's and buildinst's modules that one brings.
 */
export function crawlInputsFor(loaded: LoadedConfig): CrawlInputs {
  return { config: loaded.config, root: loaded.root, secrets: secretsSource(loaded) };
}
