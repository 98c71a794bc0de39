import { benchImage } from '../test/support/bench-images.js';
import { sha256Of } from '../test/support/synthetic-images.js';
import { startSyntheticSite } from '../test/support/synthetic-site.js';
import { contentsDigest } from './image-contents.js';

/**
 * The benchmark's website in its own process, so the site's CPU is not charged to the crawler being measured.
 * Args: pages, page delay (ms), and "images" to serve every image the pages name as a real file
 * (test/support/bench-images.ts). Prints one JSON line {origin, seed, pages, images, contents, contentsDigest}
 * (image URLs, the distinct contents among them and a digest of their sorted SHA-256s) and serves until stdin closes.
 */
const pages = Number(process.argv[2] ?? 5000);
const pageDelayMs = Number(process.argv[3] ?? 0);
const benchImages = process.argv[4] === 'images';
const site = await startSyntheticSite({ pages, branching: 20, padBytes: 20_000, specials: false, prerender: true, pageDelayMs, benchImages });
const hashes = new Set([...site.expected.images].map((url) => sha256Of(benchImage(new URL(url).pathname)!.bytes)));
process.stdout.write(`${JSON.stringify({ origin: site.origin, seed: site.seed, pages, images: site.expected.images.size, contents: hashes.size, contentsDigest: contentsDigest(hashes) })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void site.close().then(() => process.exit(0)));
