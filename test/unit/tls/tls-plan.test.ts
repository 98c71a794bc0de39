import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { describeCertificates, readCertificateFiles } from '../../../src/workflows/tls/certificates.js';
import {
  ACME_DIRECTORIES,
  certificateCovers,
  certificatesForHosts,
  certificatesServedAt,
  challengeFileName,
  daysLeft,
  directoryUrl,
  describeWithheld,
  dnsChallengeRecord,
  inspectCertificatePair,
  nextServingChange,
  tlsSettings,
  wantedCertificates,
  type InstalledCertificate,
} from '../../../src/plan/tls/certificates.js';
import { planCertificates, renewalDue } from '../../../src/plan/tls/renewal-decision.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-30T00:00:00Z');

const base = `
app: crawler
domain: crawler.example.org
services:
  api: { image: api:1, port: 8000, http: true }
`;

function problems(text: string): string {
  try {
    parseConfig(text);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('tls: in depl.yaml', () => {
  it('is off by default for the local provider and ACME with Let\'s Encrypt for OpenStack', () => {
    expect(tlsSettings(parseConfig(base))).toEqual({ mode: 'off' });
    const cloud = parseConfig(base + 'provider: { type: openstack, cloud: nectar }\n');
    expect(tlsSettings(cloud)).toEqual({ mode: 'acme', directory: 'letsencrypt', challenge: 'http-01' });
    expect(tlsSettings(parseConfig(base + 'provider: { type: openstack }\ntls: { mode: "off" }\n'))).toEqual({ mode: 'off' });
  });

  it('accepts acme with e-mail, staging or any https directory, a CA bundle, and files', () => {
    const staging = parseConfig(base + 'tls: { mode: acme, email: ops@example.org, directory: letsencrypt-staging }\n');
    expect(tlsSettings(staging)).toMatchObject({ mode: 'acme', email: 'ops@example.org', challenge: 'http-01' });
    expect(directoryUrl('letsencrypt-staging')).toBe(ACME_DIRECTORIES['letsencrypt-staging']);
    expect(directoryUrl('letsencrypt')).toBe('https://acme-v02.api.letsencrypt.org/directory');
    const custom = parseConfig(base + 'tls: { mode: acme, directory: "https://acme.example.edu:14000/dir", caBundle: ca.pem, hstsMaxAge: 300 }\n');
    expect(custom.tls).toMatchObject({ directory: 'https://acme.example.edu:14000/dir', caBundle: 'ca.pem', hstsMaxAge: 300 });
    expect(directoryUrl('https://acme.example.edu:14000/dir')).toBe('https://acme.example.edu:14000/dir');
    expect(parseConfig(base + 'tls: { mode: files, cert: a.pem, key: a.key }\n').tls).toEqual({ mode: 'files', cert: 'a.pem', key: 'a.key' });
  });

  it('rejects a plain-http directory, a bad e-mail, an unknown mode and files without a key, naming the path', () => {
    expect(problems(base + 'tls: { mode: acme, directory: "http://acme.example.edu/dir" }\n')).toMatch(/tls\.directory/);
    expect(problems(base + 'tls: { mode: acme, email: not-an-address }\n')).toMatch(/tls\.email/);
    expect(problems(base + 'tls: { mode: on }\n')).toMatch(/tls\.mode/);
    expect(problems(base + 'tls: { mode: files, cert: a.pem }\n')).toMatch(/tls\.key/);
  });

  it('dns-01 needs an OpenStack cloud: the provider\'s, or tls.dnsCloud', () => {
    expect(problems(base + 'tls: { mode: acme, challenge: dns-01 }\n')).toMatch(/tls\.dnsCloud.*Designate/);
    expect(parseConfig(base + 'tls: { mode: acme, challenge: dns-01, dnsCloud: nectar }\n').tls).toMatchObject({ challenge: 'dns-01', dnsCloud: 'nectar' });
    expect(parseConfig(base + 'provider: { type: openstack }\ntls: { mode: acme, challenge: dns-01 }\n').tls).toMatchObject({ challenge: 'dns-01' });
  });
});

describe('which certificates a release needs', () => {
  const acme = { mode: 'acme', directory: 'letsencrypt', challenge: 'http-01' } as const;
  it('http-01: one per host, the domain and every version host', () => {
    expect(wantedCertificates(acme, 'app.example.org', ['v1', 'v2'])).toEqual([
      { id: 'app.example.org', names: ['app.example.org'] },
      { id: 'v1.app.example.org', names: ['v1.app.example.org'] },
      { id: 'v2.app.example.org', names: ['v2.app.example.org'] },
    ]);
  });
  it('dns-01: one wildcard with the apex; files: the institution\'s; off: none', () => {
    expect(wantedCertificates({ ...acme, challenge: 'dns-01' }, 'app.example.org', ['v1', 'v2'])).toEqual([{ id: 'wildcard.app.example.org', names: ['app.example.org', '*.app.example.org'] }]);
    expect(wantedCertificates({ mode: 'files', cert: 'c', key: 'k' }, 'app.example.org', ['v1'])).toEqual([{ id: 'files', names: [] }]);
    expect(wantedCertificates({ mode: 'off' }, 'app.example.org', ['v1'])).toEqual([]);
  });
});

describe('renewal planning', () => {
  const cert = (id: string, names: string[], daysToGo: number): InstalledCertificate => ({ id, names, notBefore: NOW - 60 * DAY, notAfter: NOW + daysToGo * DAY, issuer: 'CN=test' });

  it('renews with fewer than 30 days left, keeps the rest, issues what is missing, removes what is no longer wanted', () => {
    const wanted = [{ id: 'a.org', names: ['a.org'] }, { id: 'v1.a.org', names: ['v1.a.org'] }, { id: 'v2.a.org', names: ['v2.a.org'] }];
    const plan = planCertificates(wanted, [cert('a.org', ['a.org'], 29.9), cert('v1.a.org', ['v1.a.org'], 30.1), cert('v0.a.org', ['v0.a.org'], 80)], NOW);
    expect(plan.renew.map((s) => s.id)).toEqual(['a.org']);
    expect(plan.keep.map((s) => s.id)).toEqual(['v1.a.org']);
    expect(plan.issue.map((s) => s.id)).toEqual(['v2.a.org']);
    expect(plan.remove).toEqual(['v0.a.org']);
  });

  it('a certificate that no longer covers its names is issued again; force renews everything present', () => {
    const wanted = [{ id: 'wildcard.a.org', names: ['a.org', '*.a.org'] }];
    expect(planCertificates(wanted, [cert('wildcard.a.org', ['a.org'], 80)], NOW).issue).toHaveLength(1);
    expect(planCertificates(wanted, [cert('wildcard.a.org', ['*.a.org', 'a.org'], 80)], NOW, { force: true }).renew).toHaveLength(1);
  });

  it('counts days left; expired is due', () => {
    expect(renewalDue(cert('x', [], -1), NOW)).toBe(true);
    expect(daysLeft(cert('x', [], 45.5), NOW)).toBe(45);
    expect(daysLeft(cert('x', [], -0.5), NOW)).toBe(-1);
  });
});

describe('host names and certificates', () => {
  it('a wildcard covers exactly one left-most label (RFC 6125)', () => {
    expect(certificateCovers(['*.a.org'], 'v1.a.org')).toBe(true);
    expect(certificateCovers(['*.a.org'], 'V1.A.org')).toBe(true);
    expect(certificateCovers(['*.a.org'], 'a.org')).toBe(false);
    expect(certificateCovers(['*.a.org'], 'x.v1.a.org')).toBe(false);
    expect(certificateCovers(['a.org'], 'v1.a.org')).toBe(false);
  });

  it('each host gets its own certificate, else one that covers it; never an expired one', () => {
    const certs: InstalledCertificate[] = [
      { id: 'a.org', names: ['a.org'], notBefore: 0, notAfter: NOW + DAY, issuer: '' },
      { id: 'wildcard.a.org', names: ['a.org', '*.a.org'], notBefore: 0, notAfter: NOW + 50 * DAY, issuer: '' },
      { id: 'v9.a.org', names: ['v9.a.org'], notBefore: 0, notAfter: NOW - 1, issuer: '' },
    ];
    expect([...certificatesForHosts(['a.org', 'v1.a.org', 'v9.a.org', 'b.org'], certs, NOW)]).toEqual([
      ['a.org', 'a.org'],
      ['v1.a.org', 'wildcard.a.org'],
      ['v9.a.org', 'wildcard.a.org'],
    ]);
  });

  it('ACME tokens must be base64url before they name a file; DNS-01 names are fully qualified', () => {
    expect(challengeFileName('LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0')).toBe('LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0');
    expect(() => challengeFileName('../../etc/passwd-aaaaaaaaaaaa')).toThrow(/base64url/);
    expect(dnsChallengeRecord('*.a.org')).toBe('_acme-challenge.a.org.');
    expect(dnsChallengeRecord('a.org')).toBe('_acme-challenge.a.org.');
  });
});

describe('a certificate chain and its key', () => {
  let dir: string;
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'depl-tls-unit-'));
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=unit CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    writeFileSync(path.join(dir, 'ext'), 'subjectAltName=DNS:a.org,DNS:*.a.org\n');
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=a.org');
    openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1', '-extfile', 'ext');
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.key');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  const what = { cert: 'cert.pem', key: 'key.pem' };

  it('reads names and validity from the leaf of a chain whose key matches', () => {
    const pair = inspectCertificatePair(read('leaf.pem') + read('ca.pem'), read('leaf.key'), what);
    expect(pair.names).toEqual(['a.org', '*.a.org']);
    expect(pair.chainLength).toBe(2);
    expect(pair.notAfter - pair.notBefore).toBe(DAY);
  });

  const filesConfig = () => ({
    config: parseConfig(`app: shop\ndomain: a.org\nservices:\n  web: { image: web:1, port: 80, http: true }\ntls: { mode: files, cert: leaf.pem, key: leaf.key }\n`),
    file: path.join(dir, 'depl.yaml'),
    root: dir,
  });
  const refusal = async (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a refusal'); }, (error: UserError) => error);

  it('tls: files refuses a certificate that expired or is not valid yet (exit 2), naming the file, the date and the fix', async () => {
    chmodSync(path.join(dir, 'leaf.key'), 0o600);
    const { notBefore, notAfter } = inspectCertificatePair(read('leaf.pem'), read('leaf.key'), what);
    expect((await readCertificateFiles(filesConfig(), notBefore + 1000))?.names).toEqual(['a.org', '*.a.org']);
    const expired = await refusal(readCertificateFiles(filesConfig(), notAfter));
    expect(expired).toBeInstanceOf(UserError);
    expect(expired).toMatchObject({ exitCode: 2, code: 'TLS_CERT_EXPIRED', message: `the certificate ${path.join(dir, 'leaf.pem')} expired ${new Date(notAfter).toISOString()} (notAfter)` });
    expect(expired.hint).toMatch(/renewed certificate .* then run depl tls renew/);
    const early = await refusal(readCertificateFiles(filesConfig(), notBefore - 1));
    expect(early).toMatchObject({ exitCode: 2, code: 'TLS_CERT_NOT_YET_VALID', message: `the certificate ${path.join(dir, 'leaf.pem')} is not valid before ${new Date(notBefore).toISOString()} (notBefore)` });
  });

  it('tls: files refuses a private key file the group or others may read, naming it and chmod 600', async () => {
    const keyFile = path.join(dir, 'leaf.key');
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(keyFile, mode);
      const refused = await refusal(readCertificateFiles(filesConfig()));
      expect(refused).toMatchObject({ exitCode: 2, code: 'TLS_KEY_READABLE', message: `the private key ${keyFile} is readable by others (mode ${mode.toString(8)})`, hint: `Run chmod 600 ${keyFile} (only its owner may read it).` });
    }
    chmodSync(keyFile, 0o400);
    expect(await readCertificateFiles(filesConfig())).toBeDefined();
    chmodSync(keyFile, 0o600);
  });

  it('refuses a key that is not the certificate\'s (exit 2), a chain out of order, and garbage', () => {
    const mismatch = (() => { try { inspectCertificatePair(read('leaf.pem'), read('other.key'), what); } catch (e) { return e; } })() as UserError;
    expect(mismatch).toBeInstanceOf(UserError);
    expect(mismatch.exitCode).toBe(2);
    expect(mismatch.code).toBe('TLS_KEY_MISMATCH');
    expect(mismatch.message).toBe('the key key.pem does not match the certificate cert.pem');
    expect(() => inspectCertificatePair(read('ca.pem') + read('leaf.pem'), read('leaf.key'), what)).toThrow(/does not match/);
    expect(() => inspectCertificatePair(read('leaf.pem') + read('leaf.pem'), read('leaf.key'), what)).toThrow(/did not issue/);
    expect(() => inspectCertificatePair('hello', read('leaf.key'), what)).toThrow(/no PEM certificate/);
    expect(() => inspectCertificatePair(read('leaf.pem'), 'hello', what)).toThrow(/not a readable private key/);
  });
});

describe('which certificates the edge serves at a given time', () => {
  const cert = (id: string, notBefore: number, notAfter: number): InstalledCertificate => ({ id, names: [id], notBefore, notAfter, issuer: 'CN=test' });
  const certs = [cert('a.org', NOW - 60 * DAY, NOW + 30 * DAY), cert('v1.a.org', NOW - 90 * DAY, NOW - DAY), cert('v2.a.org', NOW + 2 * DAY, NOW + 92 * DAY)];

  it('serves those valid now and leaves out the expired and the not yet valid, saying since or until when', () => {
    const { served, withheld } = certificatesServedAt(certs, NOW);
    expect(served.map((c) => c.id)).toEqual(['a.org']);
    expect(withheld).toEqual([
      { id: 'v1.a.org', names: ['v1.a.org'], reason: 'expired', at: NOW - DAY },
      { id: 'v2.a.org', names: ['v2.a.org'], reason: 'not-yet-valid', at: NOW + 2 * DAY },
    ]);
    expect(withheld.map(describeWithheld)).toEqual([
      'v1.a.org: certificate EXPIRED 2026-11-29T00:00:00.000Z; not served: plain HTTP until it is renewed',
      'v2.a.org: certificate not valid before 2026-12-02T00:00:00.000Z; not served: plain HTTP until then',
    ]);
  });

  it('a certificate leaves the edge at its notAfter and joins it at its notBefore, to the millisecond', () => {
    const a = certs[0]!;
    expect(certificatesServedAt([a], a.notAfter - 1).served).toHaveLength(1);
    expect(certificatesServedAt([a], a.notAfter).served).toHaveLength(0);
    expect(certificatesServedAt([a], a.notBefore - 1).served).toHaveLength(0);
    expect(certificatesServedAt([a], a.notBefore).served).toHaveLength(1);
  });

  it('the next moment that changes what is served is the soonest notBefore or notAfter still ahead', () => {
    expect(nextServingChange(certs, NOW)).toBe(NOW + 2 * DAY);
    expect(nextServingChange(certs, NOW + 3 * DAY)).toBe(NOW + 30 * DAY);
    expect(nextServingChange(certs, NOW + 100 * DAY)).toBeUndefined();
  });
});

describe('what depl status says of each certificate', () => {
  const cert = (id: string, names: string[], daysLeft: number): InstalledCertificate => ({ id, names, notBefore: NOW - 60 * DAY, notAfter: NOW + daysLeft * DAY, issuer: 'CN=test' });

  it('names an expired one as not served, and says who must renew one the renewal task cannot, from renewBefore ahead', () => {
    const dns = tlsSettings(parseConfig(base + 'provider: { type: openstack, cloud: nectar }\ntls: { mode: acme, challenge: dns-01 }\n'));
    expect(describeCertificates([cert('wildcard.a.org', ['a.org', '*.a.org'], 40)], NOW, dns)).toEqual(['a.org, *.a.org: expires 2027-01-09T00:00:00.000Z (40 days left)']);
    expect(describeCertificates([cert('wildcard.a.org', ['a.org', '*.a.org'], 20)], NOW, dns)).toEqual([
      "a.org, *.a.org: expires 2026-12-20T00:00:00.000Z (20 days left); DUE: run depl tls renew (the renewal task renews DNS-01 wildcards only with an application credential in tls.dnsCloud (a password stays on the operator's machine))",
    ]);
    // a running task holding node-up's DNS credential renews it itself
    expect(describeCertificates([cert('wildcard.a.org', ['a.org', '*.a.org'], 20)], NOW, dns, true)).toEqual([
      'a.org, *.a.org: expires 2026-12-20T00:00:00.000Z (20 days left); DUE: the renewal task renews it on its next round with its DNS credential (depl tls renew does it now)',
    ]);
    const files = tlsSettings(parseConfig(base + 'tls: { mode: files, cert: a.pem, key: a.key }\n'));
    expect(describeCertificates([cert('files', ['a.org'], 5)], NOW, files)).toEqual(['a.org: expires 2026-12-05T00:00:00.000Z (5 days left); DUE: put the renewed files in place and run depl tls renew']);
    const http = tlsSettings(parseConfig(base + 'tls: { mode: acme }\n'));
    // HTTP-01 ones the task renews itself: nothing for the operator to do
    expect(describeCertificates([cert('a.org', ['a.org'], 5), cert('v1.a.org', ['v1.a.org'], -2)], NOW, http)).toEqual([
      'a.org: expires 2026-12-05T00:00:00.000Z (5 days left)',
      'v1.a.org: certificate EXPIRED 2026-11-28T00:00:00.000Z; not served: plain HTTP until it is renewed',
    ]);
  });
});
