import type { CloudServer, InstanceKind } from '../../plan/hibernation.js';
import type { Logger } from '../../util/log.js';
import type { ObjectStoreAuth } from '../openstack/swift.js';

/** A machine a provider made; bootstrap reaches it over SSH at `address`. */
export interface ProvisionedNode {
  name: string;
  address: string;
  /**
   * True when this `up` call made the machine (new or recreated): it has new host keys, so keys recorded
   * for its address belong to a machine that is gone and are forgotten instead of refused.
   */
  fresh?: boolean;
  /** The worker pool (provider.pools) the node belongs to; undefined for the cluster's own nodes. */
  pool?: string;
}

/** Pool node counts by pool name (src/plan/pools.ts poolCounts). */
export type PoolCounts = Record<string, number>;

/**
 * Where nodes come from. `local` makes node containers on this machine; `openstack` a Heat stack.
 * Everything after provisioning (SSH, Docker, swarm) is the same for both.
 */
export interface Provider {
  readonly kind: 'local' | 'openstack';
  /** Create or update so that exactly `count` nodes exist; returns them in a stable order (first = manager). */
  up(count: number, log: Logger, pools?: PoolCounts): Promise<ProvisionedNode[]>;
  /** OpenStack with provider.pools: each pool's count, `requested` (node-up --pool) or what the stack has now, within its range. */
  poolCounts?(requested: PoolCounts): Promise<PoolCounts>;
  /** The nodes that exist now, without changing anything. */
  list(log: Logger): Promise<ProvisionedNode[]>;
  /** Remove every node (and network / stack). */
  down(log: Logger): Promise<void>;
  /** What `up(count)` would change, asked of the cloud without changing anything (Heat's preview). */
  plan?(count: number, log: Logger, pools?: PoolCounts): Promise<ProvisionPlan>;
  /** OpenStack: the allocation as the cluster is now (quota use, SU cost); undefined when there is no stack. */
  allocation?(): Promise<{ lines: string[] } | undefined>;
  /** OpenStack: the one address the app is reached at (the stack's entry_address output, else the manager's); undefined without a stack. */
  entryAddress?(): Promise<string | undefined>;
  /** The cluster's instances, which depl hibernate puts to rest (Nova: shelved; local: node containers stopped) and depl wake brings back. */
  servers?: StackServers;
  /** OpenStack: the object store (Swift) of the Keystone catalog; undefined when the cloud has none. */
  objectStore?(): Promise<ObjectStoreAuth | undefined>;
}

/** The instances of the cluster, and the two actions hibernate and wake take on them. */
export interface StackServers {
  /** What they are: which of their states mean at rest and running (src/plan/hibernation.ts INSTANCE_WORDS). */
  readonly instances: InstanceKind;
  /** The instances, in node order (the first is the manager); none when there is no stack (no node containers). */
  list(): Promise<CloudServer[]>;
  /** Puts it to rest: Nova's shelve (returns at once: the status says when it is done), or a node container's stop. Safe to repeat. */
  shelve(server: Pick<CloudServer, 'id' | 'name'>): Promise<void>;
  /** Brings it back: Nova's unshelve, or a node container's start. Safe to repeat. */
  unshelve(server: Pick<CloudServer, 'id' | 'name'>): Promise<void>;
}

/** A provider's answer to "what would node-up do?"; `lines` are for people, the rest for --json. */
export interface ProvisionPlan {
  action: 'create' | 'update' | 'none';
  lines: string[];
  resources: Record<string, string[]>;
  /** OpenStack: the quota headroom and SU cost of the plan (src/plan/allocation.ts, service-units.ts). */
  allocation?: unknown;
  /** OpenStack: the repair of pools that lost nodes (src/plan/pools.ts planPoolRecovery), as node-up applies it. */
  recovery?: unknown;
  /** provider.dns: the renewal task's DNS credential (src/plan/tls/renewer-credential.ts planRenewerCredential), as node-up applies it. */
  renewerCredential?: unknown;
}
