import { inspect } from 'node:util';
import { registerSecret } from './redact.js';

const MASK = '[REDACTED]';

/**
 * A secret value (an API token, a password, a join token). It prints as [REDACTED] however it is printed:
 * String(), a template literal, JSON.stringify, console.log/util.inspect. The value is read only where it
 * is used, with reveal(), so redaction does not rest on pattern matching over printed text. Every value is
 * also registered with redact(), which masks it if it reaches a message by another way.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    registerSecret(value);
  }

  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
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

const SECRET_WORDS = new Set(['password', 'passwd', 'passphrase', 'pass', 'pwd', 'secret', 'token', 'credential', 'credentials', 'apikey']);
const KEY_QUALIFIERS = new Set(['api', 'private', 'secret', 'access', 'signing', 'encryption']);

/**
 * Key names whose values are secret, by their last word: `apiToken`, `DB_PASSWORD`, `client_secret`,
 * `privateKey`, `redis-pass`; not `bypass`, `tokenUrl` or `apiTokenFile` (a path to where the secret is).
 */
export function looksSecret(key: string): boolean {
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  const last = words.at(-1);
  if (last === undefined) return false;
  if (SECRET_WORDS.has(last)) return true;
  return last === 'key' && KEY_QUALIFIERS.has(words.at(-2) ?? '');
}
