import { describe, expect, it } from 'vitest';
import { createAddressPolicy, validateNetwork } from '../../../crawler/src/core/address-policy.js';
import { inScope } from '../../../crawler/src/core/scope.js';
import { robotsFromResponse } from '../../../crawler/src/core/robots.js';
import { backoffMs, parseRetryAfter, verdictForStatus } from '../../../crawler/src/core/retry.js';

describe('address policy', () => {
  const strict = createAddressPolicy({ hosts: [], networks: [] });

  it.each(['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fe80::1',
    'fd00::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254', '[::1]', '100.64.0.1', '224.0.0.1', '255.255.255.255'])(
    'refuses %s', (address) => {
      expect(strict.checkAddress(address)).not.toBeNull();
    });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])('allows the public address %s', (address) => {
    expect(strict.checkAddress(address)).toBeNull();
  });

  it('allows exactly the configured networks', () => {
    const policy = createAddressPolicy({ hosts: ['intranet.test'], networks: ['127.0.0.1/32', 'fd00::/8'] });
    expect(policy.checkAddress('127.0.0.1')).toBeNull();
    expect(policy.checkAddress('::ffff:127.0.0.1')).toBeNull();
    expect(policy.checkAddress('fd00::5')).toBeNull();
    expect(policy.checkAddress('127.0.0.2')).toMatch(/loopback/);
    expect(policy.checkAddress('169.254.169.254')).toMatch(/linkLocal/);
    expect(policy.hostAllowed('INTRANET.test')).toBe(true);
    expect(policy.hostAllowed('other.test')).toBe(false);
  });

  it('says which allow-list entry is invalid', () => {
    expect(validateNetwork('127.0.0.1/33')).toMatch(/127.0.0.1\/33/);
    expect(validateNetwork('10.0.0.0/8')).toBeNull();
  });
});

describe('link scope', () => {
  const seed = new URL('http://www.site.test/start');
  it.each([
    ['host', 'http://www.site.test/x', true],
    ['host', 'https://www.site.test/x', true],
    ['host', 'http://img.site.test/x', false],
    ['origin', 'https://www.site.test/x', false],
    ['domain', 'http://img.site.test/x', true],
    ['domain', 'http://site.test/x', true],
    ['domain', 'http://evilsite.test/x', false],
    ['any', 'http://elsewhere.test/', true],
  ] as const)('%s scope, %s -> %s', (scope, url, expected) => {
    expect(inScope(new URL(url), seed, scope)).toBe(expected);
  });
});

describe('robots', () => {
  const body = 'User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n';
  it('applies Disallow and reports Crawl-delay', () => {
    const rules = robotsFromResponse('http://s.test/robots.txt', 200, body, 'depl-crawler');
    expect(rules.isAllowed('http://s.test/private/a.html')).toBe(false);
    expect(rules.isAllowed('http://s.test/public/a.html')).toBe(true);
    expect(rules.crawlDelaySeconds).toBe(2);
  });
  it('treats a missing robots.txt as allow-all and a 5xx as transient', () => {
    expect(robotsFromResponse('http://s.test/robots.txt', 404, '', 'x').isAllowed('http://s.test/private/')).toBe(true);
    expect(() => robotsFromResponse('http://s.test/robots.txt', 503, '', 'x')).toThrow(/503/);
  });
});

describe('retry policy', () => {
  it('retries transient statuses only', () => {
    expect(verdictForStatus(200)).toBe('ok');
    expect(verdictForStatus(503)).toBe('retry');
    expect(verdictForStatus(429)).toBe('retry');
    expect(verdictForStatus(404)).toBe('permanent');
    expect(verdictForStatus(403)).toBe('permanent');
  });
  it('backs off exponentially and honours Retry-After', () => {
    expect(backoffMs(1, 100, 0.999)).toBeLessThanOrEqual(100);
    expect(backoffMs(3, 100, 0)).toBe(200);
    expect(backoffMs(1, 100, 0, 5000)).toBe(5000);
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });
});
