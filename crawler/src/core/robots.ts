import robotsParserModule from 'robots-parser';

interface ParsedRobots {
  isAllowed(url: string, ua?: string): boolean | undefined;
  getCrawlDelay(ua?: string): number | undefined;
  getSitemaps(): string[];
}
// robots-parser is CommonJS whose typings do not describe its callable default export under NodeNext.
const robotsParser = robotsParserModule as unknown as (url: string, text: string) => ParsedRobots;

/** What the crawler needs from a host's robots.txt. */
export interface RobotsRules {
  isAllowed(url: string): boolean;
  /** Seconds between requests asked for by the host, if any. */
  crawlDelaySeconds: number | undefined;
  /** `Sitemap:` URLs listed in the file (absolute http(s) URLs only). */
  sitemaps: string[];
}

export const ALLOW_ALL: RobotsRules = { isAllowed: () => true, crawlDelaySeconds: undefined, sitemaps: [] };

/** The URL of the robots.txt that governs `url`. */
export function robotsUrlFor(url: URL): string {
  return `${url.origin}/robots.txt`;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * RFC 9309 section 2.2.2: before matching, percent-encoded octets that stand for unreserved characters
 * (RFC 3986: ALPHA / DIGIT / "-" / "." / "_" / "~") are decoded, and every other percent-encoding is kept with
 * upper-case hex digits, in the URL's path and in the rules' patterns alike, so `/%70rivate/` and `/private/`
 * are one path while `/a%2Fb` stays distinct from `/a/b`. (robots-parser itself encodes non-ASCII and
 * upper-cases hex digits, but does not decode; this is the fix around it.)
 */
export function normalisePercentEncoding(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (match, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : match.toUpperCase();
  });
}

/** The robots.txt text with every Allow/Disallow pattern normalised as the URLs are (see above). */
function normaliseRules(body: string): string {
  if (!body.includes('%')) return body;
  return body.replace(/^(\s*(?:allow|disallow)\s*:\s*)([^#\r\n]*)/gim, (_, key: string, pattern: string) => key + normalisePercentEncoding(pattern));
}

/** The URL as robots rules are matched against it: origin untouched, path and query normalised. */
export function robotsMatchUrl(url: string): string {
  const at = url.indexOf('/', url.indexOf('//') + 2);
  if (at < 0 || !url.includes('%', at)) return url;
  return url.slice(0, at) + normalisePercentEncoding(url.slice(at));
}

/**
 * Rules from a robots.txt fetch outcome (RFC 9309): a 2xx body is parsed; 4xx means "no rules" (allow all).
 * 5xx and network errors are transient and are not handled here: the caller retries the page later
 * (RFC 9309 2.3.1.4: meanwhile nothing of the origin is fetched).
 * Matching follows the RFC: the group of the most specific product token (else `*`), the longest matching
 * Allow/Disallow pattern wins, Allow wins a tie, `*` matches any run of characters and a final `$` anchors.
 */
export function robotsFromResponse(robotsUrl: string, status: number, body: string, userAgent: string): RobotsRules {
  if (status >= 400 && status < 500) return ALLOW_ALL;
  if (status < 200 || status >= 300) throw new Error(`robots.txt answered ${status}`);
  const robots = robotsParser(robotsUrl, normaliseRules(body));
  const delay = robots.getCrawlDelay(userAgent);
  const robotsPath = new URL(robotsUrl).pathname;
  // robots-parser re-parses the URL on every call (~25 µs); a crawl asks about the same links again and
  // again (every page links home), so answers are remembered, in a bounded map.
  const answers = new Map<string, boolean>();
  return {
    isAllowed: (url) => {
      let allowed = answers.get(url);
      if (allowed === undefined) {
        const matchUrl = robotsMatchUrl(url);
        // RFC 9309 2.2.2: /robots.txt itself is always allowed. robots-parser answers undefined for URLs of
        // another origin; those are governed by their own file.
        allowed = new URL(matchUrl).pathname === robotsPath || robots.isAllowed(matchUrl, userAgent) !== false;
        if (answers.size >= 50_000) answers.clear();
        answers.set(url, allowed);
      }
      return allowed;
    },
    crawlDelaySeconds: typeof delay === 'number' && Number.isFinite(delay) ? delay : undefined,
    sitemaps: robots.getSitemaps().filter((s) => /^https?:\/\//i.test(s)),
  };
}
