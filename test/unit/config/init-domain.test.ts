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

  it('one zone, no terminal: takes <app>.<zone> with a note, writes provider.dns.zone, and TLS becomes DNS-01 there', async () => {
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
    const first = await init(dir, { ask: async (q) => { asked.push(`${q.message} [${q.default}]`); return 'www.lab.example.org'; } });
    expect(asked).toEqual([expect.stringMatching(/^Domain \(the project has 2 DNS zones; myproject\.cloud\.edu\.au\. is the one named after the project "myproject"; others: lab\.example\.org\.; .*\) \[crawler\.myproject\.cloud\.edu\.au\]$/)]);
    expect(parseConfig(await readFile(first.file, 'utf8')).provider).toMatchObject({ dns: { zone: 'lab.example.org.' } });
    expect(first.domain).toBe('www.lab.example.org');

    const own = await init(dir, { force: true, ask: async () => 'crawler.my-university.edu' });
    const config = parseConfig(await readFile(own.file, 'utf8'));
    expect(config.domain).toBe('crawler.my-university.edu');
    expect(config.provider).not.toHaveProperty('dns');
    expect(own.dns).toBeUndefined();
    expect(tlsSettings(config)).toMatchObject({ challenge: 'http-01' });
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
