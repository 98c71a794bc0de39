import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import {
  describeRenewalRecord, nextCheckDelay, planRenewerService, renewalTimes, RENEW_RETRY_MS, type RenewerSettings,
} from '../../../src/plan/tls/renewal.js';
import { decideRenewals } from '../../../src/plan/tls/renewal-decision.js';
import { tlsSettings, type InstalledCertificate } from '../../../src/plan/tls/certificates.js';

const NOW = Date.parse('2026-11-30T00:00:00Z');
const DAY = 86_400_000;
const cert = (id: string, daysLeft: number): InstalledCertificate => ({ id, names: [id], notBefore: NOW - DAY, notAfter: NOW + daysLeft * DAY, issuer: 'CN=Pebble' });
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
    expect(dueWildcard!.reason).toBe("10 days left; the renewal task cannot renew DNS-01 wildcards: the cloud credentials stay on the operator's machine (DUE: run depl tls renew)");
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
  const base = 'app: shop\ndomain: shop.example.org\nprovider: { type: local }\nservices: { web: { image: web, port: 80, http: true } }\n';

  it('tls.renewBefore and tls.renewEvery default to 30 days and 12 hours, and are validated', () => {
    expect(renewalTimes(tlsSettings(parseConfig(`${base}tls: { mode: acme }\n`)))).toEqual({ renewBeforeMs: 30 * DAY, everyMs: 12 * 3_600_000 });
    expect(renewalTimes(tlsSettings(parseConfig(`${base}tls: { mode: acme, renewBefore: 40s, renewEvery: 5s }\n`)))).toEqual({ renewBeforeMs: 40_000, everyMs: 5_000 });
    expect(() => parseConfig(`${base}tls: { mode: acme, renewBefore: soon }\n`)).toThrow(/tls\.renewBefore: expected a duration like 30d/);
  });

  const settings: RenewerSettings = {
    app: 'shop', domain: 'shop.example.org', directory: 'https://acme.test/dir', challenge: 'http-01', renewBeforeMs: 30 * DAY, everyMs: 3_600_000, edgeUrl: 'http://10.0.0.5:80',
  };

  it('the service runs beside the edge with the state folder, its own code read-only and the Docker socket, and carries no key', () => {
    const spec = planRenewerService({ settings, image: 'node:20-bookworm-slim', script: '/var/lib/depl/shop/renewer/renewer-abc.mjs', scriptHash: 'abc' });
    expect(spec.Name).toBe('shop-tls-renewer');
    expect(spec.Labels).toMatchObject({ 'depl.app': 'shop', 'depl.role': 'tls-renewer', 'depl.renewer.script': 'abc' });
    expect(spec.Labels['depl.version']).toBeUndefined();
    expect(spec.TaskTemplate.ContainerSpec.Command).toEqual(['node', '/var/lib/depl/shop/renewer/renewer-abc.mjs']);
    expect(spec.TaskTemplate.ContainerSpec.Mounts).toEqual([
      { Type: 'bind', Source: '/var/lib/depl/shop', Target: '/var/lib/depl/shop' },
      // its own code read-only, over the writable state folder
      { Type: 'bind', Source: '/var/lib/depl/shop/renewer/renewer-abc.mjs', Target: '/var/lib/depl/shop/renewer/renewer-abc.mjs', ReadOnly: true },
      { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' },
    ]);
    expect(spec.TaskTemplate.Placement?.Constraints).toEqual(['node.labels.depl.edge==true']);
    expect(spec.TaskTemplate.ContainerSpec.Secrets).toBeUndefined();
    expect(spec.TaskTemplate.ContainerSpec.Configs).toBeUndefined();
    expect(JSON.parse(spec.TaskTemplate.ContainerSpec.Env![0]!.replace(/^DEPL_RENEWER=/, ''))).toEqual(settings);
    expect(JSON.stringify(spec)).not.toMatch(/PRIVATE KEY/);
  });

  it('status says what the last round did', () => {
    expect(describeRenewalRecord(null, false)).toMatch(/^renewal task: not installed/);
    const record = { at: '2026-11-30T00:00:00.000Z', outcome: 'renewed' as const, renewed: ['shop.example.org'], failed: [], decisions: [], next: '2026-11-30T12:00:00.000Z' };
    expect(describeRenewalRecord(record, true)).toBe('renewal task: running; last round 2026-11-30T00:00:00.000Z: renewed shop.example.org; next 2026-11-30T12:00:00.000Z');
    expect(describeRenewalRecord({ ...record, outcome: 'failed', renewed: [], failed: [{ id: 'v1.shop.example.org', reason: 'rejected' }] }, false))
      .toBe('renewal task: NOT RUNNING; last round 2026-11-30T00:00:00.000Z: FAILED for v1.shop.example.org (rejected); next 2026-11-30T12:00:00.000Z');
  });
});
