import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import yauzl from 'yauzl';
import { describe, expect, it } from 'vitest';
import { writeWacz } from '../../../crawler/src/archive/wacz.js';
import type { ImageStore } from '../../../crawler/src/image-store.js';
import type { Capture, JobStore, RobotsDecision } from '../../../crawler/src/jobs.js';
import { runningJob } from './job-fixture.js';

/**
 * The WACZ writer checked against the specifications themselves, not through a reader that forgives: WACZ 1.1.1
 * (specs.webrecorder.net/wacz/1.1.1) for the package, WARC 1.1 (ISO 28500:2017, iipc warc-specifications) for
 * the records, read byte by byte here.
 */
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

const HTML = Buffer.from('<html><head><title>Home</title></head><body><img src="/a.png"></body></html>');
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a3b1e5ad0000000049454e44ae426082', 'hex');

const captures: Capture[] = [
  {
    kind: 'page', requested: 'http://s.test/', url: 'http://s.test/home', date: '2026-12-07T10:00:01.250Z',
    requestHeaders: [['host', 's.test'], ['user-agent', 'depl-crawler/0.1']], status: 200, statusText: 'OK',
    responseHeaders: [['content-type', 'text/html; charset=utf-8'], ['content-length', String(HTML.length)], ['transfer-encoding', 'chunked']],
    body: { sha256: sha256(HTML), bytes: HTML.length, location: 'html', truncated: false }, title: 'Home',
    redirects: [{ url: 'http://s.test/', date: '2026-12-07T10:00:01.000Z', requestHeaders: [['host', 's.test']], status: 301, statusText: 'Moved Permanently', responseHeaders: [['location', '/home']], body: Buffer.from('moved').toString('base64') }],
  },
  {
    kind: 'image', requested: 'http://s.test/a.png', url: 'http://s.test/a.png', date: '2026-12-07T10:00:02.000Z',
    requestHeaders: [['host', 's.test']], status: 200, statusText: 'OK', responseHeaders: [['content-type', 'image/png']],
    body: { sha256: sha256(PNG), bytes: PNG.length, location: 'png', truncated: false },
  },
];
const robots: RobotsDecision[] = [{ origin: 'http://s.test', robotsUrl: 'http://s.test/robots.txt', robotsTxt: 'absent', crawlDelaySeconds: null, checkedAt: '2026-12-07T10:00:00.000Z' }];

const store = {
  robotsDecisions: () => Promise.resolve(robots),
  captures: (_id: string, offset: number, limit: number) => Promise.resolve({ total: captures.length, items: captures.slice(offset, offset + limit) }),
} as unknown as JobStore;
const bodies: Record<string, Buffer> = { html: HTML, png: PNG };
const blobs = { open: (_job: string, location: string) => Promise.resolve({ stream: Readable.from([bodies[location]!]), bytes: bodies[location]!.length }) } as unknown as ImageStore;

function unzip(bytes: Buffer): Promise<Map<string, { data: Buffer; stored: boolean }>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (error, zip) => {
      if (error !== null) return reject(error);
      const entries = new Map<string, { data: Buffer; stored: boolean }>();
      zip.on('error', reject);
      zip.on('end', () => resolve(entries));
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (openError, stream) => {
          if (openError !== null) return reject(openError);
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            entries.set(entry.fileName, { data: Buffer.concat(chunks), stored: entry.compressionMethod === 0 });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

interface RawRecord {
  version: string;
  headers: Map<string, string>;
  block: Buffer;
}

/** WARC 1.1 section 4: version line, named fields, CRLF, a block of exactly Content-Length octets, CRLF CRLF. */
function readRecords(data: Buffer): RawRecord[] {
  const records: RawRecord[] = [];
  let at = 0;
  while (at < data.length) {
    const headerEnd = data.indexOf('\r\n\r\n', at);
    expect(headerEnd).toBeGreaterThan(at);
    const [version, ...lines] = data.subarray(at, headerEnd).toString('utf8').split('\r\n');
    const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()] as [string, string]));
    const length = Number(headers.get('content-length'));
    expect(Number.isInteger(length), `Content-Length ${headers.get('content-length')}`).toBe(true);
    const block = data.subarray(headerEnd + 4, headerEnd + 4 + length);
    expect(data.subarray(headerEnd + 4 + length, headerEnd + 8 + length).toString('latin1')).toBe('\r\n\r\n');
    records.push({ version: version!, headers, block });
    at = headerEnd + 8 + length;
  }
  return records;
}

/** The HTTP body of an application/http block (after its header's empty line). */
const httpBody = (block: Buffer) => block.subarray(block.indexOf('\r\n\r\n') + 4);

describe('WACZ export per WACZ 1.1.1 and WARC 1.1', async () => {
  const job = { ...runningJob({ request: { archive: true } }), status: 'done' as const, finishedAt: '2026-12-07T10:00:03.000Z', provenance: { crawlerVersion: '1', imageDigest: 'sha256:ab', userAgent: 'depl-crawler/0.1' } };
  const result = await writeWacz({ job, store, blobs, software: 'depl-crawler 0.1' });
  const wacz = await readFile(result.file);
  await result.dispose();
  const entries = await unzip(wacz);
  const warc = entries.get('archive/data.warc.gz')!.data;
  const records = readRecords(gunzipSync(warc));
  const recordIds = new Set(records.map((r) => r.headers.get('warc-record-id')));

  it('lays out the package (WACZ 1.1.1 "Directory Layout", "Zip Compression")', () => {
    expect([...entries.keys()].sort()).toEqual(['archive/data.warc.gz', 'datapackage-digest.json', 'datapackage.json', 'indexes/index.cdx', 'pages/pages.jsonl']);
    // already compressed files are stored, not compressed again
    expect(entries.get('archive/data.warc.gz')!.stored).toBe(true);
  });

  it('writes datapackage.json with its required and contextual properties, and datapackage-digest.json over it ("datapackage.json")', () => {
    const text = entries.get('datapackage.json')!.data;
    const datapackage = JSON.parse(text.toString('utf8')) as Record<string, unknown> & { resources: Array<{ name: string; path: string; hash: string; bytes: number }> };
    expect(datapackage).toMatchObject({ profile: 'data-package', wacz_version: '1.1.1', software: 'depl-crawler 0.1', mainPageUrl: 'http://s.test/', mainPageDate: '2026-12-07T10:00:01.000Z' });
    for (const key of ['created', 'modified']) expect(Date.parse(datapackage[key] as string), key).not.toBeNaN();
    expect(typeof datapackage.title).toBe('string');
    // every file but the two manifests is a resource, with its sha256 and size
    expect(datapackage.resources.map((r) => r.path).sort()).toEqual(['archive/data.warc.gz', 'indexes/index.cdx', 'pages/pages.jsonl']);
    for (const resource of datapackage.resources) {
      const data = entries.get(resource.path)!.data;
      expect(resource).toEqual({ name: resource.path.split('/').pop(), path: resource.path, hash: `sha256:${sha256(data)}`, bytes: data.length });
    }
    expect(JSON.parse(entries.get('datapackage-digest.json')!.data.toString('utf8'))).toEqual({ path: 'datapackage.json', hash: `sha256:${sha256(text)}` });
  });

  it('lists pages in pages/pages.jsonl after its header line, each with url, an RFC 3339 ts, an id and its title ("pages.jsonl")', () => {
    const lines = entries.get('pages/pages.jsonl')!.data.toString('utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toEqual({ format: 'json-pages-1.0', id: 'pages', title: 'All Pages' });
    expect(lines.slice(1)).toHaveLength(1);
    expect(lines[1]).toMatchObject({ url: 'http://s.test/', ts: '2026-12-07T10:00:01.000Z', title: 'Home' });
    expect(typeof lines[1]!.id).toBe('string');
  });

  it('indexes every response in sorted CDXJ whose offsets open one gzip member holding that one record ("indexes", pywb CDXJ)', () => {
    const lines = entries.get('indexes/index.cdx')!.data.toString('utf8').split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(3);
    expect([...lines].sort()).toEqual(lines);
    for (const line of lines) {
      const match = /^(\S+) (\d{14}) (\{.*\})$/.exec(line);
      expect(match, line).not.toBeNull();
      expect(match![1]).toMatch(/^test,s\)\//);
      const entry = JSON.parse(match![3]!) as { url: string; offset: string; length: string; filename: string; digest: string };
      expect(entry.filename).toBe('data.warc.gz');
      // WARC 1.1 annex D: each record its own gzip member, so a reader can start at any record's offset
      const member = gunzipSync(warc.subarray(Number(entry.offset), Number(entry.offset) + Number(entry.length)));
      const [record] = readRecords(member);
      expect(readRecords(member)).toHaveLength(1);
      expect(record!.headers.get('warc-target-uri')).toBe(entry.url);
      expect(record!.headers.get('warc-type')).toBe('response');
    }
  });

  it('starts with a warcinfo record of warc-fields (WARC 1.1 6.2, 6.3)', () => {
    expect(records[0]!.headers.get('warc-type')).toBe('warcinfo');
    expect(records[0]!.headers.get('content-type')).toBe('application/warc-fields');
    expect(records[0]!.headers.get('warc-filename')).toBe('data.warc.gz');
    for (const line of records[0]!.block.toString('utf8').split('\r\n').filter((l) => l !== '')) expect(line).toMatch(/^[A-Za-z][A-Za-z0-9-]*: \S/);
  });

  it('gives every record the mandatory fields in their defined forms (WARC 1.1 5.1-5.5, 5.8, 5.9)', () => {
    expect(records.length).toBe(result.records);
    for (const record of records) {
      expect(record.version).toBe('WARC/1.1');
      expect(record.headers.get('warc-record-id')).toMatch(/^<urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}>$/);
      expect(record.headers.get('warc-date')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/);
      expect(Number(record.headers.get('content-length'))).toBe(record.block.length);
      // labelled digests: algorithm ":" value, and the value right
      expect(record.headers.get('warc-block-digest') ?? `sha256:${sha256(record.block)}`).toBe(`sha256:${sha256(record.block)}`);
    }
    expect(recordIds.size).toBe(records.length);
  });

  it('writes each exchange as a response and a request record concurrent to it, payload digests over the HTTP body (WARC 1.1 5.7, 5.9, 6.4, 6.5)', () => {
    const responses = records.filter((r) => r.headers.get('warc-type') === 'response');
    const requests = records.filter((r) => r.headers.get('warc-type') === 'request');
    expect(responses.map((r) => r.headers.get('warc-target-uri'))).toEqual(['http://s.test/', 'http://s.test/home', 'http://s.test/a.png']);
    for (const response of responses) {
      expect(response.headers.get('content-type')).toBe('application/http; msgtype=response');
      expect(response.headers.get('warc-payload-digest')).toBe(`sha256:${sha256(httpBody(response.block))}`);
      expect(response.block.toString('latin1')).toMatch(/^HTTP\/1\.1 \d{3} /);
      // the body is stored as it came, without the transfer framing undici already took off
      expect(response.block.toString('latin1')).not.toMatch(/transfer-encoding/i);
      const paired = requests.filter((q) => q.headers.get('warc-concurrent-to') === response.headers.get('warc-record-id'));
      expect(paired.map((q) => q.headers.get('warc-target-uri'))).toEqual([response.headers.get('warc-target-uri')]);
      expect(paired[0]!.headers.get('content-type')).toBe('application/http; msgtype=request');
      expect(paired[0]!.block.toString('latin1')).toMatch(/^GET \/\S* HTTP\/1\.1\r\n/);
    }
    expect(httpBody(responses[1]!.block).equals(HTML)).toBe(true);
    expect(httpBody(responses[2]!.block).equals(PNG)).toBe(true);
    for (const record of records) {
      const concurrent = record.headers.get('warc-concurrent-to');
      if (concurrent !== undefined) expect(recordIds.has(concurrent), concurrent).toBe(true);
    }
  });
});
