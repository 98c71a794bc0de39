import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { poolGroup, renderAnsibleInventory, type InventoryNode } from '../../../src/plan/ansible-inventory.js';
import { POOL_LABEL } from '../../../src/plan/pool-placement.js';
import { DRAIN_UNIT, DRAIN_UNIT_NAME, HANDOFF_DIR, HANDOFF_KEY, handoffFiles, handoffTree } from '../../../src/plan/pool-shutdown.js';
import { repoRoot } from '../../support/cli.js';

/**
 * bootstrap: ansible with worker pools, as data: the inventory node-up writes puts pool nodes in their own groups
 * with their pool, and the playbook labels them and installs the shutdown hand-off from the files node-up writes.
 * (The play itself runs in test/integration/ansible-bootstrap.test.ts; these tests hold the two sides together.)
 */
const nodes: InventoryNode[] = [
  { name: 'crawler-nodes-0', address: '10.0.0.1', role: 'manager' },
  { name: 'crawler-nodes-1', address: '10.0.0.2', role: 'worker' },
  { name: 'crawler-nodes-crawl-0', address: '10.0.0.3', role: 'worker', pool: 'crawl', preemptible: true },
  { name: 'crawler-nodes-crawl-1', address: '10.0.0.4', role: 'worker', pool: 'crawl', preemptible: true },
  { name: 'crawler-nodes-gpu-box-0', address: '10.0.0.5', role: 'worker', pool: 'gpu-box' },
];
const base = { user: 'ubuntu', port: 22, keyFile: '/p/.depl/id_ed25519', knownHostsFile: '/p/.depl/known_hosts', app: 'crawler', networkEncrypted: true };

describe('the Ansible inventory with worker pools', () => {
  it('lists pool nodes as workers with their pool, in a group per pool, and the preemptible ones apart', () => {
    const text = renderAnsibleInventory({ ...base, nodes, poolHandoffDir: '/p/.depl/pool-handoff' });
    expect(text).toContain([
      '[workers]',
      'crawler-nodes-1 ansible_host=10.0.0.2',
      'crawler-nodes-crawl-0 ansible_host=10.0.0.3 depl_pool=crawl',
      'crawler-nodes-crawl-1 ansible_host=10.0.0.4 depl_pool=crawl',
      'crawler-nodes-gpu-box-0 ansible_host=10.0.0.5 depl_pool=gpu-box',
      '',
      '[swarm:children]', 'managers', 'workers', '',
      '[pool_crawl]', 'crawler-nodes-crawl-0', 'crawler-nodes-crawl-1', '',
      '[pool_gpu_box]', 'crawler-nodes-gpu-box-0', '',
      '[pools:children]', 'pool_crawl', 'pool_gpu_box', '',
      '[preemptible]', 'crawler-nodes-crawl-0', 'crawler-nodes-crawl-1', '',
    ].join('\n'));
    expect(text).toContain('depl_pool_handoff_dir="/p/.depl/pool-handoff"\n');
    expect(poolGroup('gpu-box')).toBe('pool_gpu_box');
  });

  it('quotes the key path: a space or a newline in it stays in the value and declares no variable', () => {
    const text = renderAnsibleInventory({ ...base, nodes: nodes.slice(0, 2), keyFile: '/p/my keys/id\nansible_become_pass=x' });
    expect(text).toContain('ansible_ssh_private_key_file="/p/my keys/id\\nansible_become_pass=x"\n');
    expect(text.split('\n').filter((line) => line.startsWith('ansible_become_pass'))).toEqual([]);
  });

  it('without pools: empty pool groups, no hand-off folder', () => {
    const text = renderAnsibleInventory({ ...base, nodes: nodes.slice(0, 2) });
    expect(text).toContain('[pools:children]\n\n[preemptible]\n\n[all:vars]');
    expect(text).not.toContain('depl_pool');
  });

  it('refuses what would make a wrong inventory: a pool manager, preemptible nodes without the hand-off files, a hostile pool name', () => {
    expect(() => renderAnsibleInventory({ ...base, nodes: [{ ...nodes[0]!, pool: 'crawl' }] })).toThrow(/pool node crawler-nodes-0 is a manager: pool nodes are workers/);
    expect(() => renderAnsibleInventory({ ...base, nodes })).toThrow(/preemptible pool nodes need the hand-off files' folder/);
    expect(() => renderAnsibleInventory({ ...base, nodes: [nodes[0]!, { ...nodes[4]!, pool: 'x ansible_become_exe=/tmp/evil' }] })).toThrow(/pool of crawler-nodes-gpu-box-0 .* is not a host name/);
  });
});

const files = handoffFiles({ managers: ['10.0.0.1'], user: 'ubuntu', port: 22, stopGraceSeconds: 30, publicKey: 'ssh-ed25519 AAAAkey depl-pool-drain' });
const tree = handoffTree(files, '-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n');

describe('the hand-off as files for the play', () => {

  it('mirrors / under node/ and manager/, the key 0600, the fingerprint on both sides', () => {
    expect(tree.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      ['node/usr/local/lib/depl/pool-drain', '755'],
      [`node${DRAIN_UNIT}`, '644'],
      [`node${HANDOFF_KEY}`, '600'],
      [`node${HANDOFF_DIR}/fingerprint`, '644'],
      ['manager/usr/local/lib/depl/pool-drain-request', '755'],
      [`manager${HANDOFF_DIR}/fingerprint`, '644'],
      ['authorized_key', '600'],
    ]);
    expect(tree.find((f) => f.path.endsWith('fingerprint'))!.content).toBe(`${files.fingerprint}\n`);
    expect(tree.at(-1)!.content).toBe(`${files.authorizedKey}\n`);
    expect(files.authorizedKey).toMatch(/^command="sudo -n \/usr\/local\/lib\/depl\/pool-drain-request \\"\$SSH_CONNECTION\\"",restrict ssh-ed25519 AAAAkey depl-pool-drain$/);
  });
});

describe('ansible/bootstrap.yml uses what the inventory and node-up provide', () => {
  const yaml = async (...parts: string[]) => parse(await readFile(path.join(repoRoot, 'ansible', ...parts), 'utf8')) as Array<Record<string, unknown>>;

  it('labels a pool node depl.pool=<its depl_pool>', async () => {
    const swarm = await yaml('roles', 'swarm', 'tasks', 'main.yml');
    const labels = swarm.find((t) => t.name === 'Node labels and roles, as node-up sets them')!['community.docker.docker_node'] as { labels: string };
    expect(labels.labels).toContain(`combine({'${POOL_LABEL}': hostvars[item].depl_pool} if hostvars[item].depl_pool is defined else {})`);
  });

  it('runs the hand-off role on the preemptible group (and the managers only when there is one), from depl_pool_handoff_dir', async () => {
    const plays = await yaml('bootstrap.yml');
    const play = plays.find((p) => (p.roles as string[]).includes('pool_handoff'))!;
    expect(play.hosts).toBe("{{ (groups['preemptible'] | default([]) | length > 0) | ternary('managers:preemptible', 'preemptible') }}");
    const tasks = await yaml('roles', 'pool_handoff', 'tasks', 'main.yml');
    const copies = tasks.filter((t) => 'ansible.builtin.copy' in t).map((t) => (t['ansible.builtin.copy'] as { src: string }).src);
    // the role copies the two halves of the tree node-up writes
    const halves = [...new Set(tree.filter((f) => f.path.includes('/')).map((f) => f.path.split('/')[0]))];
    expect(copies).toEqual(halves.reverse().map((h) => `{{ depl_pool_handoff_dir }}/${h}/`));
    expect(JSON.stringify(tasks)).toContain(`{{ lookup('ansible.builtin.file', depl_pool_handoff_dir + '/authorized_key') }}`);
    const unit = tasks.find((t) => 'ansible.builtin.systemd_service' in t)!['ansible.builtin.systemd_service'] as { name: string };
    expect(unit.name).toBe(DRAIN_UNIT_NAME);
  });
});
