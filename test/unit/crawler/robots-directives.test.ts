import { describe, expect, it } from 'vitest';
import { extractPage } from '../../../crawler/src/core/extract.js';
import { keepsImagesOut, mergeOptOuts, optOutsFromHeader, optOutsFromMeta, productToken } from '../../../crawler/src/core/robots-directives.js';

const token = productToken('depl-crawler/0.1 (+https://example.org/bot)');

describe('X-Robots-Tag and robots meta opt-outs', () => {
  it('names this crawler by its user agent\'s product token', () => {
    expect(token).toBe('depl-crawler');
    expect(productToken('  Mozilla/5.0 (compatible)')).toBe('mozilla');
    expect(productToken('Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0')).toBe('mozilla');
  });

  it('names it by the product of a browser-style "compatible;" comment, as sites address such crawlers', () => {
    expect(productToken('Mozilla/5.0 (compatible; depl-crawler/1.0; +https://example.org/bot)')).toBe('depl-crawler');
    expect(productToken('Mozilla/5.0 (Compatible;Depl_Crawler; +https://example.org/bot)')).toBe('depl_crawler');
    expect(productToken('Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)')).toBe('bingbot');
    const compatible = productToken('Mozilla/5.0 (compatible; depl-crawler/1.0)');
    expect(optOutsFromHeader(['depl-crawler: noai', 'mozilla: noindex'], compatible)).toEqual(['noai']);
  });

  it('reads rules for every crawler, case-insensitively, across several header values', () => {
    expect(optOutsFromHeader(['NoIndex, nofollow'], token)).toEqual(['noindex', 'nofollow']);
    expect(optOutsFromHeader(['noimageindex', 'noai'], token)).toEqual(['noimageindex', 'noai']);
    expect(optOutsFromHeader(['none'], token)).toEqual(['noindex', 'nofollow']);
    expect(optOutsFromHeader(['all', 'max-image-preview:large, nosnippet'], token)).toEqual([]);
  });

  it('applies a rule named for another crawler only to that crawler, and one named for us to us', () => {
    expect(optOutsFromHeader(['googlebot: noindex, nofollow'], token)).toEqual([]);
    expect(optOutsFromHeader(['googlebot: noindex', 'depl-crawler: noimageai'], token)).toEqual(['noimageai']);
    expect(optOutsFromHeader(['Depl-Crawler: nofollow, otherbot: noindex'], token)).toEqual(['nofollow']);
  });

  it('does not take a rule with a value of its own for a user agent', () => {
    expect(optOutsFromHeader(['unavailable_after: 25 Jun 2010 15:00:00 PST, noindex'], token)).toEqual(['noindex']);
    // an RFC 850 date has a comma of its own: what follows it is still the date, not a crawler's name
    expect(optOutsFromHeader(['unavailable_after: Friday, 25-Jun-10 15:00:00 GMT, noindex'], token)).toEqual(['noindex']);
    expect(optOutsFromHeader(['depl-crawler: unavailable_after: Friday, 25-Jun-10 15:00:00 GMT, noai'], token)).toEqual(['noai']);
  });

  it('reads <meta name="robots"> and a meta named after this crawler, never one for another crawler', () => {
    const page = extractPage('https://site.test/', '<head><meta name="ROBOTS" content="noimageindex"><meta name="googlebot" content="nofollow"><meta name="description" content="noindex"></head>');
    expect(page.robotsMeta).toEqual([{ name: 'robots', content: 'noimageindex' }]);
    expect(optOutsFromMeta([...page.robotsMeta, { name: 'depl-crawler', content: 'noai, nofollow' }, { name: 'googlebot', content: 'noindex' }], token)).toEqual(['nofollow', 'noimageindex', 'noai']);
  });

  it('merges sources in one order; every opt-out but nofollow keeps images out', () => {
    expect(mergeOptOuts(['noai'], ['nofollow', 'noai'])).toEqual(['nofollow', 'noai']);
    expect(keepsImagesOut(['nofollow'])).toBe(false);
    for (const rule of ['noindex', 'noimageindex', 'noai', 'noimageai'] as const) expect(keepsImagesOut([rule])).toBe(true);
  });
});
