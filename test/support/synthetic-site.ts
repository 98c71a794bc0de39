import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { benchImage, type BenchImage } from './bench-images.js';
import { syntheticImage } from './synthetic-images.js';

/**
 * A local website for crawler tests and the benchmark. Pages /p/<i>.html form a tree (page i links to pages
 * b*i+1 .. b*i+b) plus links back to page 0 and the parent, so every page is reachable and first found at its
 * tree depth. Every form of image the crawler handles appears, and the generator knows the exact set it emitted.
 * robots.txt disallows /private/, which pages link to; every request is counted by path.
 */
export interface SiteOptions {
  pages: number;
  /** Tree fan-out: links from a page to its children. */
  branching?: number;
  /** Filler bytes per page, to make pages realistically heavy. */
  padBytes?: number;
  host?: string;
  /** Extra hrefs (absolute) placed on page 0, e.g. links to a forbidden listener. */
  extraLinksOnRoot?: string[];
  /** /redirect/<n> answers 302 to redirects[n]. */
  redirects?: string[];
  /** Include the special cases (a 404, a PDF, a page that answers 503 once). */
  specials?: boolean;
  /** Render every page up front, so a benchmark does not measure the site's first-visit cost. */
  prerender?: boolean;
  /** Milliseconds each page response is held back, to make a crawl last long enough to interrupt. */
  pageDelayMs?: number;
  /**
   * Add the standards cases (robots.txt per RFC 9309, encodings, modern image sources): page 0 links to a
   * percent-encoded spelling of a disallowed path and to a redirect into a disallowed path, and to the
   * /enc/ pages, each in a legacy encoding declared by header, by <meta> or by BOM.
   */
  standards?: boolean;
  /** Page i also links to page (37i + 11) mod pages: shorter paths that a crawl may find after longer ones. */
  shortcuts?: boolean;
  /** Each page answer is held back a random 0..randomDelayMs ms, so responses arrive in a random order. */
  randomDelayMs?: number;
  /**
   * Serve the images the pages name (synthetic-images.ts: real files with known hashes, types and sizes,
   * duplicates, lying Content-Types, an HTML ".jpg"), and on page 0 one image under robots' /private/ and
   * one too large for the image tests.
   */
  images?: boolean;
  /**
   * Serve the images the pages name as whole files with their true Content-Type (bench-images.ts), each made once
   * (with `prerender`, all before the site answers): what a benchmark's crawlers download and hash.
   */
  benchImages?: boolean;
}

export interface SyntheticSite {
  /** http://host:port/ */
  origin: string;
  seed: string;
  hits: Map<string, number>;
  /** performance.now() of every page request (/p/...), in arrival order. */
  pageTimes: number[];
  hitsUnder(prefix: string): number;
  /** Every page (canonical URL) within maxDepth links of the seed, with its shortest link distance. */
  pagesWithin(maxDepth: number): Map<string, number>;
  expected: {
    /** Canonical URLs of every page that should end up fetched (HTML and non-HTML). */
    fetched: Set<string>;
    failed: Set<string>;
    robotsDisallowed: Set<string>;
    images: Set<string>;
  };
  close(): Promise<void>;
}

export async function startSyntheticSite(options: SiteOptions): Promise<SyntheticSite> {
  const host = options.host ?? '127.0.0.1';
  const branching = options.branching ?? 3;
  const specials = options.specials ?? true;
  const hits = new Map<string, number>();
  const pageTimes: number[] = [];
  const cache = new Map<number, Buffer>();
  const shortcutOf = (i: number) => (37 * i + 11) % options.pages;
  let origin = '';
  let flakyServed = false;
  const benchFiles = new Map<string, BenchImage | undefined>();
  const benchFile = (path: string) => {
    if (!benchFiles.has(path)) benchFiles.set(path, benchImage(path));
    return benchFiles.get(path);
  };

  const pageHtml = (i: number): Buffer => {
    const cached = cache.get(i);
    if (cached !== undefined) return cached;
    const children: string[] = [];
    for (let c = branching * i + 1; c <= branching * i + branching && c < options.pages; c++) children.push(`<li><a href="/p/${c}.html">page ${c}</a></li>`);
    if (options.shortcuts) children.push(`<li><a href="/p/${shortcutOf(i)}.html">shortcut</a></li>`);
    const parent = i === 0 ? 0 : Math.floor((i - 1) / branching);
    const useBase = i % 10 === 5;
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>page ${i}</title>
${useBase ? '<base href="/based/">' : ''}
<meta property="og:image" content="/og/${i}.png">
</head><body>
<header><img src="/img/logo.png" alt="logo"><a href="/p/0.html#top">home</a> <a href="/p/${parent}.html">up</a></header>
<main>
<h1>Page ${i}</h1>
<img src="img/p${i}.png" alt="page ${i}">
<img src="${origin}abs/${i}.jpg">
<img src="/s/${i}-1x.png" srcset="/s/${i}-1x.png 1x, /s/${i}-2x.png 2x">
<picture><source srcset="/pic/${i}-wide.webp 800w, /pic/${i}-narrow.webp 400w"><img src="/pic/${i}.jpg" alt="picture ${i}"></picture>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="inline">
<img src="/img/logo.png#again" alt="logo again">
<a href="/private/${i % 5}.html">members only</a>
<a href="javascript:void(0)">js</a> <a href="mailto:someone@example.invalid">mail</a>
${i === 0 && options.images ? '<img src="/private/hidden.png" alt="disallowed"><img src="/big/huge.png" alt="huge">' : ''}
${i === 0 && specials ? '<a href="/missing.html">gone</a> <a href="/files/report.pdf">pdf</a> <a href="/flaky.html">flaky</a>' : ''}
${i === 0 ? (options.extraLinksOnRoot ?? []).map((href) => `<a href="${href}">extra</a>`).join(' ') : ''}
${i === 0 ? (options.redirects ?? []).map((_, n) => `<a href="/redirect/${n}">moved</a>`).join(' ') : ''}
${i === 0 && options.standards ? MODERN_IMAGES_HTML : ''}
${i === 0 && options.standards ? `<a href="/%70rivate/encoded.html">spelled differently</a> <a href="/go/private">moved inside</a> ${ENCODED_PAGES.map((p) => `<a href="/enc/${p.name}.html">${p.name}</a>`).join(' ')}` : ''}
<ul>${children.join('')}</ul>
<p>${'lorem ipsum dolor sit amet '.repeat(Math.ceil((options.padBytes ?? 0) / 27))}</p>
</main></body></html>`;
    // Encoded once: the benchmark measures the crawler, not this server's string encoding.
    const bytes = Buffer.from(html);
    cache.set(i, bytes);
    return bytes;
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const page = /^\/p\/(\d+)\.html$/.exec(path);
    if (page && Number(page[1]) < options.pages) {
      pageTimes.push(performance.now());
      const html = pageHtml(Number(page[1]));
      const delay = (options.pageDelayMs ?? 0) + (options.randomDelayMs ? Math.floor(Math.random() * (options.randomDelayMs + 1)) : 0);
      if (delay > 0) setTimeout(() => send(res, 200, 'text/html; charset=utf-8', html), delay);
      else send(res, 200, 'text/html; charset=utf-8', html);
      return;
    }
    if (path === '/robots.txt') return send(res, 200, 'text/plain', `User-agent: *\nDisallow: /private/\n${options.standards ? `Sitemap: ${origin}sitemap-index.xml\n` : ''}`);
    if (options.standards && path === '/sitemap-index.xml') {
      return send(res, 200, 'application/xml', `<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>${origin}sitemap-pages.xml</loc></sitemap></sitemapindex>`);
    }
    if (options.standards && path === '/sitemap-pages.xml') {
      return send(res, 200, 'application/xml', `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>${origin}p/0.html</loc></url><url><loc>${origin}orphan.html?a=1&amp;b=2</loc></url></urlset>`);
    }
    if (options.standards && path === '/orphan.html') return send(res, 200, 'text/html', '<html><body><img src="/img/orphan.png"></body></html>');
    if (path === '/files/report.pdf' && specials) return send(res, 200, 'application/pdf', '%PDF-1.4 not really');
    if (path === '/flaky.html' && specials) {
      if (!flakyServed) {
        flakyServed = true;
        return send(res, 503, 'text/plain', 'try again', { 'retry-after': '0' });
      }
      return send(res, 200, 'text/html', '<html><body><img src="/img/flaky.png"></body></html>');
    }
    const redirect = /^\/redirect\/(\d+)$/.exec(path);
    if (redirect && options.redirects?.[Number(redirect[1])] !== undefined) {
      res.writeHead(302, { location: options.redirects[Number(redirect[1])] }).end();
      return;
    }
    if (path.startsWith('/private/') || path.startsWith('/%70rivate/')) return send(res, 200, 'text/html', '<html><body><img src="/img/secret.png"></body></html>');
    if (options.standards && path === '/go/private') {
      res.writeHead(302, { location: '/private/target.html' }).end();
      return;
    }
    const image = options.benchImages ? benchFile(path) : options.images ? syntheticImage(path) : undefined;
    if (image !== undefined) return send(res, 200, image.contentType, image.bytes);
    const encoded = options.standards ? ENCODED_PAGES.find((p) => path === `/enc/${p.name}.html`) : undefined;
    if (encoded !== undefined) return send(res, 200, encoded.contentType, encoded.body());
    return send(res, 404, 'text/plain', 'not found');
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  origin = `http://${host}:${(server.address() as AddressInfo).port}/`;
  if (options.prerender) for (let i = 0; i < options.pages; i++) pageHtml(i);

  const expected = { fetched: new Set<string>(), failed: new Set<string>(), robotsDisallowed: new Set<string>(), images: new Set<string>() };
  for (let i = 0; i < options.pages; i++) {
    expected.fetched.add(`${origin}p/${i}.html`);
    const base = i % 10 === 5 ? `${origin}based/` : `${origin}p/`;
    for (const image of [`${origin}img/logo.png`, `${origin}og/${i}.png`, `${base}img/p${i}.png`, `${origin}abs/${i}.jpg`,
      `${origin}s/${i}-1x.png`, `${origin}s/${i}-2x.png`, `${origin}pic/${i}-wide.webp`, `${origin}pic/${i}-narrow.webp`, `${origin}pic/${i}.jpg`]) {
      expected.images.add(image);
    }
    expected.robotsDisallowed.add(`${origin}private/${i % 5}.html`);
  }
  if (options.standards) {
    for (const image of MODERN_IMAGES) expected.images.add(new URL(image.path, origin).href);
    expected.robotsDisallowed.add(`${origin}%70rivate/encoded.html`);
    expected.robotsDisallowed.add(`${origin}go/private`);
    for (const page of ENCODED_PAGES) {
      expected.fetched.add(`${origin}enc/${page.name}.html`);
      expected.images.add(new URL(page.image, origin).href);
    }
  }
  if (options.benchImages && options.prerender) for (const url of expected.images) benchFile(new URL(url).pathname);
  if (options.images && options.pages > 0) {
    expected.images.add(`${origin}private/hidden.png`);
    expected.images.add(`${origin}big/huge.png`);
  }
  if (specials) {
    expected.fetched.add(`${origin}files/report.pdf`);
    expected.fetched.add(`${origin}flaky.html`);
    expected.images.add(`${origin}img/flaky.png`);
    expected.failed.add(`${origin}missing.html`);
  }

  return {
    origin,
    seed: `${origin}p/0.html`,
    hits,
    pageTimes,
    hitsUnder: (prefix) => [...hits].filter(([p]) => p.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0),
    pagesWithin: (maxDepth) => {
      // breadth-first over the page links pageHtml writes: children, home, parent, shortcut
      const depth = new Map<number, number>([[0, 0]]);
      const queue = [0];
      while (queue.length > 0) {
        const i = queue.shift()!;
        const d = depth.get(i)!;
        if (d >= maxDepth) continue;
        const links = [0, i === 0 ? 0 : Math.floor((i - 1) / branching)];
        for (let c = branching * i + 1; c <= branching * i + branching && c < options.pages; c++) links.push(c);
        if (options.shortcuts) links.push(shortcutOf(i));
        for (const j of links) {
          if (!depth.has(j)) {
            depth.set(j, d + 1);
            queue.push(j);
          }
        }
      }
      return new Map([...depth].map(([i, d]) => [`${origin}p/${i}.html`, d]));
    },
    expected,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Page 0 of a standards site also names images the way modern pages do, one of each kind. */
const MODERN_IMAGES: Array<{ path: string; kind: string }> = [
  { path: '/modern/favicon.ico', kind: 'icon' }, { path: '/modern/touch.png', kind: 'icon' },
  { path: '/modern/lazy.jpg', kind: 'lazy' }, { path: '/modern/lazy-2x.jpg', kind: 'lazy' },
  { path: '/modern/inline-bg.png', kind: 'css' }, { path: '/modern/block-bg.png', kind: 'css' },
  { path: '/modern/poster.jpg', kind: 'poster' }, { path: '/modern/go.png', kind: 'input' }, { path: '/modern/vector.png', kind: 'svg' },
];
export const MODERN_IMAGE_KINDS = new Map(MODERN_IMAGES.map((i) => [i.path, i.kind]));
const MODERN_IMAGES_HTML = `<link rel="icon" href="/modern/favicon.ico"><link rel="apple-touch-icon" href="/modern/touch.png">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/modern/lazy.jpg" data-srcset="/modern/lazy-2x.jpg 2x" alt="lazy">
<div style="background-image: url('/modern/inline-bg.png')"></div><style>.b { background: url(/modern/block-bg.png) } @font-face { src: url(/modern/font.woff2) }</style>
<video poster="/modern/poster.jpg"></video><input type="image" src="/modern/go.png" alt="go">
<svg width="1" height="1"><image href="/modern/vector.png"/></svg>`;

/**
 * Pages in legacy encodings: each names one image whose file name is non-ASCII ("café-ÿ.png": é and ÿ are one
 * byte in ISO-8859-1/windows-1252), so decoding the page with the wrong encoding yields a different URL.
 * The encoding is declared in the Content-Type header, by <meta charset>, by <meta http-equiv>, or by a BOM.
 */
const IMAGE_NAME = 'caf\u00e9-\u00ff\u20ac';
function latin1Page(declaration: string, image: string, encoding: 'latin1' | 'win1252'): Buffer {
  const html = `<!doctype html><html><head>${declaration}<title>encoded</title></head><body><p>${'x'.repeat(40)}</p><img src="${image}" alt="${IMAGE_NAME}"></body></html>`;
  if (encoding === 'latin1') return Buffer.from(html.replace(/\u20ac/g, ''), 'latin1');
  // windows-1252: the euro sign is byte 0x80
  return Buffer.concat([...html].map((c) => (c === '\u20ac' ? Buffer.from([0x80]) : Buffer.from(c, 'latin1'))));
}
export const ENCODED_PAGES: Array<{ name: string; contentType: string; image: string; body: () => Buffer }> = [
  { name: 'header-latin1', contentType: 'text/html; charset=ISO-8859-1', image: `/enc/img/h-${IMAGE_NAME.replace('\u20ac', '')}.png`, body() { return latin1Page('', this.image, 'latin1'); } },
  { name: 'meta-latin1', contentType: 'text/html', image: `/enc/img/m-${IMAGE_NAME.replace('\u20ac', '')}.png`, body() { return latin1Page('<meta charset="iso-8859-1">', this.image, 'latin1'); } },
  { name: 'meta-http-equiv-1252', contentType: 'text/html', image: `/enc/img/e-${IMAGE_NAME}.png`, body() { return latin1Page('<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">', this.image, 'win1252'); } },
  { name: 'bom-utf16', contentType: 'text/html; charset=windows-1252', image: `/enc/img/b-${IMAGE_NAME}.png`, body() {
    // A BOM outranks the header (WHATWG encoding sniffing): this page is UTF-16LE whatever the header says.
    const html = `<!doctype html><html><head><title>bom</title></head><body><img src="${this.image}"></body></html>`;
    return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(html, 'utf16le')]);
  } },
];

/** A listener that must never be reached: it only counts requests. */
export async function startTripwire(host: string): Promise<{ origin: string; hits: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = createServer((_req, res) => {
    count++;
    res.end('you should not be here');
  });
  server.on('connection', () => { count++; });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    origin: `http://${host}:${(server.address() as AddressInfo).port}/`,
    hits: () => count,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
