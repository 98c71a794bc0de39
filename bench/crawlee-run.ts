import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cssImageUrls } from '../crawler/src/core/extract.js';
import { parseSrcset } from '../crawler/src/core/srcset.js';
import { canonicalUrl } from '../crawler/src/core/url.js';
import { contentsDigest } from './image-contents.js';

/**
 * Crawlee's CheerioCrawler crawling a benchmark site at a fixed concurrency, in its own process, doing the work
 * our worker does on every page: fetch, parse, find the links (enqueueLinks: same host, de-duplicated by its
 * request queue, robots.txt honoured with Crawlee's own respectRobotsTxtFile) and every image source our
 * extractor finds (img src/srcset, picture source, og/twitter meta, icon links, lazy data-* attributes, style=
 * and <style> url()s, SVG image, video poster, input type=image), resolved against <base href> and
 * canonicalised with the same function, `data:` URIs counted. Images are kept in an in-memory set (our workers
 * write them to Redis). Same limits as our job: maxDepth 20, no page cap the site could reach.
 * With "images" (a job's fetchImages), every image URL found also goes, once, into a request queue of its own that
 * an HttpCrawler beside the page crawler works through at the same concurrency, robots.txt honoured: each answer
 * read whole and its SHA-256 taken (our workers keep each content once, in Redis; here the hashes are kept in memory).
 * Args: seed, concurrency, storage ("disk": Crawlee's defaults, request queue persisted under a temp dir;
 * "memory": persistStorage off), "images" or nothing. Prints one JSON line {pages, images, dataImages, ms, cpuMs,
 * rssMb (peak)} and with images {imagesFetched, imageFailures, contents, contentsDigest}.
 */
const [seed, concurrencyArg, storageArg, imagesArg] = process.argv.slice(2);
const fetchImages = imagesArg === 'images';
const concurrency = Number(concurrencyArg ?? 32);
const storage = await mkdtemp(path.join(tmpdir(), 'crawlee-bench-'));
process.env.CRAWLEE_STORAGE_DIR = storage;
// Its one non-HTML link on the docs site (a .py download) is logged as a failed request: not an error here.
process.env.CRAWLEE_LOG_LEVEL = 'OFF';
if (storageArg === 'memory') process.env.CRAWLEE_PERSIST_STORAGE = 'false';
const { CheerioCrawler, HttpCrawler, RequestQueue } = await import('@crawlee/cheerio');

const OG = new Set(['og:image', 'og:image:url', 'og:image:secure_url', 'twitter:image', 'twitter:image:src']);
const ICONS = new Set(['icon', 'shortcut', 'apple-touch-icon', 'apple-touch-icon-precomposed', 'mask-icon', 'fluid-icon']);
const LAZY = ['data-src', 'data-lazy-src', 'data-original', 'data-lazy', 'data-echo'];
const LAZY_SRCSET = ['data-srcset', 'data-lazy-srcset'];
const LAZY_BG = ['data-bg', 'data-background', 'data-background-image', 'data-bg-src'];
const SELECTOR = ['img', 'source', 'meta', 'link', 'video[poster]', 'input', 'svg image', 'style', '[style]', ...LAZY_BG.map((key) => `[${key}]`)].join(', ');

const images = new Set<string>();
let dataImages = 0;
let pages = 0;

const imageQueue = fetchImages ? await RequestQueue.open('images') : undefined;
const contents = new Set<string>();
let imagesFetched = 0;
let imageFailures = 0;
const imageCrawler = imageQueue === undefined ? undefined : new HttpCrawler({
  requestQueue: imageQueue,
  minConcurrency: concurrency,
  maxConcurrency: concurrency,
  maxRequestRetries: 1,
  respectRobotsTxtFile: true,
  // it runs beside the page crawl, whose pages add to its queue, until told to stop
  keepAlive: true,
  additionalMimeTypes: ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/svg+xml', 'image/avif', 'image/bmp', 'image/x-icon'],
  requestHandler({ body }) {
    imagesFetched++;
    contents.add(createHash('sha256').update(body).digest('hex'));
  },
  failedRequestHandler() {
    imageFailures++;
  },
});
const crawler = new CheerioCrawler({
  minConcurrency: concurrency,
  maxConcurrency: concurrency,
  maxRequestRetries: 1,
  maxCrawlDepth: 20,
  respectRobotsTxtFile: true,
  async requestHandler({ $, request, enqueueLinks }) {
    pages++;
    const pageUrl = request.loadedUrl ?? request.url;
    const baseHref = $('base[href]').first().attr('href');
    let base = pageUrl;
    try {
      if (baseHref !== undefined) base = new URL(baseHref, pageUrl).href;
    } catch {
      // a bad <base href> is ignored, as our extractor does
    }
    const found: string[] = [];
    const add = (raw: string | undefined) => {
      const value = raw?.trim();
      if (!value) return;
      if (/^data:/i.test(value)) {
        dataImages++;
        return;
      }
      const url = canonicalUrl(value, base);
      if (url !== null && !images.has(url)) {
        images.add(url);
        found.push(url);
      }
    };
    const addSrcset = (value: string | undefined) => {
      if (value) for (const raw of parseSrcset(value)) add(raw);
    };
    // One pass over the document (one compiled selector), reading the elements' attributes directly.
    $(SELECTOR).each((_, node) => {
      const el = node as unknown as { tagName: string; attribs: Record<string, string | undefined>; parent: { tagName?: string } | null };
      const a = el.attribs;
      switch (el.tagName) {
        case 'img':
          add(a.src);
          addSrcset(a.srcset);
          for (const key of LAZY) add(a[key]);
          for (const key of LAZY_SRCSET) addSrcset(a[key]);
          break;
        case 'source':
          if (el.parent?.tagName === 'picture') {
            addSrcset(a.srcset);
            for (const key of LAZY_SRCSET) addSrcset(a[key]);
          }
          break;
        case 'meta':
          if (OG.has((a.property ?? a.name ?? '').toLowerCase())) add(a.content);
          break;
        case 'link':
          if ((a.rel ?? '').toLowerCase().split(/\s+/).some((rel: string) => ICONS.has(rel))) add(a.href);
          break;
        case 'video':
          add(a.poster);
          break;
        case 'input':
          if ((a.type ?? '').toLowerCase() === 'image') add(a.src);
          break;
        case 'image':
          add(a.href ?? a['xlink:href']);
          break;
        case 'style':
          for (const raw of cssImageUrls($(node).text())) add(raw);
          break;
      }
      if (a.style !== undefined) for (const raw of cssImageUrls(a.style)) add(raw);
      for (const key of LAZY_BG) {
        const value = a[key];
        if (value === undefined) continue;
        if (/url\(/i.test(value)) for (const raw of cssImageUrls(`background-image:${value}`)) add(raw);
        else add(value);
      }
    });
    // each image URL once, keyed by its canonical form (as our job's image set is)
    if (imageQueue !== undefined && found.length > 0) await imageQueue.addRequests(found.map((url) => ({ url, uniqueKey: url })));
    await enqueueLinks({ strategy: 'same-hostname' });
  },
});
const cpu0 = process.cpuUsage();
const started = performance.now();
const imagesDone = imageCrawler?.run();
await crawler.run([seed!]);
if (imageCrawler !== undefined && imageQueue !== undefined) {
  while (!(await imageQueue.isFinished())) await new Promise((resolve) => setTimeout(resolve, 20));
  imageCrawler.stop();
  await imagesDone;
}
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
const peakRssMb = Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024);
process.stdout.write(`${JSON.stringify({
  pages, images: images.size, dataImages, ms, cpuMs: (cpu.user + cpu.system) / 1000, rssMb: peakRssMb,
  ...(fetchImages ? { imagesFetched, imageFailures, contents: contents.size, contentsDigest: contentsDigest(contents) } : {}),
})}\n`);
await rm(storage, { recursive: true, force: true });
process.exit(0);
