import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by SHA, loaded on first use and again after a Redis restart empties the script cache. */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }

  /**
   * Runs the script once per call, all sent in one pipeline (one write to Redis, one read back): each call is
   * still its own atomic script. Calls that find the script missing (a Redis restart) are run again alone.
   */
  async runMany(redis: Redis, calls: Array<{ keys: string[]; args: Array<string | number | Buffer> }>): Promise<PromiseSettledResult<unknown>[]> {
    const pipeline = redis.pipeline();
    for (const { keys, args } of calls) pipeline.evalsha(this.sha, keys.length, ...keys, ...args);
    const replies = (await pipeline.exec()) ?? [];
    return Promise.allSettled(calls.map(async ({ keys, args }, i) => {
      const [error, value] = replies[i] ?? [new Error('no reply from Redis'), null];
      if (error === null) return value;
      if (String(error.message).startsWith('NOSCRIPT')) return this.run(redis, keys, args);
      throw error;
    }));
  }
}
