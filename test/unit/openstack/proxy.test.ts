import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystoneSession } from '../../../src/apply/openstack/keystone.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

describe('OpenStack calls behind an HTTP proxy', () => {
  let emulator: OpenStackEmulator;
  let proxy: http.Server;
  const tunnels: string[] = [];
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy };

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} },
      applicationCredentials: [{ id: 'ac', secret: 'ac-secret' }],
    });
    // a CONNECT-only forward proxy that remembers where it tunnelled to
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req, client: net.Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
  });

  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    proxy.closeAllConnections();
    await new Promise<void>((r) => proxy.close(() => r()));
    await emulator.close();
  });

  it('goes through HTTP_PROXY, as the python client does', async () => {
    const session = new KeystoneSession({ authUrl: emulator.authUrl, interface: 'public', regionName: emulator.region, auth: { type: 'application_credential', id: 'ac', secret: 'ac-secret' }, source: 'test' });
    expect(await session.projectId()).toBe(emulator.projectId);
    expect(tunnels).toContain(new URL(emulator.url).host);
  });
});
