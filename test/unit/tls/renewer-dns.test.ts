import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { designateResponderWith } from '../../../src/apply/tls/responders.js';
import { resolveCloudCredentials } from '../../../src/config/clouds.js';
import { parseConfig } from '../../../src/config/load.js';
import { tlsSettings } from '../../../src/plan/tls/certificates.js';
import { renewerDnsCredential, type RenewerDnsCredential } from '../../../src/plan/tls/renewal.js';
import { forgetSecrets } from '../../../src/util/redact.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The renewal task's DNS-01 path, from the operator's clouds.yaml to a TXT record in Designate: buildinst
 * resolves tls.dnsCloud, keeps its application credential only (what goes into the task's swarm secret, as
 * JSON), and the task signs in with exactly that and answers the challenge (here against the emulator's
 * Keystone and Designate, in this process).
 */
describe('the renewal task answers DNS-01 with the application credential it was given', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  const domain = 'shop-dns.test';
  beforeAll(async () => {
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} },
      users: [{ name: 'alice', domain: 'Default', password: 'alice-pw' }],
      applicationCredentials: [{ id: 'dns-only', secret: 'dns-only-secret' }],
    });
    emulator.designate.addZone(`${domain}.`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-renewer-dns-'));
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: {
        dns: { auth_type: 'v3applicationcredential', auth: { auth_url: emulator.authUrl, application_credential_id: 'dns-only', application_credential_secret: 'dns-only-secret' }, region_name: emulator.region },
        person: { auth: { auth_url: emulator.authUrl, username: 'alice', password: 'alice-pw', project_name: emulator.projectName, user_domain_name: 'Default', project_domain_name: 'Default' }, region_name: emulator.region },
      },
    }));
  });
  afterAll(async () => {
    forgetSecrets();
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tls = (cloud: string) => tlsSettings(parseConfig(`app: shop\ndomain: ${domain}\nprovider: { type: local }\nservices: { web: { image: web, port: 80, http: true } }\ntls: { mode: acme, email: ops@example.org, challenge: dns-01, dnsCloud: ${cloud} }\n`));
  const given = async (cloud: string) => renewerDnsCredential(tls(cloud), await resolveCloudCredentials({ cloud, configRoot: dir, cwd: dir, home: dir, env: {}, interactive: false }), undefined);

  it('puts the TXT value on _acme-challenge.<domain> and takes it away again', async () => {
    const result = await given('dns');
    if (!('credential' in result)) throw new Error(`no credential: ${result.none}`);
    // what the task reads from its secret file
    const credential = JSON.parse(JSON.stringify(result.credential)) as RenewerDnsCredential;
    expect(Object.keys(credential).sort()).toEqual(['auth', 'authUrl', 'interface', 'regionName']);
    const responder = await designateResponderWith(credential);
    await responder.present(`*.${domain}`, 'token', 'key-authorization-1');
    await emulator.designate.settle();
    expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual(['"key-authorization-1"']);
    await responder.cleanup();
    await emulator.designate.settle();
    expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual([]);
  });

  it('a cloud that signs in with a password gives the task nothing', async () => {
    expect(await given('person')).toEqual({ none: 'tls.dnsCloud "person" signs in with a password, which stays on the operator\'s machine (give it an application credential)' });
  });

  it('a credential Keystone refuses fails the order naming Keystone, before any record is written', async () => {
    const responder = await designateResponderWith({ authUrl: emulator.authUrl, interface: 'public', regionName: emulator.region, auth: { type: 'application_credential', id: 'dns-only', secret: 'revoked' } });
    await expect(responder.present(domain, 'token', 'key-authorization-2')).rejects.toThrow(/Keystone|credential|401/i);
    expect(emulator.designate.records(`_acme-challenge.${domain}.`, 'TXT')).toEqual([]);
  });
});
