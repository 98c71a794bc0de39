/** `ansible/generated_hosts.ini`: the cluster as an Ansible inventory, so `ansible -i ... manager -a "docker ..."` works. */
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
}

export function renderAnsibleInventory(input: AnsibleInventoryInput): string {
  const line = (n: InventoryNode) => `${n.name} ansible_host=${n.address}`;
  const managers = input.nodes.filter((n) => n.role === 'manager').map(line);
  const workers = input.nodes.filter((n) => n.role === 'worker').map(line);
  return [
    '# Written by `depl node-up`; rewritten on every run, so edit depl.yaml instead.',
    '[manager]', ...managers, '',
    '[workers]', ...workers, '',
    '[swarm:children]', 'manager', 'workers', '',
    '[all:vars]',
    `ansible_user=${input.user}`,
    `ansible_port=${input.port}`,
    `ansible_ssh_private_key_file=${input.keyFile}`,
    `ansible_ssh_common_args='-o UserKnownHostsFile=${input.knownHostsFile} -o StrictHostKeyChecking=yes'`,
    ...(input.user === 'root' ? [] : ['ansible_become=true']),
    '',
  ].join('\n');
}
