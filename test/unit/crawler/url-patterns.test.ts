import { describe, expect, it } from 'vitest';
import { PATTERN_LIMITS, compilePattern, describeBadPattern, pageMatchBudget, urlFilter } from '../../../crawler/src/core/url-patterns.js';

const unlimited = () => ({ steps: Number.MAX_SAFE_INTEGER });
const matches = (pattern: string, url: string) => compilePattern(pattern)(url, unlimited());

/** The glob semantics before the linear matcher (a translation to RegExp), kept here as the reference. */
function referenceGlob(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '.';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const URLS = [
  'http://s.test/', 'http://s.test/docs/', 'http://s.test/docs/a.html', 'http://s.test/docs/a/b/c.html', 'http://s.test/docs.html',
  'https://s.test/docs/a.pdf', 'https://S.test/Docs/A.PDF', 'http://s.test/p/1.html', 'http://s.test/p/12.html', 'http://s.test/p/x1.html',
  'http://sub.s.test/docs/a.html', 'http://s.test/a?b=c&d=e', 'http://s.test/a/?q=1/2', 'http://s.test:8080/x', 'http://s.test/%7Euser/',
  'http://s.test/a+b(c)[d]{e}$^|.html', 'http://s.test/under_score-dash.html', 'http://s.test/a\nb', 'http://s.test/2026/12/06/post',
];

describe('globs match exactly as before, in linear time', () => {
  const globs = [
    'http://s.test/docs/**', 'http://s.test/docs/*', 'http://s.test/docs/*.html', 'http://s.test/**.html', '**/p/1*.html',
    'http://s.test/p/?.html', 'http://s.test/p/??.html', 'http*://*/docs/**', '**', '*', 'http://s.test/', '**.pdf', 'https://*.test/**',
    'http://s.test/***', 'http://s.test/*/*/*/*', 'http://s.test/a+b(c)[d]{e}$^|.html', 'http://s.test/a?b=c&d=e', 'http://s.test/a*b',
    'http://s.test:8080/*', '**/%7E*/', '**a**a**a**b', 'http://s.test/*/**/post', '****', '*?*', 'http://s.test/docs/**/c.html',
  ];
  it.each(globs)('%s', (glob) => {
    const reference = referenceGlob(glob);
    for (const url of URLS) expect(matches(glob, url), url).toBe(reference.test(url));
  });

  it('keeps the documented forms: * within a path segment, ** across, ? one character', () => {
    expect(matches('http://s.test/docs/*', 'http://s.test/docs/a.html')).toBe(true);
    expect(matches('http://s.test/docs/*', 'http://s.test/docs/a/b.html')).toBe(false);
    expect(matches('http://s.test/docs/**', 'http://s.test/docs/a/b.html')).toBe(true);
    expect(matches('http://s.test/p/?.html', 'http://s.test/p/1.html')).toBe(true);
    expect(matches('http://s.test/p/?.html', 'http://s.test/p/12.html')).toBe(false);
  });

  it('agrees with the reference on random globs and URLs', () => {
    const next = random(23);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    for (let round = 0; round < 2000; round++) {
      const glob = Array.from({ length: 1 + Math.floor(next() * 8) }, () => pick(['a', 'b', '/', '*', '**', '?', '.', '***'])).join('');
      if (/^\/.+\/$/s.test(glob)) continue; // written /…/, it is a regular expression
      const url = Array.from({ length: Math.floor(next() * 12) }, () => pick(['a', 'b', '/', '.'])).join('');
      expect(matches(glob, url), `${glob} on ${url}`).toBe(referenceGlob(glob).test(url));
    }
  });
});

describe('regular expressions match as JavaScript does, in linear time', () => {
  const regexes = [
    '/\\.pdf$/i', '/\\/p\\/1\\d*\\.html$/', '/^https:/', '/docs\\/(a|b)\\//', '/[?&]b=/', '/\\bpost\\b/', '/\\Bocs/', '/s\\.test\\/?$/',
    '/^http:\\/\\/s\\.test\\/\\d{4}\\/\\d{2}\\//', '/(?:docs|p)\\/[^/]+\\.html$/', '/(?<dir>docs)\\/a/', '/a.b/', '/a.b/s', '/^b/m', '/a$/m',
    '/[a-c]{2,}/', '/x{0}docs/', '/[\\w-]+\\.html$/', '/\\S+\\s/', '/[^a-z:/.]/', '/DOCS/i', '/[D-F]ocs/i', '/%7e/i', '/\\x2F{2}/', '/\\u0073\\.test/',
    '/\\u{73}\\.test/u', '/[\\d.]+/', '/a{,2}/', '/]/', '/[\\b]/', '/\\cJ/', '/[]/', '/[^]/', '/|x/', '/(a|)+$/', '/(?:)*/', '/^(?:a|b)*?c??$/', '/\\$\\^/',
    '/(a|a)*b/', '/(a*)*b/', '/(x+x+)+y/', '/[+*?]/', '/-/', '/[a-]/', '/[\\d-z]/', '/\\//',
  ];
  it.each(regexes)('%s', (pattern) => {
    const [, source, flags] = /^\/(.+)\/([imsu]*)$/s.exec(pattern)!;
    const native = new RegExp(source!, flags);
    expect(describeBadPattern(pattern)).toBeNull();
    for (const url of URLS) expect(matches(pattern, url), url).toBe(native.test(url));
  });

  it('agrees with RegExp on random patterns and texts', () => {
    const next = random(2026);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    const atom = (depth: number): string => {
      const r = next();
      if (depth < 3 && r < 0.15) return `(${alternation(depth + 1)})`;
      if (depth < 3 && r < 0.2) return `(?:${alternation(depth + 1)})`;
      return pick(['a', 'b', 'A', '.', '\\d', '\\w', '\\W', '[ab]', '[^a]', '[a-c]', '\\b', '\\B', '^', '$', '1', '/', '\\/']);
    };
    const quantified = (depth: number) => {
      const base = atom(depth);
      if (/^(\^|\$|\\b|\\B)$/.test(base)) return base;
      return base + pick(['', '', '', '*', '+', '?', '{2}', '{1,3}', '{2,}', '*?', '+?']);
    };
    const sequence = (depth: number) => Array.from({ length: 1 + Math.floor(next() * 4) }, () => quantified(depth)).join('');
    const alternation = (depth: number): string => (next() < 0.25 ? `${sequence(depth)}|${sequence(depth)}` : sequence(depth));
    let compared = 0;
    for (let round = 0; round < 1500; round++) {
      const source = alternation(0);
      const flags = pick(['', '', 'i', 'm', 's', 'u', 'im']);
      let native: RegExp;
      try {
        native = new RegExp(source, flags);
      } catch {
        continue;
      }
      const pattern = `/${source}/${flags}`;
      expect(describeBadPattern(pattern), pattern).toBeNull();
      const matcher = compilePattern(pattern);
      for (let k = 0; k < 5; k++) {
        const text = Array.from({ length: Math.floor(next() * 10) }, () => pick(['a', 'b', 'A', '1', '/', ' ', '\n', '_'])).join('');
        expect(matcher(text, unlimited()), `${pattern} on ${JSON.stringify(text)}`).toBe(native.test(text));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(5_000);
  });
});

describe('hostile patterns', () => {
  const long = `http://s.test/${'a'.repeat(100_000)}`;
  // Before the linear matcher each of these ran for longer than anyone waited (exponential backtracking).
  it.each(['/(a|a)*b/', '**a**a**a**a**a**a**b', '/(a*)*b/', '/^(a+)+$/', '/(x+x+)+y/', '/^(a|aa)+c/', '/(.*a){12}$/'])('%s finishes on a 100,000-character URL in linear steps', (pattern) => {
    const budget = unlimited();
    const started = performance.now();
    const result = compilePattern(pattern)(long, budget);
    const elapsed = performance.now() - started;
    expect(result).toBe(pattern === '/^(a+)+$/' ? false : pattern === '/(.*a){12}$/');
    const steps = Number.MAX_SAFE_INTEGER - budget.steps;
    // one step per position once transitions are cached, plus the states worked out on the way
    expect(steps).toBeLessThan(3 * long.length);
    expect(elapsed).toBeLessThan(2_000); // generous: a loaded CI machine; the old engine did not finish at all
  });

  it('costs the NFA simulation, not memory, when its DFA would be exponential, and still agrees with RegExp', () => {
    const next = random(7);
    const text = Array.from({ length: 20_000 }, () => (next() < 0.5 ? 'a' : 'b')).join('');
    const budget = unlimited();
    expect(compilePattern('/a[ab]{14}$/')(text, budget)).toBe(/a[ab]{14}$/.test(text));
    // at most 5 steps per NFA state (16 here) per position, whatever the cache does
    expect(Number.MAX_SAFE_INTEGER - budget.steps).toBeLessThan(5 * 17 * text.length);
  });

  it('gives up with null (not followed) when the budget runs out', () => {
    const budget = { steps: 1_000 };
    expect(compilePattern('/(a|a)*b/')(long, budget)).toBeNull();
    expect(budget.steps).toBeLessThan(0);
  });
});

describe('refusals name the pattern and the reason', () => {
  it.each([
    ['/(a)\\1/', /"\/\(a\)\\1\/" cannot be used: .*backreference/],
    ['/(?<x>a)\\k<x>/', /backreferences .*\\k<name>/],
    ['/(a)\\1/u', /backreferences \("\\1"\)/],
    ['/a(?=b)/', /lookahead "\(\?="/],
    ['/a(?!b)/', /lookahead "\(\?!"/],
    ['/(?<=a)b/', /lookbehind "\(\?<="/],
    ['/(?<!a)b/', /lookbehind/],
    ['/\\p{L}/u', /Unicode property escapes/],
    ['/\\012/', /octal escape/],
    ['/(unclosed/', /not a valid regular expression/],
    ['/a{5000}/', /too large once its repetitions are expanded \(\d+ states, at most 4000\)/],
    ['/((a{60}){60}){60}/', /too large/],
    [`http://s.test/${'x'.repeat(600)}`, /is 614 characters long; at most 500 are allowed/],
  ])('%s', (pattern, reason) => {
    expect(describeBadPattern(pattern)).toMatch(reason);
    expect(() => compilePattern(pattern)).toThrow(reason);
  });

  it('accepts the limits themselves', () => {
    expect(describeBadPattern(`http://s.test/${'x'.repeat(PATTERN_LIMITS.maxLength - 14)}`)).toBeNull();
    expect(describeBadPattern('/a{3999}/')).toBeNull();
  });
});

describe('urlFilter', () => {
  it('follows everything with no patterns, whatever the length', () => {
    expect(urlFilter([], [])(`http://s.test/${'a'.repeat(100_000)}`, pageMatchBudget())).toBe('follow');
  });

  it('applies includes, then excludes', () => {
    const filter = urlFilter(['http://s.test/docs/**'], ['/\\.pdf$/i']);
    const budget = pageMatchBudget();
    expect(filter('http://s.test/docs/a.html', budget)).toBe('follow');
    expect(filter('http://s.test/docs/a.PDF', budget)).toBe('skip');
    expect(filter('http://s.test/blog/a.html', budget)).toBe('skip');
    expect(urlFilter([], ['**.pdf'])('http://s.test/a.html', budget)).toBe('follow');
  });

  it('does not match a URL over the length cap: unchecked, never followed', () => {
    const budget = pageMatchBudget();
    const over = `http://s.test/${'a'.repeat(PATTERN_LIMITS.maxUrlLength)}`;
    const at = `http://s.test/${'a'.repeat(PATTERN_LIMITS.maxUrlLength - 14)}`;
    expect(urlFilter(['**'], [])(over, budget)).toBe('unchecked');
    expect(urlFilter([], ['**b'])(over, budget)).toBe('unchecked');
    expect(budget.steps).toBe(PATTERN_LIMITS.pageSteps);
    expect(urlFilter(['**'], [])(at, budget)).toBe('follow');
  });

  it('leaves links unchecked once the page budget is spent', () => {
    const filter = urlFilter(['/(a|a)*b/'], []);
    const budget = { steps: 5_000 };
    const url = `http://s.test/${'a'.repeat(2_000)}`;
    expect(filter(url, budget)).toBe('skip');
    expect(filter(url, budget)).toBe('skip');
    expect(filter(url, budget)).toBe('unchecked');
  });

  it('treats a stored pattern refused today as checking nothing rather than failing the page', () => {
    expect(urlFilter(['/(a)\\1/'], [])('http://s.test/aa', pageMatchBudget())).toBe('unchecked');
  });
});
