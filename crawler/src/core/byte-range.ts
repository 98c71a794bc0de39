/**
 * What to send for a GET with a Range header (RFC 9110 14.2-14.4), for one representation of `size` bytes with
 * the strong validator `etag`: the whole of it, one part, or "416 Range Not Satisfiable". Only a single byte
 * range is served; several ranges, another unit or a malformed header are ignored (the whole representation
 * is sent, as 14.2 allows). An If-Range that is not this exact strong ETag (a weak or stale one, or a date)
 * also means the whole: the client's partial copy is of something else.
 */
export type RangeAnswer =
  | { kind: 'whole' }
  | { kind: 'part'; start: number; end: number }
  | { kind: 'unsatisfiable' };

export function rangeFor(range: string | undefined, ifRange: string | undefined, etag: string, size: number): RangeAnswer {
  if (range === undefined) return { kind: 'whole' };
  if (ifRange !== undefined && ifRange.trim() !== etag) return { kind: 'whole' };
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(range);
  if (match === null) return { kind: 'whole' };
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'whole' };
  if (first === '') {
    // a suffix: the last N bytes
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  // a last position before the first makes the header invalid (ignored); a first past the end cannot be met
  if (last !== '' && Number(last) < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = last === '' ? size - 1 : Number(last);
  return { kind: 'part', start, end: Math.min(end, size - 1) };
}

/** The start of a 206 answer's Content-Range ("bytes 100-199/300"), or null when it names none. */
export function contentRangeStart(header: string | undefined): number | null {
  const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header?.trim() ?? '');
  return match === null ? null : Number(match[1]);
}
