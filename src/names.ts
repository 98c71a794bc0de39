/**
 * Every user-supplied name that ends up in a hostname, a swarm service name, an nginx file or a shell line
 * is checked here, once, before anything runs. A version id is ONE DNS label so that one wildcard record
 * and one wildcard certificate cover every version.
 *
 * Both the config schema and src/plan import these checks, so they live in neither (plan/ already imports
 * config/'s types; config/ importing plan/ made the two a cycle).
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

/**
 * Accessory names whose app-scoped service (`<app>-<accessory>`, src/plan/names.ts) would take the name of a
 * service depl runs for the app itself (`<app>-edge`, `<app>-tls-renewer`): depl.yaml may not use them.
 */
export const RESERVED_ACCESSORY_NAMES: readonly string[] = ['edge', 'tls-renewer'];

/**
 * The service of the autoscale controller's engine gate, `<app>-<version>-autoscaler-gate` (src/plan/autoscale-gate.ts);
 * here, not beside AUTOSCALER_SERVICE in the config schema, because the gate program imports it and must not bundle zod.
 */
export const AUTOSCALER_GATE_SERVICE = 'autoscaler-gate';
