import { bareLoopCrawl } from './bare-loop.js';

/** The bare loop in its own process: one warm-up crawl, then the measured one. Prints one JSON line. */
const [seed, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg ?? 32);
await bareLoopCrawl(seed!, concurrency);
const cpu0 = process.cpuUsage();
const result = await bareLoopCrawl(seed!, concurrency);
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`${JSON.stringify({ pages: result.pages, ms: result.ms, cpuMs: (cpu.user + cpu.system) / 1000, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) })}\n`);
process.exit(0);
