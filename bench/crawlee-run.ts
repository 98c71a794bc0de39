import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Crawlee's CheerioCrawler in its default setup (request queue and storage on disk), crawling the benchmark
 * site at a fixed concurrency, in its own process. Prints one JSON line {pages, images, ms, cpuMs, rssMb}.
 * robots.txt's folder is excluded by a pattern so it visits the same pages as our workers.
 */
const [seed, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg ?? 32);
const storage = await mkdtemp(path.join(tmpdir(), 'crawlee-bench-'));
process.env.CRAWLEE_STORAGE_DIR = storage;
process.env.CRAWLEE_LOG_LEVEL = 'ERROR';
const { CheerioCrawler } = await import('@crawlee/cheerio');

const images = new Set<string>();
let pages = 0;
const crawler = new CheerioCrawler({
  minConcurrency: concurrency,
  maxConcurrency: concurrency,
  maxRequestRetries: 1,
  async requestHandler({ $, request, enqueueLinks }) {
    pages++;
    $('img[src], source[srcset], img[srcset], meta[property="og:image"]').each((_, el) => {
      const value = $(el).attr('src') ?? $(el).attr('content') ?? $(el).attr('srcset') ?? '';
      try {
        images.add(new URL(value.split(/\s+/)[0] ?? '', request.loadedUrl ?? request.url).href);
      } catch {
        // not a URL
      }
    });
    await enqueueLinks({ strategy: 'same-hostname', exclude: [/\/private\//] });
  },
});
const cpu0 = process.cpuUsage();
const started = performance.now();
await crawler.run([seed!]);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`${JSON.stringify({ pages, images: images.size, ms, cpuMs: (cpu.user + cpu.system) / 1000, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) })}\n`);
await rm(storage, { recursive: true, force: true });
process.exit(0);
