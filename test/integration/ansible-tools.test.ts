import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { execa } from 'execa';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { renderAnsibleInventory } from '../../src/plan/ansible-inventory.js';
import { readSecretsFile } from '../../src/apply/secrets-store.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { BOOTSTRAP_PLAYBOOK, ensureAnsible, runAnsible } from '../support/ansible.js';
import { runCli } from '../support/cli.js';

const log = process.env.DEPL_TEST_VERBOSE ? createLogger({ verbose: true }) : silentLogger;

/**
 * Ansible's tools on this machine, no node and no Docker Engine: ansible-lint on the playbook, node-up's refusal
 * when ansible-playbook is missing, and `depl secrets import --vault` with the real ansible-vault. Beside the
 * cluster files (integration-local); the plays on nodes are test/integration/ansible-bootstrap.test.ts.
 */
describe('bootstrap: ansible, before any node', () => {
  it('the playbook and its roles pass Debian\'s ansible-lint at its strictest profile, no rule skipped', async () => {
    // the lint resolves the community.docker modules the roles use: they come with `ansible`, not with ansible-lint
    // (which needs only ansible-core); a machine with ansible-lint alone failed with "couldn't resolve module"
    await ensureDebianPackages(['ansible', 'ansible-lint'], log);
    const lint = await runAnsible('ansible-lint', ['-c', '.ansible-lint', 'bootstrap.yml', 'roles'], path.dirname(BOOTSTRAP_PLAYBOOK), 300_000);
    expect(lint.exitCode, lint.output).toBe(0);
    expect(lint.output).toMatch(/Passed with production profile: 0 failure\(s\), 0 warning\(s\)/);
    expect(await readFile(path.join(path.dirname(BOOTSTRAP_PLAYBOOK), '.ansible-lint'), 'utf8')).not.toMatch(/skip_list|warn_list/);
  });

  it('node-up without ansible-playbook says how to install it and exits 2, having made nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-noansible-'));
    try {
      // a PATH with node alone: this machine's ansible-playbook cannot be found
      await mkdir(path.join(dir, 'bin'));
      await symlink(process.execPath, path.join(dir, 'bin', 'node'));
      await writeFile(path.join(dir, 'depl.yaml'), stringify({
        app: 'noansible', domain: 'noansible.localhost', bootstrap: 'ansible',
        provider: { type: 'local', nodes: 1, prefix: `dt-noansible-${process.pid}` },
        services: { web: { image: 'web:1', port: 8080, http: true } },
      }));
      const run = await runCli(['node-up'], { cwd: dir, env: { PATH: path.join(dir, 'bin') } });
      expect(run.exitCode, run.stderr).toBe(2);
      expect(run.stderr).toContain('bootstrap: ansible in depl.yaml, but ansible-playbook is not installed on this machine');
      expect(run.stderr).toContain('apt-get install ansible');
      expect(run.stderr).toContain('community.docker');
      expect(await readdir(dir)).toEqual(['bin', 'depl.yaml']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the inventory node-up writes, as Ansible reads it', () => {
  it('keeps a newline, a quote or a space in a path or the app name inside its one value: no variable of their own', async () => {
    await ensureAnsible(log);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-inventory-'));
    try {
      // what depl.yaml's checks refuse today (ssh.key, app), rendered anyway: the inventory must not rely on them
      const keyFile = '/home/u/my keys/id"x\nansible_become_exe=/tmp/evil';
      const knownHostsFile = "/home/u/it's/known_hosts\nansible_connection=local";
      const app = 'shop\nansible_user=root';
      const file = path.join(dir, 'hosts.ini');
      await writeFile(file, renderAnsibleInventory({
        nodes: [{ name: 'node-1', address: '10.0.0.2', role: 'manager' }, { name: 'node-2', address: '10.0.0.3', role: 'worker' }],
        user: 'debian', port: 22, keyFile, knownHostsFile, app, networkEncrypted: true,
      }));
      const listed = await execa('ansible-inventory', ['-i', file, '--list'], { cwd: dir, env: { ANSIBLE_INVENTORY_UNPARSED_FAILED: 'True' } });
      const hostvars = (JSON.parse(listed.stdout) as { _meta: { hostvars: Record<string, Record<string, unknown>> } })._meta.hostvars;
      expect(Object.keys(hostvars).sort()).toEqual(['node-1', 'node-2']);
      for (const vars of Object.values(hostvars)) {
        expect(vars).toMatchObject({ ansible_user: 'debian', ansible_ssh_private_key_file: keyFile, depl_app: app, ansible_become: 'true' });
        expect(vars).not.toHaveProperty('ansible_become_exe');
        expect(vars).not.toHaveProperty('ansible_connection');
        // ssh's arguments, which Ansible splits as a shell would: a real shell gets the path back whole
        const split = await execa('sh', ['-c', `for a in ${vars.ansible_ssh_common_args as string}; do printf '%s\\0' "$a"; done`]);
        expect(split.stdout.split('\0').filter(Boolean)).toEqual(['-o', `UserKnownHostsFile=${knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes']);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('depl secrets import --vault', () => {
  it('copies named variables from an Ansible Vault file into .depl/secrets, printing no value; a wrong password changes nothing', async () => {
    await ensureAnsible(log);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-vault-'));
    try {
      const token = `tok-${randomBytes(8).toString('hex')}`;
      const password = `pw ${randomBytes(8).toString('hex')}`;
      await writeFile(path.join(dir, 'depl.yaml'), stringify({
        app: 'vaulted', domain: 'vaulted.localhost', secrets: ['api_token', 'redis_password'],
        services: { web: { image: 'web:1', port: 8080, http: true, secrets: ['api_token'] } },
      }));
      await writeFile(path.join(dir, 'vault.yml'), stringify({ api_token: token, redis_password: password, unrelated: 'x' }));
      await writeFile(path.join(dir, 'vault-pass'), 'correct horse\n');
      await writeFile(path.join(dir, 'wrong-pass'), 'wrong horse\n');
      const encrypt = await runAnsible('ansible-vault', ['encrypt', '--vault-password-file', 'vault-pass', 'vault.yml'], dir, 60_000);
      expect(encrypt.exitCode, encrypt.output).toBe(0);
      expect(await readFile(path.join(dir, 'vault.yml'), 'utf8')).toMatch(/^\$ANSIBLE_VAULT;1\.1;AES256/);

      const wrong = await runCli(['--yes', 'secrets', 'import', '--vault', 'vault.yml', '--vault-password-file', 'wrong-pass'], { cwd: dir });
      expect(wrong.exitCode, wrong.stderr).toBe(2);
      expect(wrong.stderr).toContain('ansible-vault could not open');
      const noPassword = await runCli(['--yes', 'secrets', 'import', '--vault', 'vault.yml'], { cwd: dir });
      expect(noPassword.exitCode).toBe(2);
      expect(noPassword.stderr).toContain('--vault-password-file');
      expect(await readSecretsFile(dir)).toEqual([]);

      const imported = await runCli(['--yes', 'secrets', 'import', '--vault', 'vault.yml', '--vault-password-file', 'vault-pass', 'api_token', 'redis_password'], { cwd: dir });
      expect(imported.exitCode, imported.stderr).toBe(0);
      expect(imported.stdout).toContain('Imported api_token, redis_password');
      expect(`${imported.stdout}${imported.stderr}`).not.toContain(token);
      expect(`${imported.stdout}${imported.stderr}`).not.toContain(password);
      expect((await readSecretsFile(dir)).map((e) => [e.name, e.value])).toEqual([['api_token', token], ['redis_password', password]]);
      const listed = await runCli(['secrets', 'list'], { cwd: dir });
      expect(listed.stdout).toMatch(/api_token\s+file/);
      expect(listed.stdout).not.toContain(token);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
