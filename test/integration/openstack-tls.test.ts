import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { dispatcherFor } from '../../src/apply/openstack/http.js';
import { KeystoneSession } from '../../src/apply/openstack/keystone.js';
import { resolveCloudCredentials } from '../../src/config/clouds.js';
import { OperationError } from '../../src/errors.js';
import { createLogger } from '../../src/util/log.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../support/openstack-emulator/index.js';

/** A cloud whose certificate comes from its own CA: trusted through clouds.yaml's cacert, refused without. */
describe('OpenStack over HTTPS with a private CA', () => {
  let emulator: OpenStackEmulator;
  let terminator: tls.Server;
  let dir: string;
  let authUrl: string;

  beforeAll(async () => {
    await ensureDebianPackages(['openssl'], createLogger());
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-tls-'));
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'ca.pem')]);
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} },
      applicationCredentials: [{ id: 'ac', secret: 'ac-secret' }],
    });
    // TLS in front of the emulator's plain HTTP, as a cloud's load balancer would be
    const port = Number(new URL(emulator.url).port);
    terminator = tls.createServer({ key: await readFile(path.join(dir, 'key.pem')), cert: await readFile(path.join(dir, 'ca.pem')) }, (socket) => {
      const upstream = net.connect(port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((r) => terminator.listen(0, '127.0.0.1', () => r()));
    authUrl = `https://127.0.0.1:${(terminator.address() as AddressInfo).port}/identity/v3`;
  });

  afterAll(async () => {
    await new Promise<void>((r) => terminator?.close(() => r()));
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function sessionFrom(cloud: Record<string, unknown>): Promise<KeystoneSession> {
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({ clouds: { tls: { auth_type: 'v3applicationcredential', auth: { auth_url: authUrl, application_credential_id: 'ac', application_credential_secret: 'ac-secret' }, ...cloud } } }));
    const credentials = await resolveCloudCredentials({ cloud: 'tls', env: {}, cwd: dir, home: dir, interactive: false });
    return new KeystoneSession(credentials, { dispatcher: await dispatcherFor(credentials, {}) });
  }

  it('refuses the unknown CA, saying how to trust it', async () => {
    const error = await (await sessionFrom({})).token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).hint).toContain('cacert');
  });

  it('trusts the CA named by cacert in clouds.yaml', async () => {
    expect(await (await sessionFrom({ cacert: path.join(dir, 'ca.pem') })).projectId()).toBe(emulator.projectId);
  });

  it('skips verification with verify: false', async () => {
    expect(await (await sessionFrom({ verify: false })).projectId()).toBe(emulator.projectId);
  });
});
