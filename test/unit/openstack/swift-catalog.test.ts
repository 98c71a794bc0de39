import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudCredentials } from '../../../src/config/clouds.js';
import { KeystoneSession } from '../../../src/apply/openstack/keystone.js';
import { keystoneObjectStore, SwiftClient } from '../../../src/apply/openstack/swift.js';
import { forgetSecrets } from '../../../src/util/redact.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * How depl finds a cloud's Swift: the `object-store` entry of the Keystone catalog, opened with the session's
 * token. The objects themselves are written and read against a real Swift in test/integration/swift-store.test.ts.
 */
describe('the object store from the Keystone catalog', () => {
  const noServers = { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} };
  let withSwift: OpenStackEmulator;
  let withoutSwift: OpenStackEmulator;
  let closedPort: number;

  beforeAll(async () => {
    // a port nothing listens on: taken, then given back
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const options = { servers: noServers, applicationCredentials: [{ id: 'ac1', secret: 'ac1-secret' }] };
    [withSwift, withoutSwift] = await Promise.all([
      startOpenStackEmulator({ ...options, services: { objectStore: `http://127.0.0.1:${closedPort}/v1/AUTH_project` } }),
      startOpenStackEmulator(options),
    ]);
  });
  afterAll(async () => {
    forgetSecrets();
    await Promise.all([withSwift?.close(), withoutSwift?.close()]);
  });

  const session = (emulator: OpenStackEmulator) => new KeystoneSession({ authUrl: emulator.authUrl, regionName: emulator.region, interface: 'public', auth: { type: 'application_credential', id: 'ac1', secret: 'ac1-secret' }, source: 'test' } satisfies CloudCredentials);

  it('opens the catalog\'s object-store with the session\'s token, and says there is none when the cloud has no Swift', async () => {
    expect(await keystoneObjectStore(session(withoutSwift))).toBeUndefined();
    const keystone = session(withSwift);
    const auth = await keystoneObjectStore(keystone);
    expect(await auth!.access()).toEqual({ storageUrl: `http://127.0.0.1:${closedPort}/v1/AUTH_project`, token: await keystone.token() });
    // that Swift is not there: the error names it, as one depl error
    await expect(new SwiftClient(auth!).headObject('backups', 'x')).rejects.toMatchObject({
      code: 'OBJECT_STORE_ERROR', message: expect.stringMatching(new RegExp(`^cannot reach Swift at http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`)),
    });
  });
});
