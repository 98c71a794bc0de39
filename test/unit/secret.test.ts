import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { looksSecret, Secret } from '../../src/util/secret.js';
import { redact } from '../../src/util/redact.js';

describe('Secret', () => {
  const value = 'Zq9-very-secret-value-0123456789abcdef';
  const secret = new Secret(value);

  it('prints as [REDACTED] however it is printed', () => {
    expect(String(secret)).toBe('[REDACTED]');
    expect(`${secret}`).toBe('[REDACTED]');
    expect(JSON.stringify({ token: secret })).toBe('{"token":"[REDACTED]"}');
    expect(inspect({ nested: { secret } })).not.toContain(value);
    expect(Object.keys(secret)).toEqual([]);
  });

  it('gives its value only when asked, and redact() masks it if it leaks another way', () => {
    expect(secret.reveal()).toBe(value);
    expect(secret.length).toBe(value.length);
    expect(redact(`oops: ${secret.reveal()}`)).toBe('oops: [REDACTED]');
  });
});

describe('looksSecret', () => {
  it('knows secret key names by their last word', () => {
    for (const key of ['apiToken', 'DB_PASSWORD', 'client_secret', 'privateKey', 'redis-pass', 'API_KEY', 'passphrase', 'credentials']) {
      expect(looksSecret(key), key).toBe(true);
    }
  });

  it('leaves ordinary keys and file pointers alone', () => {
    for (const key of ['bypass', 'compass', 'tokenUrl', 'apiTokenFile', 'PASSWORD_FILE', 'keyPrefix', 'key', 'redis', 'monkey']) {
      expect(looksSecret(key), key).toBe(false);
    }
  });
});
