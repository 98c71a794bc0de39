import { startSyntheticSite } from '../test/support/synthetic-site.js';

/**
 * The benchmark's website in its own process, so the site's CPU is not charged to the crawler being measured.
 * Prints one JSON line {origin, seed, pages} and serves until stdin closes.
 */
const pages = Number(process.argv[2] ?? 5000);
const pageDelayMs = Number(process.argv[3] ?? 0);
const site = await startSyntheticSite({ pages, branching: 20, padBytes: 20_000, specials: false, prerender: true, pageDelayMs });
process.stdout.write(`${JSON.stringify({ origin: site.origin, seed: site.seed, pages, images: site.expected.images.size })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void site.close().then(() => process.exit(0)));
