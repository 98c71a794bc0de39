import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { createAddressPolicy } from '../../crawler/src/core/address-policy.js';
import type { JobRequest } from '../../crawler/src/core/job-request.js';
import { JobStore, type ImageRecord, type PageRecord } from '../../crawler/src/jobs.js';
import { RobotsCache } from '../../crawler/src/worker/robots-cache.js';
import { createSafeAgent, SafeFetcher } from '../../crawler/src/worker/safe-fetch.js';
import { startInProcessWorker, waitForJob } from '../support/crawler.js';
import { redisForFile } from '../support/redis-for-file.js';
import { ENCODED_PAGES, MODERN_IMAGE_KINDS, startSyntheticSite, startTripwire, type SyntheticSite } from '../support/synthetic-site.js';

/**
 * The crawler against the web's own standards, on the synthetic site's standards cases: robots.txt per
 * RFC 9309 on every redirect hop and after percent-encoding normalisation, WHATWG encoding sniffing, the image
 * sources modern pages use, shortest-path depth whatever the order of responses, URL filters, origin scope
 * with its port, sitemaps as seeds, and a robots cache bounded in the worker and in Redis.
 */
const redis = redisForFile();
const cleanups = redis.cleanups;

function configFor(overrides: Partial<ServiceConfig['worker']> = {}): ServiceConfig {
  return parseServiceConfig({
    redis: redis.url,
    apiToken: 'test-token-123',
    keyPrefix: `std-${randomUUID().slice(0, 8)}:`,
    allow: { networks: ['127.0.0.1/32'] },
    worker: { concurrency: 8, visibilityTimeoutMs: 2000, retryBaseMs: 50, shutdownGraceMs: 1000, fetchTimeoutMs: 5000, ...overrides },
  });
}

const startWorker = (config: ServiceConfig) => startInProcessWorker(redis.url, config, (stop) => cleanups.push(stop));

async function startSite(options: Parameters<typeof startSyntheticSite>[0]): Promise<SyntheticSite> {
  const site = await startSyntheticSite(options);
  cleanups.push(() => site.close());
  return site;
}

async function crawl(config: ServiceConfig, request: Partial<JobRequest> & { urls: string[] }, timeoutMs = 60_000) {
  const store = new JobStore(redis.client, config.keyPrefix);
  const job = await store.create({ maxDepth: 3, maxPages: 10_000, scope: 'host', ...request });
  const doc = await waitForJob(store, job.id, timeoutMs);
  const pages = (await store.pages(job.id, 0, 100_000)).items;
  const images = (await store.images(job.id, 0, 100_000)).items;
  return { doc, pages, images, store };
}

const byUrl = (pages: PageRecord[]) => new Map(pages.map((p) => [p.url, p]));

describe('the crawler and the web standards', () => {
  it('checks robots.txt after percent-decoding and on every redirect hop, decodes legacy encodings, finds every image kind', async () => {
    const site = await startSite({ pages: 20, standards: true, specials: false });
    const config = configFor();
    await startWorker(config);
    const { doc, pages, images } = await crawl(config, { urls: [site.seed], maxDepth: 3 });
    expect(doc.status).toBe('done');
    const records = byUrl(pages);
    // RFC 9309 2.2.2: /%70rivate/ is /private/; the redirect into /private/ ends at the hop
    expect(records.get(`${site.origin}go/private`)).toMatchObject({ outcome: 'robots', finalUrl: `${site.origin}private/target.html` });
    expect(site.hits.get('/go/private')).toBe(1);
    expect(site.hitsUnder('/private/')).toBe(0);
    expect(site.hitsUnder('/%70rivate/')).toBe(0);
    expect(new Set(pages.filter((p) => p.outcome === 'fetched').map((p) => p.url))).toEqual(site.expected.fetched);
    expect(doc.counts.robots).toBe(site.expected.robotsDisallowed.size);
    // WHATWG sniffing: header, <meta charset>, <meta http-equiv>, and a BOM that outranks the header
    expect(ENCODED_PAGES.map((p) => records.get(`${site.origin}enc/${p.name}.html`)?.encoding)).toEqual(['windows-1252', 'windows-1252', 'windows-1252', 'utf-16le']);
    expect(new Set(images.map((i) => i.url))).toEqual(site.expected.images);
    for (const page of ENCODED_PAGES) {
      const image = images.find((i) => i.url === new URL(page.image, site.origin).href);
      expect(image, page.name).toBeDefined();
      if (page.name !== 'bom-utf16') expect(image!.alt).toMatch(/^café-ÿ/);
    }
    // every kind, and data: URIs counted only
    const kinds = new Map(images.map((i: ImageRecord) => [new URL(i.url).pathname, i.kind]));
    for (const [path, kind] of MODERN_IMAGE_KINDS) expect([path, kinds.get(path)]).toEqual([path, kind]);
    expect(new Set(images.map((i) => i.kind))).toEqual(new Set(['img', 'srcset', 'picture', 'og', 'icon', 'lazy', 'css', 'svg', 'poster', 'input']));
    expect(images.some((i) => i.url.startsWith('data:'))).toBe(false);
    expect(doc.counts.dataImages).toBeGreaterThanOrEqual(20);
    expect(records.get(site.seed)!.dataImages).toBe(2);
  });

  it('records the shortest link distance as depth, the same set whatever the number of workers and the order of responses', async () => {
    const maxDepth = 3;
    const runs: Array<Map<string, number>> = [];
    for (const [workers, concurrency, randomDelayMs] of [[1, 1, 0], [3, 8, 30], [2, 16, 30]] as const) {
      const site = await startSite({ pages: 400, branching: 3, shortcuts: true, specials: false, randomDelayMs });
      const config = configFor({ concurrency });
      for (let w = 0; w < workers; w++) await startWorker(config);
      const { doc, pages } = await crawl(config, { urls: [site.seed], maxDepth });
      expect(doc.status).toBe('done');
      const expected = site.pagesWithin(maxDepth);
      const fetched = new Map(pages.filter((p) => p.outcome === 'fetched').map((p) => [p.url.replace(site.origin, '/'), p.depth]));
      expect(fetched).toEqual(new Map([...expected].map(([url, depth]) => [url.replace(site.origin, '/'), depth])));
      expect(doc.counts.fetched).toBe(expected.size);
      runs.push(fetched);
      await cleanups.splice(0).reduce((p, c) => p.then(c), Promise.resolve() as Promise<unknown>);
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });

  it('follows include/exclude patterns, keeps origin scope to the port, and takes sitemaps as seeds when asked', async () => {
    const site = await startSite({ pages: 40, standards: true, specials: false });
    const otherPort = await startTripwire('127.0.0.1');
    cleanups.push(() => otherPort.close());
    const config = configFor();
    await startWorker(config);
    const filtered = await crawl(config, {
      urls: [site.seed], maxDepth: 4, scope: 'origin',
      include: [`${site.origin}p/**`], exclude: ['/\\/p\\/1\\d*\\.html$/'],
    });
    const fetched = filtered.pages.filter((p) => p.outcome === 'fetched').map((p) => new URL(p.url).pathname);
    expect(fetched.length).toBeGreaterThan(5);
    expect(fetched.every((p) => p.startsWith('/p/') && !/^\/p\/1\d*\.html$/.test(p))).toBe(true);
    expect(filtered.doc.request).toMatchObject({ include: [`${site.origin}p/**`], exclude: ['/\\/p\\/1\\d*\\.html$/'] });

    // same host, another port: outside the origin
    const scoped = await startSite({ pages: 3, specials: false, extraLinksOnRoot: [otherPort.origin] });
    await crawl(config, { urls: [scoped.seed], scope: 'origin' });
    expect(otherPort.hits()).toBe(0);

    const without = await crawl(config, { urls: [site.seed], maxDepth: 0 });
    expect(without.pages.map((p) => p.url)).toEqual([site.seed]);
    const withSitemaps = await crawl(config, { urls: [site.seed], maxDepth: 0, useSitemaps: true });
    expect(new Set(withSitemaps.pages.map((p) => p.url))).toEqual(new Set([site.seed, `${site.origin}orphan.html?a=1&b=2`]));
    expect(withSitemaps.images.map((i) => i.url)).toContain(`${site.origin}img/orphan.png`);
  });

  it('keeps the robots cache bounded in entries and bytes, in the worker and in Redis, with a TTL', async () => {
    const servers: Server[] = [];
    const origins: string[] = [];
    for (let i = 0; i < 12; i++) {
      const body = `User-agent: *\nDisallow: /private-${i}/\n${'# filler comment\n'.repeat(200)}${Array.from({ length: 400 }, (_, n) => `Disallow: /x${i}-${n}/`).join('\n')}\n`;
      const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(body));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      origins.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    cleanups.push(async () => {
      for (const server of servers) await new Promise((resolve) => server.close(resolve));
    });
    const config = configFor({ robotsCache: { ttlSeconds: 120, maxEntries: 4, maxBytes: 1024 * 1024, sharedMaxEntries: 6, sharedMaxBytes: 30 * 1024 } });
    const store = new JobStore(redis.client, config.keyPrefix);
    const fetcher = new SafeFetcher(createSafeAgent(createAddressPolicy(config.allow), { connectTimeoutMs: 2000 }), { timeoutMs: 5000, maxBodyBytes: 1 << 20, maxRedirects: 2, userAgent: 'depl-crawler', robotsName: 'depl-crawler' });
    const cache = new RobotsCache(redis.client, store.keys, fetcher, 'depl-crawler', config.worker.robotsCache);
    for (const [i, origin] of origins.entries()) {
      const rules = await cache.rulesFor(new URL(`${origin}/`));
      expect(rules.isAllowed(`${origin}/private-${i}/a`)).toBe(false);
      expect(cache.size.entries).toBeLessThanOrEqual(4);
      expect(Number(await redis.client.get(store.keys.robotsBytes))).toBeLessThanOrEqual(30 * 1024);
    }
    const stored = await redis.client.keys(`${config.keyPrefix}robots:*`);
    // each compacted file is ~7 KB (comments dropped): the byte cap holds Redis to 4 of them, under the entry cap
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.length).toBeLessThanOrEqual(6);
    expect(await redis.client.zcard(store.keys.robotsIndex)).toBe(stored.length);
    const sizes = (await Promise.all(stored.map((k) => redis.client.strlen(k)))).reduce((a, b) => a + b, 0);
    expect(Number(await redis.client.get(store.keys.robotsBytes))).toBe(sizes);
    for (const key of stored) {
      const ttl = await redis.client.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(120);
      expect(await redis.client.get(key)).not.toMatch(/filler comment/);
    }
    // the most recent origins are the ones kept
    expect(stored).toContain(store.keys.robots(origins.at(-1)!));
    expect(stored).not.toContain(store.keys.robots(origins[0]!));
  });

  it('keeps a robots.txt read from the shared cache only for what is left of its TTL there (RFC 9309 2.4: at most 24 hours from its fetch)', async () => {
    const config = configFor({ robotsCache: { ttlSeconds: 3600, maxEntries: 10, maxBytes: 1024 * 1024, sharedMaxEntries: 10, sharedMaxBytes: 1024 * 1024 } });
    const store = new JobStore(redis.client, config.keyPrefix);
    const fetcher = new SafeFetcher(createSafeAgent(createAddressPolicy(config.allow), { connectTimeoutMs: 2000 }), { timeoutMs: 5000, maxBodyBytes: 1 << 20, maxRedirects: 2, userAgent: 'depl-crawler', robotsName: 'depl-crawler' });
    const cache = new RobotsCache(redis.client, store.keys, fetcher, 'depl-crawler', config.worker.robotsCache);
    // another worker fetched it long ago: 1.5 s of its hour are left (nothing listens on the origin: no fetch here)
    const origin = 'http://127.0.0.1:9';
    await redis.client.set(store.keys.robots(origin), JSON.stringify({ status: 200, body: 'User-agent: *\nDisallow: /private' }), 'PX', 1500);
    const url = new URL(`${origin}/`);
    expect((await cache.rulesFor(url)).isAllowed(`${origin}/private/a`)).toBe(false);
    expect(cache.peek(url)).toBeDefined();
    const started = Date.now();
    while (cache.peek(url) !== undefined && Date.now() - started < 20_000) await new Promise((resolve) => setTimeout(resolve, 50));
    // gone from the process with the shared copy, not an hour after this worker read it
    expect(cache.peek(url)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('takes an unreachable robots.txt as a complete disallow, follows five redirects to one and allows all past them (RFC 9309 2.3.1)', async () => {
    // one origin per case: robots.txt answering 503; behind 5 redirects (followed, though pages take 2); behind 6
    const hits: string[] = [];
    const origins: string[] = [];
    for (const robots of ['503', 'hops-5', 'hops-6']) {
      const server = createServer((req, res) => {
        const path = req.url ?? '/';
        hits.push(`${robots} ${path}`);
        const hop = /^\/r(\d+)$/.exec(path);
        if (path === '/robots.txt' && robots === '503') res.writeHead(503, { 'retry-after': '0' }).end();
        else if (path === '/robots.txt') res.writeHead(302, { location: `/r${Number(robots.slice(5)) - 1}` }).end();
        else if (hop !== null && hop[1] !== '0') res.writeHead(301, { location: `/r${Number(hop[1]) - 1}` }).end();
        else if (hop !== null) res.writeHead(200, { 'content-type': 'text/plain' }).end('User-agent: *\nDisallow: /no\n');
        else res.writeHead(200, { 'content-type': 'text/html' }).end('<a href="/no">no</a>');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise((resolve) => server.close(resolve)));
      origins.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    const [unreachable, fiveHops, sixHops] = origins as [string, string, string];
    const config = configFor({ maxAttempts: 2, maxRedirects: 2 });
    await startWorker(config);
    const { doc, pages } = await crawl(config, { urls: origins.map((o) => `${o}/`), maxDepth: 1 });
    expect(doc.status).toBe('done');
    const records = byUrl(pages);
    // 2.3.1.4: nothing of the origin fetched; after every try the page is recorded as disallowed, saying why
    expect(records.get(`${unreachable}/`)).toMatchObject({ outcome: 'robots', error: expect.stringMatching(/robots\.txt answered 503: unreachable/) });
    expect(hits.filter((h) => h.startsWith('503 ') && h !== '503 /robots.txt')).toEqual([]);
    // 2.3.1.2: five redirects are followed and the file found there governs the first origin
    expect(records.get(`${fiveHops}/`)).toMatchObject({ outcome: 'fetched' });
    expect(hits).toContain('hops-5 /r0');
    expect(hits).not.toContain('hops-5 /no');
    // the unreachable origin's start page and the five-hop origin's /no (known disallowed when found: counted only)
    expect(doc.counts.robots).toBe(2);
    // more than five: unavailable, everything allowed
    expect(records.get(`${sixHops}/no`)).toMatchObject({ outcome: 'fetched' });
  });
});
