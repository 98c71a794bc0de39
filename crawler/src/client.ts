import { request, type Dispatcher } from 'undici';
import type { JobRequestInput } from './core/job-request.js';
import { contentRangeStart } from './core/byte-range.js';
import type { Readable } from 'node:stream';
import type { ImageFile, ImageRecord, JobDocument, PageRecord } from './jobs.js';

export type { ImageFile, ImageListing, ImageRecord, JobDocument, PageRecord } from './jobs.js';
export { IMAGE_EXTENSIONS, IMAGE_TYPES, type ImageType } from './core/image-types.js';
export type { JobRequestInput } from './core/job-request.js';

/** A typed client for the crawler API (used by `depl crawl`). */
export class CrawlerApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: string[] = []) {
    super(message);
  }
}

export interface CrawlerClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8000/ or http://<edge address>/ */
  baseUrl: string;
  /** Sent as Host: reaching the live version through the edge by address needs the domain here. */
  hostHeader?: string;
  token?: string;
  timeoutMs?: number;
  /** TLS settings for an https base URL reached by address (server name, extra CA). */
  dispatcher?: Dispatcher;
}

export class CrawlerClient {
  constructor(private readonly options: CrawlerClientOptions) {}

  submit(job: JobRequestInput): Promise<JobDocument> {
    return this.call<JobDocument>('POST', '/v1/jobs', job);
  }

  get(id: string): Promise<JobDocument> {
    return this.call<JobDocument>('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<JobDocument> {
    return this.call<JobDocument>('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }

  /** Deletes a job that is not running, with its data (204); a running one is refused (409 job_running). */
  async delete(id: string): Promise<{ contentsRemoved: number; tasksRemoved: number }> {
    const headers = await this.call<Record<string, string | string[] | undefined>>('DELETE', `/v1/jobs/${encodeURIComponent(id)}`, undefined, { noContent: true });
    return { contentsRemoved: Number(headers['x-contents-removed'] ?? 0), tasksRemoved: Number(headers['x-tasks-removed'] ?? 0) };
  }

  /** Every image of a job, following the pagination. */
  async allImages(id: string): Promise<ImageRecord[]> {
    return this.all<ImageRecord>(id, 'images');
  }

  /** A job's images one API page at a time, so a large result is never held in memory whole. */
  async *imagePages(id: string, pageSize = 1000): AsyncGenerator<ImageRecord[]> {
    for (let offset = 0; ; offset += pageSize) {
      const page = await this.call<{ total: number; items: ImageRecord[] }>('GET', `/v1/jobs/${encodeURIComponent(id)}/images?offset=${offset}&limit=${pageSize}`);
      if (page.items.length > 0) yield page.items;
      if (page.items.length < pageSize || offset + page.items.length >= page.total) return;
    }
  }

  /** The distinct contents a fetchImages job stored, with their URLs and pages, filtered by type and size. */
  async allFiles(id: string, filter: { type?: string[]; minBytes?: number; maxBytes?: number; minWidth?: number; minHeight?: number } = {}): Promise<Array<ImageFile & { pages: string[] }>> {
    const query = new URLSearchParams();
    if (filter.type !== undefined && filter.type.length > 0) query.set('type', filter.type.join(','));
    for (const bound of ['minBytes', 'maxBytes', 'minWidth', 'minHeight'] as const) {
      if (filter[bound] !== undefined) query.set(bound, String(filter[bound]));
    }
    const items: Array<ImageFile & { pages: string[] }> = [];
    for (let offset = 0; ; offset += 1000) {
      query.set('offset', String(offset));
      query.set('limit', '1000');
      const page = await this.call<{ total: number; items: Array<ImageFile & { pages: string[] }> }>('GET', `/v1/jobs/${encodeURIComponent(id)}/files?${query}`);
      items.push(...page.items);
      if (page.items.length === 0 || items.length >= page.total) return items;
    }
  }

  /**
   * The bytes of one stored content, as a stream (the caller reads it to the end or destroys it). With `from`,
   * only the bytes from there on are asked for (Range, with If-Range on the content's own ETag); `start` says
   * where the answer begins: `from` when the API sent that part, 0 when it sent the whole content instead.
   */
  async fileStream(id: string, sha256: string, from = 0): Promise<{ body: Readable; bytes: number; start: number }> {
    const ranged = from > 0 ? { range: `bytes=${from}-`, 'if-range': `"${sha256}"` } : undefined;
    const { body, bytes, headers, status } = await this.streamOf(`/v1/jobs/${encodeURIComponent(id)}/files/${sha256}`, undefined, ranged);
    if (status !== 206) return { body, bytes, start: 0 };
    const start = contentRangeStart(typeof headers['content-range'] === 'string' ? headers['content-range'] : undefined);
    if (start !== from) {
      body.destroy();
      throw new CrawlerApiError(206, 'bad_range', `asked for the bytes of ${sha256} from ${from}, got ${String(headers['content-range'])}`);
    }
    return { body, bytes, start };
  }

  /** An archive job's WACZ (WARC records, pages, CDXJ index, datapackage with hashes and provenance), as a stream. */
  async waczStream(id: string): Promise<{ body: Readable; bytes: number; records: number; pages: number }> {
    const { body, bytes, headers } = await this.streamOf(`/v1/jobs/${encodeURIComponent(id)}/archive.wacz`, 120_000);
    return { body, bytes, records: Number(headers['x-wacz-records'] ?? 0), pages: Number(headers['x-wacz-pages'] ?? 0) };
  }

  private async streamOf(path: string, headersTimeoutMs = this.options.timeoutMs ?? 15_000, range?: Record<string, string>): Promise<{ body: Readable; bytes: number; status: number; headers: Record<string, string | string[] | undefined> }> {
    const url = this.urlOf(path);
    const response = await request(url, {
      method: 'GET', headers: { ...this.headers('*/*'), ...range }, headersTimeout: headersTimeoutMs, bodyTimeout: this.options.timeoutMs ?? 15_000,
      ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
    });
    if (response.statusCode !== 200 && !(range !== undefined && response.statusCode === 206)) {
      const text = await response.body.text();
      let error: { code?: string; message?: string } = {};
      try {
        error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
      } catch {
        // not JSON: the status says enough
      }
      throw new CrawlerApiError(response.statusCode, error.code ?? 'error', error.message ?? `HTTP ${response.statusCode}`);
    }
    return { body: response.body, bytes: Number(response.headers['content-length'] ?? 0), status: response.statusCode, headers: response.headers };
  }

  async allPages(id: string): Promise<PageRecord[]> {
    return this.all<PageRecord>(id, 'pages');
  }

  private async all<T>(id: string, kind: 'images' | 'pages'): Promise<T[]> {
    const items: T[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await this.call<{ total: number; items: T[] }>('GET', `/v1/jobs/${encodeURIComponent(id)}/${kind}?offset=${offset}&limit=1000`);
      items.push(...page.items);
      if (page.items.length === 0 || items.length >= page.total) return items;
    }
  }

  private headers(accept: string): Record<string, string> {
    const headers: Record<string, string> = { accept };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (this.options.hostHeader) headers.host = this.options.hostHeader;
    return headers;
  }

  private urlOf(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.options.baseUrl.endsWith('/') ? this.options.baseUrl : `${this.options.baseUrl}/`);
  }

  /** One JSON request; with `noContent`, a 204 answer's headers are returned instead of a body. */
  private async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, options: { noContent?: boolean } = {}): Promise<T> {
    const headers = this.headers('application/json');
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = this.urlOf(path);
    const timeout = this.options.timeoutMs ?? 15_000;
    const response = await request(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: timeout, bodyTimeout: timeout,
      ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
    });
    const text = await response.body.text();
    if (options.noContent === true && response.statusCode === 204) return response.headers as T;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CrawlerApiError(response.statusCode, 'not_json', `${method} ${url.pathname} answered ${response.statusCode} with a non-JSON body: ${text.slice(0, 120)}`);
    }
    if (response.statusCode >= 400) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: string[] } }).error ?? {};
      throw new CrawlerApiError(response.statusCode, error.code ?? 'error', error.message ?? `HTTP ${response.statusCode}`, error.details ?? []);
    }
    return parsed as T;
  }
}

/**
 * CSV of images per RFC 4180: CRLF line ends, a header row, fields with a comma, quote, CR or LF quoted and
 * quotes doubled. Cells starting with = + - @ (or a tab or CR) are prefixed with a single quote, so a spreadsheet
 * opening the file shows them as text instead of evaluating them as formulas (OWASP "CSV injection").
 */
export const IMAGE_CSV_COLUMNS = ['image_url', 'page_url', 'alt', 'kind'] as const;

export function csvCell(value: string): string {
  const guarded = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(guarded) ? `"${guarded.replace(/"/g, '""')}"` : guarded;
}

export function imagesCsvHeader(options: { bom?: boolean } = {}): string {
  return `${options.bom ? '\uFEFF' : ''}${IMAGE_CSV_COLUMNS.join(',')}\r\n`;
}

export function imagesCsvRows(images: ImageRecord[]): string {
  let out = '';
  for (const i of images) out += `${[i.url, i.page, i.alt, i.kind ?? ''].map(csvCell).join(',')}\r\n`;
  return out;
}

/** The whole CSV document for a list of images (tests, small results). */
export function imagesCsv(images: ImageRecord[], options: { bom?: boolean } = {}): string {
  return imagesCsvHeader(options) + imagesCsvRows(images);
}

/** JSON Lines: one image object per line. */
export function imagesJsonl(images: ImageRecord[]): string {
  let out = '';
  for (const i of images) out += `${JSON.stringify(i)}\n`;
  return out;
}
