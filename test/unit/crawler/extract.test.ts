import { describe, expect, it } from 'vitest';
import { createExtractor, extractPage, MAX_TITLE } from '../../../crawler/src/core/extract.js';
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
    const { images, dataImages } = extractPage(page, html);
    expect(images).toEqual([
      { url: 'http://site.test/og.png', alt: '', kind: 'og' },
      { url: 'http://site.test/dir/a.png', alt: 'first', kind: 'img' },
      { url: 'http://other.test/abs.png', alt: '', kind: 'img' },
      { url: 'http://site.test/dir/s1.png', alt: '', kind: 'srcset' },
      { url: 'http://site.test/dir/s2.png', alt: '', kind: 'srcset' },
      { url: 'http://site.test/dir/p-wide.webp', alt: 'pic', kind: 'picture' },
      { url: 'http://site.test/dir/p-narrow.webp', alt: 'pic', kind: 'picture' },
      { url: 'http://site.test/dir/p.png', alt: 'pic', kind: 'img' },
    ]);
    expect(dataImages).toBe(1);
  });

  it('finds the images modern pages use, each with its kind; data: URIs are only counted', () => {
    const html = `<html><head>
      <link rel="icon" href="/favicon.ico"><link rel="apple-touch-icon" sizes="180x180" href="/touch.png">
      <link rel="shortcut icon" href="/short.ico"><link rel="stylesheet" href="/site.css">
      <style>
        @font-face { font-family: x; src: url(/font.woff2) format("woff2"); }
        @import url("/other.css");
        .hero { background-image: url('/hero.jpg'); color: red }
        .list { list-style: square url("/bullet.png") } /* background: url(/commented.png) */
      </style></head><body>
      <img class="lazyload" src="data:image/gif;base64,R0lGOD" data-src="/lazy.jpg" data-srcset="/lazy-1x.jpg 1x, /lazy-2x.jpg 2x" alt="lazy">
      <div data-bg="/bg-lazy.png"></div>
      <div style="background:#fff url(&quot;/inline.png&quot;) no-repeat"></div>
      <video poster="/poster.jpg"><source src="/movie.mp4"></video>
      <input type="image" src="/submit.png" alt="Go"><input type="text" src="/not-an-image.png">
      <svg><image href="/svg-href.png"/><image xlink:href="/svg-xlink.png"/></svg>
      <img src="DATA:image/png;base64,AAAA">
      </body></html>`;
    const { images, dataImages } = extractPage(page, html);
    expect(images.map((i) => [i.url.replace('http://site.test', ''), i.kind])).toEqual([
      ['/favicon.ico', 'icon'], ['/touch.png', 'icon'], ['/short.ico', 'icon'], ['/hero.jpg', 'css'], ['/bullet.png', 'css'],
      ['/lazy.jpg', 'lazy'], ['/lazy-1x.jpg', 'lazy'], ['/lazy-2x.jpg', 'lazy'],
      ['/bg-lazy.png', 'lazy'], ['/inline.png', 'css'], ['/poster.jpg', 'poster'], ['/submit.png', 'input'],
      ['/svg-href.png', 'svg'], ['/svg-xlink.png', 'svg'],
    ]);
    expect(images.find((i) => i.kind === 'input')?.alt).toBe('Go');
    expect(dataImages).toBe(2);
  });

  it('applies the caps after canonicalising and de-duplicating, and says how many were left out', () => {
    const toc = Array.from({ length: 6000 }, (_, i) => `<a href="page${i}.html#s1">a</a><a href="page${i}.html#s2">b</a><a href="./page${i}.html">c</a>`).join('');
    const result = extractPage(page, toc);
    expect(result.links).toHaveLength(5000);
    expect(result.linksDropped).toBe(1000);
    const few = extractPage(page, Array.from({ length: 400 }, (_, i) => `<a href="p${i}.html#x">a</a><a href="p${i}.html#y">b</a>`.repeat(20)).join(''));
    expect(few.links).toHaveLength(400);
    expect(few.linksDropped).toBe(0);
    const pics = extractPage(page, Array.from({ length: 5003 }, (_, i) => `<img src="i${i}.png#a"><img src="./i${i}.png">`).join(''));
    expect(pics.images).toHaveLength(5000);
    expect(pics.imagesDropped).toBe(3);
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
    expect(extractPage(page, html).images[0]).toEqual({ url: 'http://site.test/dir/x.webp', alt: 'a&b', kind: 'picture' });
    const css = '<style>.a { background-image: url("/one.png") } .b { background: url(/two.png) }</style><img src="3.png">';
    const chunked = createExtractor(page);
    for (let i = 0; i < css.length; i += 5) chunked.write(css.slice(i, i + 5));
    expect(chunked.end().images.map((i) => i.url)).toEqual(['http://site.test/one.png', 'http://site.test/two.png', 'http://site.test/dir/3.png']);
  });

  it('reads markup as an HTML parser does: case, entities, first attribute wins, no URLs from comments, scripts or text', () => {
    const html = `<IMG SRC="Caps.png" ALT="A &amp; B &eacute;"><img src="first.png" src="second.png">
      <img src="a&#x20;b.png"><A HREF="/upper.html">u</A>
      <!-- <img src="/comment.png"> <a href="/comment.html"> -->
      <script>document.write('<img src="/script.png"><a href="/script.html">')</script>
      <textarea><img src="/textarea.png"></textarea><title><a href="/title.html"></title>
      <p class="x" data-bg="url(&quot;/entity-bg.png&quot;)" style="list-style-image: url(/li.png)">text &lt;img src=/text.png&gt;</p>`;
    const { images, links } = extractPage(page, html);
    expect(images.map((i) => i.url.replace('http://site.test', ''))).toEqual(['/dir/Caps.png', '/dir/first.png', '/dir/a%20b.png', '/li.png', '/entity-bg.png']);
    expect(images[0]!.alt).toBe('A & B \u00e9');
    expect(links).toEqual(['http://site.test/upper.html']);
  });

  it('knows SVG and MathML from HTML: a self-closing tag closes only there, <image> is <img> outside them', () => {
    const html = `<svg/><image src="/html-1.png" alt="one"><svg viewBox="0 0 1 1"><image href="/svg-1.png"/><foreignObject><img src="/fo.png"/></foreignObject>
      <image xlink:href="/svg-2.png"/></svg><image src="/html-2.png"><math><mi><img src="/mi.png"/></mi></math><picture/><img src="/in-picture.png">
      <style>.late { background: url(/unclosed-style.png) }`;
    const { images } = extractPage(page, html);
    expect(images.map((i) => [i.url.replace('http://site.test', ''), i.kind])).toEqual([
      ['/html-1.png', 'img'], ['/svg-1.png', 'svg'], ['/fo.png', 'img'], ['/svg-2.png', 'svg'], ['/html-2.png', 'img'], ['/mi.png', 'img'],
      ['/in-picture.png', 'img'], ['/unclosed-style.png', 'css'],
    ]);
  });

  it('gives the same result whatever the chunk boundaries (inside tag names, attribute names, values and entities)', () => {
    const html = `<html><head><meta property="og:image" content="/og.png"><base href="/b/"></head><body>
      <picture><source data-srcset="l1.webp 1x, l2.webp 2x"><img src="p&amp;q.png" alt="&quot;quoted&quot;"></picture>
      <div style="background:url('/bg.png')"></div><svg><image href="s.png"/></svg><a href="x.html#frag">x</a>
      <style>.x{background:url(/style.png)}</style><img data-src="lazy.png"><title>T&amp;itle</title></body></html>`;
    const whole = extractPage(page, html);
    expect(whole.images).toHaveLength(8);
    expect(whole.title).toBe('T&itle');
    for (const size of [1, 2, 3, 13, 64]) {
      const extractor = createExtractor(page);
      for (let i = 0; i < html.length; i += size) extractor.write(html.slice(i, i + size));
      expect(extractor.end()).toEqual(whole);
    }
  });

  it('keeps the document\'s title for the archive\'s page list: the first outside SVG, entities decoded, white space collapsed, capped', () => {
    expect(extractPage(page, '<svg><title>icon</title></svg><head><title>\n  Caf&eacute; &amp; <b>bar</b>\n</title><title>second</title>').title).toBe('Caf\u00e9 & <b>bar</b>');
    expect(extractPage(page, '<title>unclosed').title).toBe('unclosed');
    expect(extractPage(page, '<title>  </title><p>no title</p>').title).toBeUndefined();
    expect(extractPage(page, '<p>none</p>').title).toBeUndefined();
    expect(extractPage(page, `<title>${'x'.repeat(5000)}</title>`).title).toHaveLength(MAX_TITLE);
  });
});
