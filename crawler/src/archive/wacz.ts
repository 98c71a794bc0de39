import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { CDXIndexer, WARCRecord } from 'warcio';
import { WARCSerializer } from 'warcio/node';
import yazl from 'yazl';
import type { ImageStore } from '../image-store.js';
import type { Capture, JobDocument, JobStore, RobotsDecision } from '../jobs.js';
import type { WireExchange } from '../core/wire-exchange.js';

/**
 * A job's captures as a WACZ (Web Archive Collection Zipped, spec 1.1.1): the request and response of every
 * page and image the job fetched as WARC/1.1 records (webrecorder's warcio writes the framing, the digests and
 * the per-record gzip members), a CDXJ index of them (warcio's indexer), pages/pages.jsonl, and
 * datapackage.json listing every file with its SHA-256 and size, with datapackage-digest.json over that.
 * The job's provenance (crawler version and image, user agent, settings, start and end, robots.txt decisions
 * per origin) is in the warcinfo record and in datapackage.json.
 */
export const WACZ_VERSION = '1.1.1';
export const WARC_NAME = 'archive/data.warc.gz';
export const INDEX_NAME = 'indexes/index.cdx';
export const PAGES_NAME = 'pages/pages.jsonl';

export interface WaczSource {
  job: JobDocument;
  store: JobStore;
  /** The job's store (image-store.ts), where the workers kept the bodies. */
  blobs: ImageStore;
  /** Software named in datapackage.json and the warcinfo record. */
  software: string;
}

export interface WaczResult {
  /** The WACZ file, in a temporary folder that `dispose()` removes. */
  file: string;
  bytes: number;
  records: number;
  pages: number;
  dispose(): Promise<void>;
}

/** Hop-by-hop framing undici already undid: a reader would try to undo it again on the stored body. */
const FRAMING_HEADERS = new Set(['transfer-encoding']);

/** Writes the WACZ of a job into a temporary file. */
export async function writeWacz(source: WaczSource): Promise<WaczResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'crawler-wacz-'));
  try {
    const warcFile = path.join(dir, 'data.warc.gz');
    const robots = await source.store.robotsDecisions(source.job.id);
    const provenance = provenanceOf(source.job, robots, source.software);
    const { records, pages } = await writeWarc(warcFile, source, provenance);
    const indexFile = path.join(dir, 'index.cdx');
    await writeIndex(warcFile, indexFile);
    const pagesFile = path.join(dir, 'pages.jsonl');
    await writeFile(pagesFile, pagesJsonl(pages));

    const resources = [];
    for (const [name, file] of [[PAGES_NAME, pagesFile], [WARC_NAME, warcFile], [INDEX_NAME, indexFile]] as const) {
      resources.push({ name: path.basename(name), path: name, hash: `sha256:${await sha256Of(file)}`, bytes: (await stat(file)).size });
    }
    const seeds = source.job.request.urls;
    const datapackage = {
      profile: 'data-package',
      resources,
      wacz_version: WACZ_VERSION,
      title: `crawl ${source.job.id}`,
      description: `Pages and images fetched by crawl job ${source.job.id} from ${seeds.join(', ')}`,
      created: new Date().toISOString(),
      modified: source.job.finishedAt ?? source.job.updatedAt,
      software: source.software,
      ...(pages[0] !== undefined ? { mainPageUrl: pages[0].url, mainPageDate: pages[0].ts } : {}),
      provenance,
    };
    const datapackageText = `${JSON.stringify(datapackage, null, 2)}\n`;
    const digest = { path: 'datapackage.json', hash: `sha256:${createHash('sha256').update(datapackageText).digest('hex')}` };

    const zipFile = path.join(dir, 'archive.wacz');
    const zip = new yazl.ZipFile();
    // stored, not deflated: replay tools read WARC records at their offsets inside the zip
    for (const resource of resources) zip.addFile(path.join(dir, localName(resource.path)), resource.path, { compress: false });
    zip.addBuffer(Buffer.from(datapackageText), 'datapackage.json', { compress: false });
    zip.addBuffer(Buffer.from(`${JSON.stringify(digest, null, 2)}\n`), 'datapackage-digest.json', { compress: false });
    zip.end();
    await pipeline(zip.outputStream, createWriteStream(zipFile));
    return { file: zipFile, bytes: (await stat(zipFile)).size, records, pages: pages.length, dispose: () => rm(dir, { recursive: true, force: true }) };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

const localName = (resourcePath: string) => ({ [PAGES_NAME]: 'pages.jsonl', [WARC_NAME]: 'data.warc.gz', [INDEX_NAME]: 'index.cdx' })[resourcePath]!;

export interface WaczProvenance {
  job: string;
  crawlerVersion: string;
  imageDigest: string;
  userAgent: string;
  software: string;
  settings: JobDocument['request'];
  startedAt: string;
  finishedAt: string | null;
  status: JobDocument['status'];
  robots: RobotsDecision[];
}

export function provenanceOf(job: JobDocument, robots: RobotsDecision[], software: string): WaczProvenance {
  return {
    job: job.id,
    crawlerVersion: job.provenance?.crawlerVersion ?? 'unknown',
    imageDigest: job.provenance?.imageDigest ?? 'unknown',
    userAgent: job.provenance?.userAgent ?? 'unknown',
    software,
    settings: job.request,
    startedAt: job.createdAt,
    finishedAt: job.finishedAt,
    status: job.status,
    robots,
  };
}

interface PageEntry {
  id: string;
  url: string;
  ts: string;
  title?: string;
  status: number;
}

async function writeWarc(file: string, source: WaczSource, provenance: WaczProvenance): Promise<{ records: number; pages: PageEntry[] }> {
  const out = createWriteStream(file);
  let records = 0;
  const pages: PageEntry[] = [];
  try {
    const info = WARCRecord.createWARCInfo({ filename: 'data.warc.gz', warcVersion: 'WARC/1.1' }, {
      software: source.software,
      format: 'WARC File Format 1.1',
      conformsTo: 'https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/',
      'http-header-user-agent': provenance.userAgent,
      isPartOf: `crawl ${provenance.job}`,
      'json-metadata': JSON.stringify(provenance),
    });
    await writeRecord(out, info);
    records++;
    // a redelivered task may have kept a URL twice: its first capture stands
    const seen = new Set<string>();
    const pageSize = 500;
    for (let offset = 0; ; offset += pageSize) {
      const { items } = await source.store.captures(source.job.id, offset, pageSize);
      for (const capture of items) {
        // keyed by the URL asked for: a URL reached both directly and through a redirect is two captures
        const key = `${capture.kind} ${capture.requested}`;
        if (seen.has(key)) continue;
        seen.add(key);
        records += await writeCapture(out, capture, source.job.id, source.blobs);
        // a page reached through redirects is listed at the URL asked for (the chain's start), as replay opens it there and follows the 3xx records
        const start = capture.redirects?.[0];
        if (capture.kind === 'page') {
          pages.push({ id: createHash('sha256').update(key).digest('hex').slice(0, 24), url: start?.url ?? capture.url, ts: start?.date ?? capture.date,
            ...(capture.title !== undefined ? { title: capture.title } : {}), status: capture.status });
        }
      }
      if (items.length < pageSize) break;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return { records, pages };
}


/**
 * A capture as WARC records, the way crawlers that keep redirects write them (Heritrix, wget, Browsertrix) and
 * replay tools (pywb, replayweb.page) follow them: every 3xx answer on the way is its own response record under
 * its own URL, with its Location header, and a request record concurrent to it (WARC 1.1 5.7); then the final
 * answer's response and request. Each record reached through a redirect gets a metadata record concurrent to
 * its response naming the URL that sent it there (`via:`, as Heritrix writes it), so the chain can be walked
 * backwards from the WARC alone; the CDXJ index lists every hop under its URL with its 3xx status.
 */
async function writeCapture(out: WriteStream, capture: Capture, job: string, blobs: ImageStore): Promise<number> {
  let body: Buffer = Buffer.alloc(0);
  if (capture.body !== undefined) {
    const opened = await blobs.open(job, capture.body.location);
    if (opened === null) throw new Error(`the body of ${capture.url} (${capture.body.location}) is not in the blob store any more`);
    const chunks: Buffer[] = [];
    for await (const chunk of opened.stream) chunks.push(chunk as Buffer);
    body = Buffer.concat(chunks);
    const sha256 = createHash('sha256').update(body).digest('hex');
    if (sha256 !== capture.body.sha256) throw new Error(`the stored body of ${capture.url} does not match its SHA-256`);
  }
  let records = 0;
  let via: string | undefined;
  for (const hop of capture.redirects ?? []) {
    const hopHeaders: Record<string, string> = hop.bodyTruncated === true ? { 'WARC-Truncated': 'length' } : {};
    records += await writeExchange(out, hop, Buffer.from(hop.body ?? '', 'base64'), hopHeaders, via);
    via = hop.url;
  }
  const warcHeaders: Record<string, string> = {};
  if (capture.body?.truncated === true) warcHeaders['WARC-Truncated'] = 'length';
  // a body the store had no room for: the record says so (WARC 1.1's "unspecified" reason) rather than claim an empty answer
  if (capture.bodyWithheld !== undefined) warcHeaders['WARC-Truncated'] = 'unspecified';
  return records + await writeExchange(out, capture, body, warcHeaders, via);
}

/** One exchange as its response record and the request record concurrent to it, and `via` when a redirect led here. */
async function writeExchange(out: WriteStream, exchange: WireExchange, body: Buffer, warcHeaders: Record<string, string>, via: string | undefined): Promise<number> {
  const responseHeaders = exchange.responseHeaders.filter(([name]) => !FRAMING_HEADERS.has(name.toLowerCase()));
  const response = WARCRecord.create({
    url: exchange.url, date: exchange.date, type: 'response', warcVersion: 'WARC/1.1', warcHeaders,
    statusline: `HTTP/1.1 ${exchange.status} ${exchange.statusText}`.trimEnd(), httpHeaders: responseHeaders,
  }, [body]);
  const responseId = response.warcHeaders.headers.get('WARC-Record-ID')!;
  await writeRecord(out, response);
  const target = new URL(exchange.url);
  const request = WARCRecord.create({
    url: exchange.url, date: exchange.date, type: 'request', warcVersion: 'WARC/1.1', warcHeaders: { 'WARC-Concurrent-To': responseId },
    statusline: `GET ${target.pathname}${target.search} HTTP/1.1`, httpHeaders: exchange.requestHeaders,
  }, []);
  await writeRecord(out, request);
  if (via === undefined) return 2;
  const metadata = WARCRecord.create({
    url: exchange.url, date: exchange.date, type: 'metadata', warcVersion: 'WARC/1.1',
    warcHeaders: { 'WARC-Concurrent-To': responseId, 'Content-Type': 'application/warc-fields' },
  }, [Buffer.from(`via: ${via}\r\n`)]);
  await writeRecord(out, metadata);
  return 3;
}

async function writeRecord(out: WriteStream, record: WARCRecord): Promise<void> {
  for await (const chunk of new WARCSerializer(record, { gzip: true })) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

/** CDXJ lines for the WARC's response records, sorted by SURT key and time as the format asks. */
async function writeIndex(warcFile: string, indexFile: string): Promise<void> {
  const indexer = new CDXIndexer({ format: 'cdxj' });
  const lines: string[] = [];
  for await (const entry of indexer.iterIndex([{ filename: path.basename(WARC_NAME), reader: createReadStream(warcFile) }])) {
    lines.push(indexer.serialize(entry as Record<string, unknown>));
  }
  lines.sort();
  await writeFile(indexFile, lines.join(''));
}

function pagesJsonl(pages: PageEntry[]): string {
  const header = { format: 'json-pages-1.0', id: 'pages', title: 'All Pages' };
  // WACZ 1.1.1 "pages.jsonl": url and ts required; id and title (the page's, when it has one) as replay tools list pages
  return [header, ...pages.map((p) => ({ id: p.id, url: p.url, ts: p.ts, ...(p.title !== undefined ? { title: p.title } : {}), status: p.status }))].map((line) => `${JSON.stringify(line)}\n`).join('');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
