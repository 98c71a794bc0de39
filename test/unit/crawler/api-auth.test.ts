import type { IncomingMessage } from 'node:http';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, clientAddress, tokenGuard } from '../../../crawler/src/api/auth.js';
import { parseNetworks } from '../../../crawler/src/core/address-policy.js';
import { apiTokenProblem, ServiceSecret } from '../../../crawler/src/core/secret.js';
import { parseServiceConfig } from '../../../crawler/src/config.js';

const strong = 'k3J9x-Qp0vTz_w8LmN4rYs2aBcD5eF7gH1iJ6uV';

function request(peer: string, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage;
}

describe('the API token', () => {
  it('refuses placeholders, short tokens and low-variety ones, in one line without the secret', () => {
    for (const placeholder of ['change-me', 'changeme', 'CHANGE_ME', 'secret', 'password', 'change-me'.repeat(5), 'secretsecretsecretsecretsecretsecret']) {
      expect(apiTokenProblem(new ServiceSecret(placeholder)), placeholder).toMatch(/placeholder/);
    }
    expect(apiTokenProblem(new ServiceSecret('a-long-token-that-is-31-chars!!'))).toBe('the API token has 31 characters; at least 32 are needed (depl init generates a random one)');
    expect(apiTokenProblem(new ServiceSecret('ab'.repeat(20)))).toMatch(/fewer than 8 distinct characters/);
    expect(apiTokenProblem(undefined)).toMatch(/no API token/);
    expect(apiTokenProblem(new ServiceSecret(strong))).toBeNull();
    for (const message of [apiTokenProblem(new ServiceSecret('a-long-token-that-is-31-chars!!'))]) expect(message).not.toContain('a-long-token');
  });

  it('is a type that prints as [REDACTED] wherever the parsed config is printed', () => {
    const config = parseServiceConfig({ redis: 'redis://127.0.0.1:6379', apiToken: strong });
    expect(config.apiToken?.reveal()).toBe(strong);
    expect(JSON.stringify(config)).not.toContain(strong);
    expect(inspect(config, { depth: 5 })).not.toContain(strong);
    expect(`${config.apiToken}`).toBe('[REDACTED]');
  });

  it('leaves job reads and /openapi.json public and /metrics behind the token by default', () => {
    const config = parseServiceConfig({ redis: 'redis://127.0.0.1:6379' });
    expect(config.api.public).toEqual({ jobReads: true, openapi: true, metrics: false });
  });
});

describe('wrong tokens are rate-limited per client', () => {
  it('blocks a client after max failures for the rest of the window, others unaffected', () => {
    let now = 1_000_000;
    const limiter = new AuthFailureLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i += 1) {
      expect(limiter.blockedFor('10.0.0.5')).toBe(0);
      limiter.fail('10.0.0.5');
    }
    expect(limiter.blockedFor('10.0.0.5')).toBe(60);
    expect(limiter.blockedFor('10.0.0.6')).toBe(0);
    now += 59_500;
    expect(limiter.blockedFor('10.0.0.5')).toBe(1);
    now += 600;
    expect(limiter.blockedFor('10.0.0.5')).toBe(0);
  });

  it('keeps its table bounded under a flood of addresses', () => {
    const limiter = new AuthFailureLimiter(3, 60_000, () => 0, 100);
    for (let i = 0; i < 1000; i += 1) limiter.fail(`10.1.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBeLessThanOrEqual(100);
  });

  it('answers 401 for a wrong token and then 429 with Retry-After, even for the right one, until the window ends', () => {
    let now = 0;
    const guard = tokenGuard(new ServiceSecret(strong), new AuthFailureLimiter(2, 30_000, () => now), ['10.0.0.0/8']);
    const wrong = request('203.0.113.9', { authorization: 'Bearer nope' });
    for (let i = 0; i < 2; i += 1) expect(() => guard.require(wrong)).toThrow(expect.objectContaining({ status: 401 }));
    expect(() => guard.require(request('203.0.113.9', { authorization: `Bearer ${strong}` }))).toThrow(expect.objectContaining({ status: 429, headers: { 'retry-after': '30' } }));
    expect(() => guard.require(request('203.0.113.10', { authorization: `Bearer ${strong}` }))).not.toThrow();
    now = 30_000;
    expect(() => guard.require(request('203.0.113.9', { authorization: `Bearer ${strong}` }))).not.toThrow();
  });

  it('takes the client from X-Forwarded-For only behind a trusted proxy, and only the entry that proxy added', () => {
    const trusted = parseNetworks(['10.0.0.0/8']);
    expect(clientAddress(request('10.0.1.2', { 'x-forwarded-for': '1.2.3.4, 198.51.100.7' }), trusted)).toBe('198.51.100.7');
    expect(clientAddress(request('203.0.113.9', { 'x-forwarded-for': '198.51.100.7' }), trusted)).toBe('203.0.113.9');
    expect(clientAddress(request('::ffff:10.0.1.2'), trusted)).toBe('10.0.1.2');
  });
});
