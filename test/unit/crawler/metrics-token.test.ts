import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createCrawlerApi } from '../../../crawler/src/api/app.js';
import { parseServiceConfig } from '../../../crawler/src/config.js';
import { apiConnection } from '../../../crawler/src/redis.js';

const apiToken = 'k3J9x-Qp0vTz_w8LmN4rYs2aBcD5eF7gH1iJ6uV';
const metricsToken = 'm9Q2w-Zr7yXe_t1KpL5sVb3nHcG8dF6jA4uR0iO';

/**
 * The API in-process, its Redis a port nothing listens on (no offline queue): every route here answers
 * before Redis matters, or (GET /metrics) reports Redis down.
 */
describe('the metrics-only token', () => {
  let server: Server;
  let base: string;
  const redis = apiConnection('redis://127.0.0.1:9', 200);
  beforeAll(async () => {
    redis.on('error', () => undefined);
    const config = parseServiceConfig({ redis: 'redis://127.0.0.1:9', apiToken, metricsToken, api: { public: { jobReads: false, openapi: false, metrics: false } } });
    const api = createCrawlerApi({ config, redis, log: { error: () => undefined } });
    server = createServer((req, res) => api.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    redis.disconnect();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const call = async (method: 'GET' | 'POST' | 'DELETE', path: string, token: string) => {
    const response = await request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(method === 'POST' ? { body: JSON.stringify({ urls: ['http://example.test/'] }) } : {}),
    });
    return { status: response.statusCode, body: await response.body.text() };
  };

  it('reads /metrics, as the API token does', async () => {
    for (const token of [metricsToken, apiToken]) {
      const answer = await call('GET', '/metrics', token);
      expect(answer.status).toBe(200);
      expect(answer.body).toContain('crawler_redis_up 0');
    }
    expect((await call('GET', '/metrics', 'not-a-token-at-all-not-a-token-at-all')).status).toBe(401);
  });

  it('is refused on every job endpoint: it cannot submit, cancel or read jobs', async () => {
    const jobs = [
      ['POST', '/v1/jobs'], ['GET', '/v1/jobs/0123456789abcdef'], ['DELETE', '/v1/jobs/0123456789abcdef'], ['POST', '/v1/jobs/0123456789abcdef/cancel'],
      ['GET', '/v1/jobs/0123456789abcdef/images'], ['GET', '/v1/jobs/0123456789abcdef/pages'], ['GET', '/openapi.json'],
    ] as const;
    for (const [method, path] of jobs) {
      const answer = await call(method, path, metricsToken);
      expect(answer.status, `${method} ${path}`).toBe(401);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'unauthorized' } });
    }
  });

  it('is held to the API token\'s strength', () => {
    const config = parseServiceConfig({ redis: 'redis://127.0.0.1:9', apiToken, metricsToken: 'change-me' });
    expect(() => createCrawlerApi({ config, redis, log: { error: () => undefined } })).toThrow(/refusing to start: metrics token: .*placeholder/);
  });
});
