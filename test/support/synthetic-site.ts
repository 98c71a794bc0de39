import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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
}

export interface SyntheticSite {
  /** http://host:port/ */
  origin: string;
  seed: string;
  hits: Map<string, number>;
  /** performance.now() of every page request (/p/...), in arrival order. */
  pageTimes: number[];
  hitsUnder(prefix: string): number;
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
  let origin = '';
  let flakyServed = false;

  const pageHtml = (i: number): Buffer => {
    const cached = cache.get(i);
    if (cached !== undefined) return cached;
    const children: string[] = [];
    for (let c = branching * i + 1; c <= branching * i + branching && c < options.pages; c++) children.push(`<li><a href="/p/${c}.html">page ${c}</a></li>`);
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
${i === 0 && specials ? '<a href="/missing.html">gone</a> <a href="/files/report.pdf">pdf</a> <a href="/flaky.html">flaky</a>' : ''}
${i === 0 ? (options.extraLinksOnRoot ?? []).map((href) => `<a href="${href}">extra</a>`).join(' ') : ''}
${i === 0 ? (options.redirects ?? []).map((_, n) => `<a href="/redirect/${n}">moved</a>`).join(' ') : ''}
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
      if (options.pageDelayMs) setTimeout(() => send(res, 200, 'text/html; charset=utf-8', html), options.pageDelayMs);
      else send(res, 200, 'text/html; charset=utf-8', html);
      return;
    }
    if (path === '/robots.txt') return send(res, 200, 'text/plain', 'User-agent: *\nDisallow: /private/\n');
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
    if (path.startsWith('/private/')) return send(res, 200, 'text/html', '<html><body><img src="/img/secret.png"></body></html>');
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
    expected,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

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
