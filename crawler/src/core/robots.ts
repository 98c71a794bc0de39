import { compileRobotsPattern, matchRobotsPattern, type RobotsPattern, type StepCounter } from './robots-pattern.js';

/** What the crawler needs from a host's robots.txt. */
export interface RobotsRules {
  isAllowed(url: string): boolean;
  /** Seconds between requests asked for by the host, if any. */
  crawlDelaySeconds: number | undefined;
  /** `Sitemap:` URLs listed in the file (absolute http(s) URLs only). */
  sitemaps: string[];
}

/**
 * A robots.txt that answered 5xx or 429, or not at all: RFC 9309 2.3.1.4 "unreachable", a complete disallow for
 * its origin while it lasts. The page is tried again later; when every try found it so, it is recorded as
 * disallowed (`robots`), not as a failure of the page.
 */
export class RobotsUnreachableError extends Error {
  readonly code = 'ERR_ROBOTS_UNREACHABLE';
}

export function isRobotsUnreachable(error: unknown): error is RobotsUnreachableError {
  return error instanceof RobotsUnreachableError;
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
 * are one path while `/a%2Fb` stays distinct from `/a/b`.
 */
export function normalisePercentEncoding(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (match, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : match.toUpperCase();
  });
}

/** RFC 3986 gen-delims that may stand in a query as data (`#` ends it): `?baz=https://x` is `?baz=https%3A%2F%2Fx`. */
const QUERY_DELIMITERS = /[:/?[\]@]/g;

/**
 * The query of a path as RFC 9309 2.2.2 compares it (its table: `/foo/bar?baz=https://foo.bar` is matched as
 * `/foo/bar?baz=https%3A%2F%2Ffoo.bar`): after the first `?`, the reserved delimiters are percent-encoded, so a
 * rule and a URL match whichever of the two ways each wrote them. `&`, `=` and `+` are kept: encoded, they mean
 * something else in a query.
 */
function encodeQueryDelimiters(path: string): string {
  const question = path.indexOf('?');
  if (question < 0) return path;
  const query = path.slice(question + 1).replace(QUERY_DELIMITERS, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${path.slice(0, question + 1)}${query}`;
}

/**
 * A URL's path and query as rules are matched against (RFC 9309 2.2.2, 2.2.3): percent-encoding normalised, and
 * a literal `*` or `$` percent-encoded, as a rule must write them (`%2A`, `%24`) to match them verbatim.
 */
export function robotsMatchPath(pathAndQuery: string): string {
  return encodeQueryDelimiters(normalisePercentEncoding(pathAndQuery)).replace(/\*/g, '%2A').replace(/\$/g, '%24');
}

/** RFC 9309 2.3.1.2: at least five consecutive redirects are followed to a robots.txt, across hosts. */
export const ROBOTS_MIN_REDIRECTS = 5;

/**
 * What fetching a robots.txt gave: an HTTP status and body, or more redirects than were followed, which
 * RFC 9309 2.3.1.2 lets a crawler take as "unavailable" (allow all), as this crawler does.
 */
export type RobotsStatus = number | 'too-many-redirects';

/** RFC 9309 2.5: crawlers parse at least the first 500 KiB; the rest of a larger file is ignored. */
export const MAX_ROBOTS_BYTES = 500 * 1024;

/**
 * The part of a robots.txt read up to the parsing limit (2.5) that is whole lines: a file cut at the limit ends
 * in a piece of a line (`Allow: /p` of `Allow: /public/`), which read as a rule would allow or disallow more
 * than the site wrote. `cut` says the file was longer than what was read.
 */
export function wholeLines(body: string, cut: boolean): string {
  if (!cut) return body;
  const lastEnd = Math.max(body.lastIndexOf('\n'), body.lastIndexOf('\r'));
  return body.slice(0, lastEnd + 1);
}

/**
 * Work one decision may cost (character comparisons, see robots-pattern.ts): each rule is linear in the path,
 * but a file may hold tens of thousands of `*` rules. A real file's rules mostly fail on their first characters;
 * a decision that would cost more than this (a few milliseconds) is answered "disallowed": a file the crawler
 * cannot evaluate is not taken as permission.
 */
export const ROBOTS_DECISION_STEPS = 4_000_000;

export interface RobotsRule {
  pattern: RobotsPattern;
  allow: boolean;
}

export interface RobotsGroup {
  rules: RobotsRule[];
  crawlDelay?: number;
}

/**
 * The product token a user-agent line names (RFC 9309 2.2.1: letters, `_` and `-`; digits are taken too, as
 * crawlers' names have them), lower case: `Googlebot/2.1 (+http://...)` names `googlebot`; a value starting
 * with `*` is the group for every crawler.
 */
function lineProductToken(value: string): string {
  if (value.startsWith('*')) return '*';
  return (/^[A-Za-z0-9_-]*/.exec(value)?.[0] ?? '').toLowerCase();
}

/**
 * A pattern as written, with non-ASCII percent-encoded (as URLs are) and then normalised like a URL's path; a `$`
 * before the end is a literal dollar (2.2.3), encoded as a URL's is.
 */
function normalisePattern(pattern: string): string {
  let encoded = pattern;
  try {
    encoded = encodeURI(pattern).replace(/%25/g, '%');
  } catch {
    // a lone surrogate: kept as written
  }
  const anchored = encoded.endsWith('$');
  const body = encodeQueryDelimiters(normalisePercentEncoding(anchored ? encoded.slice(0, -1) : encoded)).replace(/\$/g, '%24');
  return anchored ? `${body}$` : body;
}

/**
 * The groups of a robots.txt (RFC 9309 2.1, 2.2): one or more user-agent lines followed by rules (allow and
 * disallow); a user-agent line after a rule starts the next group, other lines (Crawl-delay, Sitemap, unknown
 * keys) do not end a run of user-agent lines. Groups naming one agent are merged; lines without a colon are
 * ignored, as are rules before any user-agent line. Sitemap lines belong to no group.
 */
export function parseRobotsTxt(body: string): { groups: Map<string, RobotsGroup>; sitemaps: string[] } {
  const groups = new Map<string, RobotsGroup>();
  const sitemaps: string[] = [];
  let agents: string[] = [];
  let inAgentLines = false;
  const groupOf = (agent: string) => {
    let group = groups.get(agent);
    if (group === undefined) groups.set(agent, (group = { rules: [] }));
    return group;
  };
  for (const raw of body.split(/\r\n|\r|\n/)) {
    const hash = raw.indexOf('#');
    const line = hash >= 0 ? raw.slice(0, hash) : raw;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === '') continue;
    if (key === 'user-agent') {
      if (!inAgentLines) agents = [];
      const token = lineProductToken(value);
      if (token !== '') agents.push(token);
    } else if (key === 'allow' || key === 'disallow') {
      const rule = value === '' ? undefined : { pattern: compileRobotsPattern(normalisePattern(value)), allow: key === 'allow' };
      // an empty Disallow still gives its agents a group (of no rules), which then wins over `*`
      for (const agent of agents) {
        const group = groupOf(agent);
        if (rule !== undefined) group.rules.push(rule);
      }
    } else if (key === 'crawl-delay') {
      const delay = Number(value);
      for (const agent of agents) {
        const group = groupOf(agent);
        if (value !== '' && Number.isFinite(delay) && delay >= 0) group.crawlDelay = delay;
      }
    } else if (key === 'sitemap' && value !== '') {
      sitemaps.push(value);
    }
    if (key === 'user-agent') inAgentLines = true;
    else if (key === 'allow' || key === 'disallow') inAgentLines = false;
  }
  return { groups, sitemaps };
}

/**
 * Rules from a robots.txt fetch outcome (RFC 9309 2.3.1): a 2xx body is parsed; 4xx is "unavailable", no rules
 * (allow all, 2.3.1.3), except 429: a site that rate-limits its robots.txt is asking for less, not giving leave
 * (the RFC allows but does not require allow-all; Google's crawlers read 429 as unreachable too).
 * 5xx, 429 and network errors are "unreachable" (2.3.1.4: complete disallow): this throws, the caller fetches
 * nothing of the origin and retries the page later. More redirects than followed are "unavailable" (2.3.1.2).
 * Matching follows the RFC: the group of the most specific product token (else `*`), the longest matching
 * Allow/Disallow pattern wins, Allow wins a tie, `*` matches any run of characters and a final `$` anchors.
 * Only the first MAX_ROBOTS_BYTES of the body are read.
 */
export function robotsFromResponse(robotsUrl: string, status: RobotsStatus, body: string, token: string): RobotsRules {
  if (status === 'too-many-redirects') return ALLOW_ALL;
  if (status >= 400 && status < 500 && status !== 429) return ALLOW_ALL;
  if (status < 200 || status >= 300) throw new RobotsUnreachableError(`robots.txt answered ${status}: unreachable, nothing of ${new URL(robotsUrl).origin} is fetched (RFC 9309 2.3.1.4)`);
  const { groups, sitemaps } = parseRobotsTxt(body.length > MAX_ROBOTS_BYTES ? body.slice(0, MAX_ROBOTS_BYTES) : body);
  const group = groups.get(token.toLowerCase()) ?? groups.get('*');
  // longest first, Allow before Disallow at one length: the first rule that matches decides
  const rules = [...(group?.rules ?? [])].sort((a, b) => b.pattern.source.length - a.pattern.source.length || Number(b.allow) - Number(a.allow));
  const robots = new URL(robotsUrl);
  // a crawl asks about the same links again and again (every page links home): answers are remembered, bounded
  const answers = new Map<string, boolean>();
  return {
    isAllowed: (url) => {
      let allowed = answers.get(url);
      if (allowed === undefined) {
        allowed = decideRobots(robots, rules, url, { steps: 0 });
        if (answers.size >= 50_000) answers.clear();
        answers.set(url, allowed);
      }
      return allowed;
    },
    crawlDelaySeconds: group?.crawlDelay,
    sitemaps: sitemaps.filter((s) => /^https?:\/\//i.test(s)),
  };
}

/** One decision: true unless the longest matching rule disallows, or the decision would cost too much. */
export function decideRobots(robots: URL, rules: RobotsRule[], url: string, counter: StepCounter): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  // URLs of another origin are governed by their own file; /robots.txt itself is always allowed (2.2.2)
  if (parsed.origin !== robots.origin || parsed.pathname === robots.pathname) return true;
  const path = robotsMatchPath(parsed.pathname + parsed.search);
  for (const rule of rules) {
    if (matchRobotsPattern(rule.pattern, path, counter)) return rule.allow;
    if (counter.steps > ROBOTS_DECISION_STEPS) return false;
  }
  return true;
}
