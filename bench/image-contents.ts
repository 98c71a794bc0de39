import { createHash } from 'node:crypto';

/** One SHA-256 over a set of contents' SHA-256s (hex), sorted: two crawlers that kept the same contents agree on it. */
export function contentsDigest(sha256s: Iterable<string>): string {
  return createHash('sha256').update([...sha256s].sort().join('\n')).digest('hex');
}
