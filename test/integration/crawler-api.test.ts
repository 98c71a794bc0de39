import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCrawlerApi } from '../../crawler/src/api/app.js';
import { parseServiceConfig, type ServiceConfig } from '../../crawler/src/config.js';
import { apiConnection } from '../../crawler/src/redis.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pollUntil } from '../../src/util/poll.js';
import { runCli } from '../support/cli.js';
import { apiEntry, spawnService, startInProcessWorker, writeServiceConfig } from '../support/crawler.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';
import { startSyntheticSite, type SyntheticSite } from '../support/synthetic-site.js';
import { waitFor } from '../support/wait.js';
import { ensureChromium, launchChromium } from '../support/chromium.js';
import { png, serveImagePage, sha256Of, svg } from '../support/synthetic-images.js';
import { BlobStore } from '../../crawler/src/blob-store.js';
import { readdir } from 'node:fs/promises';

/** The HTTP API in-process against a real Redis, plus the built server.ts as a process. */
const TOKEN = 'api-test-token-0123-4567-89ab-cdef-XYZ';
let redis: TestRedis;
let client: Redis;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  // the gallery's browser: installed here, where a fresh machine's wait behind the suite's other apt installs
  // and the download fit the hook's time, rather than inside the gallery test's own 300 s
  await ensureChromium();
}, 1_200_000);

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => undefined);
  client?.disconnect();
  await redis?.stop();
});

function configFor(redisUrl = redis.url, extra: Record<string, unknown> = {}): ServiceConfig {
  return parseServiceConfig({
    redis: redisUrl, apiToken: TOKEN, keyPrefix: `api-${randomUUID().slice(0, 8)}:`, allow: { networks: ['127.0.0.1/32'] },
    api: { maxBodyBytes: 2048, redisTimeoutMs: 500 },
    worker: { concurrency: 8, visibilityTimeoutMs: 2000 },
    ...extra,
  });
}

async function startApi(config: ServiceConfig, options: { redisUp?: boolean } = {}): Promise<string> {
  const connection = apiConnection(config.redis, config.api.redisTimeoutMs);
  connection.on('error', () => undefined);
  // without an offline queue, a request that comes before the connection is up is a 503 (right for the API,
  // which says try again): a test that asks at once waits for the connection as a running API has it
  if ((options.redisUp ?? true) && connection.status !== 'ready') await once(connection, 'ready');
  const api = createCrawlerApi({ config, redis: connection, log: { error: () => undefined } });
  const server: Server = createServer(api.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    connection.disconnect();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function call(base: string, method: string, path: string, options: { body?: string | Buffer | Readable; type?: string; token?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.type !== undefined) headers['content-type'] = options.type;
  if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
  const response = await request(`${base}${path}`, { method: method as 'GET', headers, body: options.body });
  const text = await response.body.text();
  const type = String(response.headers['content-type'] ?? '');
  return { status: response.statusCode, type, headers: response.headers, json: type.startsWith('application/json') ? JSON.parse(text) : undefined, text };
}

const json = (value: unknown) => ({ body: JSON.stringify(value), type: 'application/json' });

/**
 * Run in the gallery page (the browser's JavaScript, so a string: this project compiles without the DOM's types).
 * Thumbnails load lazily: each is brought into view, as a reader scrolling down would, and waited for.
 */
const GALLERY_PROBE = `(async () => {
  const images = [...document.querySelectorAll('img')];
  for (const image of images) {
    image.scrollIntoView();
    if (!image.complete) await new Promise((resolve) => { image.addEventListener('load', resolve, { once: true }); image.addEventListener('error', resolve, { once: true }); });
  }
  return {
    images: images.map((i) => ({ src: i.getAttribute('src'), alt: i.alt, naturalWidth: i.naturalWidth, shownWidth: i.getBoundingClientRect().width })),
    groups: [...document.querySelectorAll('section h2')].map((h) => h.textContent),
    scripts: document.querySelectorAll('script').length,
    pwned: window.pwned ?? null,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    captionText: [...document.querySelectorAll('figcaption')].map((c) => c.textContent ?? ''),
  };
})()`;

describe('crawler API', () => {
  it('answers every bad request with the right status and a JSON error, writing nothing to Redis', async () => {
    const config = configFor();
    const base = await startApi(config);
    const unknown = randomUUID();
    const cases: Array<[string, Awaited<ReturnType<typeof call>>, number, RegExp]> = [
      ['malformed JSON', await call(base, 'POST', '/v1/jobs', { body: '{"urls": [', type: 'application/json' }), 400, /not valid JSON/],
      ['oversized body', await call(base, 'POST', '/v1/jobs', json({ urls: ['http://x.test/' + 'a'.repeat(5000)] })), 413, /exceeds 2048 bytes/],
      ['oversized chunked body', await call(base, 'POST', '/v1/jobs', { body: Readable.from([Buffer.alloc(1024, 'x'), Buffer.alloc(4096, 'x')]), type: 'text/plain' }), 413, /exceeds/],
      ['missing token', await call(base, 'POST', '/v1/jobs', { ...json({ urls: ['http://x.test/'] }), token: null }), 401, /missing bearer token/],
      ['wrong token', await call(base, 'POST', '/v1/jobs', { ...json({ urls: ['http://x.test/'] }), token: 'nope-nope-nope' }), 401, /invalid bearer token/],
      ['missing token on DELETE', await call(base, 'DELETE', `/v1/jobs/${unknown}`, { token: null }), 401, /bearer/],
      ['file: URL', await call(base, 'POST', '/v1/jobs', json({ urls: ['file:///etc/passwd'] })), 400, /file:/],
      ['ftp: URL', await call(base, 'POST', '/v1/jobs', json({ urls: ['ftp://x.test/a'] })), 400, /ftp:/],
      ['javascript: URL', await call(base, 'POST', '/v1/jobs', { body: 'javascript:alert(1)\n', type: 'text/plain' }), 400, /javascript:/],
      ['bad field', await call(base, 'POST', '/v1/jobs', json({ urls: ['http://x.test/'], maxDepth: 'deep' })), 400, /the job request is invalid/],
      ['wrong content type', await call(base, 'POST', '/v1/jobs', { body: '<x/>', type: 'application/xml' }), 415, /application\/xml/],
      ['unknown job id', await call(base, 'GET', `/v1/jobs/${unknown}`), 404, /no job with id/],
      ['malformed job id', await call(base, 'GET', '/v1/jobs/..%2F..%2Fetc'), 404, /no job with id/],
      ['unknown job images', await call(base, 'GET', `/v1/jobs/${unknown}/images`), 404, /no job/],
      ['unknown job delete', await call(base, 'DELETE', `/v1/jobs/${unknown}`), 404, /no job/],
      ['unknown job cancel', await call(base, 'POST', `/v1/jobs/${unknown}/cancel`), 404, /no job/],
      ['missing token on cancel', await call(base, 'POST', `/v1/jobs/${unknown}/cancel`, { token: null }), 401, /bearer/],
      ['bad paging', await call(base, 'GET', `/v1/jobs/${unknown}/images?limit=0`), 400, /limit/],
      ['unknown route', await call(base, 'GET', '/v2/nothing'), 404, /no route/],
      ['wrong method', await call(base, 'PUT', '/v1/jobs'), 405, /PUT is not allowed/],
    ];
    for (const [name, response, status, message] of cases) {
      expect(response.status, name).toBe(status);
      expect(response.type, name).toMatch(/^application\/json/);
      expect(response.json.error.message + (response.json.error.details ?? []).join(' '), name).toMatch(message);
    }
    expect(cases.find(([n]) => n === 'file: URL')![1].json.error.details.join()).toMatch(/urls\.0/);
    expect(cases.find(([n]) => n === 'missing token')![1].headers['www-authenticate']).toMatch(/Bearer/);
    expect(await client.keys(`${config.keyPrefix}*`)).toEqual([]);
  });

  /** One crawl worker in this process on the test's Redis, stopped by the closers. */
  const startWorker = (config: ServiceConfig) => startInProcessWorker(redis.url, config, (stop) => closers.push(stop), 200);

  it('creates a job, reports progress and serves images and pages, paginated; POST cancel cancels', async () => {
    const site: SyntheticSite = await startSyntheticSite({ pages: 30, specials: false });
    closers.push(() => site.close());
    const config = configFor();
    const base = await startApi(config);
    await startWorker(config);

    const created = await call(base, 'POST', '/v1/jobs', json({ urls: [site.seed], maxDepth: 10, maxPages: 1000 }));
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/v1/jobs/${created.json.id}`);
    expect(created.json).toMatchObject({ status: 'running', request: { urls: [site.seed], maxDepth: 10, maxPages: 1000, scope: 'host' } });
    const job = await waitFor('the job to finish', async () => {
      const now = (await call(base, 'GET', `/v1/jobs/${created.json.id}`)).json;
      return now.status !== 'running' ? now : undefined;
    }, 10_000, 50);
    expect(job.status).toBe('done');
    expect(job.counts).toMatchObject({ fetched: 30, images: site.expected.images.size, robots: 5, pending: 0 });
    expect(job.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const first = await call(base, 'GET', `/v1/jobs/${job.id}/images?limit=100`);
    const second = await call(base, 'GET', `/v1/jobs/${job.id}/images?offset=100&limit=1000`);
    expect(first.json.total).toBe(site.expected.images.size);
    expect(first.json.items).toHaveLength(100);
    const all = [...first.json.items, ...second.json.items];
    expect(new Set(all.map((i: { url: string }) => i.url))).toEqual(site.expected.images);
    expect(all[0]).toHaveProperty('page');
    const pages = await call(base, 'GET', `/v1/jobs/${job.id}/pages?limit=1000`);
    expect(pages.json.total).toBe(30);

    // The seed's form: text/plain, one URL per line.
    const plain = await call(base, 'POST', '/v1/jobs', { body: `${site.origin}p/1.html\n${site.origin}p/2.html\n`, type: 'text/plain' });
    expect(plain.status).toBe(201);
    expect(plain.json.request.urls).toEqual([`${site.origin}p/1.html`, `${site.origin}p/2.html`]);
    const cancelled = await call(base, 'POST', `/v1/jobs/${plain.json.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(['cancelled', 'done']).toContain(cancelled.json.status);

    const metrics = await call(base, 'GET', '/metrics');
    expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(metrics.text).toMatch(/crawler_api_requests_total\{method="POST",route="\/v1\/jobs",status="201"\} 2/);
    expect(metrics.text).toMatch(/crawler_redis_up 1/);
    const openapi = await call(base, 'GET', '/openapi.json');
    expect(Object.keys(openapi.json.paths)).toContain('/v1/jobs/{id}/images');
  });

  /** Every Redis key named after the job (its record, results, indexes, captures...). */
  const keysOfJob = (config: ServiceConfig, id: string) => client.keys(`${config.keyPrefix}job:${id}*`);
  /** The job's entries in the shared task stream and the delayed set. */
  const queuedOf = async (config: ServiceConfig, id: string) => {
    const entries = (await client.xrange(`${config.keyPrefix}tasks`, '-', '+')) as Array<[string, string[]]>;
    const delayed = await client.zrange(`${config.keyPrefix}delayed`, 0, -1);
    return entries.filter(([, fields]) => fields[fields.indexOf('j') + 1] === id).length + delayed.filter((m) => m.includes(id)).length;
  };
  const finished = (base: string, id: string) => waitFor(`job ${id} to end`, async () => {
    const now = (await call(base, 'GET', `/v1/jobs/${id}`)).json;
    return now.status !== 'running' ? now : undefined;
  }, 15_000, 50);

  it('DELETE removes a job with everything of it (record, queued and delayed tasks, results, stored images); refuses a running one with 409; a second DELETE is a 404', async () => {
    const pictures = new Map([['/a.png', png(8, 8, 1)], ['/b.png', png(8, 8, 2)]]);
    const site = await serveImagePage(pictures);
    closers.push(site.close);
    const config = configFor();
    const base = await startApi(config);
    // queued before any worker runs: the job stays running with its task in the stream, and one delayed (as DELAY_TASK keeps it)
    const waiting = await call(base, 'POST', '/v1/jobs', json({ urls: [`${site.origin}/`], maxDepth: 0, fetchImages: true }));
    await client.zadd(`${config.keyPrefix}delayed`, Date.now() + 60_000, JSON.stringify({ j: waiting.json.id, u: `${site.origin}/later`, d: 1, a: 2 }));
    expect(await queuedOf(config, waiting.json.id)).toBe(2);
    const refused = await call(base, 'DELETE', `/v1/jobs/${waiting.json.id}`);
    expect([refused.status, refused.json.error.code]).toEqual([409, 'job_running']);
    expect(refused.json.error.message).toMatch(/cancel it first \(POST \/v1\/jobs\/.*\/cancel/);
    expect((await call(base, 'POST', `/v1/jobs/${waiting.json.id}/cancel`)).json.status).toBe('cancelled');

    await startWorker(config);
    const kept = await call(base, 'POST', '/v1/jobs', json({ urls: [`${site.origin}/`], maxDepth: 0, fetchImages: true, archive: true }));
    const done = await finished(base, kept.json.id);
    expect(done.counts).toMatchObject({ imageFiles: 2 });
    const keptKeys = (await keysOfJob(config, kept.json.id)).sort();
    expect(keptKeys).toEqual(expect.arrayContaining([`${config.keyPrefix}job:${kept.json.id}:blobs`, `${config.keyPrefix}job:${kept.json.id}:captures`]));

    // the cancelled job: its tasks off the queues (the worker may have taken the stream's one meanwhile), its keys gone
    const started = Date.now();
    const deleted = await call(base, 'DELETE', `/v1/jobs/${waiting.json.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect(await queuedOf(config, waiting.json.id)).toBe(0);
    expect(await keysOfJob(config, waiting.json.id)).toEqual([]);
    expect((await call(base, 'GET', `/v1/jobs/${waiting.json.id}`)).status).toBe(404);
    // idempotent: the same request again changes nothing and says the job is not there
    expect((await call(base, 'DELETE', `/v1/jobs/${waiting.json.id}`)).json.error.code).toBe('job_not_found');

    // the finished one: two images and the page's body in its blobs hash (the redis store), all gone with it
    const second = await call(base, 'DELETE', `/v1/jobs/${kept.json.id}`);
    expect(second.status).toBe(204);
    expect(Number(second.headers['x-contents-removed'])).toBe(3);
    expect(await keysOfJob(config, kept.json.id)).toEqual([]);
    expect((await call(base, 'GET', `/v1/jobs/${kept.json.id}/files/${sha256Of(pictures.get('/a.png')!)}`)).status).toBe(404);
    console.log(`two deletes took ${Date.now() - started} ms`);
  });

  it('deletes from the directory store only the files no other job holds; a file that was there before holders were recorded stays', async () => {
    const x = png(9, 9, 11);
    const shared = png(9, 9, 22);
    const y = png(9, 9, 33);
    const older = png(9, 9, 44);
    const pictures = new Map([['/x.png', x], ['/shared.png', shared], ['/y.png', y], ['/older.png', older]]);
    const site = await serveImagePage(pictures, { pages: { '/a.html': '<img src="/x.png"><img src="/shared.png"><img src="/older.png">', '/b.html': '<img src="/shared.png"><img src="/y.png">' } });
    closers.push(site.close);
    const storePath = await mkdtemp(path.join(tmpdir(), 'crawler-directory-store-'));
    closers.push(() => import('node:fs/promises').then((fs) => fs.rm(storePath, { recursive: true, force: true })));
    // a file an older crawler wrote (no holders recorded): someone may still use it
    const blobs = new BlobStore(storePath);
    await blobs.put(sha256Of(older), 'png', older);
    const config = configFor(redis.url, { images: { store: 'directory', storePath } });
    const base = await startApi(config);
    await startWorker(config);
    const a = await call(base, 'POST', '/v1/jobs', json({ urls: [`${site.origin}/a.html`], maxDepth: 0, fetchImages: true }));
    const b = await call(base, 'POST', '/v1/jobs', json({ urls: [`${site.origin}/b.html`], maxDepth: 0, fetchImages: true }));
    expect((await finished(base, a.json.id)).counts.imageFiles).toBe(3);
    expect((await finished(base, b.json.id)).counts.imageFiles).toBe(2);
    const files = async () => (await readdir(storePath, { recursive: true })).filter((name) => name.endsWith('.png')).map((name) => path.basename(name, '.png')).sort();
    expect(await files()).toEqual([x, shared, y, older].map(sha256Of).sort());

    const first = await call(base, 'DELETE', `/v1/jobs/${a.json.id}`);
    expect([first.status, first.headers['x-contents-removed']]).toEqual([204, '1']);
    // x was A's alone; the shared one is B's too, and B still serves it
    expect(await files()).toEqual([shared, y, older].map(sha256Of).sort());
    expect((await call(base, 'GET', `/v1/jobs/${b.json.id}/files/${sha256Of(shared)}`)).status).toBe(200);
    expect((await call(base, 'DELETE', `/v1/jobs/${b.json.id}`)).headers['x-contents-removed']).toBe('2');
    expect(await files()).toEqual([sha256Of(older)]);
    expect(await client.keys(`${config.keyPrefix}blob-*`)).toEqual([`${config.keyPrefix}blob-holders:${BlobStore.locationOf(sha256Of(older), 'png')}`]);
  });

  it('depl crawl delete: refuses without --yes off a terminal (exit 2), prints the plan with --dry-run, cancels a running job and deletes it with --yes', async () => {
    const config = configFor();
    const base = await startApi(config);
    const cwd = await mkdtemp(path.join(tmpdir(), 'depl-crawl-delete-'));
    const env = { DEPL_API_TOKEN: TOKEN };
    // no worker: the job stays running
    const running = await call(base, 'POST', '/v1/jobs', json({ urls: ['http://x.test/'] }));
    const id = running.json.id as string;
    const unconfirmed = await runCli(['crawl', 'delete', id, '--api', base], { cwd, env });
    expect(unconfirmed.exitCode).toBe(2);
    expect(unconfirmed.stderr).toMatch(/1\. cancel job [\s\S]*2\. delete job [\s\S]*Pass --yes to confirm/);
    const dry = await runCli(['--json', 'crawl', 'delete', id, '--dry-run', '--api', base], { cwd, env });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).steps.map((step: { kind: string }) => step.kind)).toEqual(['cancel-job', 'delete-job']);
    expect((await call(base, 'GET', `/v1/jobs/${id}`)).json.status).toBe('running');
    const confirmed = await runCli(['crawl', 'delete', id, '--yes', '--api', base], { cwd, env });
    expect(confirmed.exitCode, confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toMatch(new RegExp(`Deleted job ${id}: 0 stored contents and 1 queued task removed`));
    expect(await keysOfJob(config, id)).toEqual([]);
  });

  it('reports the backlog autoscaling reads: tasks held by workers plus those not yet delivered', async () => {
    const config = configFor();
    const base = await startApi(config);
    const gauges = async () => {
      const text = (await call(base, 'GET', '/metrics')).text;
      const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
      return { held: value('crawler_tasks_held'), lag: value('crawler_tasks_lag'), backlog: value('crawler_tasks_backlog') };
    };
    await pollUntil(async () => (await call(base, 'GET', '/readyz')).status === 200 || undefined, { timeoutMs: 10_000, intervalMs: 50, onTimeout: () => { throw new Error('the API never became ready'); } });
    // no worker has read anything yet: every task in the stream is waiting
    for (const n of [1, 2, 3]) expect((await call(base, 'POST', '/v1/jobs', json({ urls: [`http://x.test/${n}`] }))).status).toBe(201);
    expect(await gauges()).toEqual({ held: 0, lag: 3, backlog: 3 });
    // a worker takes two of them (and holds them unacknowledged)
    const tasks = `${config.keyPrefix}tasks`;
    await client.xreadgroup('GROUP', 'workers', 'w1', 'COUNT', 2, 'STREAMS', tasks, '>');
    expect(await gauges()).toEqual({ held: 2, lag: 1, backlog: 3 });
    // one is done: acknowledged and deleted, as the completion script does
    const [[id]] = (await client.xpending(tasks, 'workers', '-', '+', 1)) as [[string]];
    await client.multi().xack(tasks, 'workers', id).xdel(tasks, id).exec();
    expect(await gauges()).toEqual({ held: 1, lag: 1, backlog: 2 });
  });

  it('fails fast with 503 when Redis is unreachable, while /healthz stays up', async () => {
    const base = await startApi(configFor(`redis://127.0.0.1:${await freePort()}`), { redisUp: false });
    const started = Date.now();
    const job = await call(base, 'GET', `/v1/jobs/${randomUUID()}`);
    const create = await call(base, 'POST', '/v1/jobs', json({ urls: ['http://x.test/'] }));
    const ready = await call(base, 'GET', '/readyz');
    expect(Date.now() - started).toBeLessThan(2000);
    for (const response of [job, create, ready]) {
      expect(response.status).toBe(503);
      expect(response.json.error.code).toBe('redis_unavailable');
    }
    expect((await call(base, 'GET', '/healthz')).status).toBe(200);
  });

  it('runs as a service: listens, becomes ready, stops cleanly on SIGTERM; a bad --config is one clear line', async () => {
    const port = await freePort();
    const configUrl = await writeServiceConfig({ ...configFor(), apiToken: TOKEN, port, host: '127.0.0.1' });
    const service = spawnService(apiEntry, configUrl);
    closers.push(async () => { if (service.child.exitCode === null) service.child.kill('SIGKILL'); });
    const ready = await waitFor('the API to be ready', async () => {
      const status = await call(`http://127.0.0.1:${port}`, 'GET', '/readyz').then((r) => r.status, () => 0);
      return status === 200 ? status : undefined;
    }, 10_000, 100).catch((error: Error) => { throw new Error(`${error.message}\n${service.output()}`); });
    expect(ready).toBe(200);
    service.child.kill('SIGTERM');
    expect((await service.exited).code, service.output()).toBe(0);

    const missing = spawnService(apiEntry, 'file:///nonexistent/crawler.json');
    expect((await missing.exited).code).not.toBe(0);
    expect(missing.output().trim()).toBe('api: cannot load config from file:///nonexistent/crawler.json: ENOENT: no such file or directory, open \'/nonexistent/crawler.json\'');
    const invalid = spawnService(apiEntry, await writeServiceConfig({ redis: 'nope' }));
    expect((await invalid.exited).code).not.toBe(0);
    expect(invalid.output().trim().split('\n')).toHaveLength(1);
    expect(invalid.output()).toMatch(/invalid: redis: expected a redis:\/\//);

    // a placeholder or short token: the API does not start, and says why in one line
    const weak = spawnService(apiEntry, await writeServiceConfig({ ...configFor(), apiToken: 'change-me', port: await freePort(), host: '127.0.0.1' }));
    expect((await weak.exited).code).not.toBe(0);
    expect(weak.output().trim()).toBe('api: refusing to start: the API token is a placeholder ("change-me"); use a random token of at least 32 characters (depl init generates one)');
    const short = spawnService(apiEntry, await writeServiceConfig({ ...configFor(), apiToken: 'only-20-characters!!', port: await freePort(), host: '127.0.0.1' }));
    expect((await short.exited).code).not.toBe(0);
    expect(short.output().trim()).toBe('api: refusing to start: the API token has 20 characters; at least 32 are needed (depl init generates a random one)');
  });

  it('keeps /metrics behind the token by default, and rate-limits a client that keeps sending wrong tokens', async () => {
    const base = await startApi(configFor(redis.url, { api: { authFailures: { max: 3, windowMs: 60_000 } } }));
    expect((await call(base, 'GET', '/metrics', { token: null })).status).toBe(401);
    expect((await call(base, 'GET', '/metrics')).status).toBe(200);
    expect((await call(base, 'GET', '/openapi.json', { token: null })).status).toBe(200);
    const submit = json({ urls: ['http://127.0.0.1/'] });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(base, 'POST', '/v1/jobs', { ...submit, token: 'wrong-token' })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const blocked = await call(base, 'POST', '/v1/jobs', submit);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('as a service with a metrics-only token from its file: that token reads /metrics and opens nothing else', async () => {
    const metricsToken = `metrics-${randomUUID()}`;
    const dir = await mkdtemp(path.join(tmpdir(), 'crawler-metrics-token-'));
    await writeFile(path.join(dir, 'metrics_token'), `${metricsToken}\n`, { mode: 0o600 });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // the autoscaler's view, as depl deploys it: the token in a secret file, job reads not public
    const service = spawnService(apiEntry, await writeServiceConfig({
      ...configFor(), apiToken: TOKEN, metricsTokenFile: path.join(dir, 'metrics_token'), port, host: '127.0.0.1',
      api: { ...configFor().api, public: { jobReads: false, openapi: false, metrics: false } },
    }));
    closers.push(async () => { if (service.child.exitCode === null) service.child.kill('SIGKILL'); });
    await waitFor('the API to be ready', async () => ((await call(base, 'GET', '/readyz').then((r) => r.status, () => 0)) === 200 ? true : undefined), 10_000, 100)
      .catch((error: Error) => { throw new Error(`${error.message}\n${service.output()}`); });
    const job = await call(base, 'POST', '/v1/jobs', json({ urls: ['http://127.0.0.1:9/'] }));
    expect(job.status).toBe(201);
    const id = (job.json as { id: string }).id;

    const metrics = await call(base, 'GET', '/metrics', { token: metricsToken });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/crawler_redis_up 1/);
    const asMetrics = [
      ['submit', await call(base, 'POST', '/v1/jobs', { ...json({ urls: ['http://127.0.0.1:9/'] }), token: metricsToken })],
      ['read', await call(base, 'GET', `/v1/jobs/${id}`, { token: metricsToken })],
      ['pages', await call(base, 'GET', `/v1/jobs/${id}/pages`, { token: metricsToken })],
      ['cancel', await call(base, 'POST', `/v1/jobs/${id}/cancel`, { token: metricsToken })],
      ['delete', await call(base, 'DELETE', `/v1/jobs/${id}`, { token: metricsToken })],
    ] as const;
    expect(asMetrics.map(([what, r]) => [what, r.status])).toEqual(asMetrics.map(([what]) => [what, 401]));
    // the job is as it was, and the API token still reads it
    expect((await call(base, 'GET', `/v1/jobs/${id}`)).status).toBe(200);
    service.child.kill('SIGTERM');
    expect((await service.exited).code, service.output()).toBe(0);
  });

  it('is driven by depl crawl submit --wait / status / results with --api and DEPL_API_TOKEN', async () => {
    const site = await startSyntheticSite({ pages: 12, specials: false });
    closers.push(() => site.close());
    const config = configFor();
    const base = await startApi(config);
    await startWorker(config);
    const cwd = await mkdtemp(path.join(tmpdir(), 'depl-crawl-cli-'));
    const env = { DEPL_API_TOKEN: TOKEN };
    const submitted = await runCli(['--json', 'crawl', 'submit', site.seed, '--depth', '5', '--max-pages', '100', '--wait', '--api', base], { cwd, env });
    expect(submitted.exitCode, submitted.stderr).toBe(0);
    const job = JSON.parse(submitted.stdout);
    expect(job).toMatchObject({ status: 'done', counts: { fetched: 12, images: site.expected.images.size } });

    const status = await runCli(['crawl', 'status', job.id, '--api', base], { cwd, env });
    expect(status.stdout).toMatch(/: done\n\s+pages: 12 fetched, 0 failed, 5 skipped by robots\.txt/);
    const csv = await runCli(['crawl', 'results', job.id, '--format', 'csv', '--api', base], { cwd, env });
    // (execa strips the final line break)
    const rows = csv.stdout.split('\r\n');
    expect(rows[0]).toBe('image_url,page_url,alt,kind');
    expect(rows.every((r) => !r.includes('\n'))).toBe(true);
    expect(new Set(rows.slice(1).map((r) => r.split(',')[0]))).toEqual(site.expected.images);
    const jsonl = await runCli(['crawl', 'results', job.id, '--format', 'jsonl', '--api', base], { cwd, env });
    const lines = jsonl.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { url: string; kind: string });
    expect(new Set(lines.map((l) => l.url))).toEqual(site.expected.images);
    const json = await runCli(['crawl', 'results', job.id, '--api', base], { cwd, env });
    expect((JSON.parse(json.stdout) as unknown[]).length).toBe(site.expected.images.size);
    const bom = await runCli(['crawl', 'results', job.id, '--format', 'csv', '--bom', '--api', base], { cwd, env });
    expect(bom.stdout.startsWith('\uFEFFimage_url,')).toBe(true);
    // a page that never answers keeps its job running: --wait --timeout gives up waiting, exit 1, job left running
    const hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const slowUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/never.html`;
      const timedOut = await runCli(['crawl', 'submit', slowUrl, '--wait', '--timeout', '1s', '--api', base], { cwd, env });
      expect([timedOut.exitCode, timedOut.stderr]).toEqual([1, expect.stringMatching(/is still running after 1s[\s\S]*depl crawl status/)]);
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
    const badTimeout = await runCli(['crawl', 'submit', site.seed, '--wait', '--timeout', 'soon', '--api', base], { cwd, env });
    expect(badTimeout.exitCode).toBe(2);

    const unknown = await runCli(['crawl', 'status', randomUUID(), '--api', base], { cwd, env });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/no job with id/);
    const noToken = await runCli(['crawl', 'submit', site.seed, '--api', base], { cwd, env: {} });
    expect(noToken.exitCode).toBe(2);
    expect(noToken.stderr).toMatch(/missing bearer token/);
    const refused = await runCli(['crawl', 'submit', 'file:///etc/passwd', '--api', base], { cwd, env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/file:/);
  });

  it('refuses a pattern it cannot match in linear time with 400 naming it, takes the hostile ones it can; depl crawl submit exits 2 with the reason', async () => {
    const config = configFor();
    const base = await startApi(config);
    const submit = (include: string[], exclude: string[] = []) => call(base, 'POST', '/v1/jobs', json({ urls: ['http://x.test/'], include, exclude }));
    const refusals: Array<[string[], string[], RegExp]> = [
      [['/(a)\\1/'], [], /^include\.0: "\/\(a\)\\1\/" cannot be used: .*backreference/],
      [['**'], ['/a(?=b)/'], /^exclude\.0: "\/a\(\?=b\)\/" cannot be used: lookahead/],
      [['/a{5000}/'], [], /^include\.0: .*too large once its repetitions are expanded/],
      [[`http://x.test/${'a'.repeat(600)}`.slice(0, 520)], [], /^include\.0: .* is 520 characters long; at most 500 are allowed/],
      [Array(30).fill('**a'), Array(21).fill('**b'), /^include: expected at most 50 include and exclude patterns together, got 51/],
    ];
    for (const [include, exclude, detail] of refusals) {
      const response = await submit(include, exclude);
      expect(response.status, String(detail)).toBe(400);
      expect(response.json.error.code).toBe('invalid_request');
      expect(response.json.error.details, String(detail)).toEqual([expect.stringMatching(detail)]);
    }
    expect(await client.keys(`${config.keyPrefix}*`)).toEqual([]);
    // the patterns that backtrack exponentially in JavaScript are matched in linear time, so they are taken
    const hostile = await submit(['/(a|a)*b/', '**a**a**a**a**a**a**b']);
    expect(hostile.status).toBe(201);
    expect(hostile.json.request).toMatchObject({ include: ['/(a|a)*b/', '**a**a**a**a**a**a**b'] });

    const cwd = await mkdtemp(path.join(tmpdir(), 'depl-crawl-patterns-'));
    const env = { DEPL_API_TOKEN: TOKEN };
    const cli = await runCli(['crawl', 'submit', 'http://x.test/', '--include', '**', '--exclude', '/(?<!a)b/', '--api', base], { cwd, env });
    expect(cli.exitCode, cli.stderr).toBe(2);
    expect(cli.stderr).toMatch(/exclude\.0: "\/\(\?<!a\)b\/" cannot be used: lookbehind/);
    const taken = await runCli(['--json', 'crawl', 'submit', 'http://x.test/', '--include', '/(a|a)*b/', '--exclude', '**.pdf', '--api', base], { cwd, env });
    expect(taken.exitCode, taken.stderr).toBe(0);
    expect(JSON.parse(taken.stdout).request).toMatchObject({ include: ['/(a|a)*b/'], exclude: ['**.pdf'] });
  });

  it('shows a job\'s images in a gallery that headless Chromium renders at a phone\'s size, every thumbnail loaded through signed links with reads behind the token, hostile text shown as text', async () => {
    // two pages; their alt text and one URL carry markup that would run if it were not escaped
    const hostileAlt = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'"`;
    const pictures = new Map<string, Buffer>();
    for (let i = 0; i < 10; i++) pictures.set(`/pic/${i}.png`, png(40 + 7 * i, 30 + 5 * i, 25 * i));
    pictures.set(`/pic/it's&amp;"q".svg`, svg(64, 32));
    const pages: Record<string, string> = {
      '/': `<a href="/second.html">next</a>${[...pictures.keys()].slice(0, 6).map((p, i) => `<img src="${p}" alt="${i === 0 ? hostileAlt.replace(/&/g, '&amp;').replace(/"/g, '&quot;') : `picture ${i}`}">`).join('')}`,
      '/second.html': `${[...pictures.keys()].slice(5).map((p) => `<img src="${p.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}" alt="on the second page">`).join('')}`,
    };
    const site = await serveImagePage(pictures, { pages: Object.fromEntries(Object.entries(pages).map(([path, html]) => [path, `<!doctype html><title>t</title>${html}`])), contentType: 'application/octet-stream' });
    closers.push(site.close);
    const origin = site.origin;
    const config = configFor();
    const base = await startApi(config);
    await startWorker(config);
    const created = await call(base, 'POST', '/v1/jobs', json({ urls: [`${origin}/`], maxDepth: 1, maxPages: 10, fetchImages: true }));
    const job = await waitFor('the job to finish', async () => {
      const now = (await call(base, 'GET', `/v1/jobs/${created.json.id}`)).json;
      return now.status !== 'running' ? now : undefined;
    }, 15_000, 50);
    expect(job.counts).toMatchObject({ imageFiles: pictures.size, imagesStored: pictures.size });

    // behind the token when job reads are not public, as the other reads
    const closed = configFor(redis.url, { api: { public: { jobReads: false } } });
    const closedBase = await startApi({ ...closed, keyPrefix: config.keyPrefix });
    expect((await call(closedBase, 'GET', `/v1/jobs/${job.id}/gallery`, { token: null })).status).toBe(401);
    expect((await call(closedBase, 'GET', `/v1/jobs/${job.id}/gallery`)).status).toBe(200);
    const gallery = await call(base, 'GET', `/v1/jobs/${job.id}/gallery`, { token: null });
    expect(gallery.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'x-content-type-options': 'nosniff' });
    const thumbnail = await call(base, 'GET', `/v1/jobs/${job.id}/files/${sha256Of(pictures.get('/pic/3.png')!)}`, { token: null });
    expect(thumbnail.headers).toMatchObject({ 'content-type': 'image/png', 'x-content-type-options': 'nosniff' });

    // with reads behind the token, a thumbnail's file is opened by its signed link alone, not without it, nor by a link altered or moved
    const closedGallery = await call(closedBase, 'GET', `/v1/jobs/${job.id}/gallery`);
    const signedSources = [...closedGallery.text.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!.replace(/&#38;|&amp;/g, '&'));
    expect(signedSources).toHaveLength(12);
    expect(signedSources.every((src) => /^\/v1\/jobs\/[^/]+\/files\/[0-9a-f]{64}\?expires=\d+&sig=[\w-]{43}$/.test(src) && !src.includes(TOKEN))).toBe(true);
    const [signedPath, signedQuery] = signedSources[0]!.split('?') as [string, string];
    expect((await call(closedBase, 'GET', signedSources[0]!, { token: null })).status).toBe(200);
    expect((await call(closedBase, 'GET', signedPath, { token: null })).status).toBe(401);
    const otherFile = signedSources.find((src) => !src.startsWith(signedPath))!.split('?')[0]!;
    expect((await call(closedBase, 'GET', `${otherFile}?${signedQuery}`, { token: null })).json.error.code).toBe('bad_file_link');
    expect((await call(closedBase, 'GET', `${signedPath}?${signedQuery.replace(/sig=./, (m) => (m.endsWith('A') ? 'sig=B' : 'sig=A'))}`, { token: null })).status).toBe(403);

    const browser = await launchChromium();
    closers.push(() => browser.close());
    const tab = await browser.newPage();
    await tab.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const refused: string[] = [];
    tab.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
    });
    // the browser sends the token with the gallery page only (as a proxy in front of it would); its image requests carry none
    const imageRequests: Array<{ url: string; authorization?: string }> = [];
    await tab.setRequestInterception(true);
    tab.on('request', (sent) => {
      if (sent.isNavigationRequest()) {
        void sent.continue({ headers: { ...sent.headers(), authorization: `Bearer ${TOKEN}` } });
        return;
      }
      if (sent.resourceType() === 'image') imageRequests.push({ url: sent.url(), authorization: sent.headers().authorization });
      void sent.continue();
    });
    const answer = await tab.goto(`${closedBase}/v1/jobs/${job.id}/gallery`, { waitUntil: 'load' });
    expect(answer?.status()).toBe(200);
    // thumbnails load lazily: bring each into view, as a reader scrolling down would, and wait for it
    const shown = await tab.evaluate(GALLERY_PROBE) as {
      images: Array<{ src: string; alt: string; naturalWidth: number; shownWidth: number }>; groups: string[]; scripts: number; pwned: number | null; overflow: number; captionText: string[];
    };
    // grouped by page: the 6 of the start page, then the 6 of the second (the sixth picture is on both)
    expect(shown.groups).toEqual([`${origin}/`, `${origin}/second.html`]);
    expect(shown.images).toHaveLength(12);
    for (const image of shown.images) expect(image.naturalWidth, String(image.src)).toBeGreaterThan(0);
    expect(shown.images.every((i) => i.src.includes('&sig='))).toBe(true);
    expect(imageRequests.length).toBeGreaterThan(0);
    expect(imageRequests.every((r) => r.authorization === undefined)).toBe(true);
    expect(shown.images.every((i) => i.shownWidth > 50 && i.shownWidth < 390)).toBe(true);
    // a phone's width: two or more columns, nothing wider than the screen
    expect(shown.overflow).toBeLessThanOrEqual(0);
    expect(shown.images[0]!.alt).toBe(hostileAlt);
    expect(shown.captionText.some((t) => t.includes(hostileAlt))).toBe(true);
    expect(shown.captionText.some((t) => t.includes(`/pic/it's&amp;%22q%22.svg`))).toBe(true);
    expect(shown).toMatchObject({ scripts: 0, pwned: null });
    expect(refused).toEqual([]);
    // the metadata appears on focus (a tap on a phone), not before
    const caption = 'section:first-of-type li:first-child figcaption';
    const display = `getComputedStyle(document.querySelector(${JSON.stringify(caption)})).display`;
    expect(await tab.evaluate(display)).toBe('none');
    await tab.focus('section:first-of-type li:first-child figure');
    expect(await tab.evaluate(display)).toBe('block');

    const screenshot = path.join(await mkdtemp(path.join(tmpdir(), 'crawler-gallery-')), 'gallery-phone.png');
    await tab.evaluate('window.scrollTo(0, 0)');
    await tab.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
    console.log(`gallery screenshot (390x844 phone viewport, full page): ${screenshot}`);
  });
});
