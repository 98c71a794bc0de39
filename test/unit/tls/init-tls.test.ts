import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { appFromCompose, intendedImportedDocument, intendedInitDocument, renderImportedConfig, renderInitConfig, type InitChoices } from '../../../src/plan/init-config.js';
import { translateCompose } from '../../../src/plan/compose-import.js';
import { tlsSettings } from '../../../src/plan/tls/certificates.js';
import { checkContactEmail, initTls } from '../../../src/plan/tls/init-tls.js';
import { renderedDifferences } from '../../../src/plan/yaml-render.js';

const template = readFileSync(new URL('../../../templates/depl.example.yaml', import.meta.url), 'utf8');
const zone = 'myproject.cloud.edu.au.';
const domain = 'crawler.myproject.cloud.edu.au';

/** The example crawler's depl.yaml as init renders it, checked to read back as intended, and parsed. */
function rendered(choices: InitChoices) {
  const text = renderInitConfig(template, choices);
  expect(renderedDifferences(text, intendedInitDocument(template, choices))).toEqual([]);
  return { text, config: parseConfig(text) };
}

describe('depl init writes a tls: section that says what HTTPS the domain gets', () => {
  it('the zero-config domain: ACME from Let\'s Encrypt by DNS-01 in the project\'s zone, no contact address, and a note saying so', () => {
    const chosen = initTls({ provider: 'openstack', domain, dnsZone: zone, off: false });
    expect(chosen.tls).toEqual({ mode: 'acme', challenge: 'dns-01' });
    expect(chosen.note).toBe(`tls: acme with Let's Encrypt, one wildcard certificate for ${domain} and *.${domain} at the first buildinst, proven by DNS-01 in ${zone} `
      + '(the zone depl keeps the domain\'s records in, so nothing has to answer on the domain first); no contact address for the account (optional in ACME, RFC 8555; '
      + 'Let\'s Encrypt issues without one): --tls-email adds one. --no-tls serves plain HTTP instead.');
    const { text, config } = rendered({ app: 'crawler', domain, provider: 'openstack', dnsZone: zone, tls: chosen.tls! });
    // the challenge is not written: it follows provider.dns, so removing that section turns it back to HTTP-01
    expect(config.tls).toEqual({ mode: 'acme', directory: 'letsencrypt' });
    expect(tlsSettings(config)).toMatchObject({ mode: 'acme', challenge: 'dns-01', directory: 'letsencrypt' });
    expect(text).toContain('\ntls:\n  mode: acme\n  directory: letsencrypt    # letsencrypt-staging while trying things out');
    expect(text).toContain('  # email: <your address>  # optional (RFC 8555)');
    expect(text).toContain('proven by DNS-01 in provider.dns.zone');
    // the section sits between the provider and ssh, each block separated by one blank line
    expect(text).toMatch(/\n {4}zone: myproject\.cloud\.edu\.au\.\n\n# HTTPS from the first `depl buildinst`[^]*\n {2}# email: [^\n]*\n\n# How depl reaches the nodes/);
  });

  it('a contact address given is written as one scalar; one at a domain reserved for examples is refused', () => {
    const chosen = initTls({ provider: 'openstack', domain, dnsZone: zone, off: false, email: 'ops+depl@uni.edu.au' });
    expect(chosen.tls).toEqual({ mode: 'acme', challenge: 'dns-01', email: 'ops+depl@uni.edu.au' });
    expect(chosen.note).toContain('; account contact ops+depl@uni.edu.au.');
    const { text, config } = rendered({ app: 'crawler', domain, provider: 'openstack', dnsZone: zone, tls: chosen.tls! });
    expect(config.tls).toEqual({ mode: 'acme', directory: 'letsencrypt', email: 'ops+depl@uni.edu.au' });
    expect(text).not.toContain('# email: <your address>');

    expect(checkContactEmail('ops+depl@uni.edu.au')).toEqual({ ok: true });
    expect(checkContactEmail('not an address')).toEqual({ ok: false, reason: 'is not an e-mail address' });
    for (const reserved of ['me@example.org', 'me@mail.example.com', 'me@lab.test', 'me@host.localhost']) {
      expect(checkContactEmail(reserved)).toMatchObject({ ok: false, reason: expect.stringContaining('reserved for examples') });
    }
  });

  it('a domain of the user\'s own on OpenStack: ACME by HTTP-01, once the names point at the cluster', () => {
    const chosen = initTls({ provider: 'openstack', domain: 'shop.uni.edu.au', off: false });
    expect(chosen.tls).toEqual({ mode: 'acme', challenge: 'http-01' });
    expect(chosen.note).toContain('proven by HTTP-01 through the edge once shop.uni.edu.au and *.shop.uni.edu.au point at the cluster');
    const { text, config } = rendered({ app: 'shop', domain: 'shop.uni.edu.au', provider: 'openstack', tls: chosen.tls! });
    expect(tlsSettings(config)).toMatchObject({ mode: 'acme', challenge: 'http-01' });
    expect(text).toContain('proven by HTTP-01 through the edge on port 80');
  });

  it('--no-tls writes mode: off on either provider; the local provider alone gets no section (its default is off)', () => {
    for (const provider of ['openstack', 'local'] as const) {
      const chosen = initTls({ provider, domain, dnsZone: zone, off: true });
      expect(chosen).toEqual({ tls: { mode: 'off' }, note: expect.stringContaining('tls: off (--no-tls)') });
      const { text, config } = rendered({ app: 'crawler', domain, provider, tls: chosen.tls! });
      expect(config.tls).toEqual({ mode: 'off' });
      expect(text).toContain('# HTTPS is off (depl init --no-tls)');
    }
    expect(initTls({ provider: 'local', domain: 'crawler.localhost', off: false })).toEqual({});
    const { text, config } = rendered({ app: 'crawler', domain: 'crawler.localhost', provider: 'local' });
    expect(config.tls).toBeUndefined();
    expect(text).not.toMatch(/^tls:/m);
    // no section leaves one blank line between the provider and ssh, as before
    expect(text).toContain('Docker installed by node-up\n\n# How depl reaches the nodes');
  });

  it('an imported Compose app gets the same section in its head', () => {
    const chosen = initTls({ provider: 'openstack', domain: 'hello.myproject.cloud.edu.au', dnsZone: zone, off: false, email: 'me@uni.edu.au' });
    const choices: InitChoices = { app: 'hello', domain: 'hello.myproject.cloud.edu.au', provider: 'openstack', dnsZone: zone, tls: chosen.tls! };
    const app = appFromCompose(translateCompose({ services: { web: { image: 'busybox', ports: ['8080:8080'] } } }));
    const text = renderImportedConfig(template, choices, app, 'compose.yaml');
    expect(renderedDifferences(text, intendedImportedDocument(template, choices, app))).toEqual([]);
    expect(parseConfig(text).tls).toEqual({ mode: 'acme', directory: 'letsencrypt', email: 'me@uni.edu.au' });
  });
});
