import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** `npm ci` refuses a lockfile that lacks any optional dependency; see scripts/complete-lockfile.mjs. */
describe('package-lock.json', () => {
  it('has an entry for every optional dependency, so npm ci accepts it on a fresh machine', () => {
    const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing: string[] = [];
    for (const [location, meta] of Object.entries(lock.packages)) {
      for (const name of Object.keys(meta.optionalDependencies ?? {})) {
        if (!lock.packages[`${location}/node_modules/${name}`] && !lock.packages[`node_modules/${name}`]) missing.push(`${name} (of ${location || 'the root'})`);
      }
    }
    expect(missing, 'run `npm run lock:complete` after npm install').toEqual([]);
  });
});
