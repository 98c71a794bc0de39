import { Parser } from 'htmlparser2';

/**
 * The <loc> entries of a sitemap (sitemaps.org protocol): page URLs of a <urlset>, or the sitemaps a
 * <sitemapindex> points to. Parsed as XML with htmlparser2, streaming, without building a tree.
 */
export interface SitemapEntries {
  kind: 'urlset' | 'index' | 'unknown';
  locs: string[];
}

export function parseSitemap(xml: string, limit = 50_000): SitemapEntries {
  let kind: SitemapEntries['kind'] = 'unknown';
  const locs: string[] = [];
  let inLoc = false;
  let text = '';
  const parser = new Parser({
    onopentag(name) {
      const local = name.toLowerCase().replace(/^.*:/, '');
      if (kind === 'unknown' && local === 'urlset') kind = 'urlset';
      else if (kind === 'unknown' && local === 'sitemapindex') kind = 'index';
      else if (local === 'loc') {
        inLoc = true;
        text = '';
      }
    },
    ontext(chunk) {
      if (inLoc) text += chunk;
    },
    onclosetag(name) {
      if (inLoc && name.toLowerCase().replace(/^.*:/, '') === 'loc') {
        inLoc = false;
        const loc = text.trim();
        if (loc !== '' && locs.length < limit) locs.push(loc);
      }
    },
  }, { xmlMode: true, decodeEntities: true });
  parser.write(xml);
  parser.end();
  return { kind, locs };
}
