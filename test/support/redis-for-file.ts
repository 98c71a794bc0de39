import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startRedis, type TestRedis } from './redis.js';

// Apart from redis.ts because it registers Vitest hooks: the benchmarks (bench/crawl.ts) start Redis through
// redis.ts outside Vitest, where importing 'vitest' fails.

/** One test file's Redis: the server, a command connection to it, and the file's per-test cleanups. */
export interface FileRedis {
  readonly url: string;
  readonly server: TestRedis;
  /** Waits out an outage (maxRetriesPerRequest: null), so a test that restarts the server keeps its connection. */
  readonly client: Redis;
  /** Run in reverse after every test (workers, APIs, sites it started), each failure ignored. */
  readonly cleanups: Array<() => Promise<unknown>>;
}

/**
 * The hooks every crawler file on real Redis needs: a server for the file (beforeAll), the test's cleanups run
 * after each test, the connection closed and the server stopped at the end. Read `url`, `server` and `client`
 * inside tests and hooks only (they exist once beforeAll ran).
 */
export function redisForFile(options: { appendOnly?: boolean } = {}): FileRedis {
  let server: TestRedis | undefined;
  let client: Redis | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the file's Redis ${what} is read before its beforeAll hook ran`);
    return value;
  };
  beforeAll(async () => {
    server = await startRedis(options);
    client = new Redis(server.url, { maxRetriesPerRequest: null });
    client.on('error', () => undefined);
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });
  return {
    get url() { return started(server, 'server').url; },
    get server() { return started(server, 'server'); },
    get client() { return started(client, 'client'); },
    cleanups,
  };
}
