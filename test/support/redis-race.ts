import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Where a racing step goes in a code path's conversation with Redis: before the first `command` it sends, or
 * once the first one has answered; `*` is whatever command comes first. For a Lua script (`script`: its source),
 * the command is its EVALSHA (or the EVAL that LuaScript falls back to when Redis does not have it yet).
 */
export type RacePoint = { when: 'before' | 'after' } & ({ command: string } | { script: string });

/**
 * The same connection, except that `race` runs once at `point`, and the code path waits for it: the other
 * actor's steps land exactly there (a deterministic interleaving: no sleeps). `ran()` says whether the point
 * was reached, so that a test whose path no longer passes there fails instead of proving nothing.
 */
export function racingRedis(redis: Redis, point: RacePoint, race: () => Promise<unknown>): { redis: Redis; ran(): boolean } {
  let ran = false;
  const sha = 'script' in point ? createHash('sha1').update(point.script).digest('hex') : undefined;
  const matches = (command: string, args: unknown[]) => ('command' in point ? point.command === '*' || command === point.command
    : (command === 'evalsha' && args[0] === sha) || (command === 'eval' && args[0] === point.script));
  const proxy = new Proxy(redis, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof property !== 'string') return method.bind(target);
      return (...args: unknown[]) => {
        if (ran || !matches(property, args)) return method.apply(target, args);
        return (async () => {
          if (point.when === 'before') {
            ran = true;
            await race();
            return method.apply(target, args);
          }
          const reply = await method.apply(target, args);
          ran = true;
          await race();
          return reply;
        })();
      };
    },
  });
  return { redis: proxy, ran: () => ran };
}
