import { lookup } from 'node:dns/promises';
import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import { TextDecoder } from 'node:util';
import htmlEncodingSniffer from 'html-encoding-sniffer';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import type { AddressPolicy } from '../core/address-policy.js';
import { BLOCK_PAGE_SNIFF_BYTES, classifyBlockPage, type BlockPageVerdict } from '../core/block-page.js';
import { createExtractor, type PageExtract } from '../core/extract.js';
import { ByteBudget } from './byte-budget.js';
import { mergeOptOuts, optOutsFromHeader, optOutsFromMeta, type OptOut } from '../core/robots-directives.js';
import { parseHttpUrl } from '../core/url.js';
import type { WireExchange } from '../core/wire-exchange.js';

/**
 * SSRF-safe HTTP for the crawler. undici's `connect.lookup` hook alone is not enough (IP literals skip DNS,
 * redirects to literals pass), so a custom connector checks every resolved address, and every literal, right
 * before it connects, and connects to the checked address itself (no second DNS answer can differ). Redirects
 * are followed by hand, so each hop goes through the same connector and scheme check.
 */
export class BlockedAddressError extends Error {
  readonly code = 'ERR_BLOCKED_ADDRESS';
}

/** More consecutive redirects than the fetch follows. */
export class TooManyRedirectsError extends Error {
  readonly code = 'ERR_TOO_MANY_REDIRECTS';
}

/** A redirect hop that the robots.txt of its origin disallows: the fetch ends there (RFC 9309). */
export class RobotsDisallowedError extends Error {
  readonly code = 'ERR_ROBOTS_DISALLOWED';
  constructor(readonly url: string) {
    super(`redirected to ${url.slice(0, 300)}, which its robots.txt disallows`);
  }
}

function hasCode(error: unknown, code: string): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if ((current as { code?: string }).code === code) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export function isBlocked(error: unknown): boolean {
  return hasCode(error, 'ERR_BLOCKED_ADDRESS');
}

export function isRobotsDisallowed(error: unknown): error is RobotsDisallowedError {
  return error instanceof RobotsDisallowedError;
}

/** Called before every redirect hop is requested; throws (e.g. RobotsDisallowedError) to end the fetch. */
export type HopCheck = (url: string) => Promise<void>;

export async function resolveAllowed(hostname: string, policy: AddressPolicy): Promise<string> {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(host) !== 0) {
    const why = policy.checkAddress(host);
    if (why !== null) throw new BlockedAddressError(`refusing ${host}: ${why}`);
    return host;
  }
  const answers = await lookup(host, { all: true, verbatim: true });
  if (answers.length === 0) throw new Error(`${host} has no addresses`);
  if (!policy.hostAllowed(host)) {
    // One bad answer among good ones is still refused: we cannot tell which one the attacker wants us on.
    for (const answer of answers) {
      const why = policy.checkAddress(answer.address);
      if (why !== null) throw new BlockedAddressError(`refusing ${host} (${answer.address}): ${why}`);
    }
  }
  return answers[0]!.address;
}

export function createSafeAgent(policy: AddressPolicy, options: { connectTimeoutMs: number; connections?: number }): Agent {
  const connectDirect = buildConnector({ timeout: options.connectTimeoutMs });
  return new Agent({
    connections: options.connections ?? 64,
    keepAliveTimeout: 10_000,
    connect(connectOptions, callback) {
      resolveAllowed(connectOptions.hostname, policy).then(
        (address) => connectDirect({
          ...connectOptions,
          hostname: address,
          // TLS still verifies (and sends SNI for) the name, not the address we pinned.
          servername: isIP(connectOptions.hostname.replace(/^\[|\]$/g, '')) === 0 ? connectOptions.hostname : undefined,
        }, callback),
        (error: Error) => callback(error, null),
      );
    },
  });
}

export interface FetchLimits {
  timeoutMs: number;
  maxBodyBytes: number;
  maxRedirects: number;
  userAgent: string;
  /** The product token X-Robots-Tag and robots metas may name this crawler by (config: robotsNameOf). */
  robotsName: string;
  /** Image body bytes held at once by this fetcher's callers (byte-budget.ts); unset: no bound but each image's cap. */
  imageBytesInFlight?: number;
}

/**
 * The last request and response of a fetch as they went over the wire (headers as undici gives them, names in
 * lower case), for the job's archive (WARC request and response records).
 * `body` is there only when the caller asked to keep it (an archive job).
 */
export interface Exchange extends WireExchange {
  body?: Buffer;
  /** The body was cut at the fetch's byte cap (the archive says so: WARC-Truncated). */
  bodyTruncated: boolean;
  headers: Record<string, string | string[] | undefined>;
  /**
   * The 3xx answers on the way to this one, in the order they came (empty unless the caller kept bodies):
   * an archive keeps each as its own response record, as a replay tool needs to follow the chain.
   */
  redirects: RedirectHop[];
}

/** One redirect answer as it went over the wire: its Location is among its headers. */
export interface RedirectHop extends WireExchange {
  /** Its body (the "Moved" page servers send), up to REDIRECT_BODY_BYTES. */
  body: Buffer;
  bodyTruncated: boolean;
}

/** A redirect's body is a short note for people; more than this of it is not kept. */
export const REDIRECT_BODY_BYTES = 8 * 1024;

/**
 * A fetched page. `blockPage` says whether an HTML page or an error answer is a rate-limit or block page
 * (core/block-page.ts), decided here from the start of its text while the fetch has it, so that text is not
 * kept (nor decoded a second time) for the rest of the task.
 */
export type PageFetch =
  | { kind: 'html'; status: number; finalUrl: string; extract: PageExtract; truncated: boolean; encoding: string; optOuts: OptOut[]; blockPage: BlockPageVerdict; exchange: Exchange }
  | { kind: 'other'; status: number; finalUrl: string; contentType: string; optOuts: OptOut[]; exchange: Exchange }
  | { kind: 'http-error'; status: number; finalUrl: string; retryAfter?: string; blockPage: BlockPageVerdict; exchange: Exchange };

export type BytesFetch =
  | { kind: 'bytes'; status: number; finalUrl: string; contentType: string; body: Buffer; optOuts: OptOut[]; exchange: Exchange;
    /** Gives the body's bytes back to the in-flight budget: the caller calls it once it is done with the body. */
    release(): void }
  | { kind: 'too-large'; status: number; finalUrl: string; contentType: string; exchange: Exchange }
  | { kind: 'http-error'; status: number; finalUrl: string; retryAfter?: string; exchange: Exchange };

/** What a fetch keeps of the answer beyond what it parses. */
export interface KeepOptions {
  /** Keep the whole body (up to the byte cap) in `exchange.body`: an archive job's pages and images. */
  body?: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class SafeFetcher {
  /** The name a site's X-Robots-Tag or robots meta may address this crawler by. */
  private readonly token: string;
  private readonly imageBudget: ByteBudget | undefined;

  constructor(private readonly agent: Agent, private readonly limits: FetchLimits) {
    this.token = limits.robotsName.toLowerCase();
    this.imageBudget = limits.imageBytesInFlight === undefined ? undefined : new ByteBudget(limits.imageBytesInFlight);
  }

  /** The opt-outs the response's X-Robots-Tag headers state for this crawler. */
  private headerOptOuts(response: Dispatcher.ResponseData): OptOut[] {
    const values = response.headers['x-robots-tag'];
    return values === undefined ? [] : optOutsFromHeader(Array.isArray(values) ? values : [values], this.token);
  }

  /** GET a page, following redirects by hand, parsing HTML as it streams in. Throws on network errors. */
  async fetchPage(url: string, signal?: AbortSignal, checkHop?: HopCheck, keep: KeepOptions = {}): Promise<PageFetch> {
    const { response, finalUrl, release, sent } = await this.follow(url, 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5', signal, checkHop, keep.body === true);
    try {
      return await this.readPage(response, finalUrl, sent, keep);
    } finally {
      release();
    }
  }

  private async readPage(response: Dispatcher.ResponseData, finalUrl: string, sent: Sent, keep: KeepOptions): Promise<PageFetch> {
    const status = response.statusCode;
    const contentType = String(response.headers['content-type'] ?? '');
    if (status < 200 || status >= 300) {
      // an error answer's body may be a block page (403, 429): its start is read, for the classifier and the archive
      const { body, truncated } = await readCapped(response, keep.body === true ? this.limits.maxBodyBytes : BLOCK_PAGE_SNIFF_BYTES);
      const retryAfter = response.headers['retry-after'];
      return { kind: 'http-error', status, finalUrl, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
        blockPage: classifyBlockPage({ status, headers: response.headers, bodyStart: sniffedText(body, contentType) }),
        exchange: exchangeOf(response, finalUrl, sent, body, truncated, keep) };
    }
    if (!/^\s*(text\/html|application\/xhtml\+xml)\b/i.test(contentType)) {
      // Only HTML is parsed; anything else is closed without reading it, unless the job archives what it fetched.
      if (keep.body !== true) {
        discard(response.body);
        return { kind: 'other', status, finalUrl, contentType, optOuts: this.headerOptOuts(response), exchange: exchangeOf(response, finalUrl, sent, Buffer.alloc(0), false, keep) };
      }
      const { body, truncated } = await readCapped(response, this.limits.maxBodyBytes);
      return { kind: 'other', status, finalUrl, contentType, optOuts: this.headerOptOuts(response), exchange: exchangeOf(response, finalUrl, sent, body, truncated, keep) };
    }
    const extractor = createExtractor(finalUrl, { metaNames: [this.token] });
    // The encoding is sniffed (WHATWG) from the first 1024 bytes, then the body is decoded as it streams in.
    let decoder: TextDecoder | undefined;
    let head: Buffer[] = [];
    let headBytes = 0;
    let bytes = 0;
    let truncated = false;
    // the whole page when it is archived; otherwise no chunk outlives its parsing
    const kept: Buffer[] = [];
    const keepAll = keep.body === true;
    // the start of the page's text for the block-page classifier: the strings the extractor is given anyway
    // (joined lazily by V8), so the page is neither copied nor decoded a second time for it
    let textStart = '';
    const parse = (text: string) => {
      if (textStart.length < BLOCK_PAGE_SNIFF_BYTES) textStart += text;
      extractor.write(text);
    };
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > this.limits.maxBodyBytes) {
        truncated = true;
        discard(response.body);
        break;
      }
      if (keepAll) kept.push(chunk);
      if (decoder !== undefined) {
        parse(decoder.decode(chunk, { stream: true }));
        continue;
      }
      head.push(chunk);
      headBytes += chunk.length;
      if (headBytes >= SNIFF_BYTES) {
        const start = Buffer.concat(head);
        decoder = new TextDecoder(sniffHtmlEncoding(start, contentType));
        parse(decoder.decode(start, { stream: true }));
        head = [];
      }
    }
    if (decoder === undefined) {
      const start = Buffer.concat(head);
      decoder = new TextDecoder(sniffHtmlEncoding(start, contentType));
      parse(decoder.decode(start, { stream: true }));
    }
    parse(decoder.decode());
    const extract = extractor.end();
    const optOuts = mergeOptOuts(this.headerOptOuts(response), optOutsFromMeta(extract.robotsMeta, this.token));
    // the page's first BLOCK_PAGE_SNIFF_BYTES characters (its size test counts characters, as the classifier does)
    const bodyStart = textStart.length > BLOCK_PAGE_SNIFF_BYTES ? textStart.slice(0, BLOCK_PAGE_SNIFF_BYTES) : textStart;
    const blockPage = classifyBlockPage({ status, headers: response.headers, bodyStart });
    const body = keepAll ? Buffer.concat(kept) : Buffer.alloc(0);
    return { kind: 'html', status, finalUrl, extract, truncated, encoding: decoder.encoding, optOuts, blockPage, exchange: exchangeOf(response, finalUrl, sent, body, truncated, keep) };
  }

  /**
   * GET an image's bytes with the same safety (every hop checked) and a size cap: an answer larger than
   * `maxBytes` (said by Content-Length or found while reading) is not read further.
   */
  async fetchBytes(url: string, maxBytes: number, signal?: AbortSignal, checkHop?: HopCheck, keep: KeepOptions = {}): Promise<BytesFetch> {
    const { response, finalUrl, release, sent } = await this.follow(url, 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5', signal, checkHop, keep.body === true);
    const empty = (truncated: boolean) => exchangeOf(response, finalUrl, sent, Buffer.alloc(0), truncated, keep);
    try {
      const status = response.statusCode;
      const contentType = String(response.headers['content-type'] ?? '');
      if (status < 200 || status >= 300) {
        const { body, truncated } = await readCapped(response, keep.body === true ? Math.min(maxBytes, this.limits.maxBodyBytes) : 0);
        const retryAfter = response.headers['retry-after'];
        return { kind: 'http-error', status, finalUrl, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
          exchange: exchangeOf(response, finalUrl, sent, body, truncated, keep) };
      }
      const declared = Number(response.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > maxBytes) {
        discard(response.body);
        return { kind: 'too-large', status, finalUrl, contentType, exchange: empty(true) };
      }
      // the body's place in the in-flight budget, before it is read: its declared size, else the most it may be
      const release = await this.imageBudget?.take(Number.isFinite(declared) ? declared : maxBytes) ?? (() => undefined);
      let handedOver = false;
      try {
        const chunks: Buffer[] = [];
        let bytes = 0;
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          if (bytes > maxBytes) {
            discard(response.body);
            return { kind: 'too-large', status, finalUrl, contentType, exchange: empty(true) };
          }
          chunks.push(chunk);
        }
        const body = Buffer.concat(chunks);
        handedOver = true;
        return { kind: 'bytes', status, finalUrl, contentType, body, optOuts: this.headerOptOuts(response), exchange: exchangeOf(response, finalUrl, sent, body, false, keep), release };
      } finally {
        if (!handedOver) release();
      }
    } finally {
      release();
    }
  }

  /**
   * GET a small text resource (robots.txt) with the same safety and a size cap; `minRedirects` raises the number
   * of redirects followed (robots.txt: at least five, RFC 9309 2.3.1.2) above the configured one.
   */
  async fetchText(url: string, maxBytes: number, signal?: AbortSignal, minRedirects = 0): Promise<{ status: number; body: string; truncated: boolean }> {
    const { response, release } = await this.follow(url, 'text/plain,*/*;q=0.5', signal, undefined, false, Math.max(minRedirects, this.limits.maxRedirects));
    try {
      return await readText(response, maxBytes);
    } finally {
      release();
    }
  }

  /** Follows redirects; the caller must call `release()` once it has read (or dropped) the body. */
  private async follow(url: string, accept: string, signal?: AbortSignal, checkHop?: HopCheck, keepHops = false, maxRedirects = this.limits.maxRedirects) {
    // One controller and one timer per fetch: AbortSignal.any + AbortSignal.timeout cost ~0.2 ms per call on
    // Node 20, a third of a page's whole CPU budget.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${this.limits.timeoutMs} ms`)), this.limits.timeoutMs);
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    };
    try {
      // The overall deadline keeps running while the caller reads the body.
      return { ...(await this.hops(url, accept, controller.signal, checkHop, keepHops, maxRedirects)), release: cleanup };
    } catch (error) {
      cleanup();
      throw error;
    }
  }

  private async hops(url: string, accept: string, combined: AbortSignal, checkHop: HopCheck | undefined, keepHops: boolean, maxRedirects: number) {
    let current = url;
    const redirects: RedirectHop[] = [];
    for (let hop = 0; ; hop++) {
      if (parseHttpUrl(current) === null) throw new BlockedAddressError(`refusing to follow a redirect to ${current.slice(0, 200)}: only http(s)`);
      // the first URL was checked by the caller; every hop after it is checked against its own origin's rules
      if (hop > 0 && checkHop !== undefined) await checkHop(current);
      const headers = { 'user-agent': this.limits.userAgent, accept };
      const sent: Sent = { date: new Date().toISOString(), headers: Object.entries(headers), redirects };
      const response = await request(current, {
        method: 'GET',
        dispatcher: this.agent,
        headers,
        headersTimeout: this.limits.timeoutMs,
        bodyTimeout: this.limits.timeoutMs,
        signal: combined,
      });
      const location = response.headers.location;
      if (REDIRECTS.has(response.statusCode) && typeof location === 'string') {
        if (keepHops) {
          const { body, truncated } = await readCapped(response, REDIRECT_BODY_BYTES);
          redirects.push({
            url: current, date: sent.date, requestHeaders: requestHeadersOf(current, sent), status: response.statusCode,
            statusText: STATUS_CODES[response.statusCode] ?? '', responseHeaders: headerPairs(response.headers), body, bodyTruncated: truncated,
          });
        } else {
          discard(response.body);
        }
        if (hop >= maxRedirects) throw new TooManyRedirectsError(`more than ${maxRedirects} redirects`);
        current = new URL(location, current).href;
        continue;
      }
      return { response, finalUrl: current, sent };
    }
  }
}

/** The request as this fetcher sent it (undici adds host, connection and accept-encoding itself). */
interface Sent {
  date: string;
  headers: Array<[string, string]>;
  /** The redirects this request followed (kept only when the caller archives). */
  redirects: RedirectHop[];
}

function exchangeOf(response: Dispatcher.ResponseData, url: string, sent: Sent, body: Buffer, truncated: boolean, keep: KeepOptions): Exchange {
  return {
    url, date: sent.date, requestHeaders: requestHeadersOf(url, sent), status: response.statusCode,
    statusText: STATUS_CODES[response.statusCode] ?? '', responseHeaders: headerPairs(response.headers), bodyTruncated: truncated, headers: response.headers,
    redirects: sent.redirects,
    ...(keep.body === true ? { body } : {}),
  };
}

function requestHeadersOf(url: string, sent: Sent): Array<[string, string]> {
  return [['host', new URL(url).host], ...sent.headers];
}

/** Response headers as name-value pairs, a repeated header once per value (as it came). */
function headerPairs(headers: Dispatcher.ResponseData['headers']): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) pairs.push([name, one]);
  }
  return pairs;
}

/** Reads a body up to `maxBytes` (then drops the rest); `truncated` when there was more. */
async function readCapped(response: Dispatcher.ResponseData, maxBytes: number): Promise<{ body: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    const room = maxBytes - bytes;
    bytes += chunk.length;
    if (bytes > maxBytes) {
      if (room > 0) chunks.push(chunk.subarray(0, room));
      discard(response.body);
      return { body: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(chunk);
  }
  return { body: Buffer.concat(chunks), truncated: false };
}

/** An error answer's start as text, for the block-page classifier (its charset if it names one, else UTF-8). */
function sniffedText(body: Buffer, contentType: string): string {
  try {
    return new TextDecoder(sniffHtmlEncoding(body.subarray(0, SNIFF_BYTES), contentType)).decode(body.subarray(0, BLOCK_PAGE_SNIFF_BYTES));
  } catch {
    return body.subarray(0, BLOCK_PAGE_SNIFF_BYTES).toString('utf8');
  }
}

/**
 * A text answer (robots.txt, a sitemap): what fits is kept (RFC 9309 2.5: the first 500 KiB of a robots.txt are
 * parsed), the rest is not read; `truncated` says there was more (the decoded text's length cannot: bytes that are
 * not UTF-8 decode to three bytes each).
 */
async function readText(response: Dispatcher.ResponseData, maxBytes: number): Promise<{ status: number; body: string; truncated: boolean }> {
  const { body, truncated } = await readCapped(response, maxBytes);
  return { status: response.statusCode, body: body.toString('utf8'), truncated };
}

/** Closes a body we do not want; the listener keeps undici's AbortError from becoming an uncaught exception. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** The WHATWG prescan looks at this many bytes for <meta charset> / <meta http-equiv>. */
const SNIFF_BYTES = 1024;

/**
 * The page's encoding per the WHATWG encoding sniffing algorithm (html-encoding-sniffer): a BOM first, then
 * the Content-Type charset, then a prescan of the first 1024 bytes for <meta charset> or
 * <meta http-equiv="Content-Type">. With none of those, the "frequency analysis" step browsers take is a
 * UTF-8 validity check of those bytes (UTF-8 if they are valid, windows-1252 as the spec's default if not).
 * Labels Node's decoder does not know fall back the same way.
 */
export function sniffHtmlEncoding(start: Uint8Array, contentType: string): string {
  const label = /;\s*charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;]+))/i.exec(contentType);
  const transportLayerEncodingLabel = label === null ? undefined : (label[1] ?? label[2] ?? label[3]);
  const sniffed = htmlEncodingSniffer(start, { transportLayerEncodingLabel, defaultEncoding: '' });
  if (sniffed !== '') {
    try {
      return new TextDecoder(sniffed).encoding;
    } catch {
      // an encoding the sniffer names but this Node cannot decode: guess as below
    }
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(start, { stream: true });
    return 'utf-8';
  } catch {
    return 'windows-1252';
  }
}
