import robotsParserModule from 'robots-parser';

interface ParsedRobots {
  isAllowed(url: string, ua?: string): boolean | undefined;
  getCrawlDelay(ua?: string): number | undefined;
}
// robots-parser is CommonJS whose typings do not describe its callable default export under NodeNext.
const robotsParser = robotsParserModule as unknown as (url: string, text: string) => ParsedRobots;

/** What the crawler needs from a host's robots.txt. */
export interface RobotsRules {
  isAllowed(url: string): boolean;
  /** Seconds between requests asked for by the host, if any. */
  crawlDelaySeconds: number | undefined;
}

export const ALLOW_ALL: RobotsRules = { isAllowed: () => true, crawlDelaySeconds: undefined };

/** The URL of the robots.txt that governs `url`. */
export function robotsUrlFor(url: URL): string {
  return `${url.origin}/robots.txt`;
}

/**
 * Rules from a robots.txt fetch outcome (RFC 9309): a 2xx body is parsed; 4xx means "no rules" (allow all).
 * 5xx and network errors are transient and are not handled here: the caller retries the page later.
 */
export function robotsFromResponse(robotsUrl: string, status: number, body: string, userAgent: string): RobotsRules {
  if (status >= 400 && status < 500) return ALLOW_ALL;
  if (status < 200 || status >= 300) throw new Error(`robots.txt answered ${status}`);
  const robots = robotsParser(robotsUrl, body);
  const delay = robots.getCrawlDelay(userAgent);
  // robots-parser re-parses the URL on every call (~25 µs); a crawl asks about the same links again and
  // again (every page links home), so answers are remembered, in a bounded map.
  const answers = new Map<string, boolean>();
  return {
    isAllowed: (url) => {
      let allowed = answers.get(url);
      if (allowed === undefined) {
        // robots-parser answers undefined for URLs of another origin; those are governed by their own file.
        allowed = robots.isAllowed(url, userAgent) !== false;
        if (answers.size >= 50_000) answers.clear();
        answers.set(url, allowed);
      }
      return allowed;
    },
    crawlDelaySeconds: typeof delay === 'number' && Number.isFinite(delay) ? delay : undefined,
  };
}
