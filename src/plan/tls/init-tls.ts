import { contactEmail, type AcmeChallenge } from '../../config/schema.js';
import type { NameCheck } from '../../names.js';

/**
 * The tls: section `depl init` writes, and the line that says why. Pure: the provider, the domain and the
 * operator's flags in, the choice out.
 *
 * The openstack provider gets ACME from Let's Encrypt, said in the file rather than left to a default: with the
 * zero-config domain (provider.dns) one wildcard proven by DNS-01 in the project's zone, so HTTPS works from the
 * first buildinst; with a domain of the user's own, HTTP-01 once it points at the cluster. The local provider's
 * *.localhost cannot have a public certificate, so it gets no section (off), unless --no-tls says so in writing.
 *
 * The account's contact address is optional in ACME (RFC 8555 7.3: `contact` may be left out) and Let's Encrypt
 * issues without one (it stopped sending expiry mail in June 2025), so no address is the default: depl never
 * makes one up. An address is taken from --tls-email or asked on a terminal.
 */
export type InitTls = { mode: 'off' } | { mode: 'acme'; challenge: AcmeChallenge; email?: string };

export interface InitTlsRequest {
  provider: 'local' | 'openstack';
  domain: string;
  /** The Designate zone depl keeps the domain's records in (the zero-config domain). */
  dnsZone?: string;
  /** --no-tls */
  off: boolean;
  email?: string;
}

/** The section to write (none: the provider's default, which for local is off) and what to tell the operator. */
export function initTls(req: InitTlsRequest): { tls?: InitTls; note?: string } {
  if (req.off) return { tls: { mode: 'off' }, note: 'tls: off (--no-tls): versions are served over plain HTTP; set tls.mode to acme in depl.yaml for HTTPS' };
  if (req.provider === 'local') return {};
  const challenge: AcmeChallenge = req.dnsZone !== undefined ? 'dns-01' : 'http-01';
  const tls: InitTls = { mode: 'acme', challenge, ...(req.email !== undefined ? { email: req.email } : {}) };
  const how = challenge === 'dns-01'
    ? `one wildcard certificate for ${req.domain} and *.${req.domain} at the first buildinst, proven by DNS-01 in ${req.dnsZone} (the zone depl keeps the domain's records in, so nothing has to answer on the domain first)`
    : `a certificate per host at buildinst, proven by HTTP-01 through the edge once ${req.domain} and *.${req.domain} point at the cluster`;
  const contact = req.email !== undefined
    ? `account contact ${req.email}`
    : 'no contact address for the account (optional in ACME, RFC 8555; Let\'s Encrypt issues without one): --tls-email adds one';
  return { tls, note: `tls: acme with Let's Encrypt, ${how}; ${contact}. --no-tls serves plain HTTP instead.` };
}

// RFC 2606 / RFC 6761: names that never receive mail, which Let's Encrypt refuses as an account's contact
const RESERVED_MAIL_DOMAINS = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/i;

/** An address depl.yaml's tls.email accepts and Let's Encrypt would take (not at a reserved domain). */
export function checkContactEmail(value: string): NameCheck {
  const parsed = contactEmail.safeParse(value);
  if (!parsed.success) return { ok: false, reason: 'is not an e-mail address' };
  const domain = value.slice(value.lastIndexOf('@') + 1);
  if (RESERVED_MAIL_DOMAINS.test(domain)) return { ok: false, reason: `is at ${domain}, a domain reserved for examples that receives no mail (Let's Encrypt refuses it)` };
  return { ok: true };
}

/**
 * The section's text (its lines, each ending in a newline; empty for none), with `__TLS_EMAIL__` where the address
 * goes (init-config.ts renders it as one scalar). Its comments say what the choice does, so the file explains itself.
 */
export function initTlsSection(tls: InitTls | undefined): string {
  if (tls === undefined) return '';
  if (tls.mode === 'off') {
    return `# HTTPS is off (depl init --no-tls): versions are served over plain HTTP. "mode: acme" gets certificates
# from Let's Encrypt at the next depl buildinst.
tls:
  mode: "off"               # quoted: YAML 1.1 readers take a bare off for false
`;
  }
  const what = tls.challenge === 'dns-01'
    ? `# HTTPS from the first \`depl buildinst\`: one wildcard certificate from Let's Encrypt (ACME) covers <domain> and
# every <version>.<domain>, proven by DNS-01 in provider.dns.zone (the challenge follows provider.dns: none to set).
# Certificates are renewed 30 days before they expire by depl buildinst and \`depl tls renew\`; the renewal task on
# the cluster renews this one too when dnsCloud: names a cloud in clouds.yaml whose application credential may
# change the zone's records (the provider's own credential stays on this machine).`
    : `# HTTPS once <domain> and *.<domain> point at the cluster: a certificate per host from Let's Encrypt (ACME),
# proven by HTTP-01 through the edge on port 80, renewed 30 days before it expires by a task on the cluster.`;
  const email = tls.email !== undefined
    ? '  email: __TLS_EMAIL__     # the ACME account\'s contact address'
    : `  # email: <your address>  # optional (RFC 8555): a contact for the ACME account; Let's Encrypt issues without one`;
  return `${what}
# "mode: off" serves plain HTTP only.
tls:
  mode: acme
  directory: letsencrypt    # letsencrypt-staging while trying things out (certificates no browser trusts)
${email}
`;
}
