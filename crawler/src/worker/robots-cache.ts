import type { Redis } from 'ioredis';
import { robotsFromResponse, robotsUrlFor, type RobotsRules } from '../core/robots.js';
import type { CrawlerKeys } from '../keys.js';
import type { SafeFetcher } from './safe-fetch.js';

const TTL_SECONDS = 3600;
const MAX_ROBOTS_BYTES = 512 * 1024;

/**
 * robots.txt per origin: parsed rules kept in this process, the raw answer shared with other workers in
 * Redis for an hour, so a site sees one robots.txt request per hour, not one per worker.
 */
export class RobotsCache {
  private readonly local = new Map<string, { rules: RobotsRules; expires: number }>();
  private readonly inflight = new Map<string, Promise<RobotsRules>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: CrawlerKeys,
    private readonly fetcher: SafeFetcher,
    private readonly userAgent: string,
  ) {}

  /** Rules already known for this origin, without any I/O (used to pre-filter links). */
  peek(url: URL): RobotsRules | undefined {
    const hit = this.local.get(url.origin);
    return hit !== undefined && hit.expires > Date.now() ? hit.rules : undefined;
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
    const shared = await this.redis.get(key);
    let answer: { status: number; body: string };
    if (shared !== null) {
      answer = JSON.parse(shared) as { status: number; body: string };
    } else {
      answer = await this.fetcher.fetchText(robotsUrl, MAX_ROBOTS_BYTES);
      // 5xx is transient: not cached, robotsFromResponse throws and the page is retried later.
      if (answer.status < 500) await this.redis.set(key, JSON.stringify(answer), 'EX', TTL_SECONDS);
    }
    const rules = robotsFromResponse(robotsUrl, answer.status, answer.body, this.userAgent);
    this.local.set(url.origin, { rules, expires: Date.now() + TTL_SECONDS * 1000 });
    return rules;
  }
}
