import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceSecret } from '../../../crawler/src/core/secret.js';
import { keystoneAuth, type KeystoneAuthOptions } from '../../../crawler/src/swift-auth.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The crawler's Keystone v3 login for Swift, against the emulator's Keystone (its tokens, catalog and expiry
 * behave as Keystone 22's): which catalog entry is Swift, and when the token is renewed. The objects themselves
 * go to a real Swift behind keystonemiddleware in test/integration/swift-store.test.ts, which also shows the
 * renewal on a 401.
 */
describe('the crawler\'s Keystone login for Swift', () => {
  const noServers = { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} };
  // a URL per region and interface (never contacted here), so the test sees which catalog entry was taken
  const objectStoreAt = (region: string, iface: string) => `http://127.0.0.1:9/${region}/${iface}/v1/AUTH_project/`;
  let cloud: OpenStackEmulator;
  let withoutSwift: OpenStackEmulator;

  beforeAll(async () => {
    const options = {
      servers: noServers, region: 'Melbourne', otherRegions: ['Sydney'],
      users: [{ name: 'demo', password: 'demo-password' }],
      applicationCredentials: [{ id: 'ac1', secret: 'ac1-secret', user: 'demo' }],
      tokenTtlSeconds: 3600,
    };
    [cloud, withoutSwift] = await Promise.all([startOpenStackEmulator({ ...options, services: { objectStore: objectStoreAt } }), startOpenStackEmulator(options)]);
  });
  afterAll(async () => {
    await Promise.all([cloud?.close(), withoutSwift?.close()]);
  });

  const credential = { kind: 'application_credential' as const, id: 'ac1', secret: new ServiceSecret('ac1-secret') };
  const auth = (options: Partial<KeystoneAuthOptions> = {}, emulator = cloud) => keystoneAuth({ authUrl: emulator.authUrl, login: credential, interface: 'public', ...options });

  it('finds Swift in the token\'s catalog: the interface asked for, the region when one is given, else the first', async () => {
    expect((await auth().access()).storageUrl).toBe('http://127.0.0.1:9/Melbourne/public/v1/AUTH_project');
    expect((await auth({ region: 'Sydney' }).access()).storageUrl).toBe('http://127.0.0.1:9/Sydney/public/v1/AUTH_project');
    expect((await auth({ region: 'Sydney', interface: 'internal' }).access()).storageUrl).toBe('http://127.0.0.1:9/Sydney/internal/v1/AUTH_project');
    // the auth URL without /v3 (as clouds.yaml often has it) reaches the same Keystone
    expect((await auth({ authUrl: cloud.authUrl.replace(/\/v3$/, '/') }).access()).storageUrl).toBe('http://127.0.0.1:9/Melbourne/public/v1/AUTH_project');
    await expect(auth({ region: 'Perth' }).access()).rejects.toThrow(/the catalog's object-store has no public endpoint in region Perth; it offers Melbourne\/public, Melbourne\/internal, Melbourne\/admin, Sydney\/public, .*\(images\.swift\.keystone\.interface \/ region\)/);
    await expect(auth({}, withoutSwift).access()).rejects.toThrow(/the application credential ac1's token has no object-store in its catalog/);
  });

  it('logs in with a password scoped to a project by name or id, and says which login Keystone refused', async () => {
    const password = (project: { id: string } | { name: string; domainName: string }, secret = 'demo-password') => auth({ login: { kind: 'password', username: 'demo', userDomainName: 'Default', password: new ServiceSecret(secret), project } });
    expect((await password({ name: cloud.projectName, domainName: 'Default' }).access()).storageUrl).toBe('http://127.0.0.1:9/Melbourne/public/v1/AUTH_project');
    expect((await password({ id: cloud.projectId }).access()).token).toMatch(/^gAAAA/);
    await expect(password({ id: cloud.projectId }, 'wrong').access()).rejects.toThrow(/Keystone at .*\/v3\/auth\/tokens refused the Keystone user demo \(HTTP 401\)/);
    const wrongSecret = auth({ login: { ...credential, secret: new ServiceSecret('not-the-secret') } });
    const refusal = await wrongSecret.access().catch((error: Error) => error);
    expect((refusal as Error).message).toMatch(/refused the application credential ac1 \(HTTP 401\): check its id and secret/);
    expect((refusal as Error).message).not.toContain('not-the-secret');
  });

  it('keeps one token until shortly before its expires_at, then logs in again; callers at the same time share one login', async () => {
    let clock = Date.now();
    const renewing = auth({ now: () => clock, renewBeforeMs: 5 * 60_000 });
    const before = cloud.tokensIssued();
    const [first, again] = await Promise.all([renewing.access(), renewing.access()]);
    expect(again.token).toBe(first.token);
    expect(cloud.tokensIssued()).toBe(before + 1);
    // the emulator's tokens live an hour: 54 minutes on, the same token; past 55 (5 minutes before expires_at), a new one
    clock += 54 * 60_000;
    expect((await renewing.access()).token).toBe(first.token);
    clock += 60_000 + 10_000;
    const renewed = await renewing.access();
    expect(renewed.token).not.toBe(first.token);
    expect(cloud.tokensIssued()).toBe(before + 2);
    // forgotten on demand (what a 401 from Swift does): the next access logs in again
    renewing.invalidate();
    expect((await renewing.access()).token).not.toBe(renewed.token);
    expect(cloud.tokensIssued()).toBe(before + 3);
  });

  it('renews a short-lived token at half its life at the latest', async () => {
    const shortLived = await startOpenStackEmulator({
      servers: noServers, users: [{ name: 'demo', password: 'demo-password' }], applicationCredentials: [{ id: 'ac1', secret: 'ac1-secret', user: 'demo' }],
      tokenTtlSeconds: 60, services: { objectStore: objectStoreAt },
    });
    try {
      let clock = Date.now();
      const renewing = auth({ now: () => clock }, shortLived);
      const first = await renewing.access();
      clock += 25_000;
      expect((await renewing.access()).token).toBe(first.token);
      clock += 15_000;
      expect((await renewing.access()).token).not.toBe(first.token);
      expect(shortLived.tokensIssued()).toBe(2);
    } finally {
      await shortLived.close();
    }
  });
});
