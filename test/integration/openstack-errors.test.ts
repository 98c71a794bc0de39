import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';
import { isolatedEnv } from '../support/openstack-emulator/client.js';
import { execa } from 'execa';
import { cliEntry, runCli } from '../support/cli.js';

/**
 * The built CLI against the OpenStack emulator, for the ways node-up must fail: each with the right exit
 * code, the cloud's own words, and no secret printed. No server is ever made here. A missing cloud, a
 * parameter Heat rejects and the application-credential 403 are the provider's own refusals, proven
 * against the same emulator without the CLI (test/unit/openstack/clouds.test.ts, provider.test.ts).
 */
describe('depl node-up on OpenStack: failures', () => {
  const secret = `sekret-${randomBytes(8).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const serversMade: string[] = [];
  let emulator: OpenStackEmulator;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({
      servers: {
        async createServer(name) {
          serversMade.push(name);
          throw new Error('this test makes no servers');
        },
        async deleteServer() {},
      },
      users: [{ name: 'alice', domain: 'Default', password }],
      applicationCredentials: [{ id: 'ac-errors', secret }],
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-errors-'));
    env = isolatedEnv(dir);
  });

  afterAll(async () => {
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function project(name: string, clouds: Record<string, unknown>, provider: Record<string, unknown>): Promise<string> {
    const folder = path.join(dir, name);
    await rm(folder, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(folder, { recursive: true }));
    await writeFile(path.join(folder, 'clouds.yaml'), stringify({ clouds }));
    await writeFile(path.join(folder, 'depl.yaml'), stringify({
      // one app (and so one managed key pair, depl-<app>) per project folder: each folder has its own SSH key
      app: name,
      domain: 'crawler.localhost',
      provider: { type: 'openstack', cloud: 'emu', stack: `err-${name}-${randomBytes(2).toString('hex')}`, timeoutMinutes: 2, ...provider },
      ssh: { user: 'root' },
      services: { api: { image: 'crawler:1' } },
    }));
    return folder;
  }

  const appCred = (s = secret) => ({ emu: { auth_type: 'v3applicationcredential', auth: { auth_url: emulator.authUrl, application_credential_id: 'ac-errors', application_credential_secret: s }, region_name: emulator.region } });
  const nodeUp = (cwd: string) => runCli(['node-up', '--config', path.join(cwd, 'depl.yaml')], { cwd, env });

  it('wrong credentials exit 1 with Keystone\'s message and no secret printed', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const cwd = await project('wrong-credentials', appCred(wrong), {});
    const run = await runCli(['--verbose', 'node-up', '--config', path.join(cwd, 'depl.yaml')], { cwd, env });
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toContain('Keystone rejected the credentials from cloud "emu"');
    expect(run.stderr).toContain('The request you have made requires authentication.');
    expect(run.stdout + run.stderr).not.toContain(wrong);
  });

  it('a missing password without a terminal exits 2 naming OS_PASSWORD', async () => {
    const cwd = await project('no-password', { emu: { auth: { auth_url: emulator.authUrl, username: 'alice', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } }, {});
    const run = await nodeUp(cwd);
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('set OS_PASSWORD');
    const withPassword = await runCli(['node-up', '--config', path.join(cwd, 'depl.yaml')], { cwd, env: { ...env, OS_PASSWORD: password }, timeoutMs: 60_000 });
    // with the password it gets past Keystone (this emulator then refuses to make servers)
    expect(withPassword.stderr).not.toContain('set OS_PASSWORD');
    expect(withPassword.stdout + withPassword.stderr).not.toContain(password);
    const down = await runCli(['--yes', 'node-down', '--config', path.join(cwd, 'depl.yaml')], { cwd, env: { ...env, OS_PASSWORD: password } });
    expect(down.exitCode, down.stderr).toBe(0);
  });

  it('on a terminal, a missing password is asked for at a masked prompt and used', async () => {
    const cwd = await project('prompt', { emu: { auth: { auth_url: emulator.authUrl, username: 'alice', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } }, { parameters: { colour: 'red' } });
    const tokens = emulator.tokensIssued();
    // script(1) gives the CLI a pseudo-terminal; the password is typed once the prompt shows
    const child = execa('script', ['-qec', `node ${cliEntry} node-up --config ${path.join(cwd, 'depl.yaml')}`, '/dev/null'], { cwd, env, extendEnv: false, reject: false, timeout: 60_000 });
    let seen = '';
    let typed = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (!typed && seen.includes('OpenStack password for alice:')) {
        typed = true;
        child.stdin!.write(`${password}\r`);
      }
    });
    const result = await child;
    expect(typed, seen).toBe(true);
    expect(seen).toContain('*'.repeat(password.length));
    expect(seen).not.toContain(password);
    // past Keystone with the typed password: Heat is reached and rejects the unknown parameter
    expect(emulator.tokensIssued()).toBe(tokens + 1);
    expect(seen).toContain('The Parameter (colour) was not defined in template.');
    expect(result.exitCode).toBe(2);
  });

  it('on a terminal with --yes, a missing password is an error naming OS_PASSWORD, not a prompt', async () => {
    const cwd = await project('prompt-yes', { emu: { auth: { auth_url: emulator.authUrl, username: 'alice', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } }, {});
    const result = await execa('script', ['-qec', `node ${cliEntry} --yes node-up --config ${path.join(cwd, 'depl.yaml')}`, '/dev/null'], { cwd, env, extendEnv: false, reject: false, timeout: 60_000, stdin: 'ignore' });
    expect(result.exitCode, String(result.stdout)).toBe(2);
    expect(String(result.stdout)).toContain('set OS_PASSWORD');
    expect(String(result.stdout)).not.toContain('OpenStack password for alice:');
  });

  const passwordCloud = () => ({ emu: { auth: { auth_url: emulator.authUrl, username: 'alice', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } });

  it('a failing stack shows Heat\'s reason and exits 1; node-down removes the failed stack', async () => {
    const cwd = await project('failing-stack', passwordCloud(), {});
    const env0 = env;
    env = { ...env0, OS_PASSWORD: password };
    emulator.behaviour.failCreate = 'No valid host was found. There are not enough hosts available.';
    const made = serversMade.length;
    let run;
    try {
      run = await nodeUp(cwd);
    } finally {
      emulator.behaviour.failCreate = undefined;
    }
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/stack err-failing-stack-\w+ CREATE_FAILED: Resource CREATE failed: ResourceInError: .*No valid host was found/);
    expect(run.stderr).toContain('nodes CREATE_FAILED');
    expect(serversMade.length).toBe(made);

    const down = await runCli(['--yes', 'node-down', '--config', path.join(cwd, 'depl.yaml')], { cwd, env });
    env = env0;
    expect(down.exitCode, down.stderr).toBe(0);
    expect(emulator.stacks().filter((s) => s.name.startsWith('err-failing-stack'))).toEqual([]);
  });
});
