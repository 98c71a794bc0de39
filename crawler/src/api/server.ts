import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { ConfigLoadError, loadServiceConfig } from '../config.js';
import { apiConnection } from '../redis.js';
import { createCrawlerApi } from './app.js';
import { apiTokenProblem } from '../core/secret.js';

/**
 * The API service: `node dist/crawler/api/server.js --config <file://|http(s)://URL>`. Listens, and on
 * SIGTERM stops accepting connections, lets requests in flight finish (up to the grace period), then exits 0.
 */
const log = {
  info: (message: string) => process.stderr.write(`api: ${message}\n`),
  error: (message: string) => process.stderr.write(`api: error: ${message}\n`),
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  const config = await loadServiceConfig(values.config);
  const problem = apiTokenProblem(config.apiToken);
  if (problem !== null) throw new ConfigLoadError(`refusing to start: ${problem}`);
  const redis = apiConnection(config.redis, config.api.redisTimeoutMs, config.redisPassword);
  redis.on('error', (error: Error) => log.error(`redis: ${error.message}`));
  const api = createCrawlerApi({ config, redis, log });
  const server = createServer(api.handle);
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  log.info(`listening on ${config.host}:${config.port}`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: closing`);
    const force = setTimeout(() => {
      server.closeAllConnections();
    }, config.worker.shutdownGraceMs);
    force.unref();
    server.close(() => {
      void redis.quit().catch(() => undefined).finally(() => {
        log.info('stopped');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigLoadError ? error.message : `failed to start: ${(error as Error).message}`;
  process.stderr.write(`api: ${message}\n`);
  process.exit(1);
});
