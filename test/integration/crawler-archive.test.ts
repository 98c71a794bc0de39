import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { WARCParser, type WARCRecord } from 'warcio';
import yauzl from 'yauzl';
import { describe, expect, it } from 'vitest';
import { createCrawlerApi } from '../../crawler/src/api/app.js';
import { CrawlerClient } from '../../crawler/src/client.js';
import { parseServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { JobStore, type PageRecord } from '../../crawler/src/jobs.js';
import { crawlerKeys } from '../../crawler/src/keys.js';
import { writeWacz } from '../../crawler/src/archive/wacz.js';
import { imageStoreFor } from '../../crawler/src/image-store.js';
import { pollUntil } from '../../src/util/poll.js';
import { exportJobArchive } from '../../src/workflows/crawl-export.js';
import { startInProcessWorker, waitForJob } from '../support/crawler.js';
import { redisForFile } from '../support/redis-for-file.js';
import { png, sha256Of } from '../support/synthetic-images.js';

/**
 * The crawler as an archiving, polite client, on real Redis and local sites: an archive job's WACZ read back
 * with warcio's WARC parser and a separate zip reader (yauzl), its hashes checked; robots.txt Crawl-delay;
 * a cap on requests in flight to one host across workers; rate-limit and block pages retried, then recorded
 * as blocked with the reason.
 */
const TOKEN = `archive-${randomUUID()}`;
const redis = redisForFile();
const cleanups = redis.cleanups;

async function configFor(worker: Partial<ServiceConfig['worker']> = {}): Promise<ServiceConfig> {
  const storePath = await mkdtemp(path.join(tmpdir(), 'crawler-archive-'));
  cleanups.push(() => rm(storePath, { recursive: true, force: true }));
  return parseServiceConfig({
    redis: redis.url,
    apiToken: TOKEN,
    keyPrefix: `arc-${randomUUID().slice(0, 8)}:`,
    allow: { networks: ['127.0.0.1/32'] },
    images: { storePath },
    worker: { concurrency: 8, visibilityTimeoutMs: 2000, retryBaseMs: 50, shutdownGraceMs: 1000, fetchTimeoutMs: 5000, ...worker },
  });
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ origin: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const startWorker = (config: ServiceConfig) => startInProcessWorker(redis.url, config, (stop) => cleanups.push(stop));

/** Every entry of a zip file, read with yauzl (a reader of its own, not the writer's library). */
function unzip(bytes: Buffer): Promise<Map<string, { data: Buffer; stored: boolean }>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      const entries = new Map<string, { data: Buffer; stored: boolean }>();
      zip.on('error', reject);
      zip.on('end', () => resolve(entries));
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (openError, stream) => {
          if (openError) return reject(openError);
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('error', reject);
          stream.on('end', () => {
            entries.set(entry.fileName, { data: Buffer.concat(chunks), stored: entry.compressionMethod === 0 });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('the crawler as an archiving, polite client', () => {
  it('exports an archive job as a WACZ whose WARC records, pages, index and hashes read back, with provenance; Crawl-delay spaces the requests', async () => {
    const logo = png(6, 4, 90);
    const photo = png(8, 8, 20);
    const pageTimes: number[] = [];
    const pages: Record<string, { headers?: Record<string, string>; html: string }> = {
      '/': { html: '<title>home</title><a href="/a.html">a</a><a href="/private/x.html">x</a><a href="/quiet.html">q</a><img src="/img/logo.png"><img src="/img/photo.png">' },
      '/a.html': { headers: { 'set-cookie': 'a=1' }, html: '<p>page a</p><img src="/img/logo-copy.png">' },
      '/quiet.html': { headers: { 'x-robots-tag': 'noarchive' }, html: '<p>not for archives</p>' },
    };
    const images: Record<string, Buffer> = { '/img/logo.png': logo, '/img/logo-copy.png': logo, '/img/photo.png': photo };
    const site = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('User-agent: *\nDisallow: /private/\nCrawl-delay: 0.2\n');
        return;
      }
      pageTimes.push(Date.now());
      const page = pages[req.url!];
      if (page !== undefined) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...page.headers }).end(page.html);
        return;
      }
      const image = images[req.url!];
      if (image !== undefined) res.writeHead(200, { 'content-type': 'image/png' }).end(image);
      else res.writeHead(404).end();
    });
    const config = await configFor();
    const store = new JobStore(redis.client, config.keyPrefix);
    await startWorker(config);
    await startWorker(config);
    const api = createCrawlerApi({ config, redis: redis.client, log: { error: () => undefined }, env: { DEPL_VERSION: '20261206-171500', DEPL_IMAGE_ID: 'sha256:1234abcd' } });
    const { origin: apiOrigin } = await serve((req, res) => api.handle(req, res));
    const submitted = await request(`${apiOrigin}/v1/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ urls: [`${site.origin}/`], maxDepth: 2, maxPages: 50, fetchImages: true, archive: true }),
    });
    expect(submitted.statusCode).toBe(201);
    const { id } = (await submitted.body.json()) as { id: string };
    const doc = await waitForJob(store, id, 30_000);
    expect(doc.status).toBe('done');
    expect(doc.counts).toMatchObject({ fetched: 3, robots: 1, imagesStored: 3, imageFiles: 2 });
    expect(doc.provenance).toEqual({ crawlerVersion: '20261206-171500', imageDigest: 'sha256:1234abcd', userAgent: config.worker.userAgent });

    // Crawl-delay: 0.2 spaces every request to the host (pages and images), across both workers
    const sorted = [...pageTimes].sort((a, b) => a - b);
    expect(sorted).toHaveLength(6);
    expect(sorted.at(-1)! - sorted[0]!).toBeGreaterThan(5 * 200 - 40);

    // what depl crawl export does: the WACZ through the client, into a file, its size and SHA-256 checked
    const head = await request(`${apiOrigin}/v1/jobs/${id}/archive.wacz`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(head.headers['content-type']).toBe('application/wacz+zip');
    await head.body.dump();
    const crawlerClient = new CrawlerClient({ baseUrl: apiOrigin, token: TOKEN });
    const out = await mkdtemp(path.join(tmpdir(), 'crawler-export-'));
    cleanups.push(() => rm(out, { recursive: true, force: true }));
    const exported = await exportJobArchive(crawlerClient, apiOrigin, id, path.join(out, 'crawl.wacz'), () => undefined);
    const wacz = await readFile(exported.file);
    expect(exported).toMatchObject({ bytes: wacz.length, sha256: sha256(wacz), records: 11, pages: 2 });
    expect(await readdir(out)).toEqual(['crawl.wacz']);
    const entries = await unzip(wacz);
    expect([...entries.keys()].sort()).toEqual(['archive/data.warc.gz', 'datapackage-digest.json', 'datapackage.json', 'indexes/index.cdx', 'pages/pages.jsonl']);
    expect(entries.get('archive/data.warc.gz')!.stored).toBe(true);

    // datapackage.json lists every other file with its SHA-256 and size; the digest file hashes datapackage.json
    const datapackageText = entries.get('datapackage.json')!.data.toString('utf8');
    const datapackage = JSON.parse(datapackageText) as { wacz_version: string; resources: Array<{ path: string; hash: string; bytes: number }>; provenance: Record<string, unknown> };
    expect(datapackage.wacz_version).toBe('1.1.1');
    expect(datapackage.resources.map((r) => r.path).sort()).toEqual(['archive/data.warc.gz', 'indexes/index.cdx', 'pages/pages.jsonl']);
    for (const resource of datapackage.resources) {
      const data = entries.get(resource.path)!.data;
      expect(resource, resource.path).toEqual({ name: path.basename(resource.path), path: resource.path, hash: `sha256:${sha256(data)}`, bytes: data.length });
    }
    expect(JSON.parse(entries.get('datapackage-digest.json')!.data.toString('utf8'))).toEqual({ path: 'datapackage.json', hash: `sha256:${sha256(datapackageText)}` });
    expect(datapackage.provenance).toMatchObject({
      job: id, crawlerVersion: '20261206-171500', imageDigest: 'sha256:1234abcd', userAgent: config.worker.userAgent, status: 'done',
      startedAt: doc.createdAt, finishedAt: doc.finishedAt, settings: { urls: [`${site.origin}/`], maxDepth: 2, fetchImages: true, archive: true },
      robots: [{ origin: site.origin, robotsUrl: `${site.origin}/robots.txt`, robotsTxt: 'found', crawlDelaySeconds: 0.2 }],
    });

    // the WARC, read by warcio's parser: a warcinfo record, then a response and its request for every page and
    // image fetched (not the noarchive page, not the robots-disallowed one), bodies byte for byte as served
    const records: Array<{ type: string; url: string | null | undefined; payload: Buffer; status?: number; concurrentTo?: string; id?: string | null; headers?: Headers | Map<string, string> }> = [];
    for await (const record of WARCParser.iterRecords([entries.get('archive/data.warc.gz')!.data]) as AsyncIterable<WARCRecord>) {
      const payload = Buffer.from(await record.readFully(true));
      records.push({
        type: record.warcType, url: record.warcTargetURI, payload, status: record.httpHeaders?.statusCode === undefined ? undefined : Number(record.httpHeaders.statusCode),
        concurrentTo: record.warcHeader('WARC-Concurrent-To') ?? undefined, id: record.warcHeader('WARC-Record-ID'), headers: record.httpHeaders?.headers,
      });
      expect(record.warcHeaders.protocol).toBe('WARC/1.1');
    }
    expect(records[0]!.type).toBe('warcinfo');
    expect(records[0]!.payload.toString('utf8')).toContain(`"job":"${id}"`);
    const responses = records.filter((r) => r.type === 'response');
    const requests = records.filter((r) => r.type === 'request');
    const archived = ['/', '/a.html', '/img/logo.png', '/img/logo-copy.png', '/img/photo.png'];
    expect(responses.map((r) => new URL(r.url!).pathname).sort()).toEqual([...archived].sort());
    expect(requests.map((r) => new URL(r.url!).pathname).sort()).toEqual([...archived].sort());
    for (const r of responses) {
      const pathname = new URL(r.url!).pathname;
      const served = pages[pathname] !== undefined ? Buffer.from(pages[pathname]!.html) : images[pathname]!;
      expect(sha256Of(r.payload), pathname).toBe(sha256Of(served));
      expect(r.status).toBe(200);
      expect(requests.find((q) => q.url === r.url)!.concurrentTo, pathname).toBe(r.id);
    }
    expect(responses.find((r) => r.url!.endsWith('/a.html'))!.headers!.get('set-cookie')).toBe('a=1');

    // pages.jsonl: its header line, then every page kept; the CDXJ index: one sorted line per response
    const pageLines = entries.get('pages/pages.jsonl')!.data.toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as { url?: string; format?: string; ts?: string });
    expect(pageLines[0]).toMatchObject({ format: 'json-pages-1.0', id: 'pages' });
    expect(pageLines.slice(1).map((p) => new URL(p.url!).pathname).sort()).toEqual(['/', '/a.html']);
    expect(pageLines.slice(1).every((p) => !Number.isNaN(Date.parse(p.ts!)))).toBe(true);
    const index = entries.get('indexes/index.cdx')!.data.toString('utf8').trim().split('\n');
    expect(index).toHaveLength(archived.length);
    expect([...index].sort()).toEqual(index);
    for (const line of index) {
      // SURT key (warcio reverses an address's parts as it does a name's), 14-digit timestamp, JSON
      const [, key, json] = /^(1,0,0,127:\d+\)\/\S*) \d{14} (\{.*\})$/.exec(line) ?? [];
      const entry = JSON.parse(json!) as { url: string; digest: string; status: string; offset: string; length: string; filename: string };
      const pathname = new URL(entry.url).pathname;
      expect(key, line).toBe(`1,0,0,127:${new URL(site.origin).port})${pathname}`);
      expect(entry, line).toMatchObject({ status: '200', filename: 'data.warc.gz', digest: sha256Of(pages[pathname] !== undefined ? Buffer.from(pages[pathname]!.html) : images[pathname]!) });
      // offset and length name the record's own gzip member, as a replay tool reads it
      const warc = entries.get('archive/data.warc.gz')!.data;
      const alone = await WARCParser.parse([warc.subarray(Number(entry.offset), Number(entry.offset) + Number(entry.length))]);
      expect(alone?.warcType).toBe('response');
      expect(alone?.warcTargetURI).toBe(entry.url);
    }

    // a job that did not ask for an archive has none to export
    const plain = await store.create({ urls: [`${site.origin}/a.html`], maxDepth: 0, maxPages: 1, scope: 'host' });
    await waitForJob(store, plain.id, 30_000);
    await expect(exportJobArchive(crawlerClient, apiOrigin, plain.id, path.join(out, 'plain.wacz'), () => undefined)).rejects.toMatchObject({ code: 'CRAWL_NOT_ARCHIVED', exitCode: 2 });
    expect(await readdir(out)).toEqual(['crawl.wacz']);
  });

  it('keeps every redirect hop on the way to a page or an image as its own response record, linked as replay tools follow them', async () => {
    const photo = png(5, 3, 40);
    const home = '<title>home</title><img src="/img/old.png">';
    const moved = (to: string) => `<a href="${to}">moved</a>`;
    const site = await serve((req, res) => {
      const hops: Record<string, [number, string]> = { '/': [301, '/home'], '/img/old.png': [302, '/img/moved.png'], '/img/moved.png': [307, '/img/new.png'] };
      const hop = hops[req.url!];
      if (hop !== undefined) res.writeHead(hop[0], { location: hop[1], 'content-type': 'text/html' }).end(moved(hop[1]));
      else if (req.url === '/home') res.writeHead(200, { 'content-type': 'text/html' }).end(home);
      else if (req.url === '/img/new.png') res.writeHead(200, { 'content-type': 'image/png' }).end(photo);
      else res.writeHead(404).end();
    });
    const config = await configFor();
    const store = new JobStore(redis.client, config.keyPrefix);
    await startWorker(config);
    const job = await store.create({ urls: [`${site.origin}/`], maxDepth: 1, maxPages: 10, scope: 'host', fetchImages: true, archive: true });
    expect((await waitForJob(store, job.id, 30_000)).counts).toMatchObject({ fetched: 1, imagesStored: 1 });
    const doc = (await store.get(job.id))!;
    const wacz = await writeWacz({ job: doc, store, blobs: imageStoreFor(config, redis.client, store.keys), software: 'test' });
    cleanups.push(() => wacz.dispose());
    const entries = await unzip(await readFile(wacz.file));
    const records: Array<{ type: string; path: string; status?: number; location?: string | null; payload: Buffer; id: string | null; concurrentTo: string | null }> = [];
    for await (const record of WARCParser.iterRecords([entries.get('archive/data.warc.gz')!.data]) as AsyncIterable<WARCRecord>) {
      const payload = Buffer.from(await record.readFully(true));
      if (record.warcType === 'warcinfo') continue;
      records.push({
        type: record.warcType, path: new URL(record.warcTargetURI!).pathname, payload, id: record.warcHeader('WARC-Record-ID') ?? null, concurrentTo: record.warcHeader('WARC-Concurrent-To') ?? null,
        ...(record.httpHeaders?.statusCode !== undefined && record.warcType === 'response' ? { status: Number(record.httpHeaders.statusCode), location: record.httpHeaders.headers.get('location') } : {}),
      });
    }
    // every hop: its response (status and Location as served, its short body kept), the request concurrent to it;
    // every answer a redirect led to: a metadata record concurrent to its response naming where it came from
    const responses = records.filter((r) => r.type === 'response');
    expect(responses.map((r) => [r.path, r.status, r.location ?? null])).toEqual([
      ['/', 301, '/home'], ['/home', 200, null], ['/img/old.png', 302, '/img/moved.png'], ['/img/moved.png', 307, '/img/new.png'], ['/img/new.png', 200, null],
    ]);
    expect(responses[0]!.payload.toString()).toBe(moved('/home'));
    expect(sha256Of(responses[4]!.payload)).toBe(sha256Of(photo));
    for (const response of responses) expect(records.filter((r) => r.type === 'request' && r.concurrentTo === response.id).map((r) => r.path), response.path).toEqual([response.path]);
    const vias = records.filter((r) => r.type === 'metadata').map((r) => [r.path, r.payload.toString().trim(), responses.find((x) => x.id === r.concurrentTo)?.path]);
    expect(vias).toEqual([
      ['/home', `via: ${site.origin}/`, '/home'], ['/img/moved.png', `via: ${site.origin}/img/old.png`, '/img/moved.png'], ['/img/new.png', `via: ${site.origin}/img/moved.png`, '/img/new.png'],
    ]);
    // the index lists every hop under its own URL with its status; pages.jsonl opens the page where it was asked for
    const index = entries.get('indexes/index.cdx')!.data.toString('utf8').trim().split('\n').map((line) => JSON.parse(line.slice(line.indexOf('{'))) as { url: string; status: string });
    expect(index.map((e) => [new URL(e.url).pathname, e.status]).sort()).toEqual([['/', '301'], ['/home', '200'], ['/img/moved.png', '307'], ['/img/new.png', '200'], ['/img/old.png', '302']]);
    const pageLines = entries.get('pages/pages.jsonl')!.data.toString('utf8').trim().split('\n').slice(1).map((line) => JSON.parse(line) as { url: string; status: number });
    expect(pageLines).toMatchObject([{ url: `${site.origin}/`, status: 200 }]);
  });

  it('keeps at most hostConcurrency requests in flight to one host across workers', async () => {
    let inFlight = 0;
    let most = 0;
    const site = await serve((req, res) => {
      if (req.url === '/robots.txt') {
        res.writeHead(404).end();
        return;
      }
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'text/html' }).end(req.url === '/' ? Array.from({ length: 15 }, (_, i) => `<a href="/p/${i}">${i}</a>`).join('') : 'a page');
      }, 80);
    });
    const config = await configFor({ hostConcurrency: 2 });
    const store = new JobStore(redis.client, config.keyPrefix);
    const workers = [await startWorker(config), await startWorker(config)];
    const job = await store.create({ urls: [`${site.origin}/`], maxDepth: 1, maxPages: 100, scope: 'host' });
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.counts).toMatchObject({ fetched: 16, failed: 0 });
    expect(most).toBe(2);
    // the cap made tasks wait (16 pages, 2 workers of 8), and every lease is given back (the last one right
    // after the completion that ended the job)
    expect(workers.reduce((sum, w) => sum + w.stats.hostFull, 0)).toBeGreaterThan(0);
    const inflight = crawlerKeys(config.keyPrefix).hostInflight(new URL(site.origin).host);
    await pollUntil(async () => ((await redis.client.zcard(inflight)) === 0 ? true : undefined), { timeoutMs: 5000, intervalMs: 20, onTimeout: () => { throw new Error(`leases still held on ${inflight} 5 s after the job ended`); } });
  });

  it('retries rate-limit and block pages later, not as content, and records them as blocked with the reason after every try', async () => {
    const hits = new Map<string, number>();
    const site = await serve((req, res) => {
      const count = (hits.get(req.url!) ?? 0) + 1;
      hits.set(req.url!, count);
      const html = (status: number, body: string, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'text/html', ...headers }).end(body);
      switch (req.url) {
        case '/robots.txt': return void res.writeHead(404).end();
        case '/': return html(200, ['/challenge.html', '/captcha.html', '/denied.html', '/members.html', '/busy.html'].map((p) => `<a href="${p}">${p}</a>`).join(''));
        // a Cloudflare challenge the first two times, then the page
        case '/challenge.html': return count <= 2
          ? html(403, '<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script></body></html>', { 'cf-mitigated': 'challenge' })
          : html(200, '<title>the real page</title><a href="/after.html">after</a>');
        case '/after.html': return html(200, 'after the challenge');
        case '/captcha.html': return html(200, '<html><head><title>Are you a robot?</title></head><body><div class="g-recaptcha" data-sitekey="k"></div></body></html>');
        case '/denied.html': return html(403, '<html><head><title>Access Denied</title></head><body>You don\'t have permission to access this page.</body></html>');
        case '/members.html': return html(403, '<h1>Members only</h1>');
        case '/busy.html': return count === 1 ? html(429, 'Too Many Requests', { 'retry-after': '0' }) : html(200, 'served at last');
        default: return void res.writeHead(404).end();
      }
    });
    const config = await configFor({ maxAttempts: 3, maxHostBackoffMs: 200 });
    const store = new JobStore(redis.client, config.keyPrefix);
    const worker = await startWorker(config);
    const job = await store.create({ urls: [`${site.origin}/`], maxDepth: 2, maxPages: 100, scope: 'host' });
    const doc = await waitForJob(store, job.id, 30_000);
    expect(doc.status).toBe('done');
    const byPath = new Map((await store.pages(doc.id, 0, 100)).items.map((p: PageRecord) => [new URL(p.url).pathname, p]));
    // the challenge passed on the third try: the page is content, its links followed
    expect(byPath.get('/challenge.html')).toMatchObject({ outcome: 'fetched', status: 200, links: 1 });
    expect(hits.get('/challenge.html')).toBe(3);
    expect(byPath.get('/after.html')).toMatchObject({ outcome: 'fetched' });
    expect(byPath.get('/busy.html')).toMatchObject({ outcome: 'fetched', status: 200 });
    // a captcha wall (200) and an access-denied page (403) on every try: blocked, with why
    expect(byPath.get('/captcha.html')).toMatchObject({ outcome: 'blocked', status: 200, blockPage: 'captcha (HTTP 200)' });
    expect(byPath.get('/captcha.html')!.error).toMatch(/^block page after 3 tries: captcha/);
    expect(byPath.get('/denied.html')).toMatchObject({ outcome: 'blocked', status: 403, blockPage: 'access denied (HTTP 403)' });
    expect(hits.get('/captcha.html')).toBe(3);
    expect(hits.get('/denied.html')).toBe(3);
    // a 403 without a block page's signature is the site's answer: failed at once, not retried
    expect(byPath.get('/members.html')).toMatchObject({ outcome: 'failed', status: 403 });
    expect(byPath.get('/members.html')!.blockPage).toBeUndefined();
    expect(hits.get('/members.html')).toBe(1);
    expect(doc.counts).toMatchObject({ fetched: 4, blocked: 2, failed: 1 });
    // 2 challenges + 3 captchas + 3 denials + 1 rate limit
    expect(worker.stats.blockPages).toBe(9);
  });
});
