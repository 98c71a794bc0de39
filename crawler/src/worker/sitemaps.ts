import { parseSitemap } from '../core/sitemap.js';
import { canonicalUrl } from '../core/url.js';
import type { RobotsRules } from '../core/robots.js';
import type { SafeFetcher } from './safe-fetch.js';

/** Bounds for one origin's sitemaps: a hostile index cannot send the worker on an endless walk. */
const MAX_SITEMAPS = 20;
const MAX_SITEMAP_BYTES = 10 * 1024 * 1024;
const MAX_URLS = 50_000;

/**
 * Page URLs from an origin's sitemaps (robots.txt `Sitemap:` lines, else /sitemap.xml), following sitemap
 * indexes, canonicalised and de-duplicated. Sitemaps robots.txt disallows are not fetched; unreachable or
 * malformed ones are skipped (sitemaps are optional seeds, never a reason to fail the page).
 */
export async function sitemapUrls(origin: string, rules: RobotsRules, fetcher: SafeFetcher, signal?: AbortSignal): Promise<string[]> {
  const queue = rules.sitemaps.length > 0 ? [...rules.sitemaps] : [`${origin}/sitemap.xml`];
  const visited = new Set<string>();
  const urls = new Set<string>();
  while (queue.length > 0 && visited.size < MAX_SITEMAPS && urls.size < MAX_URLS) {
    const next = canonicalUrl(queue.shift()!);
    if (next === null || visited.has(next) || /\.gz$/i.test(new URL(next).pathname)) continue;
    visited.add(next);
    if (new URL(next).origin === origin && !rules.isAllowed(next)) continue;
    let answer;
    try {
      answer = await fetcher.fetchText(next, MAX_SITEMAP_BYTES, signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      continue;
    }
    if (answer.status < 200 || answer.status >= 300) continue;
    const { kind, locs } = parseSitemap(answer.body, MAX_URLS);
    if (kind === 'index') queue.push(...locs);
    else if (kind === 'urlset') {
      for (const loc of locs) {
        const url = canonicalUrl(loc);
        if (url !== null) urls.add(url);
      }
    }
  }
  return [...urls];
}
