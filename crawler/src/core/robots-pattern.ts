/**
 * RFC 9309 2.2.2 path patterns: `*` is any run of characters, a final `$` anchors the end, everything else is
 * literal, and a pattern without `$` matches a prefix of the path. A pattern is its literal pieces between the
 * stars; matching takes each piece at its leftmost place after the previous one (leftmost is never worse for a
 * pattern with no other operator), each found with Knuth-Morris-Pratt, so one match reads the path at most twice
 * over plus the pattern once: linear, whatever a hostile robots.txt writes. (The generic matcher robots-parser
 * and Google's robotstxt use keeps a set of candidate lengths per pattern character: path x pattern steps, measured
 * at 3.5 s for one 2,000-character URL against a 460 KB file of `/*a*a...` rules.)
 */
export interface RobotsPattern {
  /** The pattern as written (normalised); its length decides precedence. */
  source: string;
  /** Literal pieces between the stars; the first must be a prefix of the path (empty when the pattern starts with `*`). */
  pieces: string[];
  /** KMP failure tables of all pieces, one after another (one allocation: a file may hold 100,000 pieces). */
  failure: Int32Array;
  /** Where each piece's table starts in `failure`. */
  offsets: number[];
  /** A final `$`: the last piece must end the path. */
  anchored: boolean;
}

/** Work spent matching, in character comparisons (and table moves); the caller bounds it. */
export interface StepCounter {
  steps: number;
}

export function compileRobotsPattern(source: string): RobotsPattern {
  const anchored = source.endsWith('$');
  const pieces = (anchored ? source.slice(0, -1) : source).split('*');
  // empty pieces after the first (from `**` or a final `*`) match anywhere and are dropped
  const kept = [pieces[0]!, ...pieces.slice(1).filter((piece, i, rest) => piece !== '' || (anchored && i === rest.length - 1))];
  const offsets: number[] = [];
  let total = 0;
  for (const piece of kept) {
    offsets.push(total);
    total += piece.length;
  }
  const failure = new Int32Array(total);
  kept.forEach((piece, i) => fillFailure(piece, failure, offsets[i]!));
  return { source, pieces: kept, failure, offsets, anchored };
}

/** Whether the pattern matches `path` (path and query, normalised as the patterns are). */
export function matchRobotsPattern(pattern: RobotsPattern, path: string, counter: StepCounter): boolean {
  const { pieces, anchored } = pattern;
  const first = pieces[0]!;
  counter.steps += first.length + 1;
  if (!path.startsWith(first)) return false;
  if (pieces.length === 1) return !anchored || path.length === first.length;
  let at = first.length;
  const last = pieces.length - 1;
  for (let i = 1; i < last; i++) {
    const found = search(pieces[i]!, pattern.failure, pattern.offsets[i]!, path, at, counter);
    if (found < 0) return false;
    at = found + pieces[i]!.length;
  }
  const tail = pieces[last]!;
  if (anchored) {
    // the tail must end the path, after everything matched before it
    counter.steps += tail.length + 1;
    return path.length - tail.length >= at && path.endsWith(tail);
  }
  return search(tail, pattern.failure, pattern.offsets[last]!, path, at, counter) >= 0;
}

/** failure[at + i]: the length of the longest proper prefix of piece[0..i] that is also its suffix. */
function fillFailure(piece: string, failure: Int32Array, at: number): void {
  let k = 0;
  for (let i = 1; i < piece.length; i++) {
    while (k > 0 && piece.charCodeAt(i) !== piece.charCodeAt(k)) k = failure[at + k - 1]!;
    if (piece.charCodeAt(i) === piece.charCodeAt(k)) k++;
    failure[at + i] = k;
  }
}

/** Index of the first occurrence of `piece` in `text` at or after `from`, or -1; at most 2 steps per text unit. */
function search(piece: string, failure: Int32Array, at: number, text: string, from: number, counter: StepCounter): number {
  if (piece.length === 0) return from;
  let k = 0;
  let steps = 0;
  for (let i = from; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    while (k > 0 && unit !== piece.charCodeAt(k)) {
      k = failure[at + k - 1]!;
      steps++;
    }
    steps++;
    if (unit === piece.charCodeAt(k)) k++;
    if (k === piece.length) {
      counter.steps += steps;
      return i - piece.length + 1;
    }
  }
  counter.steps += steps;
  return -1;
}
