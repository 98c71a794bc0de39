import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { UserError } from '../../errors.js';
import { acmeChallenge, type DeplConfig, type TlsConfig } from '../../config/schema.js';
import { versionHost } from '../names.js';

/**
 * HTTPS at the edge, as data: which certificates a release needs, which of them are due for renewal,
 * which certificate serves which host, and what a certificate + key pair says about itself. The ACME
 * conversation and the files on the manager are in src/apply/tls/.
 */

export const ACME_DIRECTORIES = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const;

/** Certificates with fewer days than this left are renewed (Let's Encrypt's own advice for 90-day certificates). */
export const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 86_400_000;

/**
 * `tls:` as configured, or its default: off for the local provider, ACME with Let's Encrypt for a cloud; the ACME
 * challenge, when not given, is DNS-01 on the project's zone when depl keeps the domain's records there
 * (provider.dns: one wildcard certificate for every version, answered in the zone node-up already writes to, so
 * nothing more is configured), with or without a `tls:` section (config/schema.ts acmeChallenge).
 */
export function tlsSettings(config: Pick<DeplConfig, 'provider' | 'tls'>): TlsConfig {
  const tls = config.tls ?? (config.provider.type === 'local' ? { mode: 'off' as const } : { mode: 'acme' as const, directory: 'letsencrypt' });
  return tls.mode === 'acme' ? { ...tls, challenge: acmeChallenge(tls, config.provider) } : tls;
}

export function directoryUrl(directory: string): string {
  return directory in ACME_DIRECTORIES ? ACME_DIRECTORIES[directory as keyof typeof ACME_DIRECTORIES] : directory;
}

/** One certificate the edge should have: `id` names its folder on the manager (a host name or `wildcard.<domain>`). */
export interface CertificateSpec {
  id: string;
  /** The names it must cover; empty for `files` (it covers what the institution's certificate covers). */
  names: string[];
}

export function wantedCertificates(tls: TlsConfig, domain: string, versions: readonly string[]): CertificateSpec[] {
  if (tls.mode === 'off') return [];
  if (tls.mode === 'files') return [{ id: FILES_ID, names: [] }];
  if (tls.challenge === 'dns-01') return [{ id: `wildcard.${domain}`, names: [domain, `*.${domain}`] }];
  return [domain, ...versions.map((v) => versionHost(v, domain))].map((host) => ({ id: host, names: [host] }));
}

export const FILES_ID = 'files';

/** A certificate in the manager's store, as read from its PEM. */
export interface InstalledCertificate {
  id: string;
  names: string[];
  /** ms since the epoch */
  notBefore: number;
  notAfter: number;
  issuer: string;
  /** The certificate's serial number (hex). */
  serial?: string;
}

/** Whole days left (negative once expired), for `depl status`. */
export function daysLeft(cert: Pick<InstalledCertificate, 'notAfter'>, now: number): number {
  return Math.floor((cert.notAfter - now) / DAY_MS);
}

/**
 * Does a certificate with these subject names cover `host`? RFC 6125 6.4.3: a `*` stands for exactly one
 * whole left-most label, so `*.example.org` covers `v1.example.org` but neither `example.org` nor `a.b.example.org`.
 */
export function certificateCovers(names: readonly string[], host: string): boolean {
  const wanted = host.toLowerCase();
  return names.some((raw) => {
    const name = raw.toLowerCase();
    if (name === wanted) return true;
    if (!name.startsWith('*.')) return false;
    const dot = wanted.indexOf('.');
    return dot > 0 && wanted.slice(dot + 1) === name.slice(2);
  });
}

/** For each host the edge serves, the id of the installed certificate that covers it (and is not expired). */
export function certificatesForHosts(hosts: readonly string[], installed: readonly InstalledCertificate[], now: number): Map<string, string> {
  const result = new Map<string, string>();
  for (const host of hosts) {
    // the exact-name certificate first, then any that covers the host, the one that lasts longest
    const usable = installed.filter((c) => c.notAfter > now && certificateCovers(c.names, host)).sort((a, b) => b.notAfter - a.notAfter);
    const pick = usable.find((c) => c.id === host) ?? usable[0];
    if (pick !== undefined) result.set(host, pick.id);
  }
  return result;
}

/**
 * A certificate in the store that the edge does not serve at `now`: nginx would hand browsers an expired (or
 * not yet valid) certificate, so its hosts fall back to plain HTTP (no https server, no redirect) until a
 * renewal succeeds or its validity starts.
 */
export interface WithheldCertificate {
  id: string;
  names: string[];
  reason: 'expired' | 'not-yet-valid';
  /** ms since the epoch: when it expired (notAfter), or when it becomes valid (notBefore). */
  at: number;
}

/** Which certificates of the store the edge serves at `now`, and which it leaves out and why. */
export function certificatesServedAt(installed: readonly InstalledCertificate[], now: number): { served: InstalledCertificate[]; withheld: WithheldCertificate[] } {
  const served: InstalledCertificate[] = [];
  const withheld: WithheldCertificate[] = [];
  for (const cert of installed) {
    if (cert.notAfter <= now) withheld.push({ id: cert.id, names: cert.names, reason: 'expired', at: cert.notAfter });
    else if (cert.notBefore > now) withheld.push({ id: cert.id, names: cert.names, reason: 'not-yet-valid', at: cert.notBefore });
    else served.push(cert);
  }
  return { served, withheld };
}

/** When what the edge serves next changes on its own (a served certificate expires, a withheld one becomes valid). */
export function nextServingChange(installed: readonly InstalledCertificate[], now: number): number | undefined {
  const moments = installed.flatMap((c) => [c.notBefore, c.notAfter]).filter((at) => at > now);
  return moments.length === 0 ? undefined : Math.min(...moments);
}

/** One line for `depl status`, `buildinst` and the renewal task's log. */
export function describeWithheld(cert: WithheldCertificate): string {
  const when = new Date(cert.at).toISOString();
  return cert.reason === 'expired'
    ? `${cert.names.join(', ')}: certificate EXPIRED ${when}; not served: plain HTTP until it is renewed`
    : `${cert.names.join(', ')}: certificate not valid before ${when}; not served: plain HTTP until then`;
}

/** The hosts of a release: `<domain>` (when something is live) and `<version>.<domain>` for each version. */
export function releaseHosts(domain: string, versions: readonly string[]): string[] {
  return [domain, ...versions.map((v) => versionHost(v, domain))];
}

// ---- ACME challenges --------------------------------------------------------------------------------------

/** RFC 8555 8.3: the token is base64url; anything else must never become a file name. */
export function challengeFileName(token: string): string {
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(token)) throw new UserError(`ACME token "${token.slice(0, 40)}" is not base64url`, undefined, 'ACME_BAD_TOKEN');
  return token;
}

/** RFC 8555 8.4: the TXT record for an identifier (a wildcard's is the base domain's), fully qualified. */
export function dnsChallengeRecord(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '')}.`;
}

// ---- certificate files ------------------------------------------------------------------------------------

export interface CertificatePair {
  names: string[];
  notBefore: number;
  notAfter: number;
  issuer: string;
  /** Number of certificates in the chain file. */
  chainLength: number;
}

/**
 * Reads a PEM chain (leaf first) and its private key and checks that they belong together: the key's
 * public half must be the leaf's. Every problem is a UserError naming `what` (the file paths).
 */
export function inspectCertificatePair(chainPem: string, keyPem: string, what: { cert: string; key: string }): CertificatePair {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new UserError(`${what.cert} holds no PEM certificate`, 'Point tls.cert at the certificate chain (PEM, leaf first).', 'TLS_CERT_INVALID');
  let leaf: X509Certificate;
  const chain: X509Certificate[] = [];
  try {
    for (const block of blocks) chain.push(new X509Certificate(block));
    leaf = chain[0]!;
  } catch (error) {
    throw new UserError(`${what.cert} is not a valid PEM certificate: ${(error as Error).message}`, 'Point tls.cert at the certificate chain (PEM, leaf first).', 'TLS_CERT_INVALID');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new UserError(`${what.key} is not a readable private key: ${(error as Error).message}`, 'Point tls.key at the unencrypted PEM private key of the certificate.', 'TLS_KEY_INVALID');
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new UserError(`the key ${what.key} does not match the certificate ${what.cert}`, 'Use the key the certificate was issued for (and the chain with that certificate first).', 'TLS_KEY_MISMATCH');
  }
  for (let i = 1; i < chain.length; i++) {
    if (!chain[i - 1]!.checkIssued(chain[i]!)) {
      throw new UserError(`${what.cert}: certificate ${i + 1} of the chain did not issue certificate ${i}`, 'Order the chain leaf first, then each issuer.', 'TLS_CHAIN_ORDER');
    }
  }
  return { names: subjectNames(leaf), notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo), issuer: leaf.issuer.replace(/\n/g, ', '), chainLength: chain.length };
}

/**
 * `tls: files` at time `now`: a certificate outside its validity is refused before anything changes (nginx
 * would serve it and every browser would refuse it).
 */
export function assertCertificateValid(pair: Pick<CertificatePair, 'notBefore' | 'notAfter'>, now: number, file: string): void {
  if (pair.notAfter <= now) {
    throw new UserError(
      `the certificate ${file} expired ${new Date(pair.notAfter).toISOString()} (notAfter)`,
      `Get a renewed certificate from its issuer, put it (and its key) in place of ${file}, then run depl tls renew.`,
      'TLS_CERT_EXPIRED',
    );
  }
  if (pair.notBefore > now) {
    throw new UserError(
      `the certificate ${file} is not valid before ${new Date(pair.notBefore).toISOString()} (notBefore)`,
      'Check this machine\'s clock, or wait until the certificate is valid (or use the one it replaces) and run depl tls renew then.',
      'TLS_CERT_NOT_YET_VALID',
    );
  }
}

/** A private key readable by the group or by others (mode & 0o077) is refused: anyone on the machine could serve as the site. */
export function assertKeyFilePrivate(mode: number, file: string): void {
  if ((mode & 0o077) === 0) return;
  throw new UserError(
    `the private key ${file} is readable by others (mode ${(mode & 0o777).toString(8).padStart(3, '0')})`,
    `Run chmod 600 ${file} (only its owner may read it).`,
    'TLS_KEY_READABLE',
  );
}

/** DNS subject alternative names; the common name only when there are none (RFC 6125 says prefer SANs). */
export function subjectNames(cert: X509Certificate): string[] {
  const sans = (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4));
  if (sans.length > 0) return sans;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn ? [cn] : [];
}
