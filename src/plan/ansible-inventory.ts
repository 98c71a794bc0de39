import { UserError } from '../errors.js';
import { quote } from './shell.js';

/**
 * `ansible/generated_hosts.ini`: the cluster as an Ansible inventory, so `ansible -i ... --become manager -a "docker ..."`
 * works as written, and ansible/bootstrap.yml runs with it alone. Groups: `manager` (the node that starts the
 * swarm), `managers` (every manager), `workers`, and `swarm` (all). Worker pools (provider.pools): their nodes
 * are workers, each also in `pool_<name>` (all of them under `pools`) with `depl_pool=<name>` on its line, which
 * the play puts on the node as the swarm label depl.pool; preemptible pools' nodes are in `preemptible` too, where
 * the play installs the shutdown hand-off (src/plan/pool-shutdown.ts) from `depl_pool_handoff_dir`.
 */
export interface InventoryNode {
  name: string;
  address: string;
  role: 'manager' | 'worker';
  /** The worker pool of a pool node. */
  pool?: string;
  /** Its pool is preemptible: it gets the shutdown hand-off. */
  preemptible?: boolean;
}

/** The inventory group of a pool's nodes. */
export const poolGroup = (pool: string) => `pool_${pool.replace(/-/g, '_')}`;

export interface AnsibleInventoryInput {
  nodes: InventoryNode[];
  user: string;
  port: number;
  keyFile: string;
  knownHostsFile: string;
  /** What ansible/bootstrap.yml needs besides the hosts: the app (its network is <app>-net) and node-up's encryption decision. */
  app: string;
  networkEncrypted: boolean;
  /** Where node-up wrote the hand-off's files (handoffTree) when there are preemptible pool nodes. */
  poolHandoffDir?: string;
}

export function renderAnsibleInventory(input: AnsibleInventoryInput): string {
  const line = (n: InventoryNode) => `${hostToken(n.name, 'node name')} ansible_host=${hostToken(n.address, `address of ${n.name}`)}${n.pool !== undefined ? ` depl_pool=${hostToken(n.pool, `pool of ${n.name}`)}` : ''}`;
  const managers = input.nodes.filter((n) => n.role === 'manager').map(line);
  const workers = input.nodes.filter((n) => n.role === 'worker').map(line);
  const poolNames = [...new Set(input.nodes.flatMap((n) => (n.pool !== undefined ? [n.pool] : [])))];
  for (const n of input.nodes) if (n.pool !== undefined && n.role !== 'worker') throw new UserError(`pool node ${n.name} is a ${n.role}: pool nodes are workers`, undefined, 'INVENTORY_INVALID');
  const preemptible = input.nodes.filter((n) => n.pool !== undefined && n.preemptible === true);
  if (preemptible.length > 0 && input.poolHandoffDir === undefined) throw new UserError('preemptible pool nodes need the hand-off files\' folder', undefined, 'INVENTORY_INVALID');
  // a host is listed with its variables once (in workers); the pool groups name it only
  const poolSections = poolNames.flatMap((pool) => [`[${poolGroup(pool)}]`, ...input.nodes.filter((n) => n.pool === pool).map((n) => n.name), '']);
  if (managers.length === 0) throw new UserError('the inventory has no manager node', undefined, 'NO_MANAGER');
  if (!/^[a-z_][a-z0-9_-]*$/.test(input.user)) throw new UserError(`ssh user "${input.user}" is not a Unix user name`, undefined, 'INVENTORY_INVALID');
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) throw new UserError(`ssh port ${input.port} is not a port number`, undefined, 'INVENTORY_INVALID');
  // ssh's own arguments are split by Ansible as a shell would: each path is shell-quoted inside them
  const sshArgs = `-o UserKnownHostsFile=${quote(input.knownHostsFile)} -o StrictHostKeyChecking=yes`;
  return [
    '# Written by `depl node-up`; rewritten on every run, so edit depl.yaml instead.',
    '[manager]', managers[0]!, '',
    '[managers]', ...managers, '',
    '[workers]', ...workers, '',
    '[swarm:children]', 'managers', 'workers', '',
    ...poolSections,
    '[pools:children]', ...poolNames.map(poolGroup), '',
    '[preemptible]', ...preemptible.map((n) => n.name), '',
    '[all:vars]',
    `ansible_user=${input.user}`,
    `ansible_port=${input.port}`,
    `ansible_ssh_private_key_file=${varValue(input.keyFile)}`,
    `ansible_ssh_common_args=${varValue(sshArgs)}`,
    // the nodes' /usr/bin/python3, without a warning per host that it was discovered
    'ansible_python_interpreter=auto_silent',
    // each task's module goes down the SSH session's stdin: one exec per task and host instead of a temporary
    // folder, a copy, a chmod and an exec (a task took 5-12 s per play on a busy 2-core machine). Safe with become
    // here: it needs sudo without requiretty, which Debian's, Ubuntu's and Nectar's images have (cloud-init's line)
    'ansible_pipelining=True',
    ...(input.user === 'root' ? [] : ['ansible_become=true']),
    `depl_app=${varValue(input.app)}`,
    // a Python literal, which Ansible reads as a boolean
    `depl_network_encrypted=${input.networkEncrypted ? 'True' : 'False'}`,
    ...(input.poolHandoffDir !== undefined ? [`depl_pool_handoff_dir=${varValue(input.poolHandoffDir)}`] : []),
    '',
  ].join('\n');
}

/**
 * A value in a `:vars` section, which Ansible reads as a Python literal when it is one: a double-quoted JSON
 * string is one, so a space stays in the value and a newline is the two characters `\n`, never a new line that
 * would declare another variable.
 */
function varValue(value: string): string {
  return JSON.stringify(value);
}

/** Host lines are split on spaces and cannot quote a host's name: names and addresses are checked instead. */
function hostToken(value: string, what: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(value)) throw new UserError(`${what} "${value}" is not a host name or address`, undefined, 'INVENTORY_INVALID');
  return value;
}
