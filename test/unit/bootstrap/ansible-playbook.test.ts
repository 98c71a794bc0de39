import { describe, expect, it } from 'vitest';
import { ANSIBLE_ENV, ANSIBLE_INSTALL_HINT, ansiblePlaybookCommand, parsePlayRecap, playProgressLine } from '../../../src/plan/ansible-playbook.js';

const RUN = `PLAY [Docker Engine on every node] *********************************************

TASK [Gathering Facts] *********************************************************
ok: [node-2]
ok: [node-1]

TASK [swarm : The other nodes join it, managers as managers] *******************
skipping: [node-1]
changed: [node-2]
fatal: [node-3]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect", "unreachable": true}

PLAY RECAP *********************************************************************
node-1                     : ok=11   changed=0    unreachable=0    failed=0    skipped=2    rescued=0    ignored=0
node-2                     : ok=7    changed=3    unreachable=0    failed=0    skipped=5    rescued=0    ignored=0
node-3                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
`;

describe('bootstrap: ansible, as data', () => {
  it('runs ansible-playbook with the inventory node-up wrote, and --check --diff only when asked', () => {
    expect(ansiblePlaybookCommand({ inventory: '/p/ansible/generated_hosts.ini', playbook: '/opt/depl/ansible/bootstrap.yml' }))
      .toEqual(['ansible-playbook', '-i', '/p/ansible/generated_hosts.ini', '/opt/depl/ansible/bootstrap.yml']);
    expect(ansiblePlaybookCommand({ inventory: 'h.ini', playbook: 'b.yml', check: true }))
      .toEqual(['ansible-playbook', '-i', 'h.ini', '--check', '--diff', 'b.yml']);
  });

  it('asks for plain, unbuffered output and strict host key checking', () => {
    expect(ANSIBLE_ENV).toMatchObject({ ANSIBLE_NOCOLOR: '1', ANSIBLE_HOST_KEY_CHECKING: 'True', PYTHONUNBUFFERED: '1' });
  });

  it('tells how to install Ansible on Debian: the ansible package, or ansible-core plus community.docker', () => {
    expect(ANSIBLE_INSTALL_HINT).toContain('apt-get install ansible');
    expect(ANSIBLE_INSTALL_HINT).toContain('ansible-core');
    expect(ANSIBLE_INSTALL_HINT).toContain('community.docker');
  });

  it('reads what each host did from the PLAY RECAP', () => {
    const recap = parsePlayRecap(RUN);
    expect([...recap.keys()]).toEqual(['node-1', 'node-2', 'node-3']);
    expect(recap.get('node-1')).toEqual({ ok: 11, changed: 0, unreachable: 0, failed: 0, skipped: 2, rescued: 0, ignored: 0 });
    expect(recap.get('node-2')?.changed).toBe(3);
    expect(recap.get('node-3')?.unreachable).toBe(1);
    expect(parsePlayRecap('ERROR! the playbook could not be found').size).toBe(0);
  });

  it('relays plays, tasks, changes and failures as progress, not every ok or skip', () => {
    const relayed = RUN.split('\n').map(playProgressLine).filter((line) => line !== null);
    expect(relayed).toEqual([
      'play: Docker Engine on every node',
      'task: Gathering Facts',
      'task: swarm : The other nodes join it, managers as managers',
      'changed: [node-2]',
      'fatal: [node-3]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect", "unreachable": true}',
      'recap node-1 : ok=11 changed=0 unreachable=0 failed=0 skipped=2 rescued=0 ignored=0',
      'recap node-2 : ok=7 changed=3 unreachable=0 failed=0 skipped=5 rescued=0 ignored=0',
      'recap node-3 : ok=0 changed=0 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0',
    ]);
  });
});
