import { compileProgram, programSize, runProgram, type MatchBudget, type PatternNode, type Program } from './linear-match.js';
import { parseRegexSubset } from './regex-subset.js';

/**
 * Per-job URL filters. A pattern written /.../flags is a regular expression (searched in the canonical URL);
 * anything else is a glob matched against the whole canonical URL: `*` is any run of characters except "/",
 * `**` any run at all, `?` one character. Excludes win over includes; with no include, every link is included.
 *
 * Both compile to linear-match.ts, so matching takes time linear in the URL's length whatever the pattern
 * (JavaScript's own RegExp backtracks: `/(a|a)*b/` on 30 "a"s takes minutes). Regexes are limited to the
 * subset regex-subset.ts can honour. The limits below keep one page's matching within a bounded amount of work.
 */
export const PATTERN_LIMITS = {
  /** Characters in one pattern. */
  maxLength: 500,
  /** Include and exclude patterns of one job, together. */
  maxPatterns: 50,
  /** Instructions a pattern compiles to, counted repetitions expanded (`a{1000}` is 1,000). */
  maxProgram: 4_000,
  /** Links longer than this are not matched: not followed when the job has patterns, and counted. */
  maxUrlLength: 2_048,
  /** Matching steps for one page's links (a step is one state at one URL position); links past it are not followed. */
  pageSteps: 20_000_000,
} as const;

export type { MatchBudget };

/** True or false, or null when the budget ran out before an answer. */
export type UrlMatcher = (url: string, budget: MatchBudget) => boolean | null;

/** `unchecked`: too long to match, or the page's budget ran out; such a link is not followed. */
export type LinkVerdict = 'follow' | 'skip' | 'unchecked';
export type LinkFilter = (url: string, budget: MatchBudget) => LinkVerdict;

const REGEX = /^\/(.+)\/([imsu]*)$/s;

/** The work one page's links may cost the filters. */
export function pageMatchBudget(): MatchBudget {
  return { steps: PATTERN_LIMITS.pageSteps };
}

/** Why a pattern cannot be used (quoting it), or null. */
export function describeBadPattern(pattern: string): string | null {
  const compiled = programFor(pattern);
  return typeof compiled === 'string' ? `"${pattern.slice(0, 100)}"${pattern.length > 100 ? '…' : ''} ${compiled}` : null;
}

/** Compiles a pattern describeBadPattern() accepted; throws on one it refuses. */
export function compilePattern(pattern: string): UrlMatcher {
  const program = programFor(pattern);
  if (typeof program === 'string') throw new Error(`"${pattern.slice(0, 100)}" ${program}`);
  return (url, budget) => runProgram(program, url, budget);
}

/** One verdict for a job's include and exclude lists. */
export function urlFilter(include: string[], exclude: string[]): LinkFilter {
  if (include.length === 0 && exclude.length === 0) return () => 'follow';
  const inc = include.map(compileStored);
  const exc = exclude.map(compileStored);
  return (url, budget) => {
    if (url.length > PATTERN_LIMITS.maxUrlLength) return 'unchecked';
    if (inc.length > 0) {
      let unknown = false;
      let included = false;
      for (const matcher of inc) {
        const verdict = matcher(url, budget);
        if (verdict === true) {
          included = true;
          break;
        }
        if (verdict === null) unknown = true;
      }
      if (!included) return unknown ? 'unchecked' : 'skip';
    }
    for (const matcher of exc) {
      const verdict = matcher(url, budget);
      if (verdict === null) return 'unchecked';
      if (verdict) return 'skip';
    }
    return 'follow';
  };
}

/**
 * A job stored before a limit was introduced may hold a pattern refused today: it checks nothing, so the links
 * it would decide are `unchecked` (not followed, counted) rather than the worker failing the page.
 */
function compileStored(pattern: string): UrlMatcher {
  const program = programFor(pattern);
  return typeof program === 'string' ? () => null : (url, budget) => runProgram(program, url, budget);
}

/** The program, or why there is none. */
function programFor(pattern: string): Program | string {
  if (pattern.length > PATTERN_LIMITS.maxLength) return `is ${pattern.length} characters long; at most ${PATTERN_LIMITS.maxLength} are allowed`;
  const regex = REGEX.exec(pattern);
  let tree: PatternNode;
  if (regex !== null) {
    const [, source, flags] = regex as unknown as [string, string, string];
    try {
      new RegExp(source, flags);
    } catch (error) {
      return `is not a valid regular expression: ${(error as Error).message}`;
    }
    const parsed = parseRegexSubset(source, flags);
    if (!parsed.ok) return `cannot be used: ${parsed.reason}`;
    tree = parsed.node;
  } else {
    tree = globTree(pattern);
  }
  const size = programSize(tree);
  if (size > PATTERN_LIMITS.maxProgram) {
    return `is too large once its repetitions are expanded (${size >= Number.MAX_SAFE_INTEGER ? 'unbounded' : size} states, at most ${PATTERN_LIMITS.maxProgram}); use smaller {n,m} counts`;
  }
  return compileProgram(tree, regex === null);
}

const ANY: PatternNode = { kind: 'char', set: { ranges: [[0, 0xffff]], negated: false } };
const NOT_SLASH: PatternNode = { kind: 'char', set: { ranges: [[47, 47]], negated: true } };

/** `**` (or more stars) is any run, `*` a run without "/", `?` one unit, all else literal; the whole URL must match. */
function globTree(pattern: string): PatternNode {
  const items: PatternNode[] = [{ kind: 'assert', what: 'start' }];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (pattern[i] === '*') {
      let stars = 1;
      while (pattern[i + 1] === '*') {
        stars++;
        i++;
      }
      items.push({ kind: 'repeat', node: stars > 1 ? ANY : NOT_SLASH, min: 0, max: Infinity });
    } else if (pattern[i] === '?') items.push(ANY);
    else items.push({ kind: 'char', set: { ranges: [[c, c]], negated: false } });
  }
  items.push({ kind: 'assert', what: 'end' });
  return { kind: 'seq', items };
}
