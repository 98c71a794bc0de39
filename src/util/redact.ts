/**
 * One place that knows what a secret looks like. Every line the logger prints and every error message
 * main.ts shows passes through redact(), so a token or password that leaks into a message is masked.
 */
const knownSecrets = new Set<string>();

/** Register a value that must never be printed (a Keystone token, a password, an API token). */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) knownSecrets.add(value);
}

export function forgetSecrets(): void {
  knownSecrets.clear();
}

const MASK = '[REDACTED]';

/** A key that names a secret: password, OS_PASSWORD, apiToken's snake form, api-key, passphrase. */
const SECRET_KEY = '(?:[A-Za-z_]*_)?(?:password|passwd|secret|token|api[_-]?key|passphrase)';

const patterns: Array<[RegExp, string]> = [
  // PEM private keys (ssh, TLS)
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, MASK],
  // Authorization headers and bearer tokens
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${MASK}`],
  // Keystone / generic token headers
  [/\b(X-(?:Auth|Subject)-Token)(["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, `$1$2${MASK}`],
  // Pairs whose key names a secret, in the shapes machines write them: key=value (env, query strings), a
  // quoted JSON value, and a YAML line. Prose such as "the password: run depl secrets set" is left alone,
  // so a hint is never mangled into nonsense.
  [new RegExp(`\\b(${SECRET_KEY})(=)(?!\\[REDACTED\\])[^\\s"',}&]+`, 'gi'), `$1$2${MASK}`],
  [new RegExp(`\\b(${SECRET_KEY})(["']\\s*:\\s*["'])(?!\\[REDACTED\\])[^"']+`, 'gi'), `$1$2${MASK}`],
  [new RegExp(`^(\\s*-?\\s*${SECRET_KEY})(:[ \\t]+["']?)(?!\\[REDACTED\\])[^\\s"']+`, 'gim'), `$1$2${MASK}`],
  // credentials in URLs: scheme://user:pass@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, `$1${MASK}@`],
];

export function redact(text: string): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  for (const [pattern, replacement] of patterns) out = out.replace(pattern, replacement);
  return out;
}
