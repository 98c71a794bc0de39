/**
 * Canonical page URLs: the key for per-job dedupe. `new URL()` already lower-cases the host, drops default
 * ports and decodes decimal/hex IPv4 literals; on top of that we drop the fragment, credentials and tracking
 * parameters and sort the query. We deliberately keep `www.` and trailing slashes (normalize-url strips them,
 * which merges distinct pages on some servers).
 */
const TRACKING_PARAMS = new Set(['fbclid', 'gclid', 'dclid', 'msclkid', 'yclid', 'mc_cid', 'mc_eid', '_ga', '_gl', 'igshid']);

export const CRAWLABLE_PROTOCOLS = new Set(['http:', 'https:']);

export function parseHttpUrl(raw: string, base?: string | URL): URL | null {
  let url: URL;
  try {
    url = base === undefined ? new URL(raw) : new URL(raw, base);
  } catch {
    return null;
  }
  return CRAWLABLE_PROTOCOLS.has(url.protocol) && url.hostname !== '' ? url : null;
}

/** The canonical form of an http(s) URL, or null for anything we do not crawl (mailto:, javascript:, junk). */
export function canonicalUrl(raw: string, base?: string | URL): string | null {
  const url = parseHttpUrl(raw.trim(), base);
  if (url === null) return null;
  url.hash = '';
  url.username = '';
  url.password = '';
  if (url.hostname.endsWith('.')) url.hostname = url.hostname.replace(/\.+$/, '');
  if (url.search !== '') {
    const params = url.searchParams;
    const keys = [...params.keys()];
    const dropped = keys.filter((k) => k.toLowerCase().startsWith('utm_') || TRACKING_PARAMS.has(k.toLowerCase()));
    const sorted = keys.every((k, i) => i === 0 || keys[i - 1]! <= k);
    // Re-serialising rewrites the query's encoding, so only do it when it changes something.
    if (dropped.length > 0 || !sorted) {
      for (const k of dropped) params.delete(k);
      params.sort();
    }
    if (url.search === '?') url.search = '';
  }
  return url.href;
}

/** Why a URL given at submission is not crawlable, or null when it is. */
export function describeUnsupportedUrl(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return 'is not an absolute URL';
  }
  if (!CRAWLABLE_PROTOCOLS.has(url.protocol)) return `uses ${url.protocol} (only http: and https: are crawled)`;
  if (url.hostname === '') return 'has no host';
  return null;
}
