import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { CrawlerClient, type JobDocument } from '../crawler/src/client.js';
import { JobStore } from '../crawler/src/jobs.js';
import { apiEntry, workerEntry, writeServiceConfig } from '../test/support/crawler.js';
import { freePort, startRedis, type TestRedis } from '../test/support/redis.js';
import { childRun, cpuMsOf, deployedNodeFlags, peakRssMbOf, redisCpuMs, spawnService, startSiteProcess, type ServiceChild, type SiteInfo } from './crawl-processes.js';
import { contentsDigest } from './image-contents.js';
import { profileSummary } from './cpu-profile.js';

/**
 * Crawling with image fetching on (a job's `fetchImages: true`), depl against Crawlee in the same run, on the
 * synthetic site serving every image its pages name as a real file (test/support/bench-images.ts: PNG, JPEG, GIF
 * and SVG with their true types, each of its own dimensions, the logo and each page's picture at several URLs).
 * Ours: one worker and the API as deployed (crawler/dist), on a Redis of this comparison's own, the job submitted,
 * watched, listed and deleted through the API as `depl crawl` does; images go through the worker's queue, robots
 * rules, per-host slots, type sniffing, dimensions, SHA-256 and the default image store (the job's hash in Redis).
 * Crawlee: crawlee-run.ts with "images" (its page crawler, and an HttpCrawler with its own request queue of the
 * image URLs, every body read whole and hashed; in-memory storage). Both must end with the same image URLs fetched
 * and the same contents (their SHA-256s' digest), as the site computed them; anything else fails the benchmark.
 * Env: BENCH_CRAWL_IMAGE_PAGES (default 1000).
 */
interface ImageRun {
  pages: number;
  /** Image URLs whose answer was read (depl: stored or not; Crawlee: handled or failed). */
  imagesFetched: number;
  contents: number;
  contentsDigest: string;
  ms: number;
  /** depl: the worker and the API together; Crawlee: its process. */
  cpuMs: number;
  redisCpuMs?: number;
  /** depl: the worker's share of cpuMs. */
  workerCpuMs?: number;
  /** Peak RSS: depl's worker and API added up (each process's own peak); Crawlee's process. */
  rssMb: number;
  workerRssMb?: number;
  apiRssMb?: number;
}

const pagesPerSecond = (r: ImageRun) => (r.pages / r.ms) * 1000;
const imagesPerSecond = (r: ImageRun) => (r.imagesFetched / r.ms) * 1000;
const cpuPerRequest = (r: ImageRun) => (r.cpuMs + (r.redisCpuMs ?? 0)) / (r.pages + r.imagesFetched);
const faster = (a: ImageRun | undefined, b: ImageRun) => (a === undefined || b.ms < a.ms ? b : a);

const describe = (r: ImageRun) => `${pagesPerSecond(r).toFixed(0)} pages/s and ${imagesPerSecond(r).toFixed(0)} images/s (${r.pages} pages, ${r.imagesFetched} image URLs, ${r.contents} contents, in ${(r.ms / 1000).toFixed(2)} s), ` +
  `${(r.cpuMs / (r.pages + r.imagesFetched)).toFixed(2)} ms CPU per page or image` + (r.redisCpuMs !== undefined ? ` + ${(r.redisCpuMs / (r.pages + r.imagesFetched)).toFixed(2)} ms in Redis` : '') +
  `, peak RSS ${r.rssMb} MB` + (r.workerRssMb !== undefined ? ` (worker ${r.workerRssMb} + API ${r.apiRssMb})` : '');

export async function imageFetching(concurrency: number, rounds: number): Promise<string[]> {
  const pages = Number(process.env.BENCH_CRAWL_IMAGE_PAGES ?? 1000);
  const site = await startSiteProcess([String(pages), '0', 'images']);
  // its own Redis: its peak memory is this comparison's (the jobs' images are kept in it)
  const redis = await startRedis();
  try {
    let ours: ImageRun | undefined;
    let crawlee: ImageRun | undefined;
    for (let round = 0; round < rounds; round++) {
      ours = faster(ours, noted('images: depl 1 worker + API', await deplRun(redis, site, concurrency)));
      // Crawlee takes minutes: at most two rounds of it, as on the other sites
      if (round < 2) crawlee = faster(crawlee, noted('images: Crawlee', await childRun<ImageRun>('crawlee-run.ts', [site.seed, String(concurrency), 'memory', 'images'])));
    }
    const redisPeakMb = peakRssMbOf(redis.pid());
    const profile = await workerProfile(redis, site, concurrency);
    requireSameImages(site, ours!, crawlee!);
    const throughput = Math.min(pagesPerSecond(ours!) / pagesPerSecond(crawlee!), imagesPerSecond(ours!) / imagesPerSecond(crawlee!));
    const memory = crawlee!.rssMb / ours!.rssMb;
    return [
      `synthetic site with image fetching: ${pages} pages naming ${site.images} image URLs of ${site.contents} distinct contents (PNG, JPEG, GIF, SVG; real files, true types); concurrency ${concurrency} per crawler (Crawlee: ${concurrency} for pages and ${concurrency} for images); best of ${rounds} (Crawlee ${Math.min(rounds, 2)}) by wall time`,
      `depl (1 worker + API, fetchImages, image store: redis; node ${deployedNodeFlags('worker').join(' ')}) ${describe(ours!)}; Redis peak RSS ${redisPeakMb} MB (this comparison's own Redis, jobs deleted after each run)`,
      `Crawlee CheerioCrawler + HttpCrawler for the images (in-memory) ${describe(crawlee!)}`,
      `both fetched the same ${site.images} image URLs and kept the same ${site.contents} contents (digest ${site.contentsDigest.slice(0, 12)})`,
      `ratio depl / Crawlee with images: pages/s ${(pagesPerSecond(ours!) / pagesPerSecond(crawlee!)).toFixed(1)}x, images/s ${(imagesPerSecond(ours!) / imagesPerSecond(crawlee!)).toFixed(1)}x (goal >= 10x: ${throughput >= 10 ? 'met' : 'not met'}); ` +
        `CPU per page or image ${(cpuPerRequest(crawlee!) / cpuPerRequest(ours!)).toFixed(1)}x less (Redis included)`,
      profile,
      `memory: depl's worker + API peak ${ours!.rssMb} MB against Crawlee's ${crawlee!.rssMb} MB: 1/${memory.toFixed(1)} (goal at most 1/5: ${memory >= 5 ? 'met' : 'not met'}); with Redis ${ours!.rssMb + redisPeakMb} MB: 1/${(crawlee!.rssMb / (ours!.rssMb + redisPeakMb)).toFixed(1)}`,
    ];
  } finally {
    await redis.stop();
    site.stop();
  }
}

/** One more run of ours with the worker under V8's CPU profiler: where its time per page or image goes. */
async function workerProfile(redis: TestRedis, site: SiteInfo, concurrency: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'crawl-images-profile-'));
  try {
    const run = await deplRun(redis, site, concurrency, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const perRequest = run.workerCpuMs! / (run.pages + run.imagesFetched);
    return `profile of the worker with images (warm-up + measured crawl; ${perRequest.toFixed(2)} ms of the worker's CPU per page or image measured, profiler included; share of the worker's busy samples and ms per page or image): ${await profileSummary(dir, perRequest)}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function noted(what: string, r: ImageRun): ImageRun {
  process.stderr.write(`  ${what.padEnd(32)} ${describe(r)}\n`);
  return r;
}

/** The benchmark compares equal work or nothing: both crawlers must have fetched and kept what the site serves. */
function requireSameImages(site: SiteInfo, ours: ImageRun, crawlee: ImageRun): void {
  const want = { pages: site.pages, imagesFetched: site.images, contents: site.contents, contentsDigest: site.contentsDigest };
  for (const [who, run] of [['depl', ours], ['Crawlee', crawlee]] as const) {
    const got = { pages: run.pages, imagesFetched: run.imagesFetched, contents: run.contents, contentsDigest: run.contentsDigest };
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${who} did not fetch what the site serves: ${JSON.stringify(got)}, the site: ${JSON.stringify(want)}; the throughputs are not comparable`);
    }
  }
}

/**
 * One worker and the API, fresh for this run: a warm-up job (JIT, sockets), deleted, then the measured one. The
 * job is submitted, polled, its contents listed and then deleted through the API (with the bearer token), as
 * `depl crawl` does.
 */
async function deplRun(redis: TestRedis, site: SiteInfo, concurrency: number, workerNodeArgs: string[] = []): Promise<ImageRun> {
  const token = randomBytes(24).toString('hex');
  const port = await freePort();
  const config = {
    redis: redis.url, keyPrefix: `bench-images-${process.pid}-${Date.now()}:`, allow: { networks: ['127.0.0.1/32'] },
    worker: { concurrency }, apiToken: token, port, host: '127.0.0.1',
  };
  const configUrl = await writeServiceConfig(config);
  const worker = spawnService(workerEntry, configUrl, workerNodeArgs);
  const api = spawnService(apiEntry, configUrl);
  const client = new Redis(redis.url);
  const crawler = new CrawlerClient({ baseUrl: `http://127.0.0.1:${port}`, token });
  try {
    const store = new JobStore(client, config.keyPrefix);
    await store.ensureGroup();
    // the worker says when it reads tasks (an empty stream lists no consumer yet), the API when Redis answers it
    await untilUp([worker, api], async () => worker.output().includes(' started ')
      && await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false));
    const request = { urls: [site.seed], maxDepth: 20, maxPages: 100_000, scope: 'host' as const, fetchImages: true };
    const warmUp = await untilEnded(crawler, (await crawler.submit(request)).id);
    await crawler.delete(warmUp.id);
    const workerCpuBefore = cpuMsOf(worker.child.pid);
    const apiCpuBefore = cpuMsOf(api.child.pid);
    const redisBefore = await redisCpuMs(client);
    const started = performance.now();
    const job = await untilEnded(crawler, (await crawler.submit(request)).id);
    const ms = performance.now() - started;
    const workerCpuMs = cpuMsOf(worker.child.pid) - workerCpuBefore;
    const cpuMs = workerCpuMs + cpuMsOf(api.child.pid) - apiCpuBefore;
    const redisCpu = (await redisCpuMs(client)) - redisBefore;
    const workerRssMb = peakRssMbOf(worker.child.pid);
    const apiRssMb = peakRssMbOf(api.child.pid);
    const files = await crawler.allFiles(job.id);
    await crawler.delete(job.id);
    return {
      pages: job.counts.fetched, imagesFetched: job.counts.imagesStored + job.counts.imagesNotStored,
      contents: files.length, contentsDigest: contentsDigest(files.map((f) => f.sha256)),
      ms, cpuMs, workerCpuMs, redisCpuMs: redisCpu, rssMb: workerRssMb + apiRssMb, workerRssMb, apiRssMb,
    };
  } finally {
    for (const service of [worker, api]) service.child.kill('SIGTERM');
    await Promise.all([worker.exited, api.exited]);
    client.disconnect();
  }
}

async function untilUp(services: ServiceChild[], up: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await up()) return;
    const dead = services.find((s) => s.child.exitCode !== null);
    if (dead !== undefined) throw new Error(`a crawler service exited: ${dead.output().slice(-500)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the crawler services did not come up in 20 s: ${services.map((s) => s.output()).join('\n').slice(-500)}`);
}

async function untilEnded(crawler: CrawlerClient, id: string): Promise<JobDocument> {
  for (;;) {
    const job = await crawler.get(id);
    if (job.status !== 'running') return job;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
