import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobRequest } from './core/job-request.js';
import type { ImageKind } from './core/extract.js';
import { DEFAULT_MAX_IMAGE_BYTES } from './core/job-request.js';
import { IMAGE_TYPES, type ImageType } from './core/image-type.js';
import type { LinkScope } from './core/scope.js';
import type { OptOut } from './core/robots-directives.js';
import type { WireExchange } from './core/wire-exchange.js';
import { allJobKeys, CONSUMER_GROUP, crawlerKeys, IMAGE_TASK_DEPTH, jobKeyList, type CrawlerKeys } from './keys.js';
import { LuaScript } from './lua.js';
import { BEGIN_DELETE, CANCEL_JOB, COMPLETE_IMAGES, COMPLETE_PAGE, COUNT_TAKEOVER, CREATE_JOB, DELAY_TASK, EASE_HOST, HOST_ENTER, HOST_SLOT, KEEP_WITH_JOB, PENALISE_HOST, PURGE_JOB_TASKS, MAX_PAGES_PER_IMAGE, PROMOTE_DUE, RELEASE_TASK } from './scripts.js';

export { IMAGE_TASK_DEPTH, MAX_PAGES_PER_IMAGE };

/**
 * The job store: the only module that knows how jobs, pages and images are laid out in Redis.
 * The API uses the read/create/cancel half, workers the task half.
 */
/** `deleting`: a delete has begun (DELETE /v1/jobs/{id}); the job is gone once it has finished. */
export type JobStatus = 'running' | 'done' | 'cancelled' | 'deleting';
export type PageOutcome = 'fetched' | 'failed' | 'robots' | 'blocked' | 'cancelled';

export interface JobCounts {
  /** Pages admitted to the crawl (seeds and links, deduplicated, at most maxPages). */
  queued: number;
  /** Admitted pages not finished yet; the job is done when this reaches 0. */
  pending: number;
  fetched: number;
  failed: number;
  /** Pages skipped because robots.txt disallows them. */
  robots: number;
  /** Pages refused because they resolve to an address the config does not allow. */
  blocked: number;
  cancelled: number;
  /** Distinct images found. */
  images: number;
  /** `data:` image URIs seen on fetched pages: counted, never fetched nor listed. */
  dataImages: number;
  /** Pages where the per-page cap on links or images applied (their records say how many were left out). */
  capped: number;
  /** With fetchImages: image URLs downloaded and kept, and distinct contents among them (files in the store). */
  imagesStored: number;
  imageFiles: number;
  /** With fetchImages: image URLs not kept (failed, robots, blocked, too large, not an image or a type not asked for). */
  imagesNotStored: number;
}

export interface JobDocument {
  id: string;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  request: { urls: string[]; maxDepth: number; maxPages: number; scope: LinkScope } & JobOptions;
  counts: JobCounts;
  /** True once a link was not admitted because the job already had maxPages pages. */
  maxPagesReached: boolean;
  /** Who crawled, with what and how: absent on jobs created before provenance was recorded. */
  provenance?: JobProvenance;
}

/**
 * What a citation of the crawl needs beside its data: the crawler's version and image, the user agent it sent,
 * and (read with robotsDecisions) what each host's robots.txt said. Settings, start and end are the job
 * document's request, createdAt and finishedAt.
 */
export interface JobProvenance {
  crawlerVersion: string;
  imageDigest: string;
  userAgent: string;
}

/** The robots.txt decision the job's workers took for one origin (the first time they asked it). */
export interface RobotsDecision {
  origin: string;
  robotsUrl: string;
  /** found: its rules applied; absent: it answered 4xx, so everything was allowed. */
  robotsTxt: 'found' | 'absent';
  crawlDelaySeconds: number | null;
  checkedAt: string;
}

/** One answer an archive job kept: the request and response as sent and received, the body in the blob store. */
export interface Capture extends WireExchange {
  kind: 'page' | 'image';
  /** The URL asked for; `url` is the one that answered (after redirects). */
  requested: string;
  /** The body's SHA-256 and place in the blob store, absent when it had none. */
  body?: { sha256: string; bytes: number; location: string; truncated: boolean };
  /** Why an answer that had a body has none kept: the job's store budget was full (image-store.ts). */
  bodyWithheld?: 'store-full';
  /** The 3xx answers from `requested` to `url`, in order: each becomes its own response record in the WARC. */
  redirects?: CapturedRedirect[];
  /** An HTML page's title: the archive's page list names the page by it. */
  title?: string;
}

/** A redirect on the way to a capture: its Location is among its response headers. */
export interface CapturedRedirect extends WireExchange {
  /** Its short body (at most a few KiB), base64; absent when it had none. */
  body?: string;
  bodyTruncated?: true;
}

/** Per-job link filters and seeds beyond the start URLs. */
export interface JobOptions {
  include: string[];
  exclude: string[];
  useSitemaps: boolean;
  fetchImages: boolean;
  maxImageBytes: number;
  imageTypes: ImageType[];
  /** Keep what was fetched (captures) for a WARC/WACZ export. */
  archive: boolean;
}

export interface JobMeta {
  id: string;
  status: JobStatus;
  maxDepth: number;
  maxPages: number;
  scope: LinkScope;
  seeds: string[];
  options: JobOptions;
}

export interface PageRecord {
  url: string;
  depth: number;
  outcome: PageOutcome;
  /** HTTP status of the final response, when there was one. */
  status?: number;
  finalUrl?: string;
  images?: number;
  links?: number;
  /** `data:` image URIs on the page (counted, not listed). */
  dataImages?: number;
  /** Distinct links / images left out by the per-page caps (absent when no cap applied). */
  linksDropped?: number;
  imagesDropped?: number;
  /** Links the job's include/exclude patterns could not check (too long, or the page's matching budget spent): not followed. */
  linksUnchecked?: number;
  /** The encoding the page was decoded with (WHATWG encoding sniffing). */
  encoding?: string;
  truncated?: boolean;
  /** Why the page was taken for a rate-limit or block page (outcome blocked, after every try gave one). */
  blockPage?: string;
  /** The site's opt-outs for this page (X-Robots-Tag, robots meta) this crawler honoured. */
  optOuts?: OptOut[];
  /** Images found on the page and left out of the results because of those opt-outs. */
  imagesWithheld?: number;
  error?: string;
}

export interface ImageRecord {
  url: string;
  /** The page the image was first found on. */
  page: string;
  alt: string;
  /** Where on that page it was named (img, srcset, picture, og, icon, lazy, css, svg, poster, input). */
  kind: ImageKind;
}

/** A page task as carried on the stream. */
export interface PageTask {
  job: string;
  url: string;
  /** Link distance from a start URL; IMAGE_TASK_DEPTH for an image download. */
  depth: number;
  attempt: number;
}

export const isImageTask = (task: PageTask) => task.depth === IMAGE_TASK_DEPTH;

/** Why an image URL has no stored file. */
export type ImageFetchOutcome = 'stored' | 'failed' | 'robots' | 'opted-out' | 'blocked' | 'too-large' | 'not-image' | 'type-not-wanted' | 'cancelled'
  /** The image store (`redis` or `swift`) had no room left in the job's budget (images.redisMaxJobBytes, images.swift.maxJobBytes). */
  | 'store-full';

/** What downloading one image URL gave. */
export interface ImageFetchRecord {
  url: string;
  outcome: ImageFetchOutcome;
  status?: number;
  finalUrl?: string;
  /** What the server said it was (kept for comparison; the type is the sniffed one). */
  contentType?: string;
  type?: ImageType;
  bytes?: number;
  width?: number | null;
  height?: number | null;
  sha256?: string;
  /** The X-Robots-Tag opt-outs the image's answer stated (outcome opted-out). */
  optOuts?: OptOut[];
  error?: string;
}

/** One distinct content kept in the image store, with every URL it was downloaded from. */
export interface ImageFile {
  sha256: string;
  type: ImageType;
  bytes: number;
  width: number | null;
  height: number | null;
  /** The content's name in the image store (config images.store): sha256/ab/<sha256>.<ext>. */
  location: string;
  urls: string[];
}

/** An image URL as the results list it: where it was found, and with fetchImages what downloading it gave. */
export interface ImageListing extends ImageRecord {
  /** Every page it was found on (up to MAX_PAGES_PER_IMAGE; the first is `page`). */
  pages: string[];
  fetch?: ImageFetchRecord;
}


export interface PageResult {
  outcome: PageOutcome;
  page: PageRecord | null;
  /** The URL the images were found on (the final URL after redirects). */
  imagePage?: string;
  images: Array<{ url: string; alt: string; kind: ImageKind }>;
  children: Array<{ url: string; depth: number; robotsDisallowed: boolean }>;
  /** An HTML page, whose links count for the crawl. */
  expandable?: boolean;
  /** Its links are in `children` (its depth was below maxDepth when it was fetched). */
  expanded?: boolean;
  dataImages?: number;
  capped?: boolean;
}

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Job ids are v4 UUIDs; anything else is answered with 404 before Redis is asked. */
export function isJobId(value: string): boolean {
  return JOB_ID.test(value);
}

const scripts = {
  create: new LuaScript(CREATE_JOB),
  complete: new LuaScript(COMPLETE_PAGE),
  delay: new LuaScript(DELAY_TASK),
  promote: new LuaScript(PROMOTE_DUE),
  release: new LuaScript(RELEASE_TASK),
  hostSlot: new LuaScript(HOST_SLOT),
  penaliseHost: new LuaScript(PENALISE_HOST),
  easeHost: new LuaScript(EASE_HOST),
  cancel: new LuaScript(CANCEL_JOB),
  hostEnter: new LuaScript(HOST_ENTER),
  completeImages: new LuaScript(COMPLETE_IMAGES),
  beginDelete: new LuaScript(BEGIN_DELETE),
  purgeTasks: new LuaScript(PURGE_JOB_TASKS),
  keepWithJob: new LuaScript(KEEP_WITH_JOB),
  countTakeover: new LuaScript(COUNT_TAKEOVER),
};

/** Image results recorded per COMPLETE_IMAGES call at most (Redis is held for well under a millisecond). */
const IMAGE_BATCH_LIMIT = 64;

/** Stream entries read per PURGE_JOB_TASKS call: Redis is held for about a millisecond per batch. */
const PURGE_BATCH = 1000;

export class JobStore {
  readonly keys: CrawlerKeys;
  private completions: Array<{ keys: string[]; args: Array<string | number>; resolve(value: unknown): void; reject(error: unknown): void }> = [];
  /** Image results waiting for this turn's COMPLETE_IMAGES, per job (completeImage). */
  private imageResults = new Map<string, Array<{ args: string[]; resolve(value: number): void; reject(error: unknown): void }>>();
  /** How long a finished job's data is kept (0: forever). */
  private readonly jobTtlSeconds: number;
  constructor(readonly redis: Redis, prefix: string, options: { jobTtlSeconds?: number } = {}) {
    this.keys = crawlerKeys(prefix);
    this.jobTtlSeconds = options.jobTtlSeconds ?? 7 * 24 * 3600;
  }

  /** Creates the consumer group (and the stream) if needed; from id 0 so tasks queued before it are read. */
  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.tasks, CONSUMER_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
  }

  async create(request: Omit<JobRequest, keyof JobOptions> & Partial<JobOptions>, provenance?: JobProvenance): Promise<JobDocument> {
    await this.ensureGroup();
    const id = randomUUID();
    const k = this.keys;
    await scripts.create.run(this.redis, [k.job(id), k.seen(id), k.tasks],
      [id, request.maxDepth, request.maxPages, request.scope, JSON.stringify(request.urls), this.jobTtlSeconds,
        JSON.stringify(withDefaults(request)), ...request.urls]);
    if (provenance !== undefined) await this.redis.hset(k.job(id), 'provenance', JSON.stringify(provenance));
    const doc = await this.get(id);
    if (doc === null) throw new Error(`job ${id} vanished right after it was created`);
    return doc;
  }

  async get(id: string): Promise<JobDocument | null> {
    if (!isJobId(id)) return null;
    const hash = await this.redis.hgetall(this.keys.job(id));
    return Object.keys(hash).length === 0 ? null : documentFrom(hash);
  }

  async meta(id: string): Promise<JobMeta | null> {
    const values = await this.redis.hmget(this.keys.job(id), 'status', 'maxDepth', 'maxPages', 'scope', 'seeds', 'options');
    const [status, maxDepth, maxPages, scope, seeds, options] = values;
    if (status === null || status === undefined) return null;
    return {
      id,
      status: status as JobStatus,
      maxDepth: Number(maxDepth),
      maxPages: Number(maxPages),
      scope: scope as LinkScope,
      seeds: JSON.parse(seeds ?? '[]') as string[],
      options: optionsFrom(options),
    };
  }

  /** Cancels a running job; returns its document, or null when there is no such job. */
  async cancel(id: string): Promise<JobDocument | null> {
    if (!isJobId(id)) return null;
    const previous = await scripts.cancel.run(this.redis, [this.keys.job(id)], []);
    if (previous === null) return null;
    return this.get(id);
  }

  /**
   * The first step of a delete (job-deletion.ts): marks the job `deleting`, after which nothing more is stored for
   * it. 'not-found' when there is no such job, 'running' when it runs (it must be cancelled first).
   */
  async beginDelete(id: string): Promise<'not-found' | 'running' | 'deleting'> {
    if (!isJobId(id)) return 'not-found';
    const answer = await scripts.beginDelete.run(this.redis, [this.keys.job(id)], []);
    return answer === null ? 'not-found' : (answer as 'running' | 'deleting');
  }

  /**
   * Removes a deleted job's queued tasks: its delayed tasks, then its entries in the shared stream (in batches).
   * Returns how many were removed. Tasks of other jobs are untouched. In that order because tasks only move from
   * the delayed set to the stream once the job is marked (PROMOTE_DUE; DELAY_TASK no longer puts its tasks aside):
   * one that comes due while the delayed set is read is on the stream when the stream is read.
   */
  async purgeTasks(id: string): Promise<number> {
    let removed = 0;
    for (let cursor = '0'; ;) {
      const [next, members] = await this.redis.zscan(this.keys.delayed, cursor, 'COUNT', PURGE_BATCH);
      const ours = members.filter((member, i) => i % 2 === 0 && delayedTaskJob(member) === id);
      if (ours.length > 0) removed += await this.redis.zrem(this.keys.delayed, ...ours);
      if (next === '0') break;
      cursor = next;
    }
    for (let from = '-'; ;) {
      const [last, count] = await scripts.purgeTasks.run(this.redis, [this.keys.tasks], [id, from, PURGE_BATCH]) as [string, number];
      removed += Number(count);
      if (last === '') break;
      from = `(${last}`;
    }
    return removed;
  }

  /**
   * The last step of a delete: every key of the job, in one command (so no completion sees half of them), and in
   * the same transaction its place in the Swift store's settle due set (shared by all jobs, so not a key of its
   * own): nothing puts it back once the job's keys are gone, and no sweep has to find it gone first.
   */
  async removeKeys(id: string): Promise<number> {
    const replies = await this.redis.multi().del(...allJobKeys(this.keys, id)).zrem(this.keys.storeSettleDue, id).exec();
    const failed = replies?.find(([error]) => error !== null)?.[0];
    if (replies === null || failed) throw failed ?? new Error(`removing job ${id}'s keys was not run (the transaction was discarded)`);
    return Number(replies[0]![1]);
  }

  async images(id: string, offset: number, limit: number): Promise<{ total: number; items: ImageRecord[] }> {
    return this.page<ImageRecord>(this.keys.images(id), offset, limit);
  }

  /** Image URLs with every page they were found on and, with fetchImages, what downloading them gave. */
  async imageListing(id: string, offset: number, limit: number): Promise<{ total: number; items: ImageListing[] }> {
    const { total, items } = await this.images(id, offset, limit);
    if (items.length === 0) return { total, items: [] };
    const urls = items.map((i) => i.url);
    const [pages, fetches] = await Promise.all([this.redis.hmget(this.keys.imagePages(id), ...urls), this.redis.hmget(this.keys.imageFetches(id), ...urls)]);
    return {
      total,
      items: items.map((item, i) => ({
        ...item,
        pages: pages[i] ? (JSON.parse(pages[i]) as string[]) : [item.page],
        ...(fetches[i] ? { fetch: JSON.parse(fetches[i]) as ImageFetchRecord } : {}),
      })),
    };
  }

  /** Every distinct content the job stored (one hash read: a job's files are bounded by its maxPages' images). */
  async imageFiles(id: string): Promise<ImageFile[]> {
    const values = await this.redis.hvals(this.keys.imageFiles(id));
    return values.map((v) => JSON.parse(v) as ImageFile).sort((a, b) => a.sha256.localeCompare(b.sha256));
  }

  /** One stored content of the job, or null. */
  async imageFile(id: string, sha256: string): Promise<ImageFile | null> {
    const value = await this.redis.hget(this.keys.imageFiles(id), sha256);
    return value === null ? null : (JSON.parse(value) as ImageFile);
  }

  /** The pages each image URL was found on (fetchImages jobs). */
  async pagesOfImages(id: string, urls: string[]): Promise<Map<string, string[]>> {
    const unique = [...new Set(urls)];
    if (unique.length === 0) return new Map();
    const values = await this.redis.hmget(this.keys.imagePages(id), ...unique);
    return new Map(unique.map((url, i) => [url, values[i] ? (JSON.parse(values[i]) as string[]) : []]));
  }

  async pages(id: string, offset: number, limit: number): Promise<{ total: number; items: PageRecord[] }> {
    return this.page<PageRecord>(this.keys.pages(id), offset, limit);
  }

  private async page<T>(key: string, offset: number, limit: number): Promise<{ total: number; items: T[] }> {
    const result = await this.redis.multi().llen(key).lrange(key, offset, offset + limit - 1).exec();
    if (result === null) throw new Error('Redis transaction aborted');
    const [[lenError, total], [rangeError, items]] = result as [[Error | null, number], [Error | null, string[]]];
    if (lenError ?? rangeError) throw lenError ?? rangeError;
    return { total, items: items.map((item) => JSON.parse(item) as T) };
  }

  // ---- worker side ----

  async complete(messageId: string, task: PageTask, result: PageResult): Promise<number> {
    const k = this.keys;
    const args: Array<string | number> = [CONSUMER_GROUP, messageId, task.job, task.url, result.outcome,
      result.page === null ? '' : JSON.stringify(result.page), result.imagePage ?? task.url, task.depth,
      result.expandable ? 1 : 0, result.expanded ? 1 : 0, result.dataImages ?? 0, result.capped ? 1 : 0, result.images.length];
    for (const image of result.images) args.push(image.url, image.alt, image.kind);
    args.push(result.children.length);
    for (const child of result.children) args.push(child.url, child.depth, child.robotsDisallowed ? 1 : 0);
    const keys = [k.job(task.job), k.seen(task.job), k.done(task.job), k.pages(task.job), k.imageSet(task.job), k.images(task.job), k.tasks, k.takeovers(task.job),
      k.imagePages(task.job), k.imageFetches(task.job), k.imageFiles(task.job), k.imageBlobs(task.job)];
    return Number(await new Promise((resolve, reject) => {
      this.completions.push({ keys, args, resolve, reject });
      if (this.completions.length === 1) setImmediate(() => void this.flushCompletions());
    }));
  }

  /**
   * Pages that finished in the same turn of the event loop (responses read in the same poll) are recorded in
   * one pipeline: one socket write instead of one per page, which was the largest Redis cost in a worker's
   * profile (each completion is still its own atomic script).
   */
  private async flushCompletions(): Promise<void> {
    const batch = this.completions;
    this.completions = [];
    if (batch.length === 1) {
      const [only] = batch;
      await scripts.complete.run(this.redis, only!.keys, only!.args).then(only!.resolve, only!.reject);
      return;
    }
    try {
      const results = await scripts.complete.runMany(this.redis, batch);
      results.forEach((result, i) => (result.status === 'fulfilled' ? batch[i]!.resolve(result.value) : batch[i]!.reject(result.reason)));
    } catch (error) {
      for (const call of batch) call.reject(error);
    }
  }

  /**
   * Records an image task's result; `file` with a stored content. Returns 1, or 0 for a duplicate (-1: the job is
   * gone). The results of one job that are ready in the same turn of the event loop go to Redis in one
   * COMPLETE_IMAGES call (at most IMAGE_BATCH_LIMIT each): with 32 images in flight several finish together.
   */
  completeImage(messageId: string, task: PageTask, record: ImageFetchRecord, file?: Omit<ImageFile, 'urls'>): Promise<number> {
    let batch = this.imageResults.get(task.job);
    if (batch === undefined) {
      batch = [];
      this.imageResults.set(task.job, batch);
      if (this.imageResults.size === 1) setImmediate(() => this.flushImageResults());
    }
    // the fields COMPLETE_IMAGES reads per result (IMAGE_RESULT_FIELDS)
    const args = [messageId, task.url, JSON.stringify(record), record.outcome, file?.sha256 ?? '', file === undefined ? '' : JSON.stringify(file)];
    return new Promise((resolve, reject) => batch.push({ args, resolve, reject }));
  }

  private flushImageResults(): void {
    const batches = this.imageResults;
    this.imageResults = new Map();
    const k = this.keys;
    for (const [job, results] of batches) {
      const others = jobKeyList(k, job).filter((key) => key !== k.job(job) && key !== k.imageFetches(job) && key !== k.imageFiles(job));
      const keys = [k.job(job), k.imageFetches(job), k.imageFiles(job), k.tasks, ...others];
      for (let from = 0; from < results.length; from += IMAGE_BATCH_LIMIT) {
        const part = results.slice(from, from + IMAGE_BATCH_LIMIT);
        scripts.completeImages.run(this.redis, keys, [CONSUMER_GROUP, ...part.flatMap((r) => r.args)]).then(
          (answers) => part.forEach((r, i) => r.resolve(Number((answers as unknown[])[i]))),
          (error: unknown) => { for (const r of part) r.reject(error); },
        );
      }
    }
  }

  async delay(messageId: string, task: PageTask, delayMs: number): Promise<void> {
    const member = JSON.stringify({ j: task.job, u: task.url, d: task.depth, a: task.attempt });
    await scripts.delay.run(this.redis, [this.keys.tasks, this.keys.delayed, this.keys.job(task.job)], [CONSUMER_GROUP, messageId, Math.max(0, Math.round(delayMs)), member]);
  }

  async promoteDue(limit = 500): Promise<number> {
    return Number(await scripts.promote.run(this.redis, [this.keys.delayed, this.keys.tasks], [limit]));
  }

  async release(messageId: string, task: PageTask): Promise<void> {
    await scripts.release.run(this.redis, [this.keys.tasks, this.keys.job(task.job)], [CONSUMER_GROUP, messageId, task.job, task.url, task.depth, task.attempt]);
  }

  async hostSlot(hostname: string, intervalMs: number, maxWaitMs: number): Promise<{ reserved: boolean; waitMs: number; penaltyMs: number }> {
    const [reserved, waitMs, penaltyMs] = (await scripts.hostSlot.run(this.redis, [this.keys.host(hostname), this.keys.hostPenalty(hostname)], [intervalMs, maxWaitMs])) as [number, number, number];
    return { reserved: reserved === 1, waitMs, penaltyMs };
  }

  /** A host answered 429/503: raises its penalty and keeps every worker away until Retry-After; returns the penalty. */
  async penaliseHost(hostname: string, retryAfterMs: number, baseMs: number, maxMs: number): Promise<number> {
    return Number(await scripts.penaliseHost.run(this.redis, [this.keys.hostPenalty(hostname), this.keys.host(hostname)], [Math.max(0, Math.round(retryAfterMs)), baseMs, maxMs]));
  }

  /** A penalised host answered normally: its penalty shrinks; returns what is left (0: recovered). */
  async easeHost(hostname: string, baseMs: number): Promise<number> {
    return Number(await scripts.easeHost.run(this.redis, [this.keys.hostPenalty(hostname)], [baseMs]));
  }

  // ---- per-host concurrency, captures and robots decisions (archive and provenance) ----

  /** Takes one of a host's `cap` in-flight places (HOST_ENTER) under `lease`; false when the host is full. */
  async enterHost(hostname: string, cap: number, lease: string, leaseMs: number): Promise<boolean> {
    return Number(await scripts.hostEnter.run(this.redis, [this.keys.hostInflight(hostname)], [cap, lease, leaseMs])) === 1;
  }

  async leaveHost(hostname: string, lease: string): Promise<void> {
    await this.redis.zrem(this.keys.hostInflight(hostname), lease);
  }

  /** Requests to a host in flight now (leases not expired). */
  async hostInflight(hostname: string): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return this.redis.zcount(this.keys.hostInflight(hostname), Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + 1, '+inf');
  }

  /**
   * Keeps one capture of an archive job. Written before the task's completion, so a finished job has all of
   * its captures; a redelivered task may add a second capture of a URL (the export keeps the first). The
   * list outlives the job's other keys by a day, whatever the order of their expiry.
   */
  async recordCapture(id: string, capture: Capture): Promise<void> {
    await this.keepWithJob(id, this.keys.captures(id), 'rpush', [JSON.stringify(capture)]);
  }

  async captures(id: string, offset: number, limit: number): Promise<{ total: number; items: Capture[] }> {
    return this.page<Capture>(this.keys.captures(id), offset, limit);
  }

  /** Records an origin's robots.txt decision the first time a worker of the job takes it (HSETNX). */
  async recordRobotsDecision(id: string, decision: RobotsDecision): Promise<void> {
    await this.keepWithJob(id, this.keys.robotsDecisions(id), 'hsetnx', [decision.origin, JSON.stringify(decision)]);
  }

  async robotsDecisions(id: string): Promise<RobotsDecision[]> {
    const values = await this.redis.hvals(this.keys.robotsDecisions(id));
    return values.map((v) => JSON.parse(v) as RobotsDecision).sort((a, b) => a.origin.localeCompare(b.origin));
  }

  /**
   * One write to a key of the job's that its completion scripts do not expire: it expires a day after the job's
   * (KEEP_WITH_JOB), and is not made at all once the job is gone or being deleted.
   */
  private async keepWithJob(id: string, key: string, command: 'rpush' | 'hsetnx', values: string[]): Promise<void> {
    await scripts.keepWithJob.run(this.redis, [this.keys.job(id), key], [command, 24 * 3600, ...values]);
  }

  /** Counts one more takeover of a URL's task from a silent worker; returns the total (0: the job is gone or being deleted). */
  async countTakeover(task: PageTask): Promise<number> {
    return Number(await scripts.countTakeover.run(this.redis, [this.keys.job(task.job), this.keys.takeovers(task.job)], [task.url]));
  }
}

/** The job of a delayed task (DELAY_TASK's member: JSON with `j`), or null for a member that is not one. */
export function delayedTaskJob(member: string): string | null {
  try {
    const parsed = JSON.parse(member) as { j?: unknown };
    return typeof parsed.j === 'string' ? parsed.j : null;
  } catch {
    return null;
  }
}

export function taskFromFields(fields: string[]): PageTask | null {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  const job = map.get('j');
  const url = map.get('u');
  if (job === undefined || url === undefined) return null;
  return { job, url, depth: Number(map.get('d') ?? 0), attempt: Number(map.get('a') ?? 1) };
}

function documentFrom(hash: Record<string, string>): JobDocument {
  const num = (key: string) => Number(hash[key] ?? 0);
  const iso = (key: string) => (hash[key] ? new Date(Number(hash[key])).toISOString() : null);
  return {
    id: hash.id ?? '',
    status: (hash.status ?? 'running') as JobStatus,
    createdAt: iso('createdAt') ?? '',
    updatedAt: iso('updatedAt') ?? '',
    finishedAt: iso('finishedAt'),
    request: {
      urls: JSON.parse(hash.seeds ?? '[]') as string[], maxDepth: num('maxDepth'), maxPages: num('maxPages'), scope: (hash.scope ?? 'host') as LinkScope,
      ...optionsFrom(hash.options),
    },
    counts: {
      queued: num('queued'), pending: num('pending'), fetched: num('fetched'), failed: num('failed'),
      robots: num('robots'), blocked: num('blocked'), cancelled: num('cancelled'), images: num('images'),
      dataImages: num('dataImages'), capped: num('capped'),
      imagesStored: num('imagesStored'), imageFiles: num('imageFiles'), imagesNotStored: num('imagesNotStored'),
    },
    maxPagesReached: hash.maxPagesReached === '1',
    ...(hash.provenance ? { provenance: JSON.parse(hash.provenance) as JobProvenance } : {}),
  };
}

function optionsFrom(text: string | null | undefined): JobOptions {
  return withDefaults((text ? JSON.parse(text) : {}) as Partial<JobOptions>);
}

/** A job's options, each missing one (a job stored before it existed, or a caller leaving it out) at its default. */
function withDefaults(parsed: Partial<JobOptions>): JobOptions {
  return {
    include: parsed.include ?? [], exclude: parsed.exclude ?? [], useSitemaps: parsed.useSitemaps ?? false,
    fetchImages: parsed.fetchImages ?? false, maxImageBytes: parsed.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES, imageTypes: parsed.imageTypes ?? [...IMAGE_TYPES],
    archive: parsed.archive ?? false,
  };
}
