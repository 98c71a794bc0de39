import { describe, expect, it } from 'vitest';
import { compileRobotsPattern, matchRobotsPattern } from '../../../crawler/src/core/robots-pattern.js';
import { decideRobots, MAX_ROBOTS_BYTES, parseRobotsTxt, ROBOTS_DECISION_STEPS, robotsFromResponse, wholeLines } from '../../../crawler/src/core/robots.js';

/** The meaning RFC 9309 gives a pattern, as a backtracking RegExp: fine for short random inputs only. */
function reference(pattern: string, path: string): boolean {
  const anchored = pattern.endsWith('$');
  const body = (anchored ? pattern.slice(0, -1) : pattern).split('*').map((piece) => piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}${anchored ? '$' : ''}`, 's').test(path);
}

/** Deterministic pseudo-random numbers (a linear congruential generator), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('robots.txt patterns (RFC 9309 2.2.2) in linear time', () => {
  it('agrees with the RFC meaning (a regular-expression reference) on random patterns and paths', () => {
    const next = random(9309);
    const pick = (alphabet: string, length: number) => Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    const disagreements: string[] = [];
    for (let i = 0; i < 5_000; i++) {
      let pattern = '/' + pick('ab*', Math.floor(next() * 7));
      if (next() < 0.3) pattern += '$';
      const path = '/' + pick('ab', Math.floor(next() * 9));
      if (matchRobotsPattern(compileRobotsPattern(pattern), path, { steps: 0 }) !== reference(pattern, path)) disagreements.push(`${pattern} on ${path}`);
    }
    expect(disagreements).toEqual([]);
  });

  it('costs at most two steps per path character plus the pattern, whatever the stars (the old matcher: path x pattern)', () => {
    const pattern = compileRobotsPattern('/' + '*a'.repeat(200) + 'b');
    for (const length of [2_000, 20_000, 200_000]) {
      const counter = { steps: 0 };
      expect(matchRobotsPattern(pattern, '/' + 'a'.repeat(length), counter)).toBe(false);
      expect(counter.steps).toBeLessThanOrEqual(2 * length + 401 + 10);
    }
    // overlapping pieces make KMP fall back; still linear
    const overlapping = compileRobotsPattern('/*' + 'aab'.repeat(50) + '*aaaaaaaaac$');
    const counter = { steps: 0 };
    matchRobotsPattern(overlapping, '/' + 'aa'.repeat(50_000), counter);
    expect(counter.steps).toBeLessThanOrEqual(2 * 100_001 + 200);
  });

  it('bounds one decision against a hostile 500 KiB file of star rules, answering "disallowed" past the bound', () => {
    const line = 'Disallow: /' + '*a'.repeat(40) + 'b\n';
    const body = 'User-agent: *\n' + line.repeat(Math.floor(MAX_ROBOTS_BYTES / line.length));
    const { groups } = parseRobotsTxt(body);
    const rules = groups.get('*')!.rules;
    expect(rules.length).toBeGreaterThan(5_000);
    const counter = { steps: 0 };
    const started = performance.now();
    // measured on the old matcher (robots-parser): 3.5 s for this one URL
    expect(decideRobots(new URL('http://h.test/robots.txt'), rules, 'http://h.test/' + 'a'.repeat(2_000), counter)).toBe(false);
    // the bound, overshot by at most one rule's linear cost
    expect(counter.steps).toBeLessThanOrEqual(ROBOTS_DECISION_STEPS + 2 * 2_001 + 100);
    expect(performance.now() - started).toBeLessThan(1_000);
    // through the crawler's interface: the old matcher (robots-parser) took 32 s for this URL, measured (path x pattern characters)
    const hostile = robotsFromResponse('http://h.test/robots.txt', 200, body, 'depl');
    expect(hostile.isAllowed('http://h.test/' + 'a'.repeat(8_000))).toBe(false);
    // a real file's decision is far inside the bound: the same path under a few ordinary rules
    const ordinary = parseRobotsTxt('User-agent: *\nDisallow: /private/\nDisallow: /*.pdf$\nAllow: /\n').groups.get('*')!.rules;
    const small = { steps: 0 };
    expect(decideRobots(new URL('http://h.test/robots.txt'), ordinary, 'http://h.test/' + 'a'.repeat(2_000), small)).toBe(true);
    expect(small.steps).toBeLessThan(10_000);
  });

  it('reads only the first 500 KiB of a file (RFC 9309 2.5)', () => {
    const filler = '# ' + 'x'.repeat(MAX_ROBOTS_BYTES) + '\n';
    const rules = robotsFromResponse('http://h.test/robots.txt', 200, `User-agent: *\nDisallow: /early\n${filler}Disallow: /late\n`, 'depl');
    expect(rules.isAllowed('http://h.test/early')).toBe(false);
    expect(rules.isAllowed('http://h.test/late')).toBe(true);
  });

  it('drops the piece of a line a file cut at the parsing limit ends in, so it is not read as a broader rule (2.5)', () => {
    expect(wholeLines('User-agent: *\nDisallow: /private\nAllow: /p', true)).toBe('User-agent: *\nDisallow: /private\n');
    expect(wholeLines('User-agent: *\r\nDisallow: /x\r\nAll', true)).toBe('User-agent: *\r\nDisallow: /x\r\n');
    expect(wholeLines('User-agent: *\nAllow: /p', false)).toBe('User-agent: *\nAllow: /p');
  });

  it('keeps Crawl-delay per group and ignores rules before any User-agent line', () => {
    const rules = robotsFromResponse('http://h.test/robots.txt', 200, 'Disallow: /orphan\nUser-agent: a\nUser-agent: depl\nCrawl-delay: 2.5\nDisallow: /x\n', 'depl');
    expect(rules.crawlDelaySeconds).toBe(2.5);
    expect(rules.isAllowed('http://h.test/x')).toBe(false);
    expect(rules.isAllowed('http://h.test/orphan')).toBe(true);
  });
});
