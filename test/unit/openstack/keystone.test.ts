import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudCredentials } from '../../../src/config/clouds.js';
import { OperationError } from '../../../src/errors.js';
import { authRequestBody, KeystoneSession, pickEndpoint } from '../../../src/apply/openstack/keystone.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';
import { forgetSecrets, redact } from '../../../src/util/redact.js';

describe('Keystone v3 session', () => {
  let emulator: OpenStackEmulator;
  const noServers = { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} };

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({
      servers: noServers,
      users: [{ name: 'alice', domain: 'Default', password: 'alice-pw' }],
      applicationCredentials: [{ id: 'ac1', secret: 'ac1-secret' }],
      tokenTtlSeconds: 3600,
    });
  });
  afterAll(async () => {
    forgetSecrets();
    await emulator.close();
  });

  const appCred = (): CloudCredentials => ({ authUrl: emulator.authUrl, regionName: emulator.region, interface: 'public', auth: { type: 'application_credential', id: 'ac1', secret: 'ac1-secret' }, source: 'test' });

  it('builds the request bodies Keystone documents', () => {
    expect(authRequestBody({ type: 'password', username: 'u', userDomainName: 'Default', password: 'p', projectId: 'P' })).toEqual({
      auth: { identity: { methods: ['password'], password: { user: { name: 'u', domain: { name: 'Default' }, password: 'p' } } }, scope: { project: { id: 'P' } } },
    });
    expect(authRequestBody({ type: 'password', username: 'u', userDomainId: 'default', password: 'p', projectName: 'N', projectDomainName: 'Default' })).toMatchObject({
      auth: { scope: { project: { name: 'N', domain: { name: 'Default' } } } },
    });
    expect(authRequestBody({ type: 'application_credential', id: 'i', secret: 's' })).toEqual({
      auth: { identity: { methods: ['application_credential'], application_credential: { id: 'i', secret: 's' } } },
    });
  });

  it('gets a token with an application credential and reuses it', async () => {
    const before = emulator.tokensIssued();
    const session = new KeystoneSession(appCred());
    const token = await session.token();
    expect(await session.token()).toBe(token);
    expect(await session.endpoint('orchestration')).toBe(`${emulator.url}/orchestration/v1/${emulator.projectId}`);
    expect(emulator.tokensIssued() - before).toBe(1);
    expect(redact(`token ${token}`)).toBe('token [REDACTED]');
  });

  it('renews the token shortly before it expires', async () => {
    let clock = Date.now();
    const session = new KeystoneSession(appCred(), { now: () => clock, renewMarginMs: 5 * 60_000 });
    const first = await session.token();
    clock += 50 * 60_000;
    expect(await session.token()).toBe(first);
    clock += 6 * 60_000; // 4 minutes before expiry: inside the margin
    expect(await session.token()).not.toBe(first);
  });

  it('gets a project-scoped token with a password, the project by name, from an unversioned auth URL', async () => {
    const session = new KeystoneSession({
      authUrl: emulator.url + '/identity',
      interface: 'public',
      regionName: emulator.region,
      auth: { type: 'password', username: 'alice', userDomainName: 'Default', password: 'alice-pw', projectName: emulator.projectName, projectDomainId: 'default' },
      source: 'test',
    });
    expect(await session.projectId()).toBe(emulator.projectId);
  });

  it('wrong credentials: an OperationError with Keystone\'s message, and no secret in it', async () => {
    const session = new KeystoneSession({ ...appCred(), auth: { type: 'application_credential', id: 'ac1', secret: 'wrong-secret-123' }, source: 'cloud "emu"' });
    const error = await session.token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as Error).message).toBe('Keystone rejected the credentials from cloud "emu": The request you have made requires authentication.');
    expect(JSON.stringify(error)).not.toContain('wrong-secret-123');
  });

  it('a cloud that rejects every credential: the same error, with Keystone\'s words', async () => {
    emulator.behaviour.rejectCredentials = true;
    try {
      await expect(new KeystoneSession(appCred()).token()).rejects.toThrow(/Keystone rejected the credentials from test: The request you have made requires authentication./);
    } finally {
      emulator.behaviour.rejectCredentials = false;
    }
  });

  it('an unreachable Keystone is an OperationError naming the address', async () => {
    const session = new KeystoneSession({ ...appCred(), authUrl: 'http://127.0.0.1:9/v3' });
    await expect(session.token()).rejects.toThrow(/cannot reach Keystone at http:\/\/127.0.0.1:9/);
  });

  it('a missing endpoint lists what the catalog has', () => {
    const catalog = [
      { type: 'identity', endpoints: [{ interface: 'public', region_id: 'Melbourne', url: 'https://k/v3/' }] },
      { type: 'orchestration', endpoints: [{ interface: 'public', region_id: 'Melbourne', url: 'https://heat/v1/p/' }] },
    ];
    expect(pickEndpoint(catalog, 'orchestration', 'public', 'Melbourne')).toBe('https://heat/v1/p');
    expect(pickEndpoint(catalog, 'orchestration', 'public', undefined)).toBe('https://heat/v1/p');
    expect(() => pickEndpoint(catalog, 'orchestration', 'public', 'Auckland')).toThrow(
      'the service catalog has no orchestration/public/Auckland endpoint (it has: identity/public/Melbourne, orchestration/public/Melbourne)',
    );
    expect(() => pickEndpoint(catalog, 'compute', 'public', 'Melbourne')).toThrow(/no compute\/public\/Melbourne endpoint/);
  });
});
