import type { Cluster, ClusterNode } from '../apply/cluster.js';
import type { Engine } from '../apply/docker.js';
import { knownHostsPath, requireInventory } from '../apply/inventory.js';
import { localProviderSettings, openStackProviderSettings, projectPaths } from './adapter-slices.js';
import { KnownHosts } from '../apply/known-hosts.js';
import type { Provider } from '../apply/providers/types.js';
import { PooledRemote, SshPool } from '../apply/ssh.js';
import { ensureKeyPair } from '../apply/ssh-keypair.js';
import type { LoadedConfig } from '../config/load.js';
import { OperationError } from '../errors.js';
import { localPrefixOf } from '../plan/local-nodes.js';
import type { Logger } from '../util/log.js';

/** The provider depl.yaml names. The cluster's key pair is made here when missing (local nodes authorise it). */
export async function providerFor(loaded: LoadedConfig, log: Logger, options: { interactive?: boolean } = {}): Promise<Provider> {
  if (loaded.config.provider.type === 'local') {
    const key = await ensureKeyPair(projectPaths(loaded).sshKey, `depl-${loaded.config.app}`);
    if (key.generated) log.step(`SSH key pair generated: ${key.privateKeyFile}`);
    // imported here: the local provider brings execa and the node image recipe, which commands that only
    // open the cluster (switch, status) never need
    const { createLocalProvider } = await import('../apply/providers/local.js');
    return createLocalProvider(localProviderSettings(loaded), key.publicKey);
  }
  const { createOpenStackProvider } = await import('../apply/providers/openstack.js');
  return createOpenStackProvider(openStackProviderSettings(loaded), log, { interactive: options.interactive });
}

/** Where to look when a node does not answer SSH: the container log for local nodes. */
export function sshWaitHint(loaded: LoadedConfig): string {
  if (loaded.config.provider.type === 'local') {
    return `Look at the node's boot: docker logs ${localPrefixOf({ app: loaded.config.app, provider: loaded.config.provider })}-node-<n>, and /var/log/sshd.log inside it.`;
  }
  return `Check the VM's console log and that its security group allows port ${loaded.config.ssh.port} from this machine.`;
}

/** One SSH connection per node (reused), host keys pinned in .depl/known_hosts. */
export async function sshPoolFor(loaded: LoadedConfig, log: Logger, waitMs?: number): Promise<SshPool> {
  const key = await ensureKeyPair(projectPaths(loaded).sshKey, `depl-${loaded.config.app}`);
  return new SshPool({
    user: loaded.config.ssh.user,
    port: loaded.config.ssh.port,
    privateKey: key.privateKey,
    keyFile: key.privateKeyFile,
    knownHosts: new KnownHosts(knownHostsPath(loaded)),
    log,
    waitMs,
    waitHint: sshWaitHint(loaded),
  });
}

/** Opens the swarm node-up made, from `.depl/inventory.json`, with an SSH connection to its manager. */
export async function openCluster(loaded: LoadedConfig, log: Logger): Promise<Cluster> {
  const inventory = await requireInventory(loaded);
  const nodes: ClusterNode[] = inventory.nodes.map(({ name, address, role }) => ({ name, address, role }));
  const managerNode = nodes.find((n) => n.role === 'manager');
  if (!managerNode) throw new OperationError('the inventory lists no manager', "Run 'depl node-up' to repair the cluster.", 'NO_MANAGER');
  const pool = await sshPoolFor(loaded, log, 30_000);
  // connect now, so a cluster that cannot be reached fails here with the SSH error, not in a later step
  await pool.remote(managerNode);
  const manager = new PooledRemote(pool, managerNode);
  let engine: Promise<Engine> | undefined;
  const cluster: Cluster = {
    nodes,
    manager,
    managerNode,
    network: inventory.network,
    async remote(nodeName: string) {
      const node = nodes.find((n) => n.name === nodeName);
      if (!node) throw new OperationError(`no node named "${nodeName}" in this cluster (have: ${nodes.map((n) => n.name).join(', ')})`, undefined, 'NO_SUCH_NODE');
      await pool.remote(node);
      return new PooledRemote(pool, node);
    },
    // dockerode stays unloaded until a command uses more of the Engine than its small client (src/apply/docker.ts)
    engine: () => (engine ??= import('../apply/docker.js').then(({ managerEngine }) => managerEngine(cluster))),
    async close() {
      const opened = engine;
      engine = undefined;
      if (opened !== undefined) await (await opened.catch(() => undefined))?.close();
      await pool.closeAll();
    },
  };
  return cluster;
}
