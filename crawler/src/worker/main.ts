import { parseArgs } from 'node:util';
import { ConfigLoadError, loadServiceConfig } from '../config.js';
import { workerConnection } from '../redis.js';
import { CrawlWorker } from './crawl-worker.js';

/**
 * The worker service: `node dist/crawler/worker/main.js --config <file://|http(s)://URL>`.
 * SIGTERM (what swarm sends on every update) stops taking work, lets held pages finish within the grace
 * period, hands back the rest, and exits 0.
 */
const log = {
  info: (message: string) => process.stderr.write(`worker: ${message}\n`),
  warn: (message: string) => process.stderr.write(`worker: warning: ${message}\n`),
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  const config = await loadServiceConfig(values.config, process.env, { readToken: false });
  const redis = workerConnection(config.redis, config.redisPassword, { pipelined: true });
  const reader = workerConnection(config.redis, config.redisPassword);
  for (const connection of [redis, reader]) connection.on('error', (error: Error) => log.warn(`redis: ${error.message}`));
  const worker = new CrawlWorker({ config, redis, reader, log });
  await worker.start();
  log.info(`consumer ${worker.consumer} started (concurrency ${config.worker.concurrency})`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: finishing ${worker.heldCount} held page(s), up to ${config.worker.shutdownGraceMs} ms`);
    await worker.stop();
    await Promise.allSettled([redis.quit(), reader.quit()]);
    log.info(`stopped (completed ${worker.stats.completed}, handed back ${worker.stats.released})`);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigLoadError ? error.message : `failed to start: ${(error as Error).message}`;
  process.stderr.write(`worker: ${message}\n`);
  process.exit(1);
});
