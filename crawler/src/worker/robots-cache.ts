import type { Redis } from 'ioredis';
import { MAX_ROBOTS_BYTES, ROBOTS_MIN_REDIRECTS, robotsFromResponse, RobotsUnreachableError, robotsUrlFor, wholeLines, type RobotsRules, type RobotsStatus } from '../core/robots.js';
import type { WorkerConfig } from '../config.js';
import type { CrawlerKeys } from '../keys.js';
import { LuaScript } from '../lua.js';
import { STORE_ROBOTS } from '../scripts.js';
import { isBlocked, TooManyRedirectsError, type SafeFetcher } from './safe-fetch.js';

const storeRobots = new LuaScript(STORE_ROBOTS);

export type RobotsCacheLimits = WorkerConfig['robotsCache'];

interface Entry {
  rules: RobotsRules;
  expires: number;
  bytes: number;
}

/** Comments and blank lines carry no rule: they are not kept (nor shared) once the file is read. */
export function compactRobots(body: string): string {
  const lines: string[] = [];
  for (const raw of body.split(/\r\n|\r|\n/)) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line !== '') lines.push(line);
  }
  return lines.join('\n');
}

/**
 * How long this process may keep an answer read from the shared cache: what is left of its life there (Redis'
 * PTTL, from Redis' own clock), never more than ttlSeconds. A copy kept the full ttlSeconds from the moment it was
 * read would live up to twice that from its fetch. A key without an expiry (-1, not written by STORE_ROBOTS) gets
 * ttlSeconds; one gone meanwhile (-2) none.
 */
export function localKeepMs(sharedLeftMs: number, ttlSeconds: number): number {
  const ttlMs = ttlSeconds * 1000;
  if (sharedLeftMs === -1) return ttlMs;
  return Math.max(0, Math.min(sharedLeftMs, ttlMs));
}

/**
 * robots.txt per origin: parsed rules kept in this process, the (compacted) answer shared with other workers in
 * Redis, so a site sees one robots.txt request per TTL, not one per worker. Both are bounded in entries and
 * bytes (a crawl over thousands of origins must not grow a worker or Redis without limit): the process keeps
 * the most recently used origins, Redis evicts the oldest stored (STORE_ROBOTS), and entries expire after the TTL.
 */
export class RobotsCache {
  private readonly local = new Map<string, Entry>();
  private localBytes = 0;
  private readonly inflight = new Map<string, Promise<RobotsRules>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: CrawlerKeys,
    private readonly fetcher: SafeFetcher,
    /** The product token this crawler's robots.txt group is found by (config: robotsNameOf). */
    private readonly robotsName: string,
    private readonly limits: RobotsCacheLimits,
  ) {}

  /** Origins and approximate bytes held in this process. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.local.size, bytes: this.localBytes };
  }

  /** Rules already known for this origin, without any I/O (used to pre-filter links). */
  peek(url: URL): RobotsRules | undefined {
    const origin = url.origin;
    const hit = this.local.get(origin);
    if (hit === undefined) return undefined;
    if (hit.expires <= Date.now()) {
      this.drop(origin, hit);
      return undefined;
    }
    // most recently used last: eviction takes from the front
    this.local.delete(origin);
    this.local.set(origin, hit);
    return hit.rules;
  }

  async rulesFor(url: URL): Promise<RobotsRules> {
    const known = this.peek(url);
    if (known !== undefined) return known;
    const origin = url.origin;
    let pending = this.inflight.get(origin);
    if (pending === undefined) {
      pending = this.load(url).finally(() => this.inflight.delete(origin));
      this.inflight.set(origin, pending);
    }
    return pending;
  }

  private async load(url: URL): Promise<RobotsRules> {
    const robotsUrl = robotsUrlFor(url);
    const key = this.keys.robots(url.origin);
    // the shared copy with the time it has left: it was fetched up to ttlSeconds ago, and this process may keep it
    // only for what is left of that (RFC 9309 2.4: a cached robots.txt SHOULD NOT be used for more than 24 hours)
    const [shared, leftMs] = await this.sharedCopy(key);
    let answer: { status: RobotsStatus; body: string };
    let keepMs = this.limits.ttlSeconds * 1000;
    if (shared !== null) {
      answer = JSON.parse(shared) as { status: RobotsStatus; body: string };
      keepMs = localKeepMs(leftMs, this.limits.ttlSeconds);
    } else {
      answer = await this.fetchAnswer(robotsUrl);
      // 5xx and 429 are transient: not cached, robotsFromResponse throws and the page is retried later.
      if (answer.status === 'too-many-redirects' || (answer.status < 500 && answer.status !== 429)) {
        const { ttlSeconds, sharedMaxEntries, sharedMaxBytes } = this.limits;
        await storeRobots.run(this.redis, [key, this.keys.robotsIndex, this.keys.robotsSizes, this.keys.robotsBytes],
          [JSON.stringify(answer), ttlSeconds, sharedMaxEntries, sharedMaxBytes]);
      }
    }
    const rules = robotsFromResponse(robotsUrl, answer.status, answer.body, this.robotsName);
    this.remember(url.origin, rules, answer.body, keepMs);
    return rules;
  }

  /** The shared answer and its remaining life in ms (PTTL), read together. */
  private async sharedCopy(key: string): Promise<[string | null, number]> {
    const replies = await this.redis.multi().get(key).pttl(key).exec();
    const failed = replies?.find(([error]) => error !== null)?.[0];
    if (replies === null || failed) throw failed ?? new Error('reading the shared robots.txt copy was not run (the transaction was discarded)');
    return [replies[0]![1] as string | null, Number(replies[1]![1])];
  }

  private async fetchAnswer(robotsUrl: string): Promise<{ status: RobotsStatus; body: string }> {
    try {
      const fetched = await this.fetcher.fetchText(robotsUrl, MAX_ROBOTS_BYTES, undefined, ROBOTS_MIN_REDIRECTS);
      if (fetched.status < 200 || fetched.status >= 300) return { status: fetched.status, body: '' };
      // the fetch reads at most MAX_ROBOTS_BYTES: a longer file was cut there, and its last piece of a line is dropped
      return { status: fetched.status, body: compactRobots(wholeLines(fetched.body, fetched.truncated)) };
    } catch (error) {
      if (error instanceof TooManyRedirectsError) return { status: 'too-many-redirects', body: '' };
      // an address the crawler may not connect to stays a refusal of its own (the page is recorded as blocked)
      if (isBlocked(error)) throw error;
      throw new RobotsUnreachableError(`robots.txt unreachable (${(error as Error).message}): nothing of ${new URL(robotsUrl).origin} is fetched (RFC 9309 2.3.1.4)`, { cause: error });
    }
  }

  private remember(origin: string, rules: RobotsRules, body: string, keepMs: number): void {
    const previous = this.local.get(origin);
    if (previous !== undefined) this.drop(origin, previous);
    // the text as UTF-16, the parsed rules (about as large again) and the map entry itself
    const bytes = 4 * body.length + 512;
    this.local.set(origin, { rules, expires: Date.now() + keepMs, bytes });
    this.localBytes += bytes;
    for (const [oldest, entry] of this.local) {
      if (this.local.size <= this.limits.maxEntries && this.localBytes <= this.limits.maxBytes) break;
      if (oldest === origin) continue;
      this.drop(oldest, entry);
    }
  }

  private drop(origin: string, entry: Entry): void {
    this.local.delete(origin);
    this.localBytes -= entry.bytes;
  }
}
