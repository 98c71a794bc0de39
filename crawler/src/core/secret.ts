import { inspect } from 'node:util';

const MASK = '[REDACTED]';

/**
 * A secret the service holds (its API token, the Redis password). It prints as [REDACTED] however it is
 * printed (String, JSON, util.inspect, a log line), so a config dump or an error cannot show it; the
 * value is read only where it is used, with reveal().
 */
export class ServiceSecret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }

  [Symbol.toPrimitive](): string {
    return MASK;
  }
}

export const MIN_TOKEN_LENGTH = 32;

/** Values people leave in place of a real token; compared without case, digits kept, separators dropped. */
const PLACEHOLDERS = [
  'changeme', 'changemeplease', 'replaceme', 'secret', 'password', 'passw0rd', 'token', 'apitoken', 'yourtoken', 'mytoken',
  'test', 'testtoken', 'example', 'default', 'admin', 'letmein', 'qwerty', 'todo', 'xxx', 'dummy', 'placeholder', 'insecure', 'notsecret',
];

/**
 * Why a token must not be used, in one line (without the token unless it is a known placeholder), or null
 * when it is acceptable: at least 32 characters, not a placeholder nor one repeated, not a run of a few
 * characters.
 */
export function apiTokenProblem(token: ServiceSecret | undefined): string | null {
  if (token === undefined) return 'no API token: set apiTokenFile (a file such as /run/secrets/api_token) or apiToken in the service config';
  const value = token.reveal();
  const normalized = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  const placeholder = PLACEHOLDERS.find((p) => normalized.length > 0 && normalized.length % p.length === 0 && normalized === p.repeat(normalized.length / p.length));
  if (placeholder !== undefined) return `the API token is a placeholder ("${value.length > 40 ? `${value.slice(0, 40)}...` : value}"); use a random token of at least ${MIN_TOKEN_LENGTH} characters (depl init generates one)`;
  if (value.length < MIN_TOKEN_LENGTH) return `the API token has ${value.length} characters; at least ${MIN_TOKEN_LENGTH} are needed (depl init generates a random one)`;
  if (new Set(value).size < 8) return `the API token uses fewer than 8 distinct characters; use a random token of at least ${MIN_TOKEN_LENGTH} characters`;
  return null;
}
