import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createOpenStackProvider } from '../../../src/apply/providers/openstack.js';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';

const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a someone-else';

describe('the OpenStack provider', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 1;
  const env = () => passwordLoginEnv(emulator);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-provider-'));
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: `10.2.0.${next++}` }), deleteServer: async () => {} },
      applicationCredentials: [{ id: 'ac', secret: 'ac-secret-1' }],
      keypairs: { 'depl-taken': OTHER_KEY },
    });
  });
  afterAll(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  const provider = (app: string, parameters: Record<string, unknown> = {}, login: Record<string, string> = env()) =>
    createOpenStackProvider(
      openStackProviderSettings({ config: parseConfig(stringify({ app, domain: 'd.localhost', provider: { type: 'openstack', parameters }, services: { api: { image: 'x' } } })), file: path.join(dir, 'depl.yaml'), root: dir }),
      silentLogger,
      { env: login, cwd: dir, interactive: false, pollMs: 10 },
    );

  it('uploads the public half of ssh.key as the key pair depl-<app> when no key_name is given, once', async () => {
    const p = await provider('crawler');
    const nodes = await p.up(2, silentLogger);
    expect(nodes).toEqual([
      { name: 'crawler-nodes-0', address: expect.any(String), fresh: true },
      { name: 'crawler-nodes-1', address: expect.any(String), fresh: true },
    ]);
    expect(emulator.keypairs()).toContain('depl-crawler');
    const publicKey = (await readFile(path.join(dir, '.depl', 'id_ed25519.pub'), 'utf8')).trim();
    expect(publicKey).toMatch(/^ssh-ed25519 /);

    const puts = () => emulator.requests.filter((r) => r.method === 'PUT').length;
    const again = await p.up(2, silentLogger);
    expect(again).toEqual(nodes.map((n) => ({ ...n, fresh: false })));
    expect(puts()).toBe(0);

    const grown = await p.up(3, silentLogger);
    expect(puts()).toBe(1);
    expect(grown.map((n) => n.fresh)).toEqual([false, false, true]);
    expect(emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/os-keypairs'))).toHaveLength(1);
    expect(await p.list(silentLogger)).toEqual(grown.map(({ name, address }) => ({ name, address })));
    await p.down(silentLogger);
    expect(await p.list(silentLogger)).toEqual([]);
  });

  it('refuses a key pair of that name that holds another key, before making anything', async () => {
    const p = await provider('taken');
    const error = await p.up(1, silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('key pair "depl-taken" holds another public key');
    expect(emulator.stacks().filter((s) => s.name === 'taken-nodes')).toEqual([]);
  });

  it('uses the key_name the user gives, without touching key pairs', async () => {
    const before = emulator.keypairs().length;
    const p = await provider('given', { key_name: 'depl-taken' });
    expect(await p.up(1, silentLogger)).toHaveLength(1);
    expect(emulator.keypairs()).toHaveLength(before);
    await p.down(silentLogger);
  });
  it('a template parameter Heat rejects (a key_name no key pair has) is a UserError (exit 2) in Heat\'s words, nothing made', async () => {
    const p = await provider('badkey', { key_name: 'nobody-has-this' });
    const error = await p.up(1, silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    expect((error as Error).message).toContain('The Key (nobody-has-this) could not be found.');
    expect(emulator.stacks().filter((s) => s.name.startsWith('badkey'))).toEqual([]);
  });

  it('an application-credential login: Heat\'s 403 on the stack create is explained (trusts), exit 2, no secret shown, nothing made', async () => {
    const login = { OS_AUTH_URL: emulator.authUrl, OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: 'ac', OS_APPLICATION_CREDENTIAL_SECRET: 'ac-secret-1', OS_REGION_NAME: emulator.region };
    const p = await provider('appcred', { key_name: 'depl-taken' }, login);
    const error = await p.up(1, silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ exitCode: 2, code: 'OPENSTACK_APP_CREDENTIAL_TRUST' });
    expect((error as UserError).message).toMatch(/Heat refused to create or update stack appcred-nodes for an application-credential login \(HTTP 403: Access was denied to this resource.\)/);
    expect((error as UserError).hint).toContain('Keystone refuses trusts to application credentials');
    expect((error as UserError).hint).toContain('OS_PASSWORD');
    expect(`${(error as UserError).message} ${(error as UserError).hint}`).not.toContain('lacks a role');
    expect(`${(error as UserError).message} ${(error as UserError).hint}`).not.toContain('ac-secret-1');
    expect(emulator.stacks().filter((s) => s.name.startsWith('appcred'))).toEqual([]);
  });
});
