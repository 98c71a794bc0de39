import { describe, expect, it } from 'vitest';
import { foreignProjects, localNetworkSpec, localNodeAddress, localNodeNames, nodeContainerSpec } from '../../../src/plan/local-nodes.js';
import { renderAnsibleInventory } from '../../../src/plan/ansible-inventory.js';
import { formatNodeTable, nodeTableFromInspect } from '../../../src/plan/node-table.js';

describe('local nodes as data', () => {
  it('names nodes node-1..N with fixed addresses from .11 on', () => {
    expect(localNodeNames(3)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(localNodeAddress('192.168.77.0/24', 1)).toBe('192.168.77.11');
    expect(localNodeAddress('10.213.5.0/24', 9)).toBe('10.213.5.19');
    expect(() => localNodeAddress('10.213.5.0/16', 1)).toThrow(/not an IPv4 \/24/);
  });

  it('makes the bridge with the subnet and gateway .1, labelled with the prefix', () => {
    expect(localNetworkSpec('depl-crawler', '192.168.77.0/24')).toMatchObject({
      Name: 'depl-crawler-net', Driver: 'bridge', Labels: { 'depl.local.prefix': 'depl-crawler' },
      IPAM: { Config: [{ Subnet: '192.168.77.0/24', Gateway: '192.168.77.1' }] },
    });
  });

  it('grants capabilities explicitly instead of --privileged, and puts /var/lib/docker on a volume', () => {
    const spec = nodeContainerSpec({ prefix: 'p', index: 2, subnet: '192.168.77.0/24', image: 'depl-node:abc', publicKey: 'ssh-ed25519 AAAA test\n' });
    expect(spec).not.toHaveProperty('HostConfig.Privileged');
    expect(spec.name).toBe('p-node-2');
    expect(spec.Hostname).toBe('node-2');
    expect(spec.HostConfig.CapAdd).toEqual(['ALL']);
    expect(spec.HostConfig.CapDrop).toEqual(['SYS_RESOURCE']);
    expect(spec.HostConfig.SecurityOpt).toEqual(['seccomp=unconfined', 'apparmor=unconfined']);
    expect(spec.HostConfig.MaskedPaths).toEqual([]);
    expect(spec.HostConfig.DeviceCgroupRules).toEqual(['a *:* rwm']);
    expect(spec.HostConfig.Mounts).toEqual([{ Type: 'volume', Source: 'p-node-2-docker', Target: '/var/lib/docker' }]);
    expect(spec.NetworkingConfig.EndpointsConfig['p-net']).toEqual({ IPAMConfig: { IPv4Address: '192.168.77.12' } });
    expect(spec.Env).toEqual(['DEPL_AUTHORIZED_KEY=ssh-ed25519 AAAA test']);
  });
});

describe('local nodes know the project that made them', () => {
  it('labels the node, its volume and the bridge with the project folder', () => {
    const spec = nodeContainerSpec({ prefix: 'p', index: 1, subnet: '10.1.2.0/24', image: 'i', publicKey: 'k', project: '/home/a/shop' });
    expect(spec.Labels).toEqual({ 'depl.local.prefix': 'p', 'depl.local.project': '/home/a/shop', 'depl.local.node': 'node-1', 'depl.local.index': '1' });
    expect(localNetworkSpec('p', '10.1.2.0/24', '/home/a/shop').Labels).toEqual({ 'depl.local.prefix': 'p', 'depl.local.project': '/home/a/shop' });
  });

  it('names the other projects among what it found; unlabelled ones (older depl) count as its own', () => {
    const found: { labels: Record<string, string> }[] = [
      { labels: { 'depl.local.project': '/home/a/shop' } },
      { labels: { 'depl.local.project': '/home/b/shop' } },
      { labels: { 'depl.local.project': '/home/b/shop' } },
      { labels: {} },
    ];
    expect(foreignProjects(found, '/home/a/shop')).toEqual(['/home/b/shop']);
    expect(foreignProjects(found.slice(0, 1), '/home/a/shop')).toEqual([]);
  });
});

describe('inventory and node table text', () => {
  const nodes = [
    { name: 'node-1', address: '192.168.77.11', role: 'manager' as const },
    { name: 'node-2', address: '192.168.77.12', role: 'worker' as const },
  ];

  const app = { app: 'crawler', networkEncrypted: false };

  it('writes an Ansible inventory with manager, managers and workers groups, the cluster key and the playbook\'s variables', () => {
    const text = renderAnsibleInventory({ nodes, user: 'root', port: 22, keyFile: '/p/.depl/id_ed25519', knownHostsFile: '/p/.depl/known_hosts', ...app });
    expect(text).toContain('[manager]\nnode-1 ansible_host=192.168.77.11\n\n');
    expect(text).toContain('[managers]\nnode-1 ansible_host=192.168.77.11\n\n');
    expect(text).toContain('[workers]\nnode-2 ansible_host=192.168.77.12\n');
    expect(text).toContain('[swarm:children]\nmanagers\nworkers\n');
    expect(text).toContain('depl_app="crawler"\ndepl_network_encrypted=False\n');
    expect(renderAnsibleInventory({ nodes, user: 'root', port: 22, keyFile: 'k', knownHostsFile: 'h', app: 'shop', networkEncrypted: true }))
      .toContain('depl_app="shop"\ndepl_network_encrypted=True\n');
    expect(text).toContain('ansible_ssh_private_key_file="/p/.depl/id_ed25519"');
    expect(text).toContain(`ansible_ssh_common_args="-o UserKnownHostsFile=/p/.depl/known_hosts -o StrictHostKeyChecking=yes"`);
    expect(text).not.toContain('ansible_become');
    // one SSH exec per task and host (a Python literal, read as a boolean)
    expect(text).toContain('\nansible_pipelining=True\n');
    expect(renderAnsibleInventory({ nodes, user: 'ubuntu', port: 22, keyFile: 'k', knownHostsFile: 'h', ...app })).toContain('ansible_become=true');
  });

  it('quotes every value it writes: a newline or a space in a path declares no variable', () => {
    const text = renderAnsibleInventory({ nodes, user: 'root', port: 22, keyFile: '/p/my keys/id\nansible_become_exe=/tmp/evil', knownHostsFile: "/p/it's here\nansible_shell_executable=/tmp/evil", ...app });
    const variables = text.slice(text.indexOf('[all:vars]')).split('\n').filter((l) => l.includes('=')).map((l) => l.split('=')[0]);
    expect(variables).toEqual(['ansible_user', 'ansible_port', 'ansible_ssh_private_key_file', 'ansible_ssh_common_args', 'ansible_python_interpreter', 'ansible_pipelining', 'depl_app', 'depl_network_encrypted']);
    expect(text).toContain('ansible_ssh_private_key_file="/p/my keys/id\\nansible_become_exe=/tmp/evil"');
    expect(text).toContain(`ansible_ssh_common_args="-o UserKnownHostsFile='/p/it'\\\\''s here\\nansible_shell_executable=/tmp/evil' -o StrictHostKeyChecking=yes"`);
    expect(() => renderAnsibleInventory({ nodes: [{ name: 'node-1 ansible_become_exe=x', address: '10.0.0.1', role: 'manager' }], user: 'root', port: 22, keyFile: 'k', knownHostsFile: 'h', ...app })).toThrow(/node name "node-1 ansible_become_exe=x" is not a host name/);
    expect(() => renderAnsibleInventory({ nodes, user: 'root\nansible_become=true', port: 22, keyFile: 'k', knownHostsFile: 'h', ...app })).toThrow(/is not a Unix user name/);
  });

  it('matches swarm nodes to inventory names by id, then hostname, and lists unknown ones last', () => {
    const out = 'm1 node-1 192.168.77.11 manager active ready\nw9 node-2 192.168.77.12 worker drain down\nx laptop 10.1.1.1 worker active ready\n';
    const rows = nodeTableFromInspect(out, [{ name: 'node-1', nodeId: 'm1' }, { name: 'node-2', nodeId: 'old' }]);
    expect(rows).toEqual([
      { name: 'node-1', address: '192.168.77.11', role: 'manager', availability: 'Active', state: 'Ready' },
      { name: 'node-2', address: '192.168.77.12', role: 'worker', availability: 'Drain', state: 'Down' },
      { name: 'laptop', address: '10.1.1.1', role: 'worker', availability: 'Active', state: 'Ready' },
    ]);
    expect(formatNodeTable(rows).split('\n')[0]).toBe('NAME    ADDRESS        ROLE     AVAILABILITY  STATE');
  });
});
