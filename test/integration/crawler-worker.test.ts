import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { workerConnection } from '../../crawler/src/redis.js';
import yauzl from 'yauzl';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { IMAGE_TASK_DEPTH, JobStore, type ImageRecord, type JobDocument, type PageRecord } from '../../crawler/src/jobs.js';
import { PATTERN_LIMITS } from '../../crawler/src/core/url-patterns.js';
import { crawlerKeys } from '../../crawler/src/keys.js';
import { RedisImageStore } from '../../crawler/src/image-store.js';
import { createCrawlerApi } from '../../crawler/src/api/app.js';
import { CrawlerClient } from '../../crawler/src/client.js';
import { ServiceSecret } from '../../crawler/src/core/secret.js';
import { downloadJobFiles, downloadJobZip, type DownloadProgress } from '../../src/workflows/crawl.js';
import { CrawlWorker, READ_BLOCK_MS } from '../../crawler/src/worker/crawl-worker.js';
import { spawnService, waitForJob, workerEntry, writeServiceConfig, type ServiceProcess } from '../support/crawler.js';
import { redisForFile } from '../support/redis-for-file.js';
import { pollUntil } from '../../src/util/poll.js';
import { startSyntheticSite, startTripwire, type SyntheticSite } from '../support/synthetic-site.js';
import { png, serveImagePage, sha256Of, syntheticImage } from '../support/synthetic-images.js';

/**
 * The worker side against a real Redis (append-only, so it can be restarted mid-crawl) and a local site.
 * Every check compares with the exact sets the site generator says it emitted.
 */
const redis = redisForFile({ appendOnly: true });
const cleanups = redis.cleanups;
const silent = { info: () => undefined, warn: () => undefined };
/** Beyond the worker's own stop bound: Redis hand-back, quitting its connections and the process exit, under load. */
const SHUTDOWN_ALLOWANCE_MS = 2500;

function configFor(overrides: Partial<ServiceConfig['worker']> = {}, allowNetworks = ['127.0.0.1/32']): ServiceConfig {
  return parseServiceConfig({
    redis: redis.url,
    apiToken: 'test-token-123',
    keyPrefix: `test-${randomUUID().slice(0, 8)}:`,
    allow: { networks: allowNetworks },
    worker: { concurrency: 8, visibilityTimeoutMs: 1500, retryBaseMs: 50, shutdownGraceMs: 2000, fetchTimeoutMs: 5000, ...overrides },
  });
}

async function startInProcessWorker(config: ServiceConfig): Promise<CrawlWorker> {
  // the deployed worker's connections: its commands pipelined, its blocking reads on a connection of their own
  const commands = workerConnection(redis.url, undefined, { pipelined: true });
  const reader = workerConnection(redis.url);
  for (const connection of [commands, reader]) connection.on('error', () => undefined);
  const worker = new CrawlWorker({ config, redis: commands, reader, log: silent });
  await worker.start();
  cleanups.push(async () => {
    await worker.stop(500);
    commands.disconnect();
    reader.disconnect();
  });
  return worker;
}

async function startWorkerProcesses(config: ServiceConfig, count: number): Promise<ServiceProcess[]> {
  const url = await writeServiceConfig(config);
  const processes = Array.from({ length: count }, () => spawnService(workerEntry, url));
  cleanups.push(async () => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  return processes;
}

async function startSite(options: Parameters<typeof startSyntheticSite>[0]): Promise<SyntheticSite> {
  const site = await startSyntheticSite(options);
  cleanups.push(() => site.close());
  return site;
}

async function results(store: JobStore, id: string): Promise<{ pages: PageRecord[]; images: ImageRecord[] }> {
  const pages = await store.pages(id, 0, 100_000);
  const images = await store.images(id, 0, 100_000);
  return { pages: pages.items, images: images.items };
}

/** The crawl found exactly what the site emitted, each page and image once. */
async function expectExactCrawl(store: JobStore, doc: JobDocument, site: SyntheticSite): Promise<void> {
  const { pages, images } = await results(store, doc.id);
  expect(doc.status).toBe('done');
  const urls = pages.map((p) => p.url);
  expect(new Set(urls).size).toBe(urls.length);
  expect(new Set(pages.filter((p) => p.outcome === 'fetched').map((p) => p.url))).toEqual(site.expected.fetched);
  expect(new Set(pages.filter((p) => p.outcome === 'failed').map((p) => p.url))).toEqual(site.expected.failed);
  const imageUrls = images.map((i) => i.url);
  expect(new Set(imageUrls).size).toBe(imageUrls.length);
  expect(new Set(imageUrls)).toEqual(site.expected.images);
  expect(doc.counts).toMatchObject({
    fetched: site.expected.fetched.size,
    failed: site.expected.failed.size,
    robots: site.expected.robotsDisallowed.size,
    images: site.expected.images.size,
    pending: 0,
  });
  expect(site.hitsUnder('/private/')).toBe(0);
}

/** Every entry of a zip, read with yauzl (a reader independent of the writer). */
async function readZip(file: string): Promise<Map<string, Buffer>> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.open(file, { lazyEntries: true }, (error, opened) => (error ? reject(error) : resolve(opened))));
  const entries = new Map<string, Buffer>();
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => zip.openReadStream(entry, (error, stream) => {
      if (error) return reject(error);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => {
        entries.set(entry.fileName, Buffer.concat(chunks));
        zip.readEntry();
      });
    }));
    zip.readEntry();
  });
  zip.close();
  return entries;
}

describe('crawler workers', () => {
  it('crawl a 300-page site to exactly the expected pages and images, never touching robots-disallowed pages', async () => {
    const site = await startSite({ pages: 300 });
    const config = configFor();
    const store = new JobStore(redis.client, config.keyPrefix);
    await startInProcessWorker(config);
    await startInProcessWorker(config);
    const job = await store.create({ urls: [site.seed], maxDepth: 20, maxPages: 10_000, scope: 'host' });
    const doc = await waitForJob(store, job.id, 60_000);
    await expectExactCrawl(store, doc, site);
    // Each page fetched once; the 404 is not retried; the 503 is retried once.
    for (const url of site.expected.fetched) {
      const path = new URL(url).pathname;
      expect(site.hits.get(path), path).toBe(path === '/flaky.html' ? 2 : 1);
    }
    expect(site.hits.get('/missing.html')).toBe(1);
    expect(site.hits.get('/robots.txt')).toBe(1);
    // A finished job's keys expire together (7 days by default).
    for (const key of [store.keys.job(doc.id), store.keys.seen(doc.id), store.keys.images(doc.id)]) {
      expect(await redis.client.ttl(key)).toBeGreaterThan(6 * 24 * 3600);
    }
    const alt = (await store.images(doc.id, 0, 100_000)).items.find((i) => i.url === `${site.origin}pic/7.jpg`);
    expect(alt).toEqual({ url: `${site.origin}pic/7.jpg`, page: `${site.origin}p/7.html`, alt: 'picture 7', kind: 'img' });
  });

  it('fetch each image once: type and size from its bytes, SHA-256, one stored file per content listing every URL and page', async () => {
    const site = await startSite({ pages: 30, images: true, specials: false });
    const storePath = await mkdtemp(path.join(tmpdir(), 'crawler-images-'));
    cleanups.push(() => rm(storePath, { recursive: true, force: true }));
    const base = configFor();
    // the directory store, so the files themselves can be checked on disk (the default store: see the Redis case)
    const config = { ...base, images: { ...base.images, store: 'directory' as const, storePath, maxImageBytes: 1024 * 1024 } };
    const store = new JobStore(redis.client, config.keyPrefix);
    await startInProcessWorker(config);
    await startInProcessWorker(config);
    const wanted = ['png', 'jpeg', 'gif', 'webp', 'svg'] as const;
    const job = await store.create({ urls: [site.seed], maxDepth: 20, maxPages: 1000, scope: 'host', fetchImages: true, maxImageBytes: 100_000, imageTypes: [...wanted] });
    const doc = await waitForJob(store, job.id, 60_000);
    expect(doc.status).toBe('done');
    const listing = (await store.imageListing(doc.id, 0, 100_000)).items;
    expect(new Set(listing.map((i) => i.url))).toEqual(site.expected.images);
    const expectedFiles = new Map<string, { urls: string[]; bytes: Buffer }>();
    for (const item of listing) {
      const pathname = new URL(item.url).pathname;
      const served = syntheticImage(pathname);
      if (pathname.startsWith('/private/')) {
        expect(item.fetch?.outcome, item.url).toBe('robots');
        expect(site.hits.get(pathname) ?? 0).toBe(0);
        continue;
      }
      // every other image was asked for exactly once (the logo is on all 30 pages, twice on each)
      expect(site.hits.get(pathname), pathname).toBe(1);
      if (pathname === '/big/huge.png') {
        expect(item.fetch).toMatchObject({ outcome: 'too-large', status: 200 });
        continue;
      }
      if (served!.type === null) {
        expect(item.fetch, item.url).toMatchObject({ outcome: 'not-image', contentType: 'image/jpeg', bytes: served!.bytes.length });
        continue;
      }
      const sha256 = sha256Of(served!.bytes);
      // the type is the bytes' (abs/*.jpg is JPEG served as image/png), never the header's
      expect(item.fetch, item.url).toMatchObject({ outcome: 'stored', type: served!.type, width: served!.width, height: served!.height, bytes: served!.bytes.length, sha256, contentType: served!.contentType });
      const file = expectedFiles.get(sha256) ?? { urls: [], bytes: served!.bytes };
      file.urls.push(item.url);
      expectedFiles.set(sha256, file);
    }
    // duplicates merged: og/i.png is p/img/pi.png, pic/i-narrow.webp is the logo
    expect(expectedFiles.size).toBeLessThan(listing.length - 30);
    const files = await store.imageFiles(doc.id);
    expect(new Map(files.map((f) => [f.sha256, [...f.urls].sort()]))).toEqual(new Map([...expectedFiles].map(([sha, f]) => [sha, f.urls.sort()])));
    for (const file of files) {
      const bytes = await readFile(path.join(storePath, file.location));
      expect(sha256Of(bytes)).toBe(file.sha256);
      expect(bytes.length).toBe(file.bytes);
    }
    // stored once: the store holds one file per content, nothing half-written
    const stored = (await readdir(path.join(storePath, 'sha256'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    expect(stored.map((e) => e.name).sort()).toEqual(files.map((f) => path.basename(f.location)).sort());
    // every page an image is on: the logo on all 30, a page's own picture on that page alone
    const logo = listing.find((i) => i.url === `${site.origin}img/logo.png`)!;
    expect(new Set(logo.pages)).toEqual(new Set(Array.from({ length: 30 }, (_, i) => `${site.origin}p/${i}.html`)));
    expect(listing.find((i) => i.url === `${site.origin}og/7.png`)!.pages).toEqual([`${site.origin}p/7.html`]);
    expect(doc.counts).toMatchObject({
      imagesStored: [...expectedFiles.values()].reduce((n, f) => n + f.urls.length, 0),
      imageFiles: expectedFiles.size,
      imagesNotStored: listing.length - [...expectedFiles.values()].reduce((n, f) => n + f.urls.length, 0),
      pending: 0,
    });

    // the results API and `depl crawl download`: the PNG files only, each checked by its hash, with their pages
    const token = 'image-test-token-0123-4567-89ab-cdef';
    const api = createCrawlerApi({ config: { ...config, apiToken: new ServiceSecret(token) }, redis: redis.client, log: { error: () => undefined } });
    const server = createHttpServer(api.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const crawlerClient = new CrawlerClient({ baseUrl, token });
    const pngFiles = await crawlerClient.allFiles(doc.id, { type: ['png'], minBytes: 70 });
    expect(pngFiles.length).toBeGreaterThan(0);
    expect(pngFiles.every((f) => f.type === 'png' && f.bytes >= 70)).toBe(true);
    expect(new Set(pngFiles.map((f) => f.sha256))).toEqual(new Set(files.filter((f) => f.type === 'png' && f.bytes >= 70).map((f) => f.sha256)));
    const logoFile = pngFiles.find((f) => f.urls.includes(`${site.origin}img/logo.png`))!;
    expect(logoFile.pages.length).toBe(30);
    const downloadDir = path.join(storePath, '..', `${path.basename(storePath)}-download`);
    cleanups.push(() => rm(downloadDir, { recursive: true, force: true }));
    const seenProgress: DownloadProgress[] = [];
    const done = await downloadJobFiles(crawlerClient, baseUrl, doc.id, downloadDir, { type: ['png'], minBytes: 70 }, (p) => seenProgress.push({ ...p }));
    expect(done).toMatchObject({ files: pngFiles.length, totalFiles: pngFiles.length, kept: 0 });
    expect(seenProgress.map((p) => p.files)).toEqual(Array.from({ length: pngFiles.length + 1 }, (_, i) => i));
    for (const file of pngFiles) expect(sha256Of(await readFile(path.join(downloadDir, `${file.sha256}.png`)))).toBe(file.sha256);
    const manifest = (await readFile(path.join(downloadDir, 'images.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { sha256: string; urls: string[] });
    expect(new Set(manifest.map((m) => m.sha256))).toEqual(new Set(pngFiles.map((f) => f.sha256)));
    // run again: everything is there with the right content, nothing is fetched again
    expect(await downloadJobFiles(crawlerClient, baseUrl, doc.id, downloadDir, { type: ['png'], minBytes: 70 }, () => undefined)).toMatchObject({ kept: pngFiles.length });
    // --zip: the same files and manifest in one archive that a zip reader lists, each entry the right content
    const zipFile = path.join(downloadDir, 'images.zip');
    const zipped = await downloadJobZip(crawlerClient, baseUrl, doc.id, zipFile, { type: ['png'], minBytes: 70 }, () => undefined);
    expect(zipped).toMatchObject({ files: pngFiles.length, totalFiles: pngFiles.length });
    const entries = await readZip(zipFile);
    expect([...entries.keys()].sort()).toEqual([...pngFiles.map((f) => `${f.sha256}.png`), 'images.jsonl'].sort());
    for (const file of pngFiles) expect(sha256Of(entries.get(`${file.sha256}.png`)!)).toBe(file.sha256);
    expect(entries.get('images.jsonl')!.toString()).toBe(await readFile(path.join(downloadDir, 'images.jsonl'), 'utf8'));
    const missing = await fetch(`${baseUrl}/v1/jobs/${doc.id}/files/${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);

    // an interrupted --zip: the connection drops half-way through the third file (a proxy that cuts it); the next
    // run fetches none of the files it has, continues the cut one from its .part with Range and If-Range (206),
    // and the zip's entries are each the right content
    expect(pngFiles.length).toBeGreaterThanOrEqual(4);
    const cut = pngFiles[2]!.sha256;
    const resumedZip = path.join(downloadDir, 'resumed.zip');
    let cutting = true;
    const asked: Array<{ sha256: string; range?: string; ifRange?: string; status: number }> = [];
    const proxy = createHttpServer((req, res) => {
      const sha256 = /\/files\/([0-9a-f]{64})/.exec(req.url!)?.[1];
      const forwarded = Object.fromEntries(['authorization', 'accept', 'range', 'if-range'].filter((h) => req.headers[h] !== undefined).map((h) => [h, String(req.headers[h])]));
      void request(`${baseUrl}${req.url}`, { headers: forwarded }).then(async (answer) => {
        if (sha256 !== undefined) asked.push({ sha256, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, status: answer.statusCode });
        res.writeHead(answer.statusCode, answer.headers as Record<string, string>);
        const body = Buffer.from(await answer.body.arrayBuffer());
        if (sha256 === cut && cutting) {
          // half the body, and once the client has it on disk the connection drops (as when the network goes)
          cutting = false;
          res.write(body.subarray(0, Math.floor(body.length / 2)));
          const part = path.join(`${resumedZip}.parts`, `${cut}.png.part`);
          await pollUntil(async () => ((await stat(part).catch(() => null))?.size === Math.floor(body.length / 2) ? true : undefined), {
            timeoutMs: 5000, intervalMs: 10, onTimeout: () => { throw new Error(`the client never wrote the first half of ${cut}`); },
          }).finally(() => res.socket?.destroy());
          return;
        }
        res.end(body);
      }).catch(() => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    });
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const throughProxy = new CrawlerClient({ baseUrl: proxyUrl, token });
    await expect(downloadJobZip(throughProxy, proxyUrl, doc.id, resumedZip, { type: ['png'], minBytes: 70 }, () => undefined)).rejects.toThrow();
    const cutSize = (await readFile(path.join(`${resumedZip}.parts`, `${cut}.png.part`))).length;
    expect(cutSize).toBe(Math.floor(pngFiles[2]!.bytes / 2));
    const firstRun = asked.length;
    const resumed = await downloadJobZip(throughProxy, proxyUrl, doc.id, resumedZip, { type: ['png'], minBytes: 70 }, () => undefined);
    expect(resumed).toMatchObject({ files: pngFiles.length, kept: 2 });
    const secondRun = asked.slice(firstRun);
    expect(secondRun.map((a) => a.sha256)).toEqual(pngFiles.slice(2).map((f) => f.sha256));
    expect(secondRun[0]).toEqual({ sha256: cut, range: `bytes=${cutSize}-`, ifRange: `"${cut}"`, status: 206 });
    expect(secondRun.slice(1).every((a) => a.range === undefined && a.status === 200)).toBe(true);
    const resumedEntries = await readZip(resumedZip);
    expect([...resumedEntries.keys()].sort()).toEqual([...entries.keys()].sort());
    for (const file of pngFiles) expect(sha256Of(resumedEntries.get(`${file.sha256}.png`)!)).toBe(file.sha256);
    expect(await readdir(downloadDir)).not.toContain('resumed.zip.parts');
    // a stale If-Range gets the whole file (200), a range past the end 416 with the size
    const stale = await request(`${baseUrl}/v1/jobs/${doc.id}/files/${cut}`, { headers: { authorization: `Bearer ${token}`, range: 'bytes=10-', 'if-range': '"another"' } });
    expect([stale.statusCode, (await stale.body.arrayBuffer()).byteLength]).toEqual([200, pngFiles[2]!.bytes]);
    const beyond = await request(`${baseUrl}/v1/jobs/${doc.id}/files/${cut}`, { headers: { authorization: `Bearer ${token}`, range: `bytes=${pngFiles[2]!.bytes}-` } });
    await beyond.body.dump();
    expect([beyond.statusCode, beyond.headers['content-range']]).toEqual([416, `bytes */${pngFiles[2]!.bytes}`]);

    // a job that keeps PNGs only: the JPEG is read (its type is known from its bytes) but not stored
    const pngOnly = await store.create({ urls: [site.seed], maxDepth: 0, maxPages: 10, scope: 'host', fetchImages: true, imageTypes: ['png'] });
    const pngDoc = await waitForJob(store, pngOnly.id, 30_000);
    const pngListing = (await store.imageListing(pngDoc.id, 0, 1000)).items;
    expect(pngListing.find((i) => i.url === `${site.origin}abs/0.jpg`)!.fetch).toMatchObject({ outcome: 'type-not-wanted', type: 'jpeg', width: 30, height: 40 });
    expect(new Set((await store.imageFiles(pngDoc.id)).map((f) => f.type))).toEqual(new Set(['png']));
  });

  it('honour the site\'s opt-outs: X-Robots-Tag and robots metas on pages and images, for every crawler or named for this one', async () => {
    // one site, each page stating one opt-out; the images it names are PNGs that differ by shade
    const pages: Record<string, { headers?: Record<string, string>; html: string }> = {
      '/': { html: '<a href="/nofollow.html">a</a><a href="/noimages.html">b</a><a href="/agent.html">c</a><img src="/ok.png"><img src="/tagged.png">' },
      '/nofollow.html': { html: '<meta name="robots" content="nofollow"><a href="/never.html">never</a><img src="/nf.png">' },
      '/noimages.html': { headers: { 'x-robots-tag': 'noimageindex' }, html: '<img src="/withheld.png"><a href="/after.html">after</a>' },
      '/agent.html': { headers: { 'x-robots-tag': 'otherbot: noindex, nofollow' }, html: '<meta name="depl-crawler" content="noai"><img src="/ai.png"><a href="/after.html">after</a>' },
      '/after.html': { html: 'the end' },
      '/never.html': { html: 'not to be fetched' },
    };
    const images = ['/ok.png', '/tagged.png', '/nf.png', '/withheld.png', '/ai.png'];
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url!);
      const page = pages[req.url!];
      if (page !== undefined) {
        res.writeHead(200, { 'content-type': 'text/html', ...page.headers }).end(page.html);
        return;
      }
      const shade = images.indexOf(req.url!);
      if (shade < 0) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'image/png', ...(req.url === '/tagged.png' ? { 'x-robots-tag': 'noimageai' } : {}) }).end(png(4, 4, 40 * shade));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const base = configFor();
    const config = { ...base, images: { ...base.images, maxImageBytes: 1024 * 1024 } };
    const store = new JobStore(redis.client, config.keyPrefix);
    await startInProcessWorker(config);
    const job = await store.create({ urls: [`${origin}/`], maxDepth: 5, maxPages: 100, scope: 'host', fetchImages: true });
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.status).toBe('done');
    const byPath = new Map((await store.pages(doc.id, 0, 100)).items.map((p) => [new URL(p.url).pathname, p]));
    expect([...byPath.keys()].sort()).toEqual(['/', '/after.html', '/agent.html', '/nofollow.html', '/noimages.html']);
    expect(hits).not.toContain('/never.html');
    expect(byPath.get('/nofollow.html')).toMatchObject({ optOuts: ['nofollow'], links: 1, images: 1 });
    expect(byPath.get('/noimages.html')).toMatchObject({ optOuts: ['noimageindex'], images: 1, imagesWithheld: 1 });
    expect(byPath.get('/agent.html')).toMatchObject({ optOuts: ['noai'], imagesWithheld: 1 });
    expect(byPath.get('/')!.optOuts).toBeUndefined();
    // withheld images are neither listed nor fetched; an image whose own answer opts out is fetched once, not kept
    const listing = (await store.imageListing(doc.id, 0, 100)).items;
    expect(listing.map((i) => new URL(i.url).pathname).sort()).toEqual(['/nf.png', '/ok.png', '/tagged.png']);
    expect(hits.filter((h) => h === '/withheld.png' || h === '/ai.png')).toEqual([]);
    expect(listing.find((i) => i.url.endsWith('/tagged.png'))!.fetch).toMatchObject({ outcome: 'opted-out', optOuts: ['noimageai'] });
    const stored = await store.imageFiles(doc.id);
    expect(stored.flatMap((f) => f.urls.map((u) => new URL(u).pathname)).sort()).toEqual(['/nf.png', '/ok.png']);
  });

  it('keep images in Redis by default, where every worker and API replica reaches them: served back whole, bounded per job, expiring with the job', async () => {
    // three distinct PNGs of one size; /copy.png is /a.png again
    const contents = new Map([['/a.png', png(8, 8, 10)], ['/b.png', png(8, 8, 120)], ['/c.png', png(8, 8, 240)]]);
    contents.set('/copy.png', contents.get('/a.png')!);
    const site = await serveImagePage(contents);
    cleanups.push(site.close);
    const origin = site.origin;
    const size = contents.get('/a.png')!.length;
    expect([...contents.values()].every((b) => b.length === size)).toBe(true);
    const config = configFor();
    expect(config.images.store).toBe('redis');
    const store = new JobStore(redis.client, config.keyPrefix, { jobTtlSeconds: 3600 });
    await startInProcessWorker(config);
    const doc = await waitForJob(store, (await store.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true })).id, 30_000);
    const files = await store.imageFiles(doc.id);
    expect(files.length).toBe(3);
    const token = 'redis-store-token-0123-4567-89ab-cdef';
    const api = createCrawlerApi({ config: { ...config, apiToken: new ServiceSecret(token) }, redis: redis.client, log: { error: () => undefined } });
    const apiServer = createHttpServer(api.handle);
    await new Promise<void>((resolve) => apiServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      apiServer.closeAllConnections();
      await new Promise((resolve) => apiServer.close(resolve));
    });
    const baseUrl = `http://127.0.0.1:${(apiServer.address() as AddressInfo).port}`;
    for (const file of files) {
      const answer = await fetch(`${baseUrl}/v1/jobs/${doc.id}/files/${file.sha256}`);
      expect(answer.headers.get('content-type')).toBe('image/png');
      expect(sha256Of(Buffer.from(await answer.arrayBuffer()))).toBe(file.sha256);
    }
    const blobs = store.keys.imageBlobs(doc.id);
    expect(await redis.client.hget(blobs, '#bytes')).toBe(String(3 * size));
    // the contents expire with the job's records, not before and not never
    const ttl = await redis.client.ttl(blobs);
    expect(ttl).toBeGreaterThan(3000);
    expect(Math.abs(ttl - (await redis.client.ttl(store.keys.imageFiles(doc.id))))).toBeLessThanOrEqual(1);

    // a job whose budget holds one content: the first stored, the others recorded as store-full, never written
    const other = configFor();
    const tight = { ...other, images: { ...other.images, redisMaxJobBytes: Math.floor(size * 1.5) } };
    const tightStore = new JobStore(redis.client, tight.keyPrefix);
    await startInProcessWorker(tight);
    const small = await waitForJob(tightStore, (await tightStore.create({ urls: [`${origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true })).id, 30_000);
    const fetches = (await tightStore.imageListing(small.id, 0, 10)).items.map((i) => i.fetch!);
    const full = fetches.filter((f) => f.outcome === 'store-full');
    expect(new Set(full.map((f) => f.sha256)).size).toBe(2);
    expect(full[0]!.error).toMatch(/redisMaxJobBytes/);
    expect((await tightStore.imageFiles(small.id)).length).toBe(1);
    expect(await redis.client.hget(tightStore.keys.imageBlobs(small.id), '#bytes')).toBe(String(size));
    // a late redelivery for a job that is gone (expired) writes nothing that would never expire
    const gone = randomUUID();
    expect(await new RedisImageStore(redis.client, store.keys, 1024 * 1024).put(gone, sha256Of(contents.get('/a.png')!), 'png', contents.get('/a.png')!)).toMatchObject({ written: false });
    expect(await redis.client.exists(store.keys.imageBlobs(gone))).toBe(0);
  });

  it('back off from a host that answers 429 for its Retry-After, across workers, then recover step by step', async () => {
    // The promise: no request to the host STARTS after the 429 is received until its Retry-After (1 s) has passed,
    // then one request per penalty (1 s, shrinking by a fifth per answer), from both workers together. Requests
    // the workers started before the 429 existed are in flight, not violations; under load they reach this server
    // hundreds of ms late, so the server tells them apart by causality, not by a time allowance: it holds every
    // page request until all the workers' places (2 x concurrency) are taken, so each of those was started
    // before any page answer existed. Only then does it answer one 429, and the others once the back-off is in
    // Redis, where every worker reads it (a worker freed by one of those answers before that could not know).
    const times: Array<{ url: string; at: number }> = [];
    const held: Array<{ res: ServerResponse; url: string }> = [];
    let throttledAt: number | undefined;
    const config = configFor({ concurrency: 4 });
    const workerPlaces = 2 * config.worker.concurrency;
    let penaltyKey = '';
    const answerPage = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('a page');
    const server = createServer((req, res) => {
      times.push({ url: req.url!, at: Date.now() });
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html' }).end(Array.from({ length: 12 }, (_, i) => `<a href="/p/${i}">${i}</a>`).join(''));
      } else if (req.url!.startsWith('/p/') && throttledAt === undefined) {
        held.push({ res, url: req.url! });
        if (held.length < workerPlaces) return;
        throttledAt = Date.now();
        held[0]!.res.writeHead(429, { 'retry-after': '1' }).end();
        void pollUntil(async () => ((await redis.client.exists(penaltyKey)) === 1 ? true : undefined), {
          timeoutMs: 10_000, intervalMs: 5, onTimeout: () => undefined,
        }).finally(() => held.slice(1).forEach((h) => answerPage(h.res)));
      } else if (req.url!.startsWith('/p/')) {
        answerPage(res);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    penaltyKey = crawlerKeys(config.keyPrefix).hostPenalty(host);
    const store = new JobStore(redis.client, config.keyPrefix);
    const workers = [await startInProcessWorker(config), await startInProcessWorker(config)];
    const job = await store.create({ urls: [`http://${host}/`], maxDepth: 1, maxPages: 100, scope: 'host' });
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.counts).toMatchObject({ fetched: 13, failed: 0 });
    expect(workers.reduce((sum, w) => sum + w.stats.hostBackoffs, 0)).toBe(1);
    // the page requests in flight, then the 4 pages left and the throttled one again
    const pageTimes = times.filter((t) => t.url.startsWith('/p/'));
    expect(pageTimes.slice(0, workerPlaces).every((t) => t.at <= throttledAt!), JSON.stringify(times)).toBe(true);
    const later = pageTimes.slice(workerPlaces).map((t) => t.at).sort((a, b) => a - b);
    expect(later.length, JSON.stringify(times)).toBe(12 - workerPlaces + 1);
    // Each request arrives no earlier than its slot; slots come from Redis' clock (the same host clock, both in
    // whole ms: 2 ms allowed) and start at the 429's receipt (after throttledAt) plus Retry-After, each at least
    // the penalty of its grant after the one before. Checked cumulatively, so a request sent late (a busy event
    // loop) cannot make the one after it look early.
    let earliest = throttledAt! + 1000;
    later.forEach((at, i) => {
      expect(at, `request ${i} after the 429: ${JSON.stringify(times)}`).toBeGreaterThanOrEqual(earliest - 2);
      earliest += 1000 * 0.8 ** (i + 1);
    });
    const left = Number(await redis.client.get(penaltyKey));
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(1000);
  });

  it('never connect to a private address the config does not allow, linked or redirected to', async () => {
    const tripwire = await startTripwire('127.0.0.2');
    cleanups.push(() => tripwire.close());
    const port = new URL(tripwire.origin).port;
    const site = await startSite({
      pages: 3,
      specials: false,
      extraLinksOnRoot: [`${tripwire.origin}direct`, 'http://169.254.169.254/latest/meta-data/', `http://[::ffff:127.0.0.2]:${port}/mapped`],
      redirects: [`${tripwire.origin}via-redirect`, `http://2130706434:${port}/decimal`],
    });
    const config = configFor();
    const store = new JobStore(redis.client, config.keyPrefix);
    await startInProcessWorker(config);
    const job = await store.create({ urls: [site.seed], maxDepth: 3, maxPages: 100, scope: 'any' });
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.status).toBe('done');
    expect(doc.counts.blocked).toBe(5);
    expect(doc.counts.fetched).toBe(3);
    expect(tripwire.hits()).toBe(0);
    const blocked = (await store.pages(doc.id, 0, 100)).items.filter((p) => p.outcome === 'blocked');
    expect(blocked.map((p) => p.error).join('\n')).toMatch(/169\.254\.169\.254 is a linkLocal address/);
  });

  it('space requests to one host by the configured delay, across workers', async () => {
    const site = await startSite({ pages: 12, specials: false });
    const config = configFor({ hostDelayMs: 100 });
    const store = new JobStore(redis.client, config.keyPrefix);
    await startInProcessWorker(config);
    await startInProcessWorker(config);
    const job = await store.create({ urls: [site.seed], maxDepth: 5, maxPages: 100, scope: 'host' });
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.counts.fetched).toBe(12);
    // Slots come from Redis' clock, at least 100 ms apart; arrival times carry the send jitter of a busy machine
    // (one request sent late shortens the gap after it), so the spacing is checked over the whole run: 12 pages
    // cannot arrive in less than 11 intervals, and the typical gap is the interval.
    const times = site.pageTimes;
    const gaps = times.slice(1).map((t, i) => t - times[i]!).sort((a, b) => a - b);
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(11 * 100 - 40);
    expect(gaps[Math.floor(gaps.length / 2)]!).toBeGreaterThan(95);
  });

  it('complete exactly with 3 worker processes when one is killed with SIGKILL mid-crawl', async () => {
    const site = await startSite({ pages: 300, pageDelayMs: 40 });
    const config = configFor({ concurrency: 4, visibilityTimeoutMs: 1000 });
    const store = new JobStore(redis.client, config.keyPrefix);
    const workers = await startWorkerProcesses(config, 3);
    const job = await store.create({ urls: [site.seed], maxDepth: 20, maxPages: 10_000, scope: 'host' });
    await waitForJob(store, job.id, 30_000, (d) => d.counts.fetched >= 60);
    workers[0]!.child.kill('SIGKILL');
    const doc = await waitForJob(store, job.id, 60_000);
    expect(doc.counts.fetched).toBeLessThan(site.expected.fetched.size + 1);
    await expectExactCrawl(store, doc, site);
    // The killed worker's messages were taken over by the others.
    expect(await redis.client.hlen(store.keys.takeovers(job.id))).toBeGreaterThan(0);
  });

  it('lose no image of a batch and fetch none twice when its worker is killed with SIGKILL mid-batch', async () => {
    // 48 image URLs of 32 contents (/i16.png..: the first 16 again). After the first 12 answers the site holds every
    // image request, so the worker killed then has a full batch claimed and in flight, and results recorded before.
    const contents = new Map(Array.from({ length: 48 }, (_, i) => [`/i${i}.png`, png(4 + (i % 32), 4, (i % 32) * 7)]));
    const hits = new Map<string, number>();
    let answered = 0;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => { openGate = resolve; });
    const site = await serveImagePage(contents, {
      beforeImage: async (pathname) => {
        hits.set(pathname, (hits.get(pathname) ?? 0) + 1);
        if (++answered > 12) await gate;
      },
    });
    cleanups.push(async () => {
      openGate();
      await site.close();
    });
    const config = configFor({ concurrency: 8, visibilityTimeoutMs: 1000 });
    const store = new JobStore(redis.client, config.keyPrefix);
    const [doomed] = await startWorkerProcesses(config, 1);
    const job = await store.create({ urls: [`${site.origin}/`], maxDepth: 0, maxPages: 5, scope: 'host', fetchImages: true });
    await waitForJob(store, job.id, 30_000, (d) => d.counts.imagesStored >= 12);
    // its batch: the image requests the gate holds, read off the stream and neither recorded nor acknowledged
    const consumer = /consumer (\S+) started/.exec(doomed!.output())![1]!;
    const held = await pollUntil(async () => {
      const entries = (await redis.client.xpending(store.keys.tasks, 'workers', '-', '+', 100, consumer)) as Array<[string, ...unknown[]]>;
      return entries.length >= config.worker.concurrency ? entries.map(([id]) => id) : undefined;
    }, { timeoutMs: 10_000, intervalMs: 20, onTimeout: () => { throw new Error(`the worker never held a full batch: ${doomed!.output()}`); } });
    doomed!.child.kill('SIGKILL');
    await doomed!.exited;
    const heldUrls = new Set<string>();
    for (const id of held) {
      const [entry] = (await redis.client.xrange(store.keys.tasks, id, id)) as Array<[string, string[]]>;
      const fields = entry![1];
      heldUrls.add(new URL(fields[fields.indexOf('u') + 1]!).pathname);
    }
    expect(heldUrls.size).toBe(held.length);
    expect((await store.get(job.id))!.counts.imagesStored).toBe(12);
    openGate();
    // another worker takes the killed one's messages over once they have been idle for the visibility timeout
    await startWorkerProcesses(config, 1);
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.status).toBe('done');
    expect(doc.counts).toMatchObject({ pending: 0, imagesStored: 48, imagesNotStored: 0, imageFiles: 32 });
    expect(await redis.client.hlen(store.keys.imageFetches(job.id))).toBe(48);
    const files = await store.imageFiles(job.id);
    const listed = files.flatMap((f) => f.urls.map((u) => new URL(u).pathname)).sort();
    expect(listed).toEqual([...contents.keys()].sort());
    for (const file of files) for (const url of file.urls) expect(sha256Of(contents.get(new URL(url).pathname)!), url).toBe(file.sha256);
    // asked for again only where the killed worker's batch held it (once more, or once: a task it had read but not
    // yet sent); nothing it had recorded was fetched again
    for (const pathname of contents.keys()) {
      if (heldUrls.has(pathname)) expect([1, 2], pathname).toContain(hits.get(pathname));
      else expect(hits.get(pathname), pathname).toBe(1);
    }
    expect(await redis.client.hlen(store.keys.takeovers(job.id))).toBe(heldUrls.size);
  });

  it('record image results ready together in one step, each URL once', async () => {
    const config = configFor();
    const store = new JobStore(redis.client, config.keyPrefix);
    const job = await store.create({ urls: ['http://127.0.0.1:9/'], maxDepth: 0, maxPages: 1, scope: 'host', fetchImages: true });
    await redis.client.hset(store.keys.job(job.id), 'pending', 3);
    const file = { sha256: 'a'.repeat(64), type: 'png' as const, bytes: 10, width: 1, height: 1, location: `sha256/aa/${'a'.repeat(64)}.png` };
    const task = (url: string) => ({ job: job.id, url, depth: IMAGE_TASK_DEPTH, attempt: 1 });
    const stored = (url: string) => ({ url, outcome: 'stored' as const, sha256: file.sha256 });
    // issued in one turn: one COMPLETE_IMAGES call; the same URL twice (a redelivered copy) counts once
    const answers = await Promise.all([
      store.completeImage('', task('http://x/1.png'), stored('http://x/1.png'), file),
      store.completeImage('', task('http://x/2.png'), stored('http://x/2.png'), file),
      store.completeImage('', task('http://x/1.png'), stored('http://x/1.png'), file),
      store.completeImage('', task('http://x/3.png'), { url: 'http://x/3.png', outcome: 'not-image' }),
    ]);
    expect(answers).toEqual([1, 1, 0, 1]);
    const doc = (await store.get(job.id))!;
    expect(doc.counts).toMatchObject({ pending: 0, imagesStored: 2, imagesNotStored: 1, imageFiles: 1 });
    expect(doc.status).toBe('done');
    expect((await store.imageFile(job.id, file.sha256))!.urls).toEqual(['http://x/1.png', 'http://x/2.png']);
  });

  it('complete a crawl across a Redis restart (append-only file)', async () => {
    const site = await startSite({ pages: 300, pageDelayMs: 20 });
    const config = configFor({ concurrency: 4 });
    const store = new JobStore(redis.client, config.keyPrefix);
    await startWorkerProcesses(config, 2);
    const job = await store.create({ urls: [site.seed], maxDepth: 20, maxPages: 10_000, scope: 'host' });
    const before = await waitForJob(store, job.id, 30_000, (d) => d.counts.fetched >= 50);
    expect(before.status).toBe('running');
    await redis.server.restart({ downMs: 1000 });
    const doc = await waitForJob(store, job.id, 60_000);
    await expectExactCrawl(store, doc, site);
  });

  it('finish jobs whose patterns backtrack exponentially in JavaScript, on a page linking to very long URLs', async () => {
    // Links: 2,000 "a"s (matched: /(a|a)*b/ and the glob try 2^n ways with RegExp), 100,000 "a"s (over the length
    // cap: not matched, not followed, counted), and one link both patterns match.
    const near = `/${'a'.repeat(2_000)}`;
    const far = `/${'a'.repeat(100_000)}`;
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url!.length > 100 ? `long:${req.url!.length}` : req.url!);
      if (req.url !== '/' && req.url !== '/aaaaaab') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<a href="${near}">near</a><a href="${far}">far</a><a href="/aaaaaab">both match</a>`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = configFor();
    const store = new JobStore(redis.client, config.keyPrefix);
    // a separate process: a worker stuck in RegExp would block this test's own event loop
    const [worker] = await startWorkerProcesses(config, 1);
    for (const include of ['/(a|a)*b/', '**a**a**a**a**a**a**b']) {
      const job = await store.create({ urls: [`${origin}/`], maxDepth: 3, maxPages: 100, scope: 'host', include: [include], exclude: ['/(x+x+)+y/'] });
      const doc = await waitForJob(store, job.id, 30_000).catch((error: Error) => {
        throw new Error(`${include}: ${error.message}\n${worker!.output()}`);
      });
      expect(doc.status, include).toBe('done');
      // both pages link to the long URL: each counts it unchecked
      expect(doc.counts, include).toMatchObject({ fetched: 2, capped: 2, pending: 0 });
      const { pages } = await results(store, doc.id);
      expect(pages.map((p) => [p.url, p.links, p.linksUnchecked]).sort(), include).toEqual([[`${origin}/`, 3, 1], [`${origin}/aaaaaab`, 3, 1]]);
    }
    expect(far.length).toBeGreaterThan(PATTERN_LIMITS.maxUrlLength);
    expect(hits.filter((h) => h.startsWith('long:'))).toEqual([]);
  });

  it('stop on SIGTERM within the grace period, handing back what it holds', async () => {
    const site = await startSite({ pages: 40, pageDelayMs: 300 });
    const config = configFor({ concurrency: 4, shutdownGraceMs: 200 });
    const store = new JobStore(redis.client, config.keyPrefix);
    const [worker] = await startWorkerProcesses(config, 1);
    const job = await store.create({ urls: [site.seed], maxDepth: 20, maxPages: 10_000, scope: 'host' });
    await waitForJob(store, job.id, 30_000, (d) => d.counts.fetched >= 2);
    const started = Date.now();
    worker!.child.kill('SIGTERM');
    const exit = await worker!.exited;
    expect(exit.code, worker!.output()).toBe(0);
    // The worker's own bound: the task read in progress (READ_BLOCK_MS) plus the grace, then handing back and
    // closing; that last part and the process exit get a stated allowance for a loaded 2-core machine (seen: up to
    // ~2 s at load 25).
    expect(Date.now() - started).toBeLessThan(READ_BLOCK_MS + config.worker.shutdownGraceMs + SHUTDOWN_ALLOWANCE_MS);
    expect(worker!.output()).toMatch(/SIGTERM: finishing/);
    // Nothing is left pending in the group: held pages went back to the stream for the next worker.
    const pending = (await redis.client.xpending(store.keys.tasks, 'workers')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    await startWorkerProcesses(config, 1);
    const doc = await waitForJob(store, job.id, 60_000);
    expect(doc.counts.fetched).toBe(site.expected.fetched.size);
  });
});
