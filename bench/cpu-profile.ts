import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Where the worker's CPU went, from its V8 CPU profile: every sample is charged to the innermost frame of its
 * stack that belongs to one of these areas (so Node's URL parser called by canonicalUrl counts as
 * canonicalising, undici's socket reads as HTTP). Given as shares of the busy samples and, from those, ms of
 * the CPU per page (or image) measured for the same run (a profile's own time deltas are wall time: on a busy machine
 * they include time the process waited for a core).
 */
const AREAS: Array<[string, (url: string, fn: string) => boolean]> = [
  ['GC', (_, fn) => fn === '(garbage collector)'],
  ['parse HTML (htmlparser2)', (url) => /htmlparser2|domhandler|entities|core\/tag-scanner\./.test(url)],
  ['decode (TextDecoder, sniffing)', (url, fn) => /html-encoding-sniffer|whatwg-encoding|internal\/encoding/.test(url) || /sniffHtmlEncoding|^decode$/.test(fn)],
  ['canonicalise URLs', (url) => /core\/url\.|internal\/url/.test(url)],
  ['extract (handlers, srcset, css)', (url) => /core\/(extract|srcset)\./.test(url)],
  ['robots, scope, filters', (url) => /robots|core\/(scope|url-patterns)\./.test(url)],
  ['Redis round trips (ioredis, scripts)', (url) => /ioredis|redis-parser|denque|cluster-key-slot|\/jobs\.js|\/lua\.js/.test(url)],
  ['HTTP (undici, sockets, streams)', (url) => /undici|safe-fetch|node:net|internal\/streams|node:stream|_http/.test(url)],
  ['SHA-256 (node:crypto)', (url) => /internal\/crypto/.test(url)],
  ['sniff type, read dimensions', (url) => /core\/image-type\./.test(url)],
  ['image store', (url) => /image-store|blob-store/.test(url)],
  ['JSON', (url, fn) => url === '' && /^(stringify|parse)$/.test(fn)],
  ['worker loop', (url) => /crawl-worker/.test(url)],
];

export async function profileSummary(dir: string, cpuMsPerPage: number): Promise<string> {
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return 'no profile written';
  const profile = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>; samples: number[]; timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const areaCache = new Map<number, string>();
  const areaOf = (id: number): string => {
    const cached = areaCache.get(id);
    if (cached !== undefined) return cached;
    const { url, functionName } = byId.get(id)!.callFrame;
    let area: string;
    if (functionName === '(idle)' || functionName === '(root)') area = 'idle';
    else if (functionName === '(program)') area = 'other';
    else area = AREAS.find(([, test]) => test(url, functionName))?.[0] ?? (parent.has(id) ? areaOf(parent.get(id)!) : 'other');
    areaCache.set(id, area);
    return area;
  };
  const samples = new Map<string, number>();
  for (const id of profile.samples) {
    const area = areaOf(id);
    samples.set(area, (samples.get(area) ?? 0) + 1);
  }
  samples.delete('idle');
  const busy = [...samples.values()].reduce((a, b) => a + b, 0);
  return [...samples].sort((a, b) => b[1] - a[1])
    .map(([area, n]) => `${area} ${((100 * n) / busy).toFixed(0)}% (${((n / busy) * cpuMsPerPage).toFixed(2)})`).join(', ');
}

