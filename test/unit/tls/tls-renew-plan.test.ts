import { describe, expect, it } from 'vitest';
import type { TlsConfig } from '../../../src/config/schema.js';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import type { InstalledCertificate } from '../../../src/plan/tls/certificates.js';
import { planTlsRenew, type TlsRenewInput } from '../../../src/plan/tls/renew-plan.js';

const NOW = Date.parse('2026-11-30T00:00:00Z');
const DAY = 86_400_000;
const cert = (id: string, daysLeft: number, names = [id]): InstalledCertificate => ({ id, names, notBefore: NOW - 60 * DAY, notAfter: NOW + daysLeft * DAY, issuer: 'CN=test' });
const acme: TlsConfig = { mode: 'acme', directory: 'letsencrypt', challenge: 'http-01' };
const base: TlsRenewInput = { command: 'depl tls renew', tls: acme, domain: 'a.org', renewBeforeMs: 30 * DAY, versions: ['v1', 'v2'], installed: [], edgeStale: false, now: NOW, renewer: 'operator' };

describe('depl tls renew, planned as data', () => {
  it('issues what is missing, renews what is due, removes what no host needs, then gives the edge the result', () => {
    const plan = planTlsRenew({ ...base, installed: [cert('a.org', 10), cert('v1.a.org', 45), cert('v0.a.org', 80)] });
    expect(plan).toEqual({
      command: 'depl tls renew',
      notes: ['v1.a.org: 45 days left: not due until 2026-12-15T00:00:00.000Z'],
      steps: [
        { kind: 'issue-certificate', id: 'v2.a.org', names: ['v2.a.org'], describe: 'issue a certificate for v2.a.org (the store has none that covers it)' },
        { kind: 'renew-certificate', id: 'a.org', names: ['a.org'], describe: 'renew the certificate for a.org (10 days left, less than 30 days)' },
        { kind: 'remove-certificate', id: 'v0.a.org', describe: 'remove the certificate v0.a.org (no routed version\'s host needs it)' },
        { kind: 'update-edge', describe: 'give the edge the certificates valid then and reload it gracefully (the routing stays)' },
      ],
    });
    expect(renderPlanText(plan)).toBe([
      'Plan for depl tls renew:',
      '  v1.a.org: 45 days left: not due until 2026-12-15T00:00:00.000Z',
      '  1. issue a certificate for v2.a.org (the store has none that covers it)',
      '  2. renew the certificate for a.org (10 days left, less than 30 days)',
      '  3. remove the certificate v0.a.org (no routed version\'s host needs it)',
      '  4. give the edge the certificates valid then and reload it gracefully (the routing stays)',
      '',
    ].join('\n'));
  });

  it('nothing due and the edge current: no step; --force renews every certificate present', () => {
    const installed = [cert('a.org', 60), cert('v1.a.org', 60), cert('v2.a.org', 60)];
    const idle = planTlsRenew({ ...base, installed });
    expect(idle.steps).toEqual([]);
    expect(idle.notes.at(-1)).toBe('every certificate has more than 30 days left: nothing to renew');
    const forced = planTlsRenew({ ...base, installed, force: true });
    expect(forced.steps.map((s) => [s.kind, 'id' in s ? s.id : null])).toEqual([
      ['renew-certificate', 'a.org'], ['renew-certificate', 'v1.a.org'], ['renew-certificate', 'v2.a.org'], ['update-edge', null],
    ]);
    expect(forced.steps[0]!.describe).toBe('renew the certificate for a.org (60 days left; renewing anyway (--force))');
  });

  it('an expired certificate renewed; one that is valid but left out of the edge only updates the edge', () => {
    const expired = planTlsRenew({ ...base, versions: [], installed: [cert('a.org', -1)] });
    expect(expired.notes).toEqual([`a.org: certificate EXPIRED ${new Date(NOW - DAY).toISOString()}; not served: plain HTTP until it is renewed`]);
    expect(expired.steps.map((s) => s.kind)).toEqual(['renew-certificate', 'update-edge']);
    const stale = planTlsRenew({ ...base, versions: [], installed: [cert('a.org', 60)], edgeStale: true });
    expect(stale.steps.map((s) => s.kind)).toEqual(['update-edge']);
  });

  it('dns-01: one wildcard; the operator renews it, the renewal task leaves it (the decision is the same function)', () => {
    const dns: TlsConfig = { ...acme, challenge: 'dns-01' } as TlsConfig;
    const wildcard = cert('wildcard.a.org', 10, ['a.org', '*.a.org']);
    expect(planTlsRenew({ ...base, tls: dns, installed: [wildcard] }).steps.map((s) => s.kind)).toEqual(['renew-certificate', 'update-edge']);
    const task = planTlsRenew({ ...base, tls: dns, versions: 'installed', installed: [wildcard], renewer: 'task', command: 'tls renewal task' });
    expect(task.steps).toEqual([]);
    expect(task.notes[0]).toBe("a.org, *.a.org: 10 days left; the renewal task renews DNS-01 wildcards only with an application credential in tls.dnsCloud (a password stays on the operator's machine) (DUE: run depl tls renew)");
  });

  it('the renewal task renews only what the store holds: it issues and removes nothing', () => {
    const plan = planTlsRenew({ ...base, versions: 'installed', installed: [cert('a.org', 10), cert('v0.a.org', 80)], renewer: 'task' });
    expect(plan.steps.map((s) => [s.kind, 'id' in s ? s.id : null])).toEqual([['renew-certificate', 'a.org'], ['update-edge', null]]);
  });

  it('tls: files: the store gets the files when they differ, and nothing is ordered from a CA', () => {
    const files: TlsConfig = { mode: 'files', cert: 'c.pem', key: 'k.pem' };
    expect(planTlsRenew({ ...base, tls: files, installed: [cert('files', 100, ['a.org', '*.a.org'])], filesDiffer: true }).steps).toEqual([
      { kind: 'install-files-certificate', id: 'files', describe: 'put the certificate and key of tls: files in the store' },
      { kind: 'update-edge', describe: 'give the edge the certificates valid then and reload it gracefully (the routing stays)' },
    ]);
    expect(planTlsRenew({ ...base, tls: files, installed: [cert('files', 100)], filesDiffer: false })).toMatchObject({ steps: [], notes: ['the store holds the certificate of tls: files as it is'] });
  });
});
