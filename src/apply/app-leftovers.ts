import { RENEWER_CREDENTIAL_LABELS } from '../plan/tls/renewer-credential.js';
import type { SwarmObject } from '../plan/prune.js';
import type { Argv } from '../plan/shell.js';
import type { JobListing } from '../plan/jobs.js';
import { OperationError } from '../errors.js';
import type { Cluster } from './cluster.js';
import type { Engine } from './docker.js';
import { listJobs } from './jobs.js';
import { removeService } from './swarm.js';
import { removeVersionNetwork } from './version-network.js';
import type { Logger } from '../util/log.js';

/**
 * What `depl prune` reads and removes on the swarm and the nodes besides versions' services: the app's image
 * tags on every node, the jobs of `depl run`, the app's configs and secrets with the services using them.
 * The manager's Engine API for the swarm objects, each node's docker CLI for its images.
 */
export interface AppLeftovers {
  /** Tags of the app's build images on each node, by node name. */
  imageTags(): Promise<Record<string, string[]>>;
  removeImageTags(node: string, tags: readonly string[]): Promise<void>;
  jobs(): Promise<JobListing[]>;
  removeJobs(names: readonly string[]): Promise<void>;
  /** The app's configs and secrets, each with the services that use it now. */
  configs(): Promise<SwarmObject[]>;
  /** Removes these configs, secrets and version networks (ones already gone are not an error). */
  removeConfigs(configs: readonly string[], secrets: readonly string[], networks?: readonly string[]): Promise<void>;
}

/** `docker image ls` of the app's build repositories (`<app>/<service>`), one `repository:tag` a line. */
export function imageTagsCommand(repositories: readonly string[]): Argv {
  return ['docker', 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', ...repositories.flatMap((r) => ['--filter', `reference=${r}`])];
}

interface ServiceReferences {
  Spec?: { Name?: string; TaskTemplate?: { ContainerSpec?: { Configs?: { ConfigName?: string }[]; Secrets?: { SecretName?: string }[] }; Networks?: { Target?: string }[] } };
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

export function appLeftoversOn(cluster: Cluster, engine: Engine, app: string, repositories: readonly string[], log: Logger): AppLeftovers {
  return {
    async imageTags() {
      if (repositories.length === 0) return {};
      const byNode = await Promise.all(cluster.nodes.map(async (node) => {
        const remote = await cluster.remote(node.name);
        const listed = await remote.exec(imageTagsCommand(repositories), { timeoutMs: 30_000 });
        return [node.name, listed.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.endsWith(':<none>'))] as const;
      }));
      return Object.fromEntries(byNode);
    },
    async removeImageTags(node, tags) {
      const remote = await cluster.remote(node);
      const result = await remote.exec(['docker', 'image', 'rm', ...tags], { check: false, timeoutMs: 120_000 });
      // a tag already gone is what this step wants; anything else (an image a container still runs) is reported
      const failures = result.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/No such image/i.test(l));
      // the removed services' containers stop on their own time: the tag is found and removed by the next prune
      const inUse = failures.filter((l) => /is using its referenced image|being used by/i.test(l));
      if (inUse.length > 0 && inUse.length === failures.length) {
        log.warn(`${node}: ${inUse.join('; ')}: left for the next depl prune`);
        return;
      }
      if (result.code !== 0 && failures.length > 0) {
        throw new OperationError(`${node}: could not untag ${tags.join(', ')}: ${failures.join('; ')}`, `Check with docker image ls on ${node}, then run depl prune again.`, 'IMAGE_REMOVE_FAILED');
      }
    },
    jobs: () => listJobs(engine, app),
    async removeJobs(names) {
      for (const name of names) await removeService(engine, name);
    },
    async configs() {
      const filters = JSON.stringify({ label: [`depl.app=${app}`] });
      // the versions' own networks (labelled with their version), never the app's
      const networkFilters = JSON.stringify({ label: [`depl.app=${app}`, 'depl.version'] });
      const [configs, secrets, services, networks] = await Promise.all([
        engine.docker.listConfigs({ filters } as object),
        engine.docker.listSecrets({ filters } as object),
        engine.docker.listServices() as Promise<ServiceReferences[]>,
        engine.docker.listNetworks({ filters: networkFilters } as object) as Promise<{ Id: string; Name: string }[]>,
      ]);
      const users = new Map<string, string[]>();
      const use = (key: string, service: string) => users.set(key, [...(users.get(key) ?? []), service]);
      for (const service of services) {
        const name = service.Spec?.Name ?? '';
        for (const c of service.Spec?.TaskTemplate?.ContainerSpec?.Configs ?? []) if (c.ConfigName) use(`config/${c.ConfigName}`, name);
        for (const s of service.Spec?.TaskTemplate?.ContainerSpec?.Secrets ?? []) if (s.SecretName) use(`secret/${s.SecretName}`, name);
        // swarm keeps a network attachment's target as the network's id
        for (const n of service.Spec?.TaskTemplate?.Networks ?? []) {
          const network = networks.find((candidate) => candidate.Id === n.Target || candidate.Name === n.Target);
          if (network !== undefined) use(`network/${network.Name}`, name);
        }
      }
      const objects = (kind: 'config' | 'secret', list: { ID: string; Spec?: { Name?: string; Labels?: Record<string, string> } }[]): SwarmObject[] =>
        list.map((o) => ({
          kind, name: o.Spec?.Name ?? o.ID, usedBy: users.get(`${kind}/${o.Spec?.Name ?? o.ID}`) ?? [],
          ...(o.Spec?.Labels?.[RENEWER_CREDENTIAL_LABELS.credential] !== undefined ? { heldForRenewer: true } : {}),
        }));
      return [
        ...objects('config', configs), ...objects('secret', secrets),
        ...networks.map((n): SwarmObject => ({ kind: 'network', name: n.Name, usedBy: users.get(`network/${n.Name}`) ?? [] })),
      ];
    },
    async removeConfigs(configs, secrets, networks = []) {
      const remove = async (kind: string, name: string, run: () => Promise<unknown>) => {
        try {
          await run();
        } catch (error) {
          if (statusOf(error) === 404) return;
          throw new OperationError(`cannot remove ${kind} ${name}: ${(error as Error).message}`, 'A service may use it again; run depl prune again to read what is used now.', 'SWARM_API', { cause: error });
        }
      };
      for (const name of configs) await remove('config', name, () => engine.docker.getConfig(name).remove());
      for (const name of secrets) await remove('secret', name, () => engine.docker.getSecret(name).remove());
      // the services just removed stop their tasks on their own time: the removal waits for their endpoints to go
      for (const name of networks) await removeVersionNetwork(engine, name);
    },
  };
}
