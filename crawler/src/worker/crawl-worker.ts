import { createHash } from 'node:crypto';
import { hostname as machineName } from 'node:os';
import type { Redis } from 'ioredis';
import { imageStoreFor, type ImageStore } from '../image-store.js';
import { createAddressPolicy } from '../core/address-policy.js';
import { IMAGE_EXTENSIONS, readImageFacts } from '../core/image-type.js';
import { ALLOW_ALL, isRobotsUnreachable, robotsUrlFor, type RobotsRules } from '../core/robots.js';
import { keepsImagesOut, keepsOutOfArchive, type OptOut } from '../core/robots-directives.js';
import { backoffMs, parseRetryAfter, verdictForStatus } from '../core/retry.js';
import { inScopeOfAny } from '../core/scope.js';
import { pageMatchBudget, urlFilter, type LinkFilter, type MatchBudget } from '../core/url-patterns.js';
import { robotsNameOf, type ServiceConfig } from '../config.js';
import { isImageTask, JobStore, taskFromFields, type Capture, type CapturedRedirect, type ImageFetchRecord, type ImageFile, type JobMeta, type PageRecord, type PageResult, type PageTask } from '../jobs.js';
import { CONSUMER_GROUP } from '../keys.js';
import { RobotsCache } from './robots-cache.js';
import { sitemapUrls } from './sitemaps.js';
import { createSafeAgent, isBlocked, isRobotsDisallowed, RobotsDisallowedError, SafeFetcher, type BytesFetch, type Exchange, type RedirectHop } from './safe-fetch.js';

export interface WorkerLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface CrawlWorkerOptions {
  config: ServiceConfig;
  /** Commands. Needs maxRetriesPerRequest: null so a Redis outage is waited out, not failed. */
  redis: Redis;
  /** Blocking reads (XREADGROUP BLOCK holds its connection). */
  reader: Redis;
  log: WorkerLog;
  consumer?: string;
}

interface Held {
  messageId: string;
  task: PageTask;
  abort: AbortController;
  done: Promise<void>;
  /** Still counts against `concurrency` (fetching); false once only its Redis write is left. */
  busy: boolean;
}

/**
 * How long one read of the task stream blocks. A stop waits for the read in progress, so a worker told to stop
 * takes up to this plus its shutdown grace (and the hand-back) before it is done.
 */
export const READ_BLOCK_MS = 1000;
/** Waits above this are not slept through: the task goes back as a delayed task. */
const MAX_INLINE_HOST_WAIT_MS = 2000;
/** A task whose host has hostConcurrency requests in flight is looked at again this much later. */
const HOST_FULL_RETRY_MS = 100;
/** How often a worker settles the jobs whose settle is due again (image-store.ts, settleDue). */
const SETTLE_SWEEP_MS = 1000;
/** Tasks taken over more often than this are recorded as failed: they probably crash whoever runs them. */
const MAX_TAKEOVERS = 5;

/**
 * A queue consumer: reads page tasks from the Redis stream with a consumer group, runs up to `concurrency`
 * at once, and records each result atomically (jobs.ts). Messages it holds are kept fresh with XCLAIM while
 * it works on them; messages held by a worker that went silent are taken over after the visibility timeout
 * with XAUTOCLAIM. Delivery is at least once; the completion script makes effects idempotent.
 */
export class CrawlWorker {
  readonly consumer: string;
  private readonly store: JobStore;
  private readonly fetcher: SafeFetcher;
  private readonly robots: RobotsCache;
  private readonly blobs: ImageStore;
  private readonly held = new Map<string, Held>();
  private readonly metaCache = new Map<string, { meta: JobMeta | null; filter: LinkFilter; expires: number }>();
  /** Per job: links (with the depth they were sent at) and images whose completion script already ran here. */
  private readonly recorded = new Map<string, Map<string, number>>();
  private stopping = false;
  private loops: Promise<unknown>[] = [];
  private timers: NodeJS.Timeout[] = [];
  private wake: (() => void) | undefined;
  /** Per job: origins whose robots.txt decision this process has recorded (provenance). */
  private readonly robotsRecorded = new Map<string, Set<string>>();
  readonly stats = { completed: 0, duplicates: 0, retried: 0, takenOver: 0, released: 0, imagesStored: 0, hostBackoffs: 0, blockPages: 0, hostFull: 0 };

  constructor(private readonly options: CrawlWorkerOptions) {
    const { config } = options;
    this.consumer = options.consumer ?? `${machineName()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.store = new JobStore(options.redis, config.keyPrefix, { jobTtlSeconds: config.jobTtlSeconds });
    const agent = createSafeAgent(createAddressPolicy(config.allow), {
      connectTimeoutMs: Math.min(config.worker.fetchTimeoutMs, 10_000),
      connections: config.worker.concurrency,
    });
    this.fetcher = new SafeFetcher(agent, {
      timeoutMs: config.worker.fetchTimeoutMs,
      maxBodyBytes: config.worker.maxBodyBytes,
      maxRedirects: config.worker.maxRedirects,
      userAgent: config.worker.userAgent,
      robotsName: robotsNameOf(config.worker),
      imageBytesInFlight: config.worker.imageBytesInFlight,
    });
    this.robots = new RobotsCache(options.redis, this.store.keys, this.fetcher, robotsNameOf(config.worker), config.worker.robotsCache);
    this.blobs = imageStoreFor(config, options.redis, this.store.keys);
  }

  async start(): Promise<void> {
    await this.store.ensureGroup();
    const visibility = this.options.config.worker.visibilityTimeoutMs;
    // The heartbeat keeps running through a graceful stop: held pages must not be taken over while they finish.
    this.every(Math.max(100, Math.floor(visibility / 3)), () => this.heartbeat(), true);
    this.every(Math.max(100, Math.floor(visibility / 2)), () => this.takeOver());
    this.every(250, () => this.store.promoteDue().then(() => undefined));
    // beside the delayed tasks' promotion, the store's own due work: a settle that failed or whose worker died
    const { blobs } = this;
    if (blobs.settleDue !== undefined) this.every(SETTLE_SWEEP_MS, () => blobs.settleDue!().then(() => undefined));

    this.loops.push(this.readLoop());
  }

  /**
   * Graceful stop: take no new work, give held pages `graceMs` to finish, hand back the rest.
   * Resolves when nothing is held any more; the caller then closes the connections.
   */
  async stop(graceMs = this.options.config.worker.shutdownGraceMs): Promise<void> {
    this.stopping = true;
    this.wake?.();
    // The read loop ends within its BLOCK time; anything it read meanwhile it hands back itself.
    await Promise.allSettled(this.loops);
    const all = () => Promise.allSettled([...this.held.values()].map((h) => h.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    const leftovers = [...this.held.values()];
    for (const held of leftovers) held.abort.abort(new Error('worker shutting down'));
    await Promise.allSettled(leftovers.map(async (held) => {
      await this.store.release(held.messageId, held.task);
      this.stats.released++;
    }));
    await all();
    for (const timer of this.timers) clearInterval(timer);
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** Tasks still fetching or parsing. Tasks that only wait on their Redis write do not count, so the next
   * fetch starts while the previous result is being recorded; held tasks are still bounded (2x concurrency). */
  private get busyCount(): number {
    let busy = 0;
    for (const held of this.held.values()) if (held.busy) busy++;
    return busy;
  }

  private every(ms: number, fn: () => Promise<void>, duringStop = false): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || (this.stopping && !duringStop)) return;
      running = true;
      fn().catch((error: Error) => this.options.log.warn(`background step failed: ${error.message}`)).finally(() => { running = false; });
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private async readLoop(): Promise<void> {
    const { reader, config } = this.options;
    const concurrency = config.worker.concurrency;
    while (!this.stopping) {
      const free = Math.min(concurrency - this.busyCount, 2 * concurrency - this.held.size);
      if (free <= 0) {
        await new Promise<void>((resolve) => { this.wake = resolve; });
        continue;
      }
      let reply: unknown;
      try {
        reply = await reader.xreadgroup('GROUP', CONSUMER_GROUP, this.consumer, 'COUNT', free, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.store.keys.tasks, '>');
      } catch (error) {
        if (this.stopping) break;
        const message = (error as Error).message;
        if (message.includes('NOGROUP')) await this.store.ensureGroup().catch(() => undefined);
        else this.options.log.warn(`reading tasks failed (retrying): ${message}`);
        await sleep(200);
        continue;
      }
      for (const [id, fields] of messagesOf(reply)) {
        const task = taskFromFields(fields);
        if (this.stopping && task !== null) await this.store.release(id, task);
        else this.dispatch(id, fields, false);
      }
    }
  }

  private dispatch(messageId: string, fields: string[], takenOver: boolean): void {
    if (this.held.has(messageId)) return;
    const task = taskFromFields(fields);
    const abort = new AbortController();
    const held: Held = { messageId, task: task ?? { job: '', url: '', depth: 0, attempt: 1 }, abort, done: Promise.resolve(), busy: true };
    this.held.set(messageId, held);
    held.done = (async () => {
      try {
        if (task === null) {
          // Not ours to understand: drop it rather than let it circulate forever.
          await this.options.redis.multi().xack(this.store.keys.tasks, CONSUMER_GROUP, messageId).xdel(this.store.keys.tasks, messageId).exec();
          return;
        }
        await this.handle(messageId, task, takenOver, abort.signal);
      } catch (error) {
        // Left unacknowledged on purpose: another worker (or this one) takes it over after the visibility timeout.
        if (!abort.signal.aborted) this.options.log.warn(`task ${task?.url ?? messageId} failed, will be retried after the visibility timeout: ${(error as Error).message}`);
      } finally {
        if (!abort.signal.aborted) this.held.delete(messageId);
        this.wake?.();
      }
    })();
  }

  private async handle(messageId: string, task: PageTask, takenOver: boolean, signal: AbortSignal): Promise<void> {
    const { config } = this.options;
    const { meta, filter } = await this.jobMeta(task.job);
    const image = isImageTask(task);
    if (meta === null || meta.status !== 'running') {
      if (image) await this.finishImage(messageId, task, { url: task.url, outcome: 'cancelled' });
      else await this.finish(messageId, task, { outcome: 'cancelled', page: null, images: [], children: [] });
      return;
    }
    if (takenOver && (await this.store.countTakeover(task)) > MAX_TAKEOVERS) {
      const error = `abandoned after ${MAX_TAKEOVERS} takeovers`;
      if (image) await this.finishImage(messageId, task, { url: task.url, outcome: 'failed', error });
      else await this.finish(messageId, task, { outcome: 'failed', page: { url: task.url, depth: task.depth, outcome: 'failed', error }, images: [], children: [] });
      return;
    }
    const url = new URL(task.url);
    let rules;
    try {
      rules = await this.robots.rulesFor(url);
    } catch (error) {
      await this.failOrRetry(messageId, task, error, undefined);
      return;
    }
    await this.recordRobotsDecision(task.job, url, rules);
    if (!rules.isAllowed(task.url)) {
      if (image) await this.finishImage(messageId, task, { url: task.url, outcome: 'robots' });
      else await this.finish(messageId, task, { outcome: 'robots', page: { url: task.url, depth: task.depth, outcome: 'robots' }, images: [], children: [] });
      return;
    }
    // asked for every request, not only where a delay is configured: another worker's back-off from this host
    // (a 429 a moment ago) must hold this request too
    const interval = Math.max(config.worker.hostDelayMs, Math.min((rules.crawlDelaySeconds ?? 0) * 1000, config.worker.maxHostDelayMs));
    // per-host concurrency: a place among the host's in-flight requests first, then its politeness slot
    const cap = config.worker.hostConcurrency;
    const lease = `${this.consumer}:${messageId}`;
    if (cap > 0 && !(await this.store.enterHost(url.host, cap, lease, config.worker.fetchTimeoutMs + MAX_INLINE_HOST_WAIT_MS + 5000))) {
      this.stats.hostFull++;
      await this.store.delay(messageId, task, HOST_FULL_RETRY_MS);
      return;
    }
    try {
      const slot = await this.store.hostSlot(url.host, interval, MAX_INLINE_HOST_WAIT_MS);
      if (!slot.reserved) {
        await this.store.delay(messageId, task, slot.waitMs);
        return;
      }
      if (slot.waitMs > 0) await sleep(slot.waitMs, signal);
      const penalised = slot.penaltyMs > 0;
      if (image) await this.downloadImage(messageId, task, meta, signal, penalised);
      else await this.fetchAndRecordPage(messageId, task, meta, filter, rules, signal, penalised);
    } finally {
      if (cap > 0) await this.store.leaveHost(url.host, lease);
    }
  }

  private async fetchAndRecordPage(messageId: string, task: PageTask, meta: JobMeta, filter: LinkFilter, rules: RobotsRules, signal: AbortSignal, penalised: boolean): Promise<void> {
    const { config } = this.options;
    const url = new URL(task.url);
    let fetched;
    try {
      fetched = await this.fetcher.fetchPage(task.url, signal, this.checkRedirect, { body: meta.options.archive });
    } catch (error) {
      if (signal.aborted) throw error;
      if (isRobotsDisallowed(error)) {
        await this.finish(messageId, task, { outcome: 'robots', page: { url: task.url, depth: task.depth, outcome: 'robots', finalUrl: error.url, error: error.message }, images: [], children: [] });
        return;
      }
      await this.failOrRetry(messageId, task, error, undefined);
      return;
    }
    // a rate-limit or block page is not content: the host is backed off, the page tried again later and, when
    // every try gave one, recorded as blocked with the reason (and kept in the archive as what the site answered)
    const blockPage = fetched.kind === 'other' ? undefined : fetched.blockPage;
    if (blockPage?.blocked === true) {
      this.stats.blockPages++;
      await this.adaptToHost(url.host, { kind: 'http-error', status: 429, retryAfter: fetched.kind === 'http-error' ? fetched.retryAfter : undefined }, penalised);
      if (task.attempt < config.worker.maxAttempts) {
        await this.retry(messageId, task, parseRetryAfter(fetched.kind === 'http-error' ? fetched.retryAfter : undefined, Date.now()));
        return;
      }
      await this.archive(task, meta, fetched.exchange);
      await this.finish(messageId, task, {
        outcome: 'blocked',
        page: { url: task.url, depth: task.depth, outcome: 'blocked', status: fetched.status, finalUrl: fetched.finalUrl, blockPage: blockPage.reason, error: `block page after ${task.attempt} tries: ${blockPage.reason}` },
        images: [], children: [],
      });
      return;
    }
    await this.adaptToHost(url.host, fetched, penalised);
    if (fetched.kind === 'http-error') {
      if (verdictForStatus(fetched.status) === 'retry' && task.attempt < config.worker.maxAttempts) {
        await this.retry(messageId, task, parseRetryAfter(fetched.retryAfter, Date.now()));
        return;
      }
      await this.archive(task, meta, fetched.exchange);
      await this.finish(messageId, task, {
        outcome: 'failed', page: { url: task.url, depth: task.depth, outcome: 'failed', status: fetched.status, finalUrl: fetched.finalUrl }, images: [], children: [],
      });
      return;
    }
    // the site's noarchive keeps a page out of the archive (it is still crawled)
    if (!keepsOutOfArchive(fetched.optOuts)) await this.archive(task, meta, fetched.exchange, undefined, fetched.kind === 'html' ? fetched.extract.title : undefined);
    if (fetched.kind === 'other') {
      await this.finish(messageId, task, {
        outcome: 'fetched', page: { url: task.url, depth: task.depth, outcome: 'fetched', status: fetched.status, finalUrl: fetched.finalUrl, images: 0, links: 0, ...optOutFields(fetched.optOuts, 0) }, images: [], children: [],
      });
      return;
    }
    const { images, links, dataImages, linksDropped, imagesDropped } = fetched.extract;
    // the site's own opt-outs for this page (X-Robots-Tag, robots meta): nofollow keeps its links unfollowed,
    // noindex, noimageindex, noai and noimageai keep its images out of the results (they are counted only)
    const { optOuts } = fetched;
    const follows = !optOuts.includes('nofollow');
    const imagesKept = keepsImagesOut(optOuts) ? [] : images;
    const children: PageResult['children'] = [];
    const expanded = task.depth < meta.maxDepth;
    const seeds = meta.seeds.map((s) => new URL(s));
    const recorded = this.recordedFor(task.job);
    let linksUnchecked = 0;
    const admit = (link: string, depth: number, budget: MatchBudget) => {
      // already recorded from this process at this depth or less: finish() would not send it, so not even parsed
      if ((recorded.get(link) ?? Infinity) <= depth) return;
      const linkUrl = new URL(link);
      if (!inScopeOfAny(linkUrl, seeds, meta.scope)) return;
      const verdict = filter(link, budget);
      if (verdict === 'unchecked') linksUnchecked++;
      if (verdict !== 'follow') return;
      const rules = this.robots.peek(linkUrl);
      children.push({ url: link, depth, robotsDisallowed: rules !== undefined && !rules.isAllowed(link) });
    };
    const pageBudget = pageMatchBudget();
    if (expanded && follows) for (const link of links) admit(link, task.depth + 1, pageBudget);
    // sitemaps are optional seeds: read once per job and origin, when a start URL is fetched
    if (meta.options.useSitemaps && task.depth === 0 && meta.seeds.includes(task.url) && this.firstSeedOfOrigin(meta, url)) {
      // up to 50,000 URLs: a budget of their own, so they do not take the page's
      const sitemapBudget = pageMatchBudget();
      for (const link of await sitemapUrls(url.origin, rules, this.fetcher, signal)) admit(link, 0, sitemapBudget);
    }
    const capped = linksDropped > 0 || imagesDropped > 0 || linksUnchecked > 0;
    await this.finish(messageId, task, {
      outcome: 'fetched',
      page: {
        url: task.url, depth: task.depth, outcome: 'fetched', status: fetched.status, finalUrl: fetched.finalUrl, images: images.length, links: links.length,
        encoding: fetched.encoding,
        ...(dataImages > 0 ? { dataImages } : {}),
        ...(linksDropped > 0 ? { linksDropped } : {}),
        ...(imagesDropped > 0 ? { imagesDropped } : {}),
        ...(linksUnchecked > 0 ? { linksUnchecked } : {}),
        ...(fetched.truncated ? { truncated: true } : {}),
        ...optOutFields(optOuts, images.length - imagesKept.length),
      },
      imagePage: fetched.finalUrl,
      images: imagesKept,
      children,
      expandable: true,
      expanded,
      dataImages,
      capped,
    });
  }

  /**
   * An image task: the bytes (capped at the job's maxImageBytes), their type sniffed and size read from them,
   * their SHA-256, and the content kept once in the image store under that hash.
   */
  private async downloadImage(messageId: string, task: PageTask, meta: JobMeta, signal: AbortSignal, penalised: boolean): Promise<void> {
    let fetched;
    try {
      fetched = await this.fetcher.fetchBytes(task.url, meta.options.maxImageBytes, signal, this.checkRedirect, { body: meta.options.archive });
    } catch (error) {
      if (signal.aborted) throw error;
      if (isRobotsDisallowed(error)) {
        await this.finishImage(messageId, task, { url: task.url, outcome: 'robots', finalUrl: error.url, error: error.message });
        return;
      }
      await this.failOrRetry(messageId, task, error, undefined);
      return;
    }
    await this.adaptToHost(new URL(task.url).host, fetched, penalised);
    if (fetched.kind === 'http-error') {
      if (verdictForStatus(fetched.status) === 'retry' && task.attempt < this.options.config.worker.maxAttempts) {
        await this.retry(messageId, task, parseRetryAfter(fetched.retryAfter, Date.now()));
        return;
      }
      await this.archive(task, meta, fetched.exchange);
      await this.finishImage(messageId, task, { url: task.url, outcome: 'failed', status: fetched.status, finalUrl: fetched.finalUrl });
      return;
    }
    try {
      await this.recordImage(messageId, task, meta, fetched);
    } finally {
      if (fetched.kind === 'bytes') fetched.release();
    }
  }

  /** A downloaded image's result: too large, opted out, not an image, not wanted, or stored (the body is still held). */
  private async recordImage(messageId: string, task: PageTask, meta: JobMeta, fetched: Exclude<BytesFetch, { kind: 'http-error' }>): Promise<void> {
    const seen = { url: task.url, status: fetched.status, finalUrl: fetched.finalUrl, contentType: fetched.contentType };
    if (fetched.kind === 'too-large') {
      await this.finishImage(messageId, task, { ...seen, outcome: 'too-large', error: `larger than maxImageBytes (${meta.options.maxImageBytes})` });
      return;
    }
    if (keepsImagesOut(fetched.optOuts)) {
      await this.finishImage(messageId, task, { ...seen, outcome: 'opted-out', optOuts: fetched.optOuts });
      return;
    }
    const body = fetched.body;
    const archived = keepsOutOfArchive(fetched.optOuts) ? async () => undefined : (location?: string) => this.archive(task, meta, fetched.exchange, location);
    const facts = readImageFacts(body);
    if (facts === null || !meta.options.imageTypes.includes(facts.type)) await archived();
    if (facts === null) {
      await this.finishImage(messageId, task, { ...seen, outcome: 'not-image', bytes: body.length });
      return;
    }
    const described = { ...seen, type: facts.type, bytes: body.length, width: facts.width, height: facts.height };
    if (!meta.options.imageTypes.includes(facts.type)) {
      await this.finishImage(messageId, task, { ...described, outcome: 'type-not-wanted' });
      return;
    }
    const sha256 = createHash('sha256').update(body).digest('hex');
    const kept = await this.blobs.put(task.job, sha256, IMAGE_EXTENSIONS[facts.type], body);
    if ('full' in kept) {
      await archived();
      await this.finishImage(messageId, task, { ...described, outcome: 'store-full', sha256, error: `the job's images fill the image store's budget (${kept.usedBytes} of ${this.blobs.kind === 'swift' ? 'images.swift.maxJobBytes' : 'images.redisMaxJobBytes'} ${kept.maxBytes} bytes)` });
      return;
    }
    const { location } = kept;
    await archived(location);
    await this.finishImage(messageId, task, { ...described, outcome: 'stored', sha256 },
      { sha256, type: facts.type, bytes: body.length, width: facts.width, height: facts.height, location });
  }

  private async finishImage(messageId: string, task: PageTask, record: ImageFetchRecord, file?: Omit<ImageFile, 'urls'>): Promise<void> {
    const held = this.held.get(messageId);
    if (held !== undefined) {
      held.busy = false;
      this.wake?.();
    }
    const recorded = await this.store.completeImage(messageId, task, record, file);
    if (recorded === 0) this.stats.duplicates++;
    else {
      this.stats.completed++;
      if (record.outcome === 'stored') this.stats.imagesStored++;
    }
    await this.settleStore(task.job);
  }

  /**
   * After a result is recorded: a job that keeps contents in a store of their own (Swift) has them expire with
   * its record once it has ended. A failure is logged, not the task's failure (its result is recorded): the
   * store has the job due again, and a worker's sweep settles it then.
   */
  private async settleStore(job: string): Promise<void> {
    // a job known to keep nothing needs nothing; one whose settings this process no longer holds is settled anyway
    const options = this.metaCache.get(job)?.meta?.options;
    if (this.blobs.settle === undefined || (options !== undefined && !options.fetchImages && !options.archive)) return;
    await this.blobs.settle(job).catch((error: Error) => this.options.log.warn(`setting the expiry of job ${job}'s stored contents failed (tried again later): ${error.message}`));
  }

  /**
   * An archive job keeps the answer: the body in the blob store under its SHA-256 (an image already stored
   * there is not written twice), the request and response metadata as the job's capture, before the task
   * completes so a finished job has every capture.
   */
  private async archive(task: PageTask, meta: JobMeta, exchange: Exchange, storedAt?: string, title?: string): Promise<void> {
    if (!meta.options.archive) return;
    const body = exchange.body ?? Buffer.alloc(0);
    let kept: Capture['body'];
    let withheld = false;
    if (body.length > 0) {
      const sha256 = createHash('sha256').update(body).digest('hex');
      // the same store and budget as the job's images: a body it has no room for is recorded as withheld
      const stored = storedAt !== undefined ? { location: storedAt } : await this.blobs.put(task.job, sha256, 'body', body);
      if ('full' in stored) withheld = true;
      else kept = { sha256, bytes: body.length, location: stored.location, truncated: exchange.bodyTruncated };
    }
    await this.store.recordCapture(task.job, {
      kind: isImageTask(task) ? 'image' : 'page', requested: task.url, url: exchange.url, date: exchange.date,
      requestHeaders: exchange.requestHeaders, status: exchange.status, statusText: exchange.statusText, responseHeaders: exchange.responseHeaders,
      ...(kept !== undefined ? { body: kept } : {}),
      ...(withheld ? { bodyWithheld: 'store-full' as const } : {}),
      ...(exchange.redirects.length > 0 ? { redirects: exchange.redirects.map(capturedRedirect) } : {}),
      ...(title !== undefined ? { title } : {}),
    });
  }

  /** Provenance: the robots.txt decision for an origin, recorded once per job (and once per process). */
  private async recordRobotsDecision(job: string, url: URL, rules: RobotsRules): Promise<void> {
    let origins = this.robotsRecorded.get(job);
    if (origins?.has(url.origin) === true) return;
    if (origins === undefined) {
      if (this.robotsRecorded.size > 100) this.robotsRecorded.clear();
      origins = new Set();
      this.robotsRecorded.set(job, origins);
    }
    await this.store.recordRobotsDecision(job, {
      origin: url.origin, robotsUrl: robotsUrlFor(url), robotsTxt: rules === ALLOW_ALL ? 'absent' : 'found',
      crawlDelaySeconds: rules.crawlDelaySeconds ?? null, checkedAt: new Date().toISOString(),
    });
    if (origins.size < 10_000) origins.add(url.origin);
  }

  /** Sitemaps of an origin are read for the first of the job's start URLs on it only. */
  private firstSeedOfOrigin(meta: JobMeta, url: URL): boolean {
    return meta.seeds.find((s) => new URL(s).origin === url.origin) === url.href;
  }

  /** Every redirect hop is checked against the robots.txt of its own origin before it is requested. */
  private readonly checkRedirect = async (url: string): Promise<void> => {
    const rules = await this.robots.rulesFor(new URL(url));
    if (!rules.isAllowed(url)) throw new RobotsDisallowedError(url);
  };

  private async failOrRetry(messageId: string, task: PageTask, error: unknown, retryAfterMs: number | undefined): Promise<void> {
    const image = isImageTask(task);
    if (isBlocked(error)) {
      const message = (error as Error).message;
      if (image) await this.finishImage(messageId, task, { url: task.url, outcome: 'blocked', error: message });
      else await this.finish(messageId, task, { outcome: 'blocked', page: { url: task.url, depth: task.depth, outcome: 'blocked', error: message }, images: [], children: [] });
      return;
    }
    if (task.attempt < this.options.config.worker.maxAttempts) {
      await this.retry(messageId, task, retryAfterMs);
      return;
    }
    if (isRobotsUnreachable(error)) {
      // its origin's robots.txt was unreachable on every try: a complete disallow (RFC 9309 2.3.1.4), not a failure
      const message = error.message;
      if (image) await this.finishImage(messageId, task, { url: task.url, outcome: 'robots', error: message });
      else await this.finish(messageId, task, { outcome: 'robots', page: { url: task.url, depth: task.depth, outcome: 'robots', error: message }, images: [], children: [] });
      return;
    }
    if (image) await this.finishImage(messageId, task, { url: task.url, outcome: 'failed', error: describe(error) });
    else await this.finish(messageId, task, { outcome: 'failed', page: { url: task.url, depth: task.depth, outcome: 'failed', error: describe(error) }, images: [], children: [] });
  }

  /**
   * Per-host politeness that follows the host's answers: 429 (Too Many Requests) or 503 (Service Unavailable)
   * raise the host's gap for every worker and keep them all away until its Retry-After; a normal answer from a
   * penalised host lowers the gap again.
   */
  private async adaptToHost(host: string, fetched: { kind: string; status: number; retryAfter?: string }, penalised: boolean): Promise<void> {
    const { retryBaseMs, maxHostBackoffMs } = this.options.config.worker;
    if (fetched.kind === 'http-error' && (fetched.status === 429 || fetched.status === 503)) {
      await this.store.penaliseHost(host, parseRetryAfter(fetched.retryAfter, Date.now()) ?? 0, retryBaseMs, maxHostBackoffMs);
      this.stats.hostBackoffs++;
    } else if (fetched.kind !== 'http-error' && penalised) {
      await this.store.easeHost(host, retryBaseMs);
    }
  }

  private async retry(messageId: string, task: PageTask, retryAfterMs: number | undefined): Promise<void> {
    const wait = backoffMs(task.attempt, this.options.config.worker.retryBaseMs, Math.random(), retryAfterMs);
    await this.store.delay(messageId, { ...task, attempt: task.attempt + 1 }, wait);
    this.stats.retried++;
  }

  private async finish(messageId: string, task: PageTask, result: PageResult): Promise<void> {
    const held = this.held.get(messageId);
    if (held !== undefined) {
      held.busy = false;
      this.wake?.();
    }
    // Links and images this process has already had recorded for the job (navigation, logos: on every page)
    // are not sent again; the script would only find them in its sets. Marked only after the script
    // succeeded, so a failed or interrupted completion still sends everything when it is retried.
    // A link sent before at the same or a smaller depth changes nothing; one at a smaller depth than before
    // may shorten its path (shortest-path depth), so it is sent again.
    const known = this.recordedFor(task.job);
    const children = result.children.filter((c) => (known.get(c.url) ?? Infinity) > c.depth);
    // Images are keyed apart from links: <a href="big.jpg"> and <img src="big.jpg"> are two facts. A job that
    // fetches images lists every page an image is on, so there an image is known per page.
    const perPage = this.metaCache.get(task.job)?.meta?.options.fetchImages === true ? `\0${result.imagePage ?? task.url}` : '';
    const images = result.images.filter((i) => !known.has(`\0${i.url}${perPage}`));
    const recorded = await this.store.complete(messageId, task, { ...result, children, images });
    for (const c of children) known.set(c.url, c.depth);
    for (const i of images) known.set(`\0${i.url}${perPage}`, 0);
    if (recorded === 0) this.stats.duplicates++;
    else this.stats.completed++;
    await this.settleStore(task.job);
  }

  private recordedFor(job: string): Map<string, number> {
    let known = this.recorded.get(job);
    if (known === undefined || known.size > 200_000) {
      if (this.recorded.size > 20) this.recorded.clear();
      known = new Map();
      this.recorded.set(job, known);
    }
    return known;
  }

  private async jobMeta(id: string): Promise<{ meta: JobMeta | null; filter: LinkFilter }> {
    const hit = this.metaCache.get(id);
    if (hit !== undefined && hit.expires > Date.now()) return hit;
    const meta = await this.store.meta(id);
    const entry = { meta, filter: urlFilter(meta?.options.include ?? [], meta?.options.exclude ?? []), expires: Date.now() + 1000 };
    this.metaCache.set(id, entry);
    if (this.metaCache.size > 1000) this.metaCache.delete(this.metaCache.keys().next().value!);
    return entry;
  }

  /** Resets the idle time of every message this worker holds, so only silent workers lose theirs. */
  private async heartbeat(): Promise<void> {
    const ids = [...this.held.keys()];
    if (ids.length === 0) return;
    await this.options.redis.xclaim(this.store.keys.tasks, CONSUMER_GROUP, this.consumer, 0, ...ids, 'JUSTID');
  }

  private async takeOver(): Promise<void> {
    const { redis, config } = this.options;
    const free = Math.min(config.worker.concurrency - this.busyCount, 2 * config.worker.concurrency - this.held.size);
    if (free <= 0) return;
    const reply = (await redis.xautoclaim(this.store.keys.tasks, CONSUMER_GROUP, this.consumer, config.worker.visibilityTimeoutMs, '0-0', 'COUNT', free)) as [string, Array<[string, string[]] | null>, string[]?];
    for (const entry of reply[1]) {
      if (entry === null) continue;
      this.stats.takenOver++;
      this.dispatch(entry[0], entry[1], true);
    }
  }
}

function messagesOf(reply: unknown): Array<[string, string[]]> {
  if (!Array.isArray(reply)) return [];
  const out: Array<[string, string[]]> = [];
  for (const [, messages] of reply as Array<[string, Array<[string, string[]]>]>) out.push(...messages);
  return out;
}

function describe(error: unknown): string {
  const e = error as Error & { code?: string; cause?: { code?: string; message?: string } };
  return [e.code ?? e.cause?.code, e.message].filter(Boolean).join(': ').slice(0, 300);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }, { once: true });
  });
}

/** What a page record says about the site's opt-outs: which applied, and how many found images they withheld. */
function optOutFields(optOuts: OptOut[], imagesWithheld: number): Pick<PageRecord, 'optOuts' | 'imagesWithheld'> {
  return { ...(optOuts.length > 0 ? { optOuts } : {}), ...(imagesWithheld > 0 ? { imagesWithheld } : {}) };
}

/** A redirect as the job's capture keeps it (JSON in Redis: its short body as base64). */
function capturedRedirect(hop: RedirectHop): CapturedRedirect {
  const { body, bodyTruncated, ...wire } = hop;
  return { ...wire, ...(body.length > 0 ? { body: body.toString('base64') } : {}), ...(bodyTruncated ? { bodyTruncated: true as const } : {}) };
}
