import { describe, expect, it } from 'vitest';
import { normalisePercentEncoding, robotsFromResponse } from '../../../crawler/src/core/robots.js';

const UA = 'depl-crawler/0.1 (+https://example.invalid)';
const rulesOf = (body: string) => robotsFromResponse('http://s.test/robots.txt', 200, body, UA);

describe('robots.txt per RFC 9309', () => {
  it('matches after normalising percent-encoding of unreserved characters, in URLs and in patterns (2.2.2)', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /private/\nDisallow: /%7Euser/\nDisallow: /a%2fb\n');
    expect(rules.isAllowed('http://s.test/private/x.html')).toBe(false);
    expect(rules.isAllowed('http://s.test/%70rivate/x.html')).toBe(false);
    expect(rules.isAllowed('http://s.test/%70%72%69%76%61%74%65/')).toBe(false);
    expect(rules.isAllowed('http://s.test/~user/page')).toBe(false);
    expect(rules.isAllowed('http://s.test/%7euser/page')).toBe(false);
    // a reserved character stays encoded: /a%2Fb is not /a/b
    expect(rules.isAllowed('http://s.test/a%2Fb')).toBe(false);
    expect(rules.isAllowed('http://s.test/a/b')).toBe(true);
    expect(rules.isAllowed('http://s.test/public/')).toBe(true);
  });

  it('encodes non-ASCII the same way on both sides', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /caf\u00e9/\n');
    expect(rules.isAllowed(new URL('http://s.test/caf\u00e9/menu').href)).toBe(false);
    expect(rules.isAllowed('http://s.test/caf%C3%A9/menu')).toBe(false);
    expect(rules.isAllowed('http://s.test/cafe/menu')).toBe(true);
  });

  it('gives the longest match precedence, Allow winning a tie', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /docs/\nAllow: /docs/public/\nDisallow: /docs/public/secret\nAllow: /tie\nDisallow: /tie\n');
    expect(rules.isAllowed('http://s.test/docs/a')).toBe(false);
    expect(rules.isAllowed('http://s.test/docs/public/a')).toBe(true);
    expect(rules.isAllowed('http://s.test/docs/public/secret.html')).toBe(false);
    expect(rules.isAllowed('http://s.test/tie')).toBe(true);
  });

  it('supports * (any run of characters) and a final $ (end of the path)', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /*.pdf$\nDisallow: /tmp*/cache\nAllow: /$\nDisallow: /\n');
    expect(rules.isAllowed('http://s.test/')).toBe(true);
    expect(rules.isAllowed('http://s.test/index.html')).toBe(false);
    const pdf = rulesOf('User-agent: *\nDisallow: /*.pdf$\nDisallow: /tmp*/cache\n');
    expect(pdf.isAllowed('http://s.test/files/a.pdf')).toBe(false);
    expect(pdf.isAllowed('http://s.test/files/a.pdf?download=1')).toBe(true);
    expect(pdf.isAllowed('http://s.test/files/a.pdfx')).toBe(true);
    expect(pdf.isAllowed('http://s.test/tmp-2024/x/cache')).toBe(false);
    expect(pdf.isAllowed('http://s.test/tmp/cachex')).toBe(false); // patterns match prefixes
    expect(pdf.isAllowed('http://s.test/tmpx/other')).toBe(true);
  });

  it('follows the group of its own product token, else *, and merges groups of one agent', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /\n\nUser-agent: DEPL-Crawler\nDisallow: /a\n\nUser-agent: depl-crawler\nDisallow: /b\n');
    expect(rules.isAllowed('http://s.test/c')).toBe(true);
    expect(rules.isAllowed('http://s.test/a')).toBe(false);
    expect(rules.isAllowed('http://s.test/b')).toBe(false);
    const other = robotsFromResponse('http://s.test/robots.txt', 200, 'User-agent: somebot\nDisallow: /\n', UA);
    expect(other.isAllowed('http://s.test/c')).toBe(true);
  });

  it('always allows /robots.txt and lists absolute Sitemap: lines', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /\nSitemap: http://s.test/sitemap-a.xml\nSitemap: relative.xml\n');
    expect(rules.isAllowed('http://s.test/robots.txt')).toBe(true);
    expect(rules.sitemaps).toEqual(['http://s.test/sitemap-a.xml']);
  });

  it('normalises only what RFC 3986 calls unreserved', () => {
    expect(normalisePercentEncoding('/%41%2d%2E%5f%7E%2f%3F%25%e2%82%ac')).toBe('/A-._~%2F%3F%25%E2%82%AC');
  });
});
