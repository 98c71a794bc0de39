import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { imageStoreFor } from '../image-store.js';
import { IMAGE_MEDIA_TYPES } from '../core/image-type.js';
import { jobRequestFromText, parseJobRequest } from '../core/job-request.js';
import { fileFilterSchema, filterImageFiles } from '../core/image-files.js';
import type { ServiceConfig } from '../config.js';
import { JobStore, isJobId } from '../jobs.js';
import { deleteJob } from '../job-deletion.js';
import { CONSUMER_GROUP } from '../keys.js';
import { HttpError, readBody, sendError, sendJson } from './http-io.js';
import { AuthFailureLimiter, tokenGuard } from './auth.js';
import { apiTokenProblem } from '../core/secret.js';
import { ApiMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import type { writeWacz as WriteWacz } from '../archive/wacz.js';
import { deploymentProvenance, softwareName } from '../provenance.js';
import { fileLinkSigner } from './file-links.js';
import { byteWindow } from './byte-window.js';
import { rangeFor } from '../core/byte-range.js';
import { galleryHeaders, renderGallery } from './gallery.js';

/**
 * The crawler's HTTP API as a plain request handler, so tests run it in-process and server.ts only listens.
 *
 * Why node:http + zod and not fastify: fastify is not a dependency here, and the API is nine routes whose
 * hard parts (body limits before reading, auth before parsing, fail-fast Redis, JSON errors everywhere) are a
 * few dozen explicit lines; zod already validates the bodies and is shared with the CLI and the config.
 */
export interface ApiDeps {
  config: ServiceConfig;
  /** Made by apiConnection(): no offline queue, a command timeout, so Redis trouble is a fast 503. */
  redis: Redis;
  log: { error(message: string): void };
  /** Where the deployment's facts for provenance are read (DEPL_VERSION, DEPL_IMAGE_ID); process.env by default. */
  env?: NodeJS.ProcessEnv;
}

export interface CrawlerApi {
  handle(req: IncomingMessage, res: ServerResponse): void;
  metrics: ApiMetrics;
}

const paging = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** The gallery shows fewer images per page by default: each is a request for its file. */
const galleryPaging = paging.extend({ limit: z.coerce.number().int().min(1).max(1000).default(200) });

type Route = { method: string; pattern: RegExp; name: string; run: (req: IncomingMessage, res: ServerResponse, params: string[], query: URLSearchParams) => Promise<void> };

export function createCrawlerApi(deps: ApiDeps): CrawlerApi {
  const { config, redis } = deps;
  const store = new JobStore(redis, config.keyPrefix, { jobTtlSeconds: config.jobTtlSeconds });
  const blobs = imageStoreFor(config, redis, store.keys);
  const provenance = deploymentProvenance(deps.env ?? process.env, config.worker.userAgent);
  const metrics = new ApiMetrics();
  const problem = apiTokenProblem(config.apiToken);
  if (problem !== null) throw new Error(`refusing to start: ${problem}`);
  const metricsProblem = config.metricsToken === undefined ? null : apiTokenProblem(config.metricsToken);
  if (metricsProblem !== null) throw new Error(`refusing to start: metrics token: ${metricsProblem}`);
  const limiter = new AuthFailureLimiter(config.api.authFailures.max, config.api.authFailures.windowMs);
  const guard = tokenGuard(config.apiToken!, limiter, config.api.trustedProxies);
  // the metrics token (the autoscaler's) opens /metrics and nothing else: it cannot submit, cancel or read jobs
  const metricsGuard = tokenGuard(config.metricsToken !== undefined ? [config.apiToken!, config.metricsToken] : [config.apiToken!], limiter, config.api.trustedProxies);
  const requireToken = (req: IncomingMessage) => guard.require(req);
  /** Reads that config.api.public does not open need the token too. */
  const unlessPublic = (open: boolean, req: IncomingMessage) => {
    if (!open) requireToken(req);
  };
  const publicAccess = config.api.public;
  const fileLinks = fileLinkSigner(config.apiToken!.reveal());

  const jobOr404 = async (id: string) => {
    const job = isJobId(id) ? await store.get(id) : null;
    if (job === null) throw new HttpError(404, 'job_not_found', `no job with id "${id.slice(0, 64)}"`);
    return job;
  };

  const routes: Route[] = [
    {
      method: 'POST', pattern: /^\/v1\/jobs\/?$/, name: '/v1/jobs',
      run: async (req, res) => {
        requireToken(req);
        const body = await readBody(req, config.api.maxBodyBytes);
        const input = parseSubmission(req.headers['content-type'], body);
        const parsed = parseJobRequest(input, { maxPages: config.api.maxPagesLimit, maxImageBytes: config.images.maxImageBytes });
        if (!parsed.ok) throw new HttpError(400, 'invalid_request', 'the job request is invalid', parsed.errors);
        const job = await store.create(parsed.value, provenance);
        sendJson(res, 201, job, { location: `/v1/jobs/${job.id}` });
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/jobs\/([^/]+)\/?$/, name: '/v1/jobs/:id',
      run: async (req, res, [id]) => {
        unlessPublic(publicAccess.jobReads, req);
        sendJson(res, 200, await jobOr404(id!));
      },
    },
    {
      // stops a running job: no new page or image is started; what is in flight finishes; the data is kept
      method: 'POST', pattern: /^\/v1\/jobs\/([^/]+)\/cancel$/, name: '/v1/jobs/:id/cancel',
      run: async (req, res, [id]) => {
        requireToken(req);
        const job = isJobId(id!) ? await store.cancel(id!) : null;
        if (job === null) throw new HttpError(404, 'job_not_found', `no job with id "${id!.slice(0, 64)}"`);
        sendJson(res, 200, job);
      },
    },
    {
      // removes everything of a job that is not running (job-deletion.ts); a running one is refused, cancel it first
      method: 'DELETE', pattern: /^\/v1\/jobs\/([^/]+)\/?$/, name: '/v1/jobs/:id',
      run: async (req, res, [id]) => {
        requireToken(req);
        const deleted = isJobId(id!) ? await deleteJob(store, blobs, id!).catch((error: unknown) => {
          if (isRedisUnavailable(error)) throw error;
          throw new HttpError(503, 'store_unavailable', `deleting job ${id} failed part way (${(error as Error).message}); it is marked deleting and nothing more is stored for it: send the DELETE again`, undefined, { 'retry-after': '5' });
        }) : 'not-found';
        if (deleted === 'not-found') throw new HttpError(404, 'job_not_found', `no job with id "${id!.slice(0, 64)}"`);
        if (deleted === 'running') throw new HttpError(409, 'job_running', `job ${id} is still running: cancel it first (POST /v1/jobs/${id}/cancel, or depl crawl delete, which cancels and deletes), then delete it`);
        res.writeHead(204, { 'x-contents-removed': String(deleted.contentsRemoved), 'x-tasks-removed': String(deleted.tasksRemoved) });
        res.end();
      },
    },
    ...(['images', 'pages'] as const).map((kind): Route => ({
      method: 'GET', pattern: new RegExp(`^/v1/jobs/([^/]+)/${kind}/?$`), name: `/v1/jobs/:id/${kind}`,
      run: async (req, res, [id], query) => {
        unlessPublic(publicAccess.jobReads, req);
        const page = paging.safeParse(Object.fromEntries(query));
        if (!page.success) throw new HttpError(400, 'invalid_query', 'offset must be >= 0 and limit between 1 and 1000', page.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
        const { offset, limit } = page.data;
        const job = await jobOr404(id!);
        // a job that fetches images lists, per image URL, every page it is on and what downloading it gave
        const result = kind === 'pages' ? await store.pages(id!, offset, limit)
          : job.request.fetchImages ? await store.imageListing(id!, offset, limit) : await store.images(id!, offset, limit);
        sendJson(res, 200, { total: result.total, offset, limit, items: result.items });
      },
    })),
    {
      // the distinct contents a fetchImages job stored, each with its URLs and pages; filtered by type and size
      method: 'GET', pattern: /^\/v1\/jobs\/([^/]+)\/files\/?$/, name: '/v1/jobs/:id/files',
      run: async (req, res, [id], query) => {
        unlessPublic(publicAccess.jobReads, req);
        const filter = fileFilterSchema.safeParse(Object.fromEntries(query));
        if (!filter.success) throw new HttpError(400, 'invalid_query', 'the file filter is invalid', filter.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
        await jobOr404(id!);
        const matching = filterImageFiles(await store.imageFiles(id!), filter.data);
        const { offset, limit } = filter.data;
        const items = matching.slice(offset, offset + limit);
        const pages = await store.pagesOfImages(id!, items.flatMap((f) => f.urls));
        sendJson(res, 200, {
          total: matching.length, offset, limit,
          items: items.map((f) => ({ ...f, pages: [...new Set(f.urls.flatMap((u) => pages.get(u) ?? []))], href: `/v1/jobs/${id}/files/${f.sha256}` })),
        });
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/jobs\/([^/]+)\/files\/([0-9a-f]{64})$/, name: '/v1/jobs/:id/files/:sha256',
      run: async (req, res, [id, sha256], query) => {
        // a signed link (the gallery's thumbnails, file-links.ts) opens this one file of this job until it expires
        if (query.has('sig')) {
          const why = fileLinks.check(id!, sha256!, query.get('expires'), query.get('sig'));
          if (why !== null) throw new HttpError(403, 'bad_file_link', why);
        } else {
          unlessPublic(publicAccess.jobReads, req);
        }
        await jobOr404(id!);
        const file = await store.imageFile(id!, sha256!);
        if (file === null) throw new HttpError(404, 'file_not_found', `job ${id} stored no content with SHA-256 ${sha256}`);
        const opened = await blobs.open(id!, file.location);
        if (opened === null) throw new HttpError(410, 'file_gone', `the content ${sha256} is listed but no longer in the image store (${blobs.kind === 'directory' ? config.images.storePath : blobs.kind === 'swift' ? `swift container ${config.images.swift?.container}` : 'redis'})`);
        // its SHA-256 is a strong validator: a client resumes a cut download with Range and If-Range (RFC 9110 14)
        const etag = `"${sha256}"`;
        const ifRange = req.headers['if-range'];
        const range = rangeFor(req.headers.range, Array.isArray(ifRange) ? ifRange[0] : ifRange, etag, opened.bytes);
        const headers = {
          'content-type': IMAGE_MEDIA_TYPES[file.type], 'cache-control': 'private, max-age=31536000, immutable',
          // an SVG is shown as a file, never run as a page of this API's origin
          'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox", 'x-content-type-options': 'nosniff',
          etag, 'accept-ranges': 'bytes',
        };
        if (range.kind === 'unsatisfiable') {
          opened.stream.destroy();
          throw new HttpError(416, 'range_not_satisfiable', `the content ${sha256} has ${opened.bytes} bytes`, undefined, { 'content-range': `bytes */${opened.bytes}`, 'accept-ranges': 'bytes' });
        }
        if (range.kind === 'part') res.writeHead(206, { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${opened.bytes}`, 'content-length': range.end - range.start + 1 });
        else res.writeHead(200, { ...headers, 'content-length': opened.bytes });
        if (req.method === 'HEAD') {
          opened.stream.destroy();
          res.end();
          return;
        }
        // the store's stream starts at the beginning (images are capped at maxImageBytes): the bytes before the part are read and dropped
        await pipeline(opened.stream, range.kind === 'part' ? byteWindow(range.start, range.end) : new PassThrough(), res);
      },
    },
    {
      // an archive job's WARC records, pages, CDXJ index and provenance as one WACZ file, once the job has ended
      method: 'GET', pattern: /^\/v1\/jobs\/([^/]+)\/archive\.wacz$/, name: '/v1/jobs/:id/archive.wacz',
      run: async (req, res, [id]) => {
        unlessPublic(publicAccess.jobReads, req);
        const job = await jobOr404(id!);
        if (!job.request.archive) throw new HttpError(409, 'not_archived', `job ${job.id} did not keep what it fetched: submit the crawl with archive: true (depl crawl submit --archive)`);
        if (job.status === 'running') throw new HttpError(409, 'job_running', `job ${job.id} is still running: export it once it is done (or cancelled)`);
        const wacz = await (await waczWriter())({ job, store, blobs, software: softwareName(job.provenance) });
        try {
          res.writeHead(200, {
            'content-type': 'application/wacz+zip', 'content-length': wacz.bytes,
            'content-disposition': `attachment; filename="crawl-${job.id}.wacz"`, 'x-wacz-records': String(wacz.records), 'x-wacz-pages': String(wacz.pages),
          });
          if (req.method === 'HEAD') res.end();
          else await pipeline(createReadStream(wacz.file), res);
        } finally {
          await wacz.dispose();
        }
      },
    },
    {
      // the stored images as an HTML page of thumbnails grouped by page (gallery.ts); paged over the image URLs
      method: 'GET', pattern: /^\/v1\/jobs\/([^/]+)\/gallery$/, name: '/v1/jobs/:id/gallery',
      run: async (req, res, [id], query) => {
        unlessPublic(publicAccess.jobReads, req);
        const page = galleryPaging.safeParse(Object.fromEntries(query));
        if (!page.success) throw new HttpError(400, 'invalid_query', 'offset must be >= 0 and limit between 1 and 1000', page.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
        const job = await jobOr404(id!);
        if (!job.request.fetchImages) throw new HttpError(409, 'no_image_files', `job ${job.id} did not fetch images (submit it with fetchImages: true); its image URLs are at /v1/jobs/${job.id}/images`);
        const { offset, limit } = page.data;
        const listing = await store.imageListing(job.id, offset, limit);
        // with reads behind the token the browser's <img> requests carry none: each thumbnail gets a signed link
        const fileQuery = publicAccess.jobReads ? undefined : (sha256: string) => fileLinks.sign(job.id, sha256);
        const html = renderGallery({ job, items: listing.items, total: listing.total, offset, limit, fileQuery });
        res.writeHead(200, { ...galleryHeaders(), 'content-length': Buffer.byteLength(html) });
        res.end(req.method === 'HEAD' ? undefined : html);
      },
    },
    { method: 'GET', pattern: /^\/healthz$/, name: '/healthz', run: async (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'GET', pattern: /^\/readyz$/, name: '/readyz',
      run: async (_req, res) => {
        await redis.ping();
        sendJson(res, 200, { status: 'ready' });
      },
    },
    {
      method: 'GET', pattern: /^\/metrics$/, name: '/metrics',
      run: async (req, res) => {
        if (!publicAccess.metrics) metricsGuard.require(req);
        const gauges = await queueGauges(redis, store).catch(() => [{ name: 'crawler_redis_up', help: 'Redis answered the scrape.', value: 0 }]);
        const text = metrics.render(gauges);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      },
    },
    { method: 'GET', pattern: /^\/openapi\.json$/, name: '/openapi.json', run: async (req, res) => {
      unlessPublic(publicAccess.openapi, req);
      sendJson(res, 200, openApiDocument);
    } },
  ];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    const method = req.method ?? 'GET';
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    const route = candidates.find((r) => r.method === method || (method === 'HEAD' && r.method === 'GET'));
    const routeName = route?.name ?? candidates[0]?.name ?? 'unmatched';
    res.once('finish', () => metrics.observe(method, routeName, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9));
    (async () => {
      if (route === undefined) {
        if (candidates.length > 0) {
          const allow = [...new Set(candidates.map((r) => r.method))].join(', ');
          throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}; use ${allow}`, undefined, { allow });
        }
        throw new HttpError(404, 'not_found', `no route for ${method} ${url.pathname.slice(0, 200)}; see /openapi.json`);
      }
      const params = route.pattern.exec(url.pathname)!.slice(1).map(safeDecode);
      await route.run(req, res, params, url.searchParams);
    })().catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof HttpError) return sendError(res, error);
      if (isRedisUnavailable(error)) {
        return sendError(res, new HttpError(503, 'redis_unavailable', 'the job store is unavailable; try again shortly', undefined, { 'retry-after': '5' }));
      }
      // A bug: log it here, tell the client nothing about internals.
      deps.log.error(`${method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
      sendError(res, new HttpError(500, 'internal_error', 'internal error'));
    });
  };

  return { handle, metrics };
}

/** JSON ({urls, maxDepth, ...}) or the seed's form: text/plain with one URL per line. */
function parseSubmission(contentType: string | undefined, body: Buffer): unknown {
  const type = (contentType ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  const text = body.toString('utf8');
  if (type === 'text/plain') return jobRequestFromText(text);
  if (type !== 'application/json') {
    throw new HttpError(415, 'unsupported_media_type', `content-type ${type} is not accepted; send application/json or text/plain (one URL per line)`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'malformed_json', `request body is not valid JSON: ${(error as Error).message}`);
  }
}

async function queueGauges(redis: Redis, store: JobStore) {
  const [length, delayed, group] = await Promise.all([
    redis.xlen(store.keys.tasks),
    redis.zcard(store.keys.delayed),
    groupInfo(redis, store.keys.tasks),
  ]);
  // Acknowledged tasks are deleted from the stream, so what is left is held (pending) or not yet delivered
  // (lag); Redis cannot tell the lag after some deletions, and then the stream's length says it.
  const lag = group.lag ?? Math.max(0, length - group.pending);
  return [
    { name: 'crawler_redis_up', help: 'Redis answered the scrape.', value: 1 },
    { name: 'crawler_tasks_queued', help: 'Page tasks in the stream (waiting or held by a worker).', value: length },
    { name: 'crawler_tasks_held', help: 'Page tasks delivered to a worker and not yet acknowledged.', value: group.pending },
    { name: 'crawler_tasks_lag', help: 'Page tasks in the stream not yet delivered to any worker.', value: lag },
    { name: 'crawler_tasks_backlog', help: 'Page tasks waiting for or held by a worker (held + lag): what autoscaling divides among workers.', value: group.pending + lag },
    { name: 'crawler_tasks_delayed', help: 'Page tasks waiting for a retry or a host slot.', value: delayed },
  ];
}

/** The workers' consumer group as XINFO GROUPS reports it (Redis >= 7 reports the lag); zeros before it exists. */
async function groupInfo(redis: Redis, stream: string): Promise<{ pending: number; lag: number | null }> {
  const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
  for (const fields of groups) {
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
    if (info.get('name') !== CONSUMER_GROUP) continue;
    const lag = info.get('lag');
    return { pending: Number(info.get('pending') ?? 0), lag: typeof lag === 'number' ? lag : null };
  }
  return { pending: 0, lag: null };
}

function isRedisUnavailable(error: unknown): boolean {
  const e = error as { name?: string; message?: string; code?: string };
  const message = e.message ?? '';
  return e.name === 'MaxRetriesPerRequestError'
    || /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ETIMEDOUT|LOADING|READONLY|MASTERDOWN/.test(message)
    || e.code === 'ECONNREFUSED';
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The WACZ writer (warcio, yazl) is loaded by the first export, not at start: an API that never exports does not
 * hold those libraries' code and the heap their loading grew (about 15 MB of a ~90 MB process, measured alone).
 */
async function waczWriter(): Promise<typeof WriteWacz> {
  return (await import('../archive/wacz.js')).writeWacz;
}
