import { describe, expect, it } from 'vitest';
import { normalisePercentEncoding, robotsFromResponse, RobotsUnreachableError } from '../../../crawler/src/core/robots.js';

const TOKEN = 'Depl-Crawler'; // case-insensitive (RFC 9309 2.2.1)
const rulesOf = (body: string) => robotsFromResponse('http://s.test/robots.txt', 200, body, TOKEN);

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
    const other = robotsFromResponse('http://s.test/robots.txt', 200, 'User-agent: somebot\nDisallow: /\n', TOKEN);
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

  it('reads the product token at the start of a user-agent line, without case (2.2.1), else the * group, else no rules', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /\n\nUser-agent: DEPL-Crawler/2.0 (+https://example.invalid)\nDisallow: /own\n');
    expect(rules.isAllowed('http://s.test/other')).toBe(true);
    expect(rules.isAllowed('http://s.test/own')).toBe(false);
    const commented = rulesOf('User-agent: depl-crawler (our images)\nDisallow: /own\n\nUser-agent: *\nDisallow: /\n');
    expect(commented.isAllowed('http://s.test/other')).toBe(true);
    expect(commented.isAllowed('http://s.test/own')).toBe(false);
    // another crawler whose name starts like ours is not us
    const longer = rulesOf('User-agent: depl-crawler-images\nDisallow: /\n\nUser-agent: *\nDisallow: /all\n');
    expect(longer.isAllowed('http://s.test/x')).toBe(true);
    expect(longer.isAllowed('http://s.test/all')).toBe(false);
    // a group for other crawlers only, and no * group: no rules apply
    expect(rulesOf('User-agent: otherbot\nDisallow: /\n').isAllowed('http://s.test/x')).toBe(true);
  });

  it('ends a run of user-agent lines only with a rule (2.1): Crawl-delay, Sitemap or unknown lines between them do not', () => {
    const rules = rulesOf('User-agent: depl-crawler\nCrawl-delay: 5\nSitemap: http://s.test/s.xml\nX-Unknown: 1\nUser-agent: otherbot\nDisallow: /shared\nUser-agent: *\nDisallow: /\n');
    expect(rules.isAllowed('http://s.test/shared')).toBe(false);
    expect(rules.isAllowed('http://s.test/x')).toBe(true);
    expect(rules.crawlDelaySeconds).toBe(5);
    // a user-agent line after a rule opens the next group
    const next = rulesOf('User-agent: otherbot\nDisallow: /a\nUser-agent: depl-crawler\nDisallow: /b\n');
    expect(next.isAllowed('http://s.test/a')).toBe(true);
    expect(next.isAllowed('http://s.test/b')).toBe(false);
  });

  it('matches a literal * or $ in a URL with a rule\'s %2A or %24 (2.2.3); a $ before the end of a rule is literal', () => {
    const rules = rulesOf('User-agent: *\nDisallow: /path/file-with-a-%2A.html\nDisallow: /path/foo-%24\nDisallow: /price$list\n');
    expect(rules.isAllowed('http://s.test/path/file-with-a-*.html')).toBe(false);
    expect(rules.isAllowed('http://s.test/path/file-with-a-x.html')).toBe(true);
    expect(rules.isAllowed('http://s.test/path/foo-$')).toBe(false);
    expect(rules.isAllowed('http://s.test/path/foo-')).toBe(true);
    expect(rules.isAllowed('http://s.test/price$list')).toBe(false);
    expect(rules.isAllowed('http://s.test/price')).toBe(true);
  });

  it('compares as the examples of 2.2.2 (table 1) do', () => {
    const cases: Array<[string, string]> = [
      ['/foo/bar?baz=quz', '/foo/bar?baz=quz'],
      ['/foo/bar?baz=https://foo.bar', '/foo/bar?baz=https%3A%2F%2Ffoo.bar'],
      ['/foo/bar/\u30c4', '/foo/bar/%E3%83%84'],
      ['/foo/bar/%E3%83%84', '/foo/bar/%E3%83%84'],
      ['/foo/bar/%62%61%7A', '/foo/bar/baz'],
    ];
    for (const [rule, path] of cases) {
      const rules = rulesOf(`User-agent: *\nDisallow: ${rule}$\n`);
      // the rule as written matches the URL written either way, and the URL as RFC 9309 writes it
      expect(rules.isAllowed(`http://s.test${rule}`), rule).toBe(false);
      expect(rules.isAllowed(`http://s.test${path}`), `${rule} on ${path}`).toBe(false);
      expect(rules.isAllowed(`http://s.test${path}x`), `${rule} anchored`).toBe(true);
    }
    // gen-delims are compared encoded in the query only: the path's / is a separator, /a%2Fb stays distinct
    expect(rulesOf('User-agent: *\nDisallow: /a/b\n').isAllowed('http://s.test/a%2Fb')).toBe(true);
  });

  it('reads a file with a BOM, CRLF or CR line ends and comments (2.2, 2.2.3)', () => {
    const rules = rulesOf('\uFEFFUser-agent: * # everyone\r\nDisallow: /private # not this\r\n# Disallow: /commented\rAllow: /private/open\r\n');
    expect(rules.isAllowed('http://s.test/private/x')).toBe(false);
    expect(rules.isAllowed('http://s.test/private/open/x')).toBe(true);
    expect(rules.isAllowed('http://s.test/commented')).toBe(true);
  });

  it('takes 4xx as "unavailable" (allow all, 2.3.1.3), 429, 5xx as "unreachable" (2.3.1.4), too many redirects as unavailable (2.3.1.2)', () => {
    for (const status of [400, 401, 403, 404, 410]) {
      expect(robotsFromResponse('http://s.test/robots.txt', status, 'User-agent: *\nDisallow: /\n', TOKEN).isAllowed('http://s.test/x'), String(status)).toBe(true);
    }
    for (const status of [429, 500, 502, 503, 504]) {
      expect(() => robotsFromResponse('http://s.test/robots.txt', status, '', TOKEN), String(status)).toThrow(RobotsUnreachableError);
      expect(() => robotsFromResponse('http://s.test/robots.txt', status, '', TOKEN), String(status)).toThrow(`robots.txt answered ${status}: unreachable`);
    }
    expect(robotsFromResponse('http://s.test/robots.txt', 'too-many-redirects', '', TOKEN).isAllowed('http://s.test/x')).toBe(true);
  });
});
