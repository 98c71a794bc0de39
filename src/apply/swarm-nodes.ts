import { OperationError } from '../errors.js';
import {
  networkExistsCommand, nodeDrainCommand, nodeLabelAddCommand, nodeLabelsCommand, nodeListCommand, nodeRemoveCommand,
  nodeRunningTasksCommand, overlayNetworkCreateCommand, parseNetworkFacts, parseNodeLabels, parseNodeList, parseSwarmInfo,
  swarmInfoCommand, swarmInitCommand, swarmJoinRequest, swarmLeaveCommand, type NetworkFacts, type SwarmInfo, type SwarmNodeRow,
} from '../plan/bootstrap.js';
import { pollUntil } from '../util/poll.js';
import { Secret } from '../util/secret.js';
import { engineOverSsh } from './docker.js';
import type { KnownHosts } from './known-hosts.js';
import type { SshRemote } from './ssh.js';

/**
 * The swarm's nodes as node-up sees them (before a cluster is open): each node's swarm state, the manager's node
 * list and labels, the app's network, and the changes node-up's plan (src/plan/swarm-plan.ts) makes. Nodes are
 * named as the provider names them. The real one works over each node's SSH connection; the unit tests use an
 * in-memory swarm (test/support/fake-swarm.ts).
 */
export interface SwarmNodes {
  /** The node's swarm state and hostname (a node reconnecting to its manager is given a moment to settle). */
  info(node: string): Promise<SwarmInfo>;
  /** The manager's node list. */
  nodeList(): Promise<SwarmNodeRow[]>;
  nodeLabels(ids: readonly string[]): Promise<Map<string, Record<string, string>>>;
  /** The network on the manager, null when there is none. */
  network(name: string): Promise<NetworkFacts | null>;
  init(node: string, address: string): Promise<void>;
  /** Best effort: a node that is not in a swarm (or cannot be reached any more) is left as it is. */
  leave(node: string): Promise<void>;
  join(node: string, address: string, managerAddress: string): Promise<void>;
  /** Best effort, as `docker node rm --force`: an entry already gone is not an error. */
  removeEntry(nodeId: string): Promise<void>;
  label(nodeId: string, labels: Record<string, string>): Promise<void>;
  createNetwork(app: string, encrypted: boolean): Promise<void>;
  /** Drains the node and waits until none of its tasks is meant to run there; false when the wait ran out. */
  drain(nodeId: string, waitMs: number): Promise<boolean>;
}

export interface SshSwarmNodes {
  /** The node's SSH connection (the pool's); null when it cannot be reached (a node being removed). */
  remote(node: string): Promise<SshRemote | null>;
  /** The manager's. */
  manager(): Promise<SshRemote>;
  knownHosts: KnownHosts;
}

/** The nodes over SSH: docker commands (src/plan/bootstrap.ts) on each node and on the manager. */
export function swarmNodesOverSsh(ssh: SshSwarmNodes): SwarmNodes {
  const reach = async (node: string): Promise<SshRemote> => {
    const remote = await ssh.remote(node);
    if (remote === null) throw new OperationError(`${node} cannot be reached over SSH`, "Re-run 'depl node-up' when it answers.", 'SSH_TIMEOUT');
    return remote;
  };
  const swarmInfo = async (remote: SshRemote) => parseSwarmInfo((await remote.exec(swarmInfoCommand())).stdout);
  let token: Promise<Secret> | undefined;
  // from the manager's Engine API (GET /swarm): the token is never printed by a command nor passed as an argument
  const workerToken = () => (token ??= (async () => {
    const manager = await ssh.manager();
    const swarm = await withEngine(manager, ssh.knownHosts, async (engine) => await engine.docker.swarmInspect() as { JoinTokens?: { Worker?: string } });
    if (!swarm.JoinTokens?.Worker) throw new OperationError(`${manager.name}: the manager reported no worker join token`, undefined, 'SWARM_TOKEN');
    return new Secret(swarm.JoinTokens.Worker);
  })());
  return {
    async info(node) {
      const remote = await reach(node);
      let info: SwarmInfo | undefined;
      // a node that restarted reports "pending" while it reconnects to its manager
      return pollUntil(async () => {
        info = await swarmInfo(remote);
        return info.state === 'pending' ? undefined : info;
      }, { timeoutMs: 20_000, intervalMs: 500, onTimeout: () => info! });
    },
    async nodeList() {
      return parseNodeList((await (await ssh.manager()).exec(nodeListCommand())).stdout);
    },
    async nodeLabels(ids) {
      if (ids.length === 0) return new Map();
      return parseNodeLabels((await (await ssh.manager()).exec(nodeLabelsCommand([...ids]))).stdout);
    },
    async network(name) {
      const existing = await (await ssh.manager()).exec(networkExistsCommand(name), { check: false });
      return existing.code === 0 ? parseNetworkFacts(existing.stdout) : null;
    },
    async init(node, address) {
      await (await reach(node)).exec(swarmInitCommand(address), { timeoutMs: 60_000 });
    },
    async leave(node) {
      const remote = await ssh.remote(node);
      if (remote !== null) await remote.exec(swarmLeaveCommand(), { check: false, timeoutMs: 60_000 });
    },
    async join(node, address, managerAddress) {
      const remote = await reach(node);
      const joinToken = await workerToken();
      await withEngine(remote, ssh.knownHosts, async (engine) => {
        try {
          await engine.docker.swarmJoin(swarmJoinRequest(joinToken.reveal(), managerAddress, address));
        } catch (error) {
          const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
          throw new OperationError(`${node} (${address}): swarm join failed: ${message}`, `Check that ${managerAddress}:2377 is reachable from ${address}, then re-run node-up.`, 'SWARM_JOIN');
        }
      });
    },
    async removeEntry(nodeId) {
      await (await ssh.manager()).exec(nodeRemoveCommand(nodeId), { check: false });
    },
    async label(nodeId, labels) {
      await (await ssh.manager()).exec(nodeLabelAddCommand(nodeId, labels));
    },
    async createNetwork(app, encrypted) {
      await (await ssh.manager()).exec(overlayNetworkCreateCommand(app, { encrypted }));
    },
    async drain(nodeId, waitMs) {
      const manager = await ssh.manager();
      await manager.exec(nodeDrainCommand(nodeId), { check: false });
      return pollUntil(async () => {
        const tasks = await manager.exec(nodeRunningTasksCommand(nodeId), { check: false });
        return tasks.code !== 0 || tasks.stdout.trim().length === 0 ? true : undefined;
      }, { timeoutMs: waitMs, intervalMs: 1000, onTimeout: () => false });
    },
  };
}

/**
 * The node's Docker Engine API through an SSH channel to its socket (a second connection, checked against the
 * host key the pool's connection recorded), for calls whose arguments must not appear on a command line.
 */
async function withEngine<T>(remote: SshRemote, knownHosts: KnownHosts, fn: (engine: Awaited<ReturnType<typeof engineOverSsh>>) => Promise<T>): Promise<T> {
  const engine = await engineOverSsh(remote.target, knownHosts);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}
