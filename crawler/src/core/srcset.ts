/**
 * The URLs of a srcset attribute, following the HTML spec's candidate parsing: a URL is a run of
 * non-whitespace (it may contain commas, e.g. on image CDNs), trailing commas end a candidate, and the
 * descriptors that follow run to the next comma outside parentheses.
 */
export function parseSrcset(value: string): string[] {
  const urls: string[] = [];
  let i = 0;
  const n = value.length;
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
  while (i < n) {
    while (i < n && (isSpace(value[i]) || value[i] === ',')) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && !isSpace(value[i])) i++;
    let url = value.slice(start, i);
    let endedByComma = false;
    if (url.endsWith(',')) {
      url = url.replace(/,+$/, '');
      endedByComma = true;
    }
    if (url !== '') urls.push(url);
    if (endedByComma) continue;
    let depth = 0;
    while (i < n) {
      const c = value[i];
      if (c === '(') depth++;
      else if (c === ')') depth = Math.max(0, depth - 1);
      else if (c === ',' && depth === 0) break;
      i++;
    }
  }
  return urls;
}
