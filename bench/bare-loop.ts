import pLimit from 'p-limit';
import { Agent, request } from 'undici';
import { createExtractor } from '../crawler/src/core/extract.js';
import { canonicalUrl } from '../crawler/src/core/url.js';

/**
 * The peer every worker is measured against: one process, no queue, no Redis, no safety checks —
 * undici.request + streaming htmlparser2 + an in-memory seen set, at a fixed concurrency.
 */
export async function bareLoopCrawl(seed: string, concurrency: number): Promise<{ pages: number; images: number; ms: number }> {
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 });
  const limit = pLimit(concurrency);
  const origin = new URL(seed).origin;
  const seen = new Set<string>([seed]);
  const images = new Set<string>();
  let pages = 0;
  let outstanding = 0;
  let finished!: () => void;
  const allDone = new Promise<void>((resolve) => { finished = resolve; });
  const schedule = (url: string) => {
    outstanding++;
    void limit(() => visit(url)).catch(() => undefined).finally(() => {
      if (--outstanding === 0) finished();
    });
  };
  const started = performance.now();
  const visit = async (url: string): Promise<void> => {
    const response = await request(url, { dispatcher: agent });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return;
    }
    const extractor = createExtractor(url);
    for await (const chunk of response.body as AsyncIterable<Buffer>) extractor.write(chunk.toString('utf8'));
    const found = extractor.end();
    pages++;
    for (const image of found.images) images.add(image.url);
    for (const link of found.links) {
      const canonical = canonicalUrl(link);
      if (canonical === null || seen.has(canonical) || !canonical.startsWith(origin) || canonical.includes('/private/')) continue;
      seen.add(canonical);
      schedule(canonical);
    }
  };
  schedule(seed);
  await allDone;
  const ms = performance.now() - started;
  await agent.close();
  return { pages, images: images.size, ms };
}
