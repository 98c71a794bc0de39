import { OperationError } from '../../errors.js';
import type { Logger } from '../../util/log.js';
import { ensureDockerEngine } from '../host/docker-engine.js';
import { LocalLauncher } from '../local/launcher.js';
import { ensureNodeImage } from '../local/node-image.js';
import { nodeRecipe, type NodeImageKind } from '../local/node-recipe.js';
import type { Provider, ProvisionedNode, StackServers } from './types.js';

export interface LocalProviderOptions {
  /** `docker` (root login, Docker installed) or `cloud` (like a fresh Nectar Ubuntu image). Default docker. */
  image?: NodeImageKind;
  /** The project making the nodes (its depl.yaml folder): labels them, and refuses another project's. */
  project?: string;
}

/**
 * Nodes as containers on this machine ("VMs" reached only over SSH, like cloud ones): node image built
 * offline and cached, a bridge with fixed addresses, one container and /var/lib/docker volume per node.
 */
export class LocalProvider implements Provider {
  readonly kind = 'local' as const;
  readonly launcher: LocalLauncher;
  readonly image: NodeImageKind;

  constructor(readonly prefix: string, readonly subnet: string, private readonly publicKey: string, options: LocalProviderOptions = {}) {
    this.launcher = new LocalLauncher(prefix, subnet, undefined, options.project);
    this.image = options.image ?? 'docker';
  }

  async up(count: number, log: Logger): Promise<ProvisionedNode[]> {
    // node containers live in this machine's engine: install / start it when it is not answering
    await ensureDockerEngine(log);
    // another project's nodes under this prefix, or nodes of the other image kind, stop us before anything changes
    const recipe = nodeRecipe(this.image);
    const otherKind = nodeRecipe(this.image === 'cloud' ? 'docker' : 'cloud');
    const other = (await this.launcher.list()).filter((n) => n.index <= count && n.image.startsWith(`${otherKind.repository}:`));
    if (other.length > 0) {
      throw new OperationError(
        `${other.map((n) => n.name).join(', ')} ${other.length === 1 ? 'runs' : 'run'} ${other[0]!.image}, but depl.yaml asks for provider.image: ${this.image}`,
        "A node's image is chosen when it is made: run 'depl node-down' and 'depl node-up' to remake the nodes, or set provider.image back.",
        'LOCAL_IMAGE_CHANGED',
      );
    }
    const image = await ensureNodeImage(log, undefined, recipe);
    const network = await this.launcher.ensureNetwork();
    if (network.created) log.step(`network ${this.launcher.names.network} (${this.subnet}) created`);
    const existing = await this.launcher.list();
    for (const extra of existing.filter((n) => n.index > count).reverse()) {
      await this.launcher.removeNode(extra);
      log.step(`${extra.name}: container ${extra.containerName} removed`);
    }
    const wanted = Array.from({ length: count }, (_, i) => i + 1);
    const results = await Promise.all(wanted.map(async (index) => {
      const result = await this.launcher.ensureNode(index, image.tag, this.publicKey, existing.find((n) => n.index === index));
      if (result.change === 'created') log.step(`${result.node.name}: container ${result.node.containerName} created at ${result.node.address}`);
      if (result.change === 'started') log.step(`${result.node.name}: container ${result.node.containerName} was stopped; started`);
      return result;
    }));
    return results.map(({ node, change }) => ({ name: node.name, address: node.address, fresh: change === 'created' }));
  }

  async list(log: Logger): Promise<ProvisionedNode[]> {
    await ensureDockerEngine(log);
    return (await this.launcher.list()).map((n) => ({ name: n.name, address: n.address }));
  }

  /**
   * The node containers as the instances depl hibernate stops and depl wake starts (their volumes, with the
   * swarm's state and the accessories' data, stay). Docker's stop and start finish before they return.
   */
  get servers(): StackServers {
    const launcher = this.launcher;
    return {
      instances: 'node-containers',
      async list() {
        return (await launcher.list()).map((n) => ({ id: n.id, name: n.name, status: n.state, taskState: null }));
      },
      shelve: (server) => launcher.stopNode(server.id),
      unshelve: (server) => launcher.startNode(server.id),
    };
  }

  async down(log: Logger): Promise<void> {
    await ensureDockerEngine(log);
    const nodes = await this.launcher.list();
    for (const node of nodes) log.step(`${node.name}: removing container ${node.containerName}`);
    await this.launcher.removeAll();
    log.step(`network ${this.launcher.names.network} and node volumes removed`);
  }
}

/** What the local provider is made from (src/workflows/adapter-slices.ts): names, subnet, node image, project. */
export interface LocalProviderSettings {
  /** The prefix of the node containers and their network (src/plan/local-nodes.ts localPrefixOf). */
  prefix: string;
  subnet: string;
  image: NodeImageKind;
  /** depl.yaml's folder, absolute. */
  project: string;
}

export function createLocalProvider(settings: LocalProviderSettings, publicKey: string): LocalProvider {
  return new LocalProvider(settings.prefix, settings.subnet, publicKey, { image: settings.image, project: settings.project });
}
