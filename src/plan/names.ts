/**
 * Every user-supplied name that ends up in a hostname, a swarm service name, an nginx file or a shell line
 * is checked here, once, before anything runs. A version id is ONE DNS label so that one wildcard record
 * and one wildcard certificate cover every version.
 */

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export type NameCheck = { ok: true } | { ok: false; reason: string };

export function checkDnsLabel(value: string): NameCheck {
  if (value.length === 0) return { ok: false, reason: 'is empty' };
  if (value.length > 63) return { ok: false, reason: `is ${value.length} characters long; a DNS label has at most 63` };
  if (/[A-Z]/.test(value)) return { ok: false, reason: 'has upper-case letters; use lower case' };
  if (!LABEL.test(value)) {
    return { ok: false, reason: 'may contain only a-z, 0-9 and "-", and must start and end with a letter or digit' };
  }
  return { ok: true };
}

export function checkDomainName(value: string): NameCheck {
  if (value.length === 0) return { ok: false, reason: 'is empty' };
  if (value.length > 253) return { ok: false, reason: 'is longer than 253 characters' };
  const labels = value.split('.');
  for (const label of labels) {
    const check = checkDnsLabel(label);
    if (!check.ok) return { ok: false, reason: `has a bad label "${label}": it ${check.reason}` };
  }
  return { ok: true };
}

/** The app name is a prefix of every service name (`<app>-<version>-<service>`), so it is kept short. */
export function checkAppName(value: string): NameCheck {
  const check = checkDnsLabel(value);
  if (!check.ok) return check;
  if (value.length > 20) return { ok: false, reason: 'is longer than 20 characters (it prefixes every service name)' };
  return { ok: true };
}

export function checkServiceName(value: string): NameCheck {
  const check = checkDnsLabel(value);
  if (!check.ok) return check;
  if (value.length > 20) return { ok: false, reason: 'is longer than 20 characters (it ends every service name)' };
  return { ok: true };
}

/** A version label must also fit `<app>-<version>-<service>` into Docker's 63-character service names. */
export function checkVersionLabel(value: string): NameCheck {
  const check = checkDnsLabel(value);
  if (!check.ok) return check;
  if (value.length > 40) return { ok: false, reason: 'is longer than 40 characters' };
  return { ok: true };
}

/** Default version id: the UTC time of the build, `20261122-130512`. Time is passed in: plan/ has no clock. */
export function versionFromTime(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}-` +
    `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
}

/**
 * A branch name becomes its staging version label: `feature/Login_Page` -> `feature-login-page`.
 * Returns null when nothing label-like is left, so the caller can reject it with the original name.
 */
export function branchSlug(branch: string): string | null {
  const slug = branch
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return slug.length > 0 && checkVersionLabel(slug).ok ? slug : null;
}

export function serviceName(app: string, version: string, service: string): string {
  return `${app}-${version}-${service}`;
}

export function versionHost(version: string, domain: string): string {
  return `${version}.${domain}`;
}

/**
 * A health path is requested through the edge on the version's own host, so it must be a path on that host:
 * `/healthz`, `/status?full=1`; never `//other-host/ok` (a network-path reference: another host) or a URL.
 */
export function checkHealthPath(value: string): NameCheck {
  if (!value.startsWith('/')) return { ok: false, reason: 'must be an absolute path starting with "/", like /healthz' };
  if (value.startsWith('//')) return { ok: false, reason: 'starts with "//", which names another host; use a path on the service itself, like /healthz' };
  if (/[\s\\#]/.test(value) || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return { ok: false, reason: 'may not contain spaces, control characters, "\\" or "#"' };
  if (value.length > 1024) return { ok: false, reason: 'is longer than 1024 characters' };
  return { ok: true };
}

/** A secret's name: a file name under /run/secrets and part of its swarm name `<app>-<name>-<version>`. */
export function checkSecretName(value: string): NameCheck {
  if (!/^[a-z][a-z0-9_]{0,29}$/.test(value)) {
    return { ok: false, reason: 'must be lower-case letters, digits and "_", start with a letter, at most 30 characters (like api_token)' };
  }
  return { ok: true };
}
