/**
 * Per-job URL filters. A pattern written /.../flags is a regular expression (searched in the canonical URL);
 * anything else is a glob matched against the whole canonical URL: `*` is any run of characters except "/",
 * `**` any run at all, `?` one character. Excludes win over includes; with no include, every link is included.
 */
export type UrlMatcher = (url: string) => boolean;

const REGEX = /^\/(.+)\/([imsu]*)$/s;

/** Why a pattern cannot be used, or null. */
export function describeBadPattern(pattern: string): string | null {
  const regex = REGEX.exec(pattern);
  if (regex === null) return null;
  try {
    new RegExp(regex[1]!, regex[2]);
    return null;
  } catch (error) {
    return `"${pattern.slice(0, 100)}" is not a valid regular expression: ${(error as Error).message}`;
  }
}

export function compilePattern(pattern: string): UrlMatcher {
  const regex = REGEX.exec(pattern);
  if (regex !== null) {
    const compiled = new RegExp(regex[1]!, regex[2]);
    return (url) => compiled.test(url);
  }
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
  const compiled = new RegExp(`^${source}$`, 's');
  return (url) => compiled.test(url);
}

/** One predicate for a job's include and exclude lists. */
export function urlFilter(include: string[], exclude: string[]): UrlMatcher {
  if (include.length === 0 && exclude.length === 0) return () => true;
  const inc = include.map(compilePattern);
  const exc = exclude.map(compilePattern);
  return (url) => (inc.length === 0 || inc.some((m) => m(url))) && !exc.some((m) => m(url));
}
