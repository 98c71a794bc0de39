import Docker from 'dockerode';
import { OperationError } from '../../errors.js';
import {
  foreignProjects, LOCAL_LABEL_INDEX, LOCAL_LABEL_NODE, LOCAL_LABEL_PREFIX, localLabels, localNames, localNetworkSpec, localNodeAddress,
  nodeContainerSpec,
} from '../../plan/local-nodes.js';

export interface LocalNodeContainer {
  id: string;
  index: number;
  name: string;
  containerName: string;
  address: string;
  running: boolean;
  /** Docker's state of the container: running, exited, created, paused, restarting, dead. */
  state: string;
  /** The image it was created from (`depl-node:<hash>`, `depl-node-cloud:<hash>`). */
  image: string;
}

export interface LaunchResult {
  node: LocalNodeContainer;
  /** 'created': a new machine (new host key); 'started': an existing stopped one booted again. */
  change: 'created' | 'started' | 'none';
}

function dockerFromEnv(): Docker {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  return new Docker({ socketPath: '/var/run/docker.sock' });
}

function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 404;
}

/**
 * Node containers of one local cluster on this machine's Docker Engine: a user-defined bridge with a fixed
 * address per node, and one container + one /var/lib/docker volume per node. Everything carries the label
 * depl.local.prefix=<prefix>, and is found again by that label, never by guessing names.
 */
export class LocalLauncher {
  readonly names;

  /**
   * `project` (the folder of the depl.yaml that makes this cluster) labels everything made; with it set,
   * nodes or a bridge of the same prefix made by another project are refused, never used or removed.
   */
  constructor(readonly prefix: string, readonly subnet: string, readonly docker: Docker = dockerFromEnv(), readonly project?: string) {
    this.names = localNames(prefix);
  }

  private refuseForeign(found: { labels: Record<string, string> }[], what: string): void {
    if (this.project === undefined) return;
    const others = foreignProjects(found, this.project);
    if (others.length === 0) return;
    throw new OperationError(
      `the local ${what} with prefix ${this.prefix} belong to another project: ${others.join(', ')} (this one is ${this.project}); refusing to use or change them`,
      `Give this project its own provider.prefix and provider.subnet in depl.yaml (the prefix defaults to depl-<app>, which two checkouts of one app share), or run 'depl node-down' in ${others[0]} if that cluster is no longer wanted.`,
      'LOCAL_NODES_FOREIGN',
    );
  }

  async list(): Promise<LocalNodeContainer[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LOCAL_LABEL_PREFIX}=${this.prefix}`] } });
    this.refuseForeign(containers.map((c) => ({ labels: c.Labels })), `node containers (${containers.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')).join(', ')})`);
    return containers
      .map((c) => {
        const index = Number(c.Labels[LOCAL_LABEL_INDEX]);
        return {
          id: c.Id,
          index,
          name: c.Labels[LOCAL_LABEL_NODE] ?? `node-${index}`,
          containerName: (c.Names[0] ?? '').replace(/^\//, ''),
          address: localNodeAddress(this.subnet, index),
          running: c.State === 'running',
          state: c.State,
          image: c.Image,
        };
      })
      .sort((a, b) => a.index - b.index);
  }

  /** Creates the bridge unless it exists; refuses one with the same name on another subnet. */
  async ensureNetwork(): Promise<{ id: string; created: boolean }> {
    const spec = localNetworkSpec(this.prefix, this.subnet, this.project);
    try {
      const info = (await this.docker.getNetwork(spec.Name).inspect()) as { Id: string; Labels?: Record<string, string> | null; IPAM?: { Config?: { Subnet?: string }[] } };
      this.refuseForeign([{ labels: info.Labels ?? {} }], `network ${spec.Name}`);
      const subnets = (info.IPAM?.Config ?? []).map((c) => c.Subnet);
      if (!subnets.includes(this.subnet)) {
        throw new OperationError(
          `docker network ${spec.Name} exists with subnet ${subnets.join(', ') || 'none'}, but depl.yaml asks for ${this.subnet}`,
          `Run 'depl node-down' to remove the old cluster, or set provider.subnet back to ${subnets[0] ?? 'its old value'}.`,
          'LOCAL_NETWORK_MISMATCH',
        );
      }
      return { id: info.Id, created: false };
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      const network = await this.docker.createNetwork(spec);
      return { id: network.id, created: true };
    } catch (error) {
      const message = (error as Error).message;
      if (/overlap/i.test(message)) {
        throw new OperationError(
          `cannot create docker network ${spec.Name} on ${this.subnet}: ${message.trim()}`,
          'Another network on this machine uses that range: choose another provider.subnet in depl.yaml.',
          'LOCAL_SUBNET_TAKEN',
        );
      }
      throw error;
    }
  }

  /** Makes node `index` run: starts it if it exists but stopped, creates it (and its volume) if missing. */
  async ensureNode(index: number, image: string, publicKey: string, existing?: LocalNodeContainer): Promise<LaunchResult> {
    if (existing?.running) return { node: existing, change: 'none' };
    if (existing) {
      await this.docker.getContainer(existing.id).start();
      return { node: { ...existing, running: true, state: 'running' }, change: 'started' };
    }
    const { name, ...body } = nodeContainerSpec({ prefix: this.prefix, index, subnet: this.subnet, image, publicKey, project: this.project });
    // a volume left by a removed container belongs to the machine that is gone: a new node starts empty
    await this.docker.getVolume(this.names.volume(index)).remove({ force: true }).catch(() => {});
    await this.docker.createVolume({ Name: this.names.volume(index), Labels: localLabels(this.prefix, this.project) });
    const container = await this.docker.createContainer({ name, ...body });
    await container.start();
    return {
      node: { id: container.id, index, name: body.Hostname, containerName: name, address: localNodeAddress(this.subnet, index), running: true, state: 'running', image },
      change: 'created',
    };
  }

  /**
   * Stops a node container (SIGTERM, then SIGKILL after its StopTimeout), keeping it and its volume: what
   * depl hibernate does. One already stopped is left as it is.
   */
  async stopNode(id: string): Promise<void> {
    await this.docker.getContainer(id).stop().catch((error: { statusCode?: number }) => { if (error.statusCode !== 304) throw error; });
  }

  /** Starts a stopped node container again (its init brings sshd and dockerd up); one already running is left as it is. */
  async startNode(id: string): Promise<void> {
    await this.docker.getContainer(id).start().catch((error: { statusCode?: number }) => { if (error.statusCode !== 304) throw error; });
  }

  /** Removes a node container and its volume, by id. */
  async removeNode(node: LocalNodeContainer): Promise<void> {
    await this.docker.getContainer(node.id).remove({ force: true, v: true }).catch((error) => { if (!isNotFound(error)) throw error; });
    await this.docker.getVolume(this.names.volume(node.index)).remove({ force: true }).catch((error) => { if (!isNotFound(error)) throw error; });
  }

  /** Removes every container, volume and the network of this cluster (found by label). */
  async removeAll(): Promise<void> {
    const networks = await this.docker.listNetworks({ filters: { label: [`${LOCAL_LABEL_PREFIX}=${this.prefix}`] } });
    this.refuseForeign(networks.map((n) => ({ labels: n.Labels ?? {} })), `network ${this.names.network}`);
    for (const node of await this.list()) await this.removeNode(node);
    const volumes = await this.docker.listVolumes({ filters: { label: [`${LOCAL_LABEL_PREFIX}=${this.prefix}`] } });
    for (const volume of volumes.Volumes ?? []) await this.docker.getVolume(volume.Name).remove({ force: true }).catch(() => {});
    for (const network of networks) await this.docker.getNetwork(network.Id).remove().catch((error) => { if (!isNotFound(error)) throw error; });
  }
}
