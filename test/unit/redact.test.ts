import { afterEach, describe, expect, it } from 'vitest';
import { forgetSecrets, redact, registerSecret } from '../../src/util/redact.js';

describe('redact', () => {
  afterEach(() => forgetSecrets());

  it('masks registered secrets wherever they appear', () => {
    registerSecret('gAAAAABtoken-value-123');
    expect(redact('GET /stacks with gAAAAABtoken-value-123 failed')).toBe('GET /stacks with [REDACTED] failed');
  });

  it('masks secret-looking key/value pairs, headers, URLs and private keys', () => {
    expect(redact('password=hunter2 user=bob')).toBe('password=[REDACTED] user=bob');
    expect(redact('{"secret": "abc123", "id": "x"}')).toBe('{"secret": "[REDACTED]", "id": "x"}');
    expect(redact('OS_APPLICATION_CREDENTIAL_SECRET=s3cr3t')).toBe('OS_APPLICATION_CREDENTIAL_SECRET=[REDACTED]');
    expect(redact('X-Auth-Token: abcdef123456')).toBe('X-Auth-Token: [REDACTED]');
    expect(redact('Authorization: Bearer abcdefghijkl')).toBe('Authorization: Bearer [REDACTED]');
    expect(redact('redis://:pw123@redis:6379')).toBe('redis://:[REDACTED]@redis:6379');
    expect(redact('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----')).toBe('[REDACTED]');
  });

  it('masks a YAML line that holds a secret', () => {
    expect(redact('app: x\npassword: hunter2\n  token: "abc"')).toBe('app: x\npassword: [REDACTED]\n  token: "[REDACTED]"');
  });

  it('leaves prose about secrets alone, so hints stay readable', () => {
    const hint = 'Set the password: depl secrets set redis-password. The token: expired, log in again.';
    expect(redact(hint)).toBe(hint);
    expect(redact('wrong api token (HTTP 401)')).toBe('wrong api token (HTTP 401)');
  });

  it('leaves ordinary text alone', () => {
    expect(redact('Version 20261122-130512 is successfully installed')).toBe('Version 20261122-130512 is successfully installed');
  });
});
