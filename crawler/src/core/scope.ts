/**
 * Which links a crawl follows, relative to the seed it started from.
 * "domain" means the seed's host and its subdomains (no public-suffix list needed for that reading).
 */
export type LinkScope = 'host' | 'origin' | 'domain' | 'any';

export function inScope(candidate: URL, seed: URL, scope: LinkScope): boolean {
  switch (scope) {
    case 'any':
      return true;
    case 'origin':
      return candidate.origin === seed.origin;
    case 'host':
      return candidate.hostname === seed.hostname;
    case 'domain': {
      const root = seed.hostname.replace(/^www\./, '');
      return candidate.hostname === root || candidate.hostname.endsWith(`.${root}`);
    }
  }
}

/** True when `candidate` is in scope of any of the seeds. */
export function inScopeOfAny(candidate: URL, seeds: URL[], scope: LinkScope): boolean {
  return seeds.some((seed) => inScope(candidate, seed, scope));
}
