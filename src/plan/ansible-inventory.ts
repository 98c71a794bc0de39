import { UserError } from '../errors.js';
import { quote } from './shell.js';

/**
 * `ansible/generated_hosts.ini`: the cluster as an Ansible inventory, so `ansible -i ... --become manager -a "docker ..."`
 * works as written, and ansible/bootstrap.yml runs with it alone. Groups: `manager` (the node that starts the
 * swarm), `managers` (every manager), `workers`, and `swarm` (all).
 */
export interface InventoryNode {
  name: string;
  address: string;
  role: 'manager' | 'worker';
}

export interface AnsibleInventoryInput {
  nodes: InventoryNode[];
  user: string;
  port: number;
  keyFile: string;
  knownHostsFile: string;
  /** What ansible/bootstrap.yml needs besides the hosts: the app (its network is <app>-net) and node-up's encryption decision. */
  app: string;
  networkEncrypted: boolean;
}

export function renderAnsibleInventory(input: AnsibleInventoryInput): string {
  const line = (n: InventoryNode) => `${hostToken(n.name, 'node name')} ansible_host=${hostToken(n.address, `address of ${n.name}`)}`;
  const managers = input.nodes.filter((n) => n.role === 'manager').map(line);
  const workers = input.nodes.filter((n) => n.role === 'worker').map(line);
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
    '[all:vars]',
    `ansible_user=${input.user}`,
    `ansible_port=${input.port}`,
    `ansible_ssh_private_key_file=${varValue(input.keyFile)}`,
    `ansible_ssh_common_args=${varValue(sshArgs)}`,
    // the nodes' /usr/bin/python3, without a warning per host that it was discovered
    'ansible_python_interpreter=auto_silent',
    ...(input.user === 'root' ? [] : ['ansible_become=true']),
    `depl_app=${varValue(input.app)}`,
    // a Python literal, which Ansible reads as a boolean
    `depl_network_encrypted=${input.networkEncrypted ? 'True' : 'False'}`,
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
