import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { tlsSettings } from '../../../src/plan/tls/certificates.js';
import { initConfig } from '../../../src/workflows/init.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * `depl init --provider openstack` without --domain: the domain comes from the project's Designate zone, asked
 * through the cloud depl.yaml names (clouds.yaml's "nectar", here pointing at the emulator).
 */
describe('depl init proposes <app>.<the project\'s zone> for the openstack provider', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const step of cleanup) await step();
  });

  async function project(zones: string[]): Promise<{ dir: string; emulator: OpenStackEmulator }> {
    const emulator = await startOpenStackEmulator({ servers: { createServer: async () => ({ address: '10.0.0.1' }), deleteServer: async () => {} }, projectName: 'myproject' });
    for (const zone of zones) emulator.designate.addZone(zone);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-domain-'));
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: { nectar: { auth: { auth_url: emulator.authUrl, username: 'demo', password: 'demo-password', project_name: 'myproject', user_domain_name: 'Default', project_domain_name: 'Default' }, region_name: emulator.region } },
    }));
    cleanup.push(async () => { await emulator.close(); await rm(dir, { recursive: true, force: true }); });
    return { dir, emulator };
  }
  const init = (dir: string, extra: Partial<Parameters<typeof initConfig>[0]> = {}) =>
    initConfig({ provider: 'openstack', example: 'crawler', force: false, env: {}, file: path.join(dir, 'depl.yaml'), ...extra });

  it('one zone, no terminal: takes <app>.<zone> with a note, writes provider.dns.zone and tls: acme, DNS-01 there, with no contact address', async () => {
    const { dir } = await project(['myproject.cloud.edu.au.']);
    const result = await init(dir);
    expect(result.domain).toBe('crawler.myproject.cloud.edu.au');
    expect(result.dns).toEqual({ zone: 'myproject.cloud.edu.au.', note: expect.stringContaining('the project\'s DNS zone is myproject.cloud.edu.au.') });
    expect(result.dns?.note).toContain('Pass --domain to use a name of your own');
    const text = await readFile(result.file, 'utf8');
    const config = parseConfig(text);
    expect(config.domain).toBe('crawler.myproject.cloud.edu.au');
    expect(config.provider).toMatchObject({ type: 'openstack', cloud: 'nectar', dns: { zone: 'myproject.cloud.edu.au.' } });
    expect(tlsSettings(config)).toMatchObject({ mode: 'acme', challenge: 'dns-01' });
    expect(text).toContain('node-up points <domain> and *.<domain>');
    // HTTPS from the first buildinst, written down rather than left to a default, and said in init's output
    expect(config.tls).toEqual({ mode: 'acme', directory: 'letsencrypt' });
    expect(result.tls).toEqual({ mode: 'acme', challenge: 'dns-01', note: expect.stringMatching(/^tls: acme with Let's Encrypt, one wildcard certificate for crawler\.myproject\.cloud\.edu\.au and \*\.crawler\.myproject\.cloud\.edu\.au at the first buildinst, proven by DNS-01 in myproject\.cloud\.edu\.au\. .*no contact address/) });
  });

  it('several zones: the one named after the project, the others named in the note', async () => {
    const { dir } = await project(['lab.example.org.', 'myproject.cloud.edu.au.']);
    const result = await init(dir, { app: 'gallery' });
    expect(result.domain).toBe('gallery.myproject.cloud.edu.au');
    expect(result.dns?.note).toContain('the project has 2 DNS zones; myproject.cloud.edu.au. is the one named after the project "myproject"');
    expect(result.dns?.note).toContain('also in the project: lab.example.org.');
  });

  it('on a terminal: asks with the proposal as default; a typed name in another of the zones is kept there, a name of one\'s own is not kept', async () => {
    const { dir } = await project(['lab.example.org.', 'myproject.cloud.edu.au.']);
    const asked: string[] = [];
    const first = await init(dir, { ask: async (q) => { asked.push(`${q.message} [${q.default}]`); return q.message.startsWith('Domain') ? 'www.lab.example.org' : ''; } });
    expect(asked).toEqual([
      expect.stringMatching(/^Domain \(the project has 2 DNS zones; myproject\.cloud\.edu\.au\. is the one named after the project "myproject"; others: lab\.example\.org\.; .*\) \[crawler\.myproject\.cloud\.edu\.au\]$/),
      // then the ACME account's contact: Enter leaves it out
      'Contact e-mail for the Let\'s Encrypt account (optional: Enter for none) []',
    ]);
    expect(parseConfig(await readFile(first.file, 'utf8'))).toMatchObject({ provider: { dns: { zone: 'lab.example.org.' } }, tls: { mode: 'acme' } });
    expect(parseConfig(await readFile(first.file, 'utf8')).tls).not.toHaveProperty('email');
    expect(first.domain).toBe('www.lab.example.org');

    const own = await init(dir, { force: true, ask: async (q) => (q.message.startsWith('Domain') ? 'crawler.my-university.edu' : ' ops@my-university.edu ') });
    const config = parseConfig(await readFile(own.file, 'utf8'));
    expect(config.domain).toBe('crawler.my-university.edu');
    expect(config.provider).not.toHaveProperty('dns');
    expect(own.dns).toBeUndefined();
    expect(config.tls).toEqual({ mode: 'acme', directory: 'letsencrypt', email: 'ops@my-university.edu' });
    expect(tlsSettings(config)).toMatchObject({ challenge: 'http-01' });
    expect(own.tls?.note).toContain('proven by HTTP-01 through the edge once crawler.my-university.edu and *.crawler.my-university.edu point at the cluster; account contact ops@my-university.edu.');
  });

  it('the contact question refuses an address Let\'s Encrypt would refuse, and takes an empty answer', async () => {
    const { dir } = await project(['myproject.cloud.edu.au.']);
    const checks: Array<true | string> = [];
    await init(dir, { ask: async (q) => {
      if (q.message.startsWith('Contact')) checks.push(q.validate('me@example.org'), q.validate('nonsense'), q.validate(''), q.validate('me@uni.edu.au'));
      return q.default;
    } });
    expect(checks).toEqual([expect.stringContaining('reserved for examples'), 'the address is not an e-mail address', true, true]);
  });

  it('--no-tls writes tls: { mode: off }; --tls-email writes the contact without asking', async () => {
    const { dir } = await project(['myproject.cloud.edu.au.']);
    const off = await init(dir, { noTls: true, ask: async (q) => q.default });
    expect(parseConfig(await readFile(off.file, 'utf8')).tls).toEqual({ mode: 'off' });
    expect(off.tls).toEqual({ mode: 'off', note: expect.stringContaining('tls: off (--no-tls)') });

    const asked: string[] = [];
    const given = await init(dir, { force: true, tlsEmail: 'ops@uni.edu.au', ask: async (q) => { asked.push(q.message); return q.default; } });
    expect(asked).toEqual([expect.stringMatching(/^Domain /)]);
    expect(parseConfig(await readFile(given.file, 'utf8')).tls).toEqual({ mode: 'acme', directory: 'letsencrypt', email: 'ops@uni.edu.au' });
  });

  it('--tls-email with --no-tls, on the local provider, or at a reserved domain: refused (exit 2) before any cloud is asked, nothing written', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-domain-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    // no clouds.yaml: a refusal about the flags comes first
    const env = { OS_CLIENT_CONFIG_FILE: path.join(dir, 'missing-clouds.yaml') };
    await expect(init(dir, { env, noTls: true, tlsEmail: 'ops@uni.edu.au' })).rejects.toMatchObject({ code: 'INIT_USAGE', message: '--tls-email and --no-tls exclude each other' });
    await expect(init(dir, { env, provider: 'local', tlsEmail: 'ops@uni.edu.au' })).rejects.toMatchObject({ code: 'INIT_USAGE', message: expect.stringContaining('local provider') });
    const reserved = await init(dir, { env, tlsEmail: 'you@example.org' }).catch((e: unknown) => e);
    expect(reserved).toBeInstanceOf(UserError);
    expect(reserved).toMatchObject({ code: 'INIT_TLS_EMAIL', message: '--tls-email "you@example.org" is at example.org, a domain reserved for examples that receives no mail (Let\'s Encrypt refuses it)' });
    await expect(init(dir, { env, tlsEmail: 'nonsense' })).rejects.toMatchObject({ code: 'INIT_TLS_EMAIL', message: '--tls-email "nonsense" is not an e-mail address' });
    await expect(stat(path.join(dir, 'depl.yaml'))).rejects.toThrow();
  });

  it('several zones none named after the project, or no zone, without a terminal: refused (exit 2) and nothing written', async () => {
    const ambiguous = await project(['a.example.org.', 'b.example.org.']);
    const error = await init(ambiguous.dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'INIT_DOMAIN_ZONE', message: 'depl init cannot choose a domain: the project has 2 DNS zones (a.example.org., b.example.org.) and none is named after the project "myproject"' });
    expect((error as UserError).hint).toContain('--domain crawler.<zone>');
    await expect(stat(path.join(ambiguous.dir, 'depl.yaml'))).rejects.toThrow();

    const none = await project([]);
    await expect(init(none.dir)).rejects.toMatchObject({ code: 'INIT_DOMAIN_ZONE', message: 'depl init cannot propose a domain: the project has no DNS zone in Designate' });
    await expect(stat(path.join(none.dir, 'depl.yaml'))).rejects.toThrow();
  });

  it('no cloud to ask: refused with the credentials\' own hint and --domain; --domain asks no cloud at all', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'depl-init-domain-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const error = await init(dir, { env: { OS_CLIENT_CONFIG_FILE: path.join(dir, 'missing-clouds.yaml') } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INIT_DOMAIN_ZONE' });
    expect((error as UserError).message).toContain('could not ask Designate');
    expect((error as UserError).hint).toContain('Or pass --domain');
    const given = await init(dir, { domain: 'crawler.example.org', env: { OS_CLIENT_CONFIG_FILE: path.join(dir, 'missing-clouds.yaml') } });
    expect(parseConfig(await readFile(given.file, 'utf8')).provider).not.toHaveProperty('dns');
  });
});
