import { describe, expect, it } from 'vitest';
import { createExtractor, extractPage } from '../../../crawler/src/core/extract.js';
import { parseSrcset } from '../../../crawler/src/core/srcset.js';

describe('parseSrcset', () => {
  it.each([
    ['a.png 1x, b.png 2x', ['a.png', 'b.png']],
    ['a.png', ['a.png']],
    ['  a.png   480w ,b.png 800w', ['a.png', 'b.png']],
    ['https://cdn.e.com/i/w_100,h_50/a.png 100w, c.png 200w', ['https://cdn.e.com/i/w_100,h_50/a.png', 'c.png']],
    ['a.png,b.png', ['a.png,b.png']],
    ['a.png, b.png', ['a.png', 'b.png']],
    ['', []],
  ])('%j', (value, expected) => {
    expect(parseSrcset(value)).toEqual(expected);
  });
});

describe('extractPage', () => {
  const page = 'http://site.test/dir/page.html';

  it('finds images in every form and resolves them against the page', () => {
    const html = `<html><head>
      <meta property="og:image" content="/og.png">
      </head><body>
      <img src="a.png" alt=" first ">
      <img src="http://other.test/abs.png" srcset="s1.png 1x, s2.png 2x">
      <picture><source srcset="p-wide.webp 800w, p-narrow.webp 400w"><img src="p.png" alt="pic"></picture>
      <video><source src="movie.mp4"></video>
      <img src="data:image/png;base64,AAAA"><img src="a.png#dup"><img>
      </body></html>`;
    const { images } = extractPage(page, html);
    expect(images).toEqual([
      { url: 'http://site.test/og.png', alt: '' },
      { url: 'http://site.test/dir/a.png', alt: 'first' },
      { url: 'http://other.test/abs.png', alt: '' },
      { url: 'http://site.test/dir/s1.png', alt: '' },
      { url: 'http://site.test/dir/s2.png', alt: '' },
      { url: 'http://site.test/dir/p-wide.webp', alt: 'pic' },
      { url: 'http://site.test/dir/p-narrow.webp', alt: 'pic' },
      { url: 'http://site.test/dir/p.png', alt: 'pic' },
    ]);
  });

  it('applies <base href> to every URL, even ones before it', () => {
    const html = '<a href="early.html">x</a><base href="/assets/"><img src="b.png"><a href="late.html"></a>';
    const result = extractPage(page, html);
    expect(result.images.map((i) => i.url)).toEqual(['http://site.test/assets/b.png']);
    expect(result.links).toEqual(['http://site.test/assets/early.html', 'http://site.test/assets/late.html']);
  });

  it('keeps only http(s) links, canonical and deduplicated', () => {
    const html = `<a href="javascript:void(0)">j</a><a href="mailto:x@y.z">m</a><a href="ftp://f/">f</a>
      <a href="next.html#top">n</a><a href="next.html">n</a><area href="/map.html"><a href="HTTP://SITE.TEST/dir/next.html">`;
    expect(extractPage(page, html).links).toEqual(['http://site.test/dir/next.html', 'http://site.test/map.html']);
  });

  it('gives the same result when the body arrives in small chunks', () => {
    const html = '<html><body><picture><source srcset="x.webp"><img src="y.png" alt="a&amp;b"></picture><a href="z.html">z</a></body></html>';
    const extractor = createExtractor(page);
    for (let i = 0; i < html.length; i += 7) extractor.write(html.slice(i, i + 7));
    expect(extractor.end()).toEqual(extractPage(page, html));
    expect(extractPage(page, html).images[0]).toEqual({ url: 'http://site.test/dir/x.webp', alt: 'a&b' });
  });
});
