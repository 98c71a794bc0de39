import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import {
  describeRenewalRecord, nextCheckDelay, planRenewerService, renewalTimes, renewerMounts, renewerDnsCredential, RENEW_RETRY_MS, type RenewerSettings,
} from '../../../src/plan/tls/renewal.js';
import type { CloudCredentials } from '../../../src/config/clouds.js';
import { decideRenewals } from '../../../src/plan/tls/renewal-decision.js';
import { tlsSettings, type InstalledCertificate } from '../../../src/plan/tls/certificates.js';

const NOW = Date.parse('2026-11-30T00:00:00Z');
const DAY = 86_400_000;
const cert = (id: string, daysLeft: number): InstalledCertificate => ({ id, names: [id], notBefore: NOW - DAY, notAfter: NOW + daysLeft * DAY, issuer: 'CN=Pebble' });
const base = 'app: shop\ndomain: shop.example.org\nprovider: { type: local }\nservices: { web: { image: web, port: 80, http: true } }\n';
const http01 = { challenge: 'http-01' as const, renewBeforeMs: 30 * DAY, everyMs: 12 * 3_600_000 };

describe('the renewal task decides with time as input', () => {
  it('renews what has less than the threshold left, keeps the rest, and says why', () => {
    const decisions = decideRenewals([cert('app.test', 29.5), cert('v1.app.test', 30.5), cert('v2.app.test', -1)], NOW, http01);
    expect(decisions.map((d) => [d.id, d.action])).toEqual([['app.test', 'renew'], ['v1.app.test', 'keep'], ['v2.app.test', 'renew']]);
    expect(decisions[0]!.reason).toBe('29 days left, less than 30 days: renewing');
    expect(decisions[1]!.reason).toBe('30 days left: not due until 2026-11-30T12:00:00.000Z');
    expect(decisions[2]!.reason).toBe('expired 24 h ago, less than 30 days: renewing');
  });

  it('the same certificate is kept one millisecond before the threshold and renewed at it', () => {
    const c = cert('app.test', 30);
    expect(decideRenewals([c], NOW - 1, http01)[0]!.action).toBe('keep');
    expect(decideRenewals([c], NOW + 1, http01)[0]!.action).toBe('renew');
  });

  it('short-lived certificates (tests, Pebble) with a threshold in seconds', () => {
    const shortLived = { ...http01, renewBeforeMs: 40_000 };
    const c: InstalledCertificate = { id: 'app.test', names: ['app.test'], notBefore: NOW, notAfter: NOW + 60_000, issuer: 'x' };
    expect(decideRenewals([c], NOW + 19_000, shortLived)[0]!.action).toBe('keep');
    expect(decideRenewals([c], NOW + 21_000, shortLived)[0]).toMatchObject({ action: 'renew', reason: '39 s left, less than 40 s: renewing' });
  });

  it('leaves tls: files and dns-01 certificates to others, flagging them when due', () => {
    const [files] = decideRenewals([cert('files', 10)], NOW, http01);
    expect(files).toMatchObject({ action: 'skip' });
    expect(files!.reason).toMatch(/renewed by whoever issued it \(DUE: replace the files/);
    const [wildcard] = decideRenewals([{ ...cert('wildcard.app.test', 90), names: ['app.test', '*.app.test'] }], NOW, { ...http01, challenge: 'dns-01' });
    expect(wildcard).toMatchObject({ action: 'skip' });
    expect(wildcard!.reason).not.toMatch(/DUE/);
    const [dueWildcard] = decideRenewals([{ ...cert('wildcard.app.test', 10), names: ['app.test', '*.app.test'] }], NOW, { ...http01, challenge: 'dns-01' });
    expect(dueWildcard).toMatchObject({ action: 'skip' });
    expect(dueWildcard!.reason).toBe("10 days left; the renewal task renews DNS-01 wildcards only with an application credential in tls.dnsCloud (a password stays on the operator's machine) (DUE: run depl tls renew)");
  });

  it('renews a due DNS-01 wildcard itself when it was given a DNS credential, and keeps one not due', () => {
    const withDns = { ...http01, challenge: 'dns-01' as const, dnsCredentialFile: '/run/secrets/depl-tls-renewer-dns' };
    const wildcard = (days: number) => ({ ...cert('wildcard.app.test', days), names: ['app.test', '*.app.test'] });
    expect(decideRenewals([wildcard(10)], NOW, withDns)[0]).toMatchObject({ action: 'renew', reason: '10 days left, less than 30 days: renewing' });
    expect(decideRenewals([wildcard(90)], NOW, withDns)[0]).toMatchObject({ action: 'keep' });
    // it wakes when the wildcard becomes due, as for HTTP-01
    expect(nextCheckDelay([wildcard(30.25)], NOW, { ...withDns, everyMs: 30 * DAY }, 'ok')).toBe(DAY / 4);
  });

  it('is given tls.dnsCloud\'s application credential only: never a password, never the provider\'s cloud', () => {
    const tls = (dnsCloud: string) => tlsSettings(parseConfig(`${base}tls: { mode: acme, email: ops@example.org, challenge: dns-01, dnsCloud: ${dnsCloud} }\n`));
    const appCredential: CloudCredentials = {
      authUrl: 'https://keystone.test:5000/v3', regionName: 'Melbourne', interface: 'public', caCertFile: '/home/me/ca.pem', source: 'cloud "dns" in /home/me/clouds.yaml',
      auth: { type: 'application_credential', id: 'ac-1', secret: 'ac-secret' },
    };
    expect(renewerDnsCredential(tls('dns'), appCredential, '-----BEGIN CERTIFICATE-----\n')).toEqual({
      credential: { authUrl: 'https://keystone.test:5000/v3', regionName: 'Melbourne', interface: 'public', auth: { type: 'application_credential', id: 'ac-1', secret: 'ac-secret' }, caCert: '-----BEGIN CERTIFICATE-----\n' },
    });
    const password: CloudCredentials = { ...appCredential, auth: { type: 'password', username: 'alice', password: 'pw', projectName: 'p' } };
    expect(renewerDnsCredential(tls('dns'), password, undefined)).toEqual({ none: 'tls.dnsCloud "dns" signs in with a password, which stays on the operator\'s machine (give it an application credential)' });
    // the provider's cloud (openstack) answers DNS-01 for the operator, but is not handed to the task
    const { dnsCloud: _named, ...providerCloud } = tls('dns') as Extract<ReturnType<typeof tls>, { mode: 'acme' }>;
    expect(renewerDnsCredential(providerCloud, appCredential, undefined)).toMatchObject({ none: expect.stringMatching(/^tls\.dnsCloud is not set/) });
  });

  it('wakes when a certificate it does not renew expires, to take it out of the edge (and when one becomes valid)', () => {
    const hours = (h: number) => h * 3_600_000;
    const files = { ...cert('files', 0), notAfter: NOW + hours(2) };
    expect(nextCheckDelay([files], NOW, http01, 'ok')).toBe(hours(2));
    const wildcard = { ...cert('wildcard.app.test', 0), notAfter: NOW + hours(3) };
    expect(nextCheckDelay([wildcard], NOW, { ...http01, challenge: 'dns-01' }, 'ok')).toBe(hours(3));
    const early = { ...cert('a', 90), notBefore: NOW + hours(1) };
    expect(nextCheckDelay([early], NOW, http01, 'ok')).toBe(hours(1));
    // expired already: nothing ahead changes what is served, the interval holds
    expect(nextCheckDelay([{ ...cert('files', 0), notAfter: NOW - 1 }], NOW, http01, 'ok')).toBe(http01.everyMs);
  });

  it('sleeps until the first certificate becomes due, at most its interval, and retries soon after a failure', () => {
    expect(nextCheckDelay([cert('a', 90)], NOW, http01, 'ok')).toBe(http01.everyMs);
    expect(nextCheckDelay([cert('a', 30.25)], NOW, http01, 'ok')).toBe(6 * 3_600_000);
    expect(nextCheckDelay([cert('a', 90)], NOW, http01, 'failed')).toBe(RENEW_RETRY_MS);
    expect(nextCheckDelay([cert('a', 90)], NOW, http01, 'locked')).toBe(RENEW_RETRY_MS);
    // a certificate that is due and could not be renewed does not make the task spin
    expect(nextCheckDelay([cert('a', 1)], NOW, http01, 'failed')).toBe(RENEW_RETRY_MS);
    expect(nextCheckDelay([], NOW, http01, 'ok')).toBe(http01.everyMs);
    expect(nextCheckDelay([{ ...cert('a', 0), notAfter: NOW + 30 * DAY + 10 }], NOW, http01, 'ok')).toBe(1_000);
    // a short renewal window retries sooner: a quarter of it
    expect(nextCheckDelay([], NOW, { ...http01, renewBeforeMs: 90_000 }, 'locked')).toBe(22_500);
  });
});

describe('renewal settings and the task as data', () => {

  it('tls.renewBefore and tls.renewEvery default to 30 days and 12 hours, and are validated', () => {
    expect(renewalTimes(tlsSettings(parseConfig(`${base}tls: { mode: acme }\n`)))).toEqual({ renewBeforeMs: 30 * DAY, everyMs: 12 * 3_600_000 });
    expect(renewalTimes(tlsSettings(parseConfig(`${base}tls: { mode: acme, renewBefore: 40s, renewEvery: 5s }\n`)))).toEqual({ renewBeforeMs: 40_000, everyMs: 5_000 });
    expect(() => parseConfig(`${base}tls: { mode: acme, renewBefore: soon }\n`)).toThrow(/tls\.renewBefore: expected a duration like 30d/);
  });

  const settings: RenewerSettings = {
    app: 'shop', domain: 'shop.example.org', directory: 'https://acme.test/dir', challenge: 'http-01', renewBeforeMs: 30 * DAY, everyMs: 3_600_000, edgeUrl: 'http://10.0.0.5:80',
  };

  it('the service runs beside the edge with only the folders it writes and its code read-only, without the Docker socket, and carries no key', () => {
    const spec = planRenewerService({ settings, image: 'node:20-bookworm-slim', script: '/var/lib/depl/shop/renewer/renewer-abc.mjs', scriptHash: 'abc' });
    expect(spec.Name).toBe('shop-tls-renewer');
    expect(spec.Labels).toMatchObject({ 'depl.app': 'shop', 'depl.role': 'tls-renewer', 'depl.renewer.script': 'abc' });
    expect(spec.Labels['depl.version']).toBeUndefined();
    expect(spec.TaskTemplate.ContainerSpec.Command).toEqual(['node', '/var/lib/depl/shop/renewer/renewer-abc.mjs']);
    expect(spec.TaskTemplate.ContainerSpec.Mounts).toEqual(renewerMounts('shop'));
    // and nothing else of the manager: its own files are read-only too
    expect(spec.TaskTemplate.ContainerSpec.ReadOnly).toBe(true);
    // no Docker socket anywhere in it: nginx is reached through the engine gate's socket in its state folder
    expect(JSON.stringify(spec)).not.toMatch(/docker\.sock/);
    expect(spec.TaskTemplate.Placement?.Constraints).toEqual(['node.labels.depl.edge==true']);
    expect(spec.TaskTemplate.ContainerSpec.Secrets).toBeUndefined();
    expect(spec.TaskTemplate.ContainerSpec.Configs).toBeUndefined();
    expect(JSON.parse(spec.TaskTemplate.ContainerSpec.Env![0]!.replace(/^DEPL_RENEWER=/, ''))).toEqual(settings);
    expect(JSON.stringify(spec)).not.toMatch(/PRIVATE KEY/);
  });

  it('the DNS-01 credential reaches the task as a swarm secret only it mounts, readable by root, never in its environment', () => {
    const dnsSettings: RenewerSettings = { ...settings, challenge: 'dns-01' };
    const spec = planRenewerService({ settings: dnsSettings, image: 'node:20-bookworm-slim', script: '/s.mjs', scriptHash: 'abc', dnsSecret: { id: 'sec1', name: 'shop-depl-tls-renewer-dns-0123456789ab' } });
    expect(spec.TaskTemplate.ContainerSpec.Secrets).toEqual([
      { File: { Name: '/run/secrets/depl-tls-renewer-dns', UID: '0', GID: '0', Mode: 0o400 }, SecretID: 'sec1', SecretName: 'shop-depl-tls-renewer-dns-0123456789ab' },
    ]);
    expect(JSON.parse(spec.TaskTemplate.ContainerSpec.Env![0]!.replace(/^DEPL_RENEWER=/, ''))).toEqual({ ...dnsSettings, dnsCredentialFile: '/run/secrets/depl-tls-renewer-dns' });
    // a file named in the settings without the secret mounted is not believed: the task would renew nothing
    const without = planRenewerService({ settings: { ...dnsSettings, dnsCredentialFile: '/elsewhere' }, image: 'i', script: '/s.mjs', scriptHash: 'abc' });
    expect(JSON.parse(without.TaskTemplate.ContainerSpec.Env![0]!.replace(/^DEPL_RENEWER=/, ''))).not.toHaveProperty('dnsCredentialFile');
  });

  it('status says what the last round did', () => {
    expect(describeRenewalRecord(null, false)).toMatch(/^renewal task: not installed/);
    const record = { at: '2026-11-30T00:00:00.000Z', outcome: 'renewed' as const, renewed: ['shop.example.org'], failed: [], decisions: [], next: '2026-11-30T12:00:00.000Z' };
    expect(describeRenewalRecord(record, true)).toBe('renewal task: running; last round 2026-11-30T00:00:00.000Z: renewed shop.example.org; next 2026-11-30T12:00:00.000Z');
    expect(describeRenewalRecord({ ...record, outcome: 'failed', renewed: [], failed: [{ id: 'v1.shop.example.org', reason: 'rejected' }] }, false))
      .toBe('renewal task: NOT RUNNING; last round 2026-11-30T00:00:00.000Z: FAILED for v1.shop.example.org (rejected); next 2026-11-30T12:00:00.000Z');
  });
});
