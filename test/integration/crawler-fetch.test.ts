import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddressPolicy } from '../../crawler/src/core/address-policy.js';
import { ROBOTS_MIN_REDIRECTS } from '../../crawler/src/core/robots.js';
import { createSafeAgent, isBlocked, resolveAllowed, SafeFetcher, TooManyRedirectsError } from '../../crawler/src/worker/safe-fetch.js';

/** The SSRF-safe fetcher against a loopback server: limits, content types, redirect checks. */
let server: Server;
let origin: string;
const limits = { timeoutMs: 2000, maxBodyBytes: 64 * 1024, maxRedirects: 2, userAgent: 'test', robotsName: 'test' };
const allowLoopback = createAddressPolicy({ hosts: [], networks: ['127.0.0.1/32'] });

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/big') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.write('<html><body><img src="/early.png">');
      res.end(`${'<p>filler</p>'.repeat(20_000)}<img src="/late.png"></body></html>`);
    } else if (path === '/captcha') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><head><title>Are you a robot?</title></head><body><div class="g-recaptcha"></div></body></html>');
    } else if (path === '/denied') {
      res.writeHead(403, { 'content-type': 'text/html' }).end('<title>Access denied</title>');
    } else if (path === '/article-ascii' || path === '/article-accents') {
      // an article about captchas, 30,000 characters long: content. In UTF-8 the accented one is 60 KB, so its
      // first 32 KiB are only 16,384 characters: the classifier counts the characters of the text it is given
      const letter = path === '/article-ascii' ? 'e' : 'é';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.write('<title>Are you a robot?</title><div class="g-recaptcha"></div><p>');
      res.end(`${letter.repeat(30_000)}</p>`);
    } else if (path === '/pdf') {
      res.writeHead(200, { 'content-type': 'application/pdf' }).end('%PDF <img src="/no.png">');
    } else if (path === '/to-file') {
      res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    } else if (path.startsWith('/hops/')) {
      // /hops/N redirects N more times, then answers a robots.txt
      const left = Number(path.slice('/hops/'.length));
      if (left > 0) res.writeHead(301, { location: `/hops/${left - 1}` }).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('User-agent: *\nDisallow: /\n');
    } else if (path === '/latin1-robots') {
      // 3,000 bytes of windows-1252 (é is one byte 0xE9, three once decoded as UTF-8's U+FFFD), no final newline
      res.writeHead(200, { 'content-type': 'text/plain' }).end(Buffer.from(`User-agent: *\n# ${'\u00e9'.repeat(2960)}\nDisallow: /x`, 'latin1'));
    } else if (path === '/bytes-600') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '600' }).end(Buffer.alloc(600, 1));
    } else if (path === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
    } else if (path === '/slow') {
      setTimeout(() => res.end('late'), 5000).unref();
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<img src="ok.png" alt="é">');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('SafeFetcher', () => {
  const fetcher = () => new SafeFetcher(createSafeAgent(allowLoopback, { connectTimeoutMs: 1000 }), limits);

  it('parses HTML as it streams and decodes the declared charset', async () => {
    const page = await fetcher().fetchPage(`${origin}/`);
    expect(page).toMatchObject({ kind: 'html', status: 200, extract: { images: [{ url: `${origin}/ok.png`, alt: 'é' }] } });
  });

  it('stops reading at the body cap and keeps what it parsed', async () => {
    const page = await fetcher().fetchPage(`${origin}/big`);
    expect(page.kind).toBe('html');
    if (page.kind !== 'html') return;
    expect(page.truncated).toBe(true);
    expect(page.extract.images.map((i) => i.url)).toEqual([`${origin}/early.png`]);
  });

  it('says whether a page or an error answer is a block page, counting a page\'s size in characters', async () => {
    expect(await fetcher().fetchPage(`${origin}/captcha`)).toMatchObject({ kind: 'html', blockPage: { blocked: true, reason: 'captcha (HTTP 200)' } });
    expect(await fetcher().fetchPage(`${origin}/denied`)).toMatchObject({ kind: 'http-error', blockPage: { blocked: true, reason: 'access denied (HTTP 403)' } });
    expect(await fetcher().fetchPage(`${origin}/`)).toMatchObject({ kind: 'html', blockPage: { blocked: false } });
    for (const article of ['/article-ascii', '/article-accents']) {
      const page = await fetcher().fetchPage(`${origin}${article}`);
      expect(page).toMatchObject({ kind: 'html', truncated: false, blockPage: { blocked: false } });
      // nothing of the page is kept beyond its parse (no archive asked)
      expect(page.exchange.body).toBeUndefined();
    }
  });

  it('does not parse other content types', async () => {
    expect(await fetcher().fetchPage(`${origin}/pdf`)).toMatchObject({ kind: 'other', contentType: 'application/pdf' });
  });

  it('refuses a redirect to a non-http scheme and stops redirect loops', async () => {
    const error = await fetcher().fetchPage(`${origin}/to-file`).catch((e: unknown) => e);
    expect(isBlocked(error)).toBe(true);
    await expect(fetcher().fetchPage(`${origin}/loop`)).rejects.toThrow(/more than 2 redirects/);
  });

  it('follows at least five redirects to a robots.txt (RFC 9309 2.3.1.2) whatever the pages\' limit, and says when there were more', async () => {
    expect(ROBOTS_MIN_REDIRECTS).toBe(5);
    // the pages' limit here is 2
    await expect(fetcher().fetchText(`${origin}/hops/3`, 1024)).rejects.toBeInstanceOf(TooManyRedirectsError);
    expect(await fetcher().fetchText(`${origin}/hops/5`, 1024, undefined, ROBOTS_MIN_REDIRECTS)).toEqual({ status: 200, body: 'User-agent: *\nDisallow: /\n', truncated: false });
    await expect(fetcher().fetchText(`${origin}/hops/6`, 1024, undefined, ROBOTS_MIN_REDIRECTS)).rejects.toBeInstanceOf(TooManyRedirectsError);
  });

  it('says whether a text answer was cut at its cap by the bytes read, not by the length of the decoded text (RFC 9309 2.5)', async () => {
    const whole = await fetcher().fetchText(`${origin}/latin1-robots`, 4000);
    // decoded, its 2,960 bytes 0xE9 are 8,880 bytes of U+FFFD: more than the cap, yet nothing was cut
    expect(Buffer.byteLength(whole.body)).toBeGreaterThan(4000);
    expect(whole).toMatchObject({ status: 200, truncated: false });
    expect(whole.body.endsWith('Disallow: /x')).toBe(true);
    expect(await fetcher().fetchText(`${origin}/latin1-robots`, 1000)).toMatchObject({ status: 200, truncated: true });
  });

  it('holds image bodies within its in-flight budget: a download that would go over waits, before its body, for one to be released', async () => {
    const budgeted = new SafeFetcher(createSafeAgent(allowLoopback, { connectTimeoutMs: 1000 }), { ...limits, imageBytesInFlight: 1000 });
    const first = await budgeted.fetchBytes(`${origin}/bytes-600`, 10_000);
    let secondRead = false;
    const second = budgeted.fetchBytes(`${origin}/bytes-600`, 10_000).then((fetched) => { secondRead = true; return fetched; });
    // its answer has come (a second request, a second connection), yet its 600 bytes do not fit beside the first's
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(secondRead).toBe(false);
    if (first.kind !== 'bytes') throw new Error(`expected bytes, got ${first.kind}`);
    first.release();
    const fetched = await second;
    expect(fetched).toMatchObject({ kind: 'bytes', status: 200 });
    if (fetched.kind === 'bytes') {
      expect(fetched.body.length).toBe(600);
      fetched.release();
    }
    // a body that is too large gives its place back itself
    expect(await budgeted.fetchBytes(`${origin}/bytes-600`, 100)).toMatchObject({ kind: 'too-large' });
    const third = await budgeted.fetchBytes(`${origin}/bytes-600`, 10_000);
    expect(third.kind).toBe('bytes');
  });

  it('times out a page that does not answer', async () => {
    await expect(fetcher().fetchPage(`${origin}/slow`)).rejects.toThrow();
  });

  it('refuses loopback when the config does not allow it, and names whatever resolves inside', async () => {
    const strict = new SafeFetcher(createSafeAgent(createAddressPolicy({ hosts: [], networks: [] }), { connectTimeoutMs: 1000 }), limits);
    const error = await strict.fetchPage(`${origin}/`).catch((e: unknown) => e);
    expect(isBlocked(error)).toBe(true);
    await expect(resolveAllowed('localhost', createAddressPolicy({ hosts: [], networks: [] }))).rejects.toThrow(/refusing localhost .* loopback/);
    await expect(resolveAllowed('localhost', createAddressPolicy({ hosts: ['localhost'], networks: [] }))).resolves.toBeTruthy();
    await expect(resolveAllowed('[::ffff:169.254.169.254]', allowLoopback)).rejects.toThrow(/linkLocal/);
  });
});
