import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';
import { ensureOpenStackClient, isolatedEnv, openstack } from '../support/openstack-emulator/client.js';
import { createOpenStackProvider } from '../../src/apply/providers/openstack.js';
import { ensureKeyPair } from '../../src/apply/ssh-keypair.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { packagePath } from '../../src/util/paths.js';
import { openStackProviderSettings } from '../../src/workflows/adapter-slices.js';

/**
 * Fidelity of the OpenStack emulator: the real `openstack` client (python3-openstackclient and
 * python3-heatclient from Debian) drives it through the same calls a user would make, and depl and the
 * client read each other's stacks. Servers here are only addresses; openstack-node-up makes real nodes.
 */
describe('the real openstack client against the OpenStack emulator', () => {
  const run = randomBytes(3).toString('hex');
  const appCred = { id: `cred${run}`, secret: `secret-${randomBytes(8).toString('hex')}` };
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const made: string[] = [];
  const deleted: string[] = [];
  let next = 10;
  let emulator: OpenStackEmulator;
  let home: string;
  let appCredEnv: Record<string, string>;
  /** Stacks need a password login: Heat's trust for the stack cannot be made from an application credential. */
  let stackEnv: Record<string, string>;
  const template = packagePath('heat', 'stack.yaml');

  beforeAll(async () => {
    await ensureOpenStackClient(createLogger());
    home = await mkdtemp(path.join(os.tmpdir(), 'depl-osc-'));
    emulator = await startOpenStackEmulator({
      servers: {
        async createServer(name) {
          made.push(name);
          return { address: `10.255.0.${next++}` };
        },
        async deleteServer(name) {
          deleted.push(name);
        },
      },
      users: [{ name: 'alice', domain: 'Default', password }],
      applicationCredentials: [appCred],
    });
    appCredEnv = isolatedEnv(home, {
      OS_AUTH_URL: emulator.authUrl,
      OS_AUTH_TYPE: 'v3applicationcredential',
      OS_APPLICATION_CREDENTIAL_ID: appCred.id,
      OS_APPLICATION_CREDENTIAL_SECRET: appCred.secret,
      OS_REGION_NAME: emulator.region,
      OS_IDENTITY_API_VERSION: '3',
    });
    stackEnv = isolatedEnv(home, {
      OS_AUTH_URL: emulator.authUrl,
      OS_USERNAME: 'alice',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PASSWORD: password,
      OS_PROJECT_ID: emulator.projectId,
      OS_REGION_NAME: emulator.region,
      OS_IDENTITY_API_VERSION: '3',
    });
  });

  afterAll(async () => {
    await emulator?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  // with --wait the client prints the events first, then the document
  const json = (result: { stdout: unknown }) => {
    const text = String(result.stdout);
    const start = text.search(/^[[{]/m);
    return JSON.parse(start >= 0 ? text.slice(start) : text);
  };
  const ok = (result: { exitCode?: number; stderr: unknown; stdout: unknown }) => {
    expect(result.exitCode, `openstack failed:\n${String(result.stderr)}\n${String(result.stdout)}`).toBe(0);
    return result;
  };

  it('issues a token with an application credential', async () => {
    const token = json(ok(await openstack(['token', 'issue', '-f', 'json'], appCredEnv)));
    expect(token.project_id).toBe(emulator.projectId);
    expect(token.id).toMatch(/^gAAAAAB/);
    expect(Date.parse(token.expires.replace(/\+0000$/, 'Z'))).toBeGreaterThan(Date.now());
  });

  it('imports, lists and shows a key pair (Nova), which key_name then refers to', async () => {
    const key = await ensureKeyPair(path.join(home, 'keys', 'id_ed25519'), 'osc-test');
    const pubFile = path.join(home, 'keys', 'id_ed25519.pub');
    await writeFile(pubFile, key.publicKey + '\n');
    const created = json(ok(await openstack(['keypair', 'create', '--public-key', pubFile, 'depl', '-f', 'json'], appCredEnv)));
    expect(created).toMatchObject({ name: 'depl', fingerprint: expect.stringMatching(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/) });
    const listed = json(ok(await openstack(['keypair', 'list', '-f', 'json'], appCredEnv)));
    expect(listed.map((k: { Name: string }) => k.Name)).toContain('depl');
    const shown = ok(await openstack(['keypair', 'show', '--public-key', 'depl'], appCredEnv));
    expect(String(shown.stdout).trim()).toBe(key.publicKey.trim());
    const missing = await openstack(['stack', 'create', '-t', template, '--parameter', 'key_name=nobody-has-this', `osc-badkey-${run}`], stackEnv);
    expect(missing.exitCode).not.toBe(0);
    expect(String(missing.stderr)).toContain('The Key (nobody-has-this) could not be found.');
  });

  it('creates, shows, lists, updates in place and deletes a stack from heat/stack.yaml', async () => {
    const name = `osc-${run}`;
    const created = json(ok(await openstack(['stack', 'create', '--wait', '--poll', '1', '-t', template, '--parameter', 'key_name=depl', '--parameter', 'count=2', '-f', 'json', name], stackEnv)));
    expect(created.stack_status).toBe('CREATE_COMPLETE');

    const shown = json(ok(await openstack(['stack', 'show', name, '-f', 'json'], stackEnv)));
    expect(shown.parameters).toMatchObject({ count: '2', key_name: 'depl', flavor: 'm3.small', image: 'NeCTAR Ubuntu 22.04 LTS (Jammy) amd64' });
    const outputs = Object.fromEntries((shown.outputs as Array<{ output_key: string; output_value: unknown }>).map((o) => [o.output_key, o.output_value]));
    expect(outputs.node_names).toEqual([`${name}-0`, `${name}-1`]);
    expect(outputs.node_addresses).toHaveLength(2);
    expect(outputs.manager_ip).toBe((outputs.node_addresses as string[])[0]);
    expect(outputs.worker_ips).toEqual((outputs.node_addresses as string[]).slice(1));

    const all = json(ok(await openstack(['stack', 'output', 'show', '--all', name, '-f', 'json'], stackEnv)));
    expect(Object.keys(all).sort()).toEqual(['manager_ip', 'node_addresses', 'node_names', 'worker_ips']);
    expect(JSON.parse(all.node_names).output_value).toEqual([`${name}-0`, `${name}-1`]);

    const listed = json(ok(await openstack(['stack', 'list', '-f', 'json'], stackEnv)));
    expect(listed.map((s: { 'Stack Name': string }) => s['Stack Name'])).toContain(name);
    const stored = json(ok(await openstack(['stack', 'template', 'show', name, '-f', 'json'], stackEnv)));
    expect(stored.heat_template_version).toBe('2018-08-31');
    expect(Object.keys(stored.resources)).toEqual(['swarm_security_group', 'nodes']);

    ok(await openstack(['stack', 'update', '--wait', '--existing', '--parameter', 'count=3', name], stackEnv));
    const updated = json(ok(await openstack(['stack', 'output', 'show', name, 'node_addresses', '-f', 'json'], stackEnv)));
    expect(updated.output_value).toHaveLength(3);
    expect(updated.output_value.slice(0, 2)).toEqual(outputs.node_addresses);
    expect(made.filter((n) => n.startsWith(name))).toEqual([`${name}-0`, `${name}-1`, `${name}-2`].filter((n) => made.includes(n)));
    expect(made.filter((n) => n.startsWith(name))).toHaveLength(3);

    ok(await openstack(['stack', 'delete', '--yes', '--wait', name], stackEnv));
    expect(deleted.filter((n) => n.startsWith(name)).sort()).toEqual([`${name}-0`, `${name}-1`, `${name}-2`]);
    const after = json(ok(await openstack(['stack', 'list', '-f', 'json'], stackEnv)));
    expect(after.map((s: { 'Stack Name': string }) => s['Stack Name'])).not.toContain(name);
    const gone = await openstack(['stack', 'show', name], stackEnv);
    expect(gone.exitCode).not.toBe(0);
    expect(String(gone.stderr)).toContain(`Stack not found: ${name}`);
  });

  it('authenticates from clouds.yaml + secure.yaml with a password, a project by name and an unversioned auth URL', async () => {
    const dir = await mkdtemp(path.join(home, 'cfg-'));
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: { emu: { auth: { auth_url: emulator.url + '/identity', username: 'alice', user_domain_name: 'Default', project_name: emulator.projectName, project_domain_id: 'default' }, region_name: emulator.region, interface: 'public', identity_api_version: 3 } },
    }));
    await writeFile(path.join(dir, 'secure.yaml'), stringify({ clouds: { emu: { auth: { password } } } }));
    // the client finds clouds.yaml and secure.yaml in the working directory
    const env = isolatedEnv(home, { OS_CLOUD: 'emu' });
    const token = json(ok(await openstack(['token', 'issue', '-f', 'json'], env, dir)));
    expect(token.project_id).toBe(emulator.projectId);
    ok(await openstack(['stack', 'list'], env, dir));
  });

  it('shows Keystone\'s refusal of wrong credentials, and Heat\'s reason for a failed create', async () => {
    const wrong = await openstack(['token', 'issue'], { ...appCredEnv, OS_APPLICATION_CREDENTIAL_SECRET: 'not-the-secret' });
    expect(wrong.exitCode).not.toBe(0);
    expect(String(wrong.stderr)).toContain('The request you have made requires authentication');

    const name = `osc-fail-${run}`;
    emulator.behaviour.failCreate = 'No valid host was found. There are not enough hosts available.';
    try {
      const failed = await openstack(['stack', 'create', '--wait', '--poll', '1', '-t', template, '--parameter', 'key_name=depl', name], stackEnv);
      expect(failed.exitCode).not.toBe(0);
      expect(String(failed.stdout) + String(failed.stderr)).toContain('No valid host was found');
    } finally {
      emulator.behaviour.failCreate = undefined;
    }
    const shown = json(ok(await openstack(['stack', 'show', name, '-f', 'json'], stackEnv)));
    expect(shown.stack_status).toBe('CREATE_FAILED');
    expect(shown.stack_status_reason).toContain('No valid host was found');
    ok(await openstack(['stack', 'delete', '--yes', '--wait', name], stackEnv));
  });

  it('refuses a stack create from an application credential with 403, as a current cloud does', async () => {
    const refused = await openstack(['stack', 'create', '-t', template, '--parameter', 'key_name=depl', `osc-ac-${run}`], appCredEnv);
    expect(refused.exitCode).not.toBe(0);
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/stacks')).at(-1)?.status).toBe(403);
    expect(emulator.stacks().some((s) => s.name === `osc-ac-${run}`)).toBe(false);
  });

  it('rejects a stack without the required key_name, in Heat\'s words', async () => {
    const viaClient = await openstack(['stack', 'create', '-t', template, `osc-nokey-${run}`], stackEnv);
    expect(viaClient.exitCode).not.toBe(0);
    expect(String(viaClient.stderr)).toContain('The Parameter (key_name) was not provided.');
  });

  it('agrees with depl: each reads the stacks the other made', async () => {
    const dir = await mkdtemp(path.join(home, 'depl-'));
    const cloudsFile = path.join(dir, 'clouds.yaml');
    await writeFile(cloudsFile, stringify({
      clouds: { emu: { auth: { auth_url: emulator.authUrl, username: 'alice', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } },
    }));
    await writeFile(path.join(dir, 'secure.yaml'), stringify({ clouds: { emu: { auth: { password } } } }));
    const config = (stack: string) => parseConfig(stringify({
      app: 'crawler',
      domain: 'crawler.localhost',
      provider: { type: 'openstack', cloud: 'emu', stack },
      services: { api: { image: 'x' } },
    }));
    const env = isolatedEnv(home, { OS_CLIENT_CONFIG_FILE: cloudsFile, OS_CLIENT_SECURE_FILE: path.join(dir, 'secure.yaml') });

    // depl creates; the client sees the same nodes
    const byDepl = `depl-${run}`;
    const provider = await createOpenStackProvider(openStackProviderSettings({ config: config(byDepl), file: path.join(dir, 'depl.yaml'), root: dir }), silentLogger, { env, interactive: false, pollMs: 100 });
    const nodes = await provider.up(2, silentLogger);
    const out = json(ok(await openstack(['stack', 'output', 'show', byDepl, 'node_addresses', '-f', 'json'], { ...env, OS_CLOUD: 'emu' })));
    expect(nodes.map((n) => n.address)).toEqual(out.output_value);
    expect(nodes.map((n) => n.name)).toEqual([`${byDepl}-0`, `${byDepl}-1`]);
    // without a key_name, depl uploaded its SSH key's public half as depl-<app>
    const uploaded = ok(await openstack(['keypair', 'show', '--public-key', 'depl-crawler'], { ...env, OS_CLOUD: 'emu' }));
    expect(String(uploaded.stdout).trim()).toBe((await readFile(path.join(dir, '.depl', 'id_ed25519.pub'), 'utf8')).trim());

    // the client creates; depl lists the same nodes
    const byClient = `client-${run}`;
    ok(await openstack(['stack', 'create', '--wait', '--poll', '1', '-t', template, '--parameter', 'key_name=depl', '--parameter', 'count=1', byClient], { ...env, OS_CLOUD: 'emu' }));
    const seen = await (await createOpenStackProvider(openStackProviderSettings({ config: config(byClient), file: path.join(dir, 'depl.yaml'), root: dir }), silentLogger, { env, interactive: false })).list(silentLogger);
    expect(seen).toEqual([{ name: `${byClient}-0`, address: expect.stringMatching(/^10\.255\.0\.\d+$/) }]);

    // depl deletes what the client made
    await (await createOpenStackProvider(openStackProviderSettings({ config: config(byClient), file: path.join(dir, 'depl.yaml'), root: dir }), silentLogger, { env, interactive: false, pollMs: 100 })).down(silentLogger);
    await provider.down(silentLogger);
    const left = json(ok(await openstack(['stack', 'list', '-f', 'json'], { ...env, OS_CLOUD: 'emu' })));
    expect(left.map((s: { 'Stack Name': string }) => s['Stack Name'])).not.toContain(byClient);
    expect(left.map((s: { 'Stack Name': string }) => s['Stack Name'])).not.toContain(byDepl);
  });
});
