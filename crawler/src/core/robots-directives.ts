/**
 * Opt-outs a site states per page or per file, beside robots.txt: the `X-Robots-Tag` response header and
 * `<meta name="robots">` (or a meta named after this crawler's product token), as search engines read them
 * (Google's "Robots meta tag and X-Robots-Tag" specification), plus the `noai` / `noimageai` values sites
 * use to keep their content out of datasets. What each opt-out changes in a crawl is decided in the worker.
 */

export const OPT_OUTS = ['noindex', 'nofollow', 'noimageindex', 'noai', 'noimageai', 'noarchive'] as const;
export type OptOut = (typeof OPT_OUTS)[number];

/** Rules that may carry a `:` of their own, so a name before a colon is not taken for a user agent. */
const RULES_WITH_VALUES = new Set(['unavailable_after', 'max-snippet', 'max-image-preview', 'max-video-preview']);
const ALL_RULES = new Set<string>([...OPT_OUTS, 'none', 'all', 'nosnippet', 'indexifembedded', 'notranslate', 'nocache', ...RULES_WITH_VALUES]);

/** What a crawler's name looks like where a header names one (`googlebot-news:`); a date's `Jun-10 15:` is not one. */
const USER_AGENT_NAME = /^[a-z0-9_-]+$/;

/** What a robots.txt product token may hold (RFC 9309 2.2.1): letters, "-" and "_". */
export const PRODUCT_TOKEN = /^[A-Za-z_-]+$/;

/**
 * The token a site names this crawler by in robots.txt, X-Robots-Tag and robots metas, lower-cased: the product
 * in a browser-style `compatible;` comment when the user agent has one (`Mozilla/5.0 (compatible;
 * depl-crawler/1.0; +https://...)` is `depl-crawler`, not `mozilla`, as sites address Googlebot), else the user
 * agent's first product (`depl-crawler/0.1 (+https://...)`).
 */
export function productToken(userAgent: string): string {
  const compatible = /[(;]\s*compatible\s*;\s*([^\s/;()]+)/i.exec(userAgent)?.[1];
  return (compatible ?? /^[^\s/]+/.exec(userAgent.trim())?.[0] ?? '').toLowerCase();
}

/**
 * The opt-outs that apply to this crawler in `X-Robots-Tag` header values. A value may start with a user
 * agent (`otherbot: noindex, nofollow`): its rules apply to that crawler only, up to the next user agent
 * named in the same value. Unknown rules are ignored, as search engines do; so is the rest of a rule's value after
 * a comma (`unavailable_after: Friday, 25-Jun-10 15:00:00 GMT`): only a crawler's name before a colon changes
 * whom the following rules are for.
 */
export function optOutsFromHeader(values: readonly string[], token: string): OptOut[] {
  const found = new Set<OptOut>();
  for (const value of values) {
    let appliesToUs = true;
    for (const part of value.split(',')) {
      let rule = part.trim().toLowerCase();
      const colon = rule.indexOf(':');
      if (colon > 0) {
        const name = rule.slice(0, colon).trim();
        if (!RULES_WITH_VALUES.has(name) && !ALL_RULES.has(name) && USER_AGENT_NAME.test(name)) {
          appliesToUs = name === token;
          rule = rule.slice(colon + 1).trim();
        }
      }
      if (appliesToUs) addRule(found, rule);
    }
  }
  return sorted(found);
}

/** The opt-outs in the page's `<meta name content>` pairs that name `robots` or this crawler's token. */
export function optOutsFromMeta(metas: ReadonlyArray<{ name: string; content: string }>, token: string): OptOut[] {
  const found = new Set<OptOut>();
  for (const { name, content } of metas) {
    const who = name.trim().toLowerCase();
    if (who !== 'robots' && who !== token) continue;
    for (const rule of content.split(',')) addRule(found, rule.trim().toLowerCase());
  }
  return sorted(found);
}

function addRule(found: Set<OptOut>, rule: string): void {
  if (rule === 'none') {
    found.add('noindex');
    found.add('nofollow');
  } else if ((OPT_OUTS as readonly string[]).includes(rule)) found.add(rule as OptOut);
}

function sorted(found: Set<OptOut>): OptOut[] {
  return OPT_OUTS.filter((rule) => found.has(rule));
}

/** The union of several sources' opt-outs (the header and the page's metas), in one order. */
export function mergeOptOuts(...lists: ReadonlyArray<readonly OptOut[]>): OptOut[] {
  const found = new Set(lists.flat());
  return OPT_OUTS.filter((rule) => found.has(rule));
}

/** Any of these keeps a page's images (or an image file) out of the crawl's results (nofollow and noarchive do not). */
export function keepsImagesOut(optOuts: readonly OptOut[]): boolean {
  return optOuts.some((rule) => rule !== 'nofollow' && rule !== 'noarchive');
}

/** noarchive keeps a page or file out of an archive job's WARC records (it is still crawled and listed). */
export function keepsOutOfArchive(optOuts: readonly OptOut[]): boolean {
  return optOuts.includes('noarchive');
}
