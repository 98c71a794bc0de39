import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TextDecoder } from 'node:util';
import htmlEncodingSniffer from 'html-encoding-sniffer';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import type { AddressPolicy } from '../core/address-policy.js';
import { createExtractor, type PageExtract } from '../core/extract.js';
import { mergeOptOuts, optOutsFromHeader, optOutsFromMeta, productToken, type OptOut } from '../core/robots-directives.js';
import { parseHttpUrl } from '../core/url.js';

/**
 * SSRF-safe HTTP for the crawler. undici's `connect.lookup` hook alone is not enough (IP literals skip DNS,
 * redirects to literals pass), so a custom connector checks every resolved address, and every literal, right
 * before it connects, and connects to the checked address itself (no second DNS answer can differ). Redirects
 * are followed by hand, so each hop goes through the same connector and scheme check.
 */
export class BlockedAddressError extends Error {
  readonly code = 'ERR_BLOCKED_ADDRESS';
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
}

export type PageFetch =
  | { kind: 'html'; status: number; finalUrl: string; extract: PageExtract; truncated: boolean; encoding: string; optOuts: OptOut[] }
  | { kind: 'other'; status: number; finalUrl: string; contentType: string; optOuts: OptOut[] }
  | { kind: 'http-error'; status: number; finalUrl: string; retryAfter?: string };

export type BytesFetch =
  | { kind: 'bytes'; status: number; finalUrl: string; contentType: string; body: Buffer; optOuts: OptOut[] }
  | { kind: 'too-large'; status: number; finalUrl: string; contentType: string }
  | { kind: 'http-error'; status: number; finalUrl: string; retryAfter?: string };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class SafeFetcher {
  /** The name a site's X-Robots-Tag or robots meta may address this crawler by. */
  private readonly token: string;

  constructor(private readonly agent: Agent, private readonly limits: FetchLimits) {
    this.token = productToken(limits.userAgent);
  }

  /** The opt-outs the response's X-Robots-Tag headers state for this crawler. */
  private headerOptOuts(response: Dispatcher.ResponseData): OptOut[] {
    const values = response.headers['x-robots-tag'];
    return values === undefined ? [] : optOutsFromHeader(Array.isArray(values) ? values : [values], this.token);
  }

  /** GET a page, following redirects by hand, parsing HTML as it streams in. Throws on network errors. */
  async fetchPage(url: string, signal?: AbortSignal, checkHop?: HopCheck): Promise<PageFetch> {
    const { response, finalUrl, release } = await this.follow(url, 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5', signal, checkHop);
    try {
      return await this.readPage(response, finalUrl);
    } finally {
      release();
    }
  }

  private async readPage(response: Dispatcher.ResponseData, finalUrl: string): Promise<PageFetch> {
    const status = response.statusCode;
    if (status < 200 || status >= 300) {
      await response.body.dump();
      const retryAfter = response.headers['retry-after'];
      return { kind: 'http-error', status, finalUrl, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined };
    }
    const contentType = String(response.headers['content-type'] ?? '');
    if (!/^\s*(text\/html|application\/xhtml\+xml)\b/i.test(contentType)) {
      // Only HTML is parsed; anything else is closed without reading it.
      discard(response.body);
      return { kind: 'other', status, finalUrl, contentType, optOuts: this.headerOptOuts(response) };
    }
    const extractor = createExtractor(finalUrl, { metaNames: [this.token] });
    // The encoding is sniffed (WHATWG) from the first 1024 bytes, then the body is decoded as it streams in.
    let decoder: TextDecoder | undefined;
    let head: Buffer[] = [];
    let headBytes = 0;
    let bytes = 0;
    let truncated = false;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > this.limits.maxBodyBytes) {
        truncated = true;
        discard(response.body);
        break;
      }
      if (decoder !== undefined) {
        extractor.write(decoder.decode(chunk, { stream: true }));
        continue;
      }
      head.push(chunk);
      headBytes += chunk.length;
      if (headBytes >= SNIFF_BYTES) {
        const start = Buffer.concat(head);
        decoder = new TextDecoder(sniffHtmlEncoding(start, contentType));
        extractor.write(decoder.decode(start, { stream: true }));
        head = [];
      }
    }
    if (decoder === undefined) {
      const start = Buffer.concat(head);
      decoder = new TextDecoder(sniffHtmlEncoding(start, contentType));
      extractor.write(decoder.decode(start, { stream: true }));
    }
    extractor.write(decoder.decode());
    const extract = extractor.end();
    const optOuts = mergeOptOuts(this.headerOptOuts(response), optOutsFromMeta(extract.robotsMeta, this.token));
    return { kind: 'html', status, finalUrl, extract, truncated, encoding: decoder.encoding, optOuts };
  }

  /**
   * GET an image's bytes with the same safety (every hop checked) and a size cap: an answer larger than
   * `maxBytes` (said by Content-Length or found while reading) is not read further.
   */
  async fetchBytes(url: string, maxBytes: number, signal?: AbortSignal, checkHop?: HopCheck): Promise<BytesFetch> {
    const { response, finalUrl, release } = await this.follow(url, 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5', signal, checkHop);
    try {
      const status = response.statusCode;
      const contentType = String(response.headers['content-type'] ?? '');
      if (status < 200 || status >= 300) {
        discard(response.body);
        const retryAfter = response.headers['retry-after'];
        return { kind: 'http-error', status, finalUrl, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined };
      }
      const declared = Number(response.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > maxBytes) {
        discard(response.body);
        return { kind: 'too-large', status, finalUrl, contentType };
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          discard(response.body);
          return { kind: 'too-large', status, finalUrl, contentType };
        }
        chunks.push(chunk);
      }
      return { kind: 'bytes', status, finalUrl, contentType, body: Buffer.concat(chunks), optOuts: this.headerOptOuts(response) };
    } finally {
      release();
    }
  }

  /** GET a small text resource (robots.txt) with the same safety and a size cap. */
  async fetchText(url: string, maxBytes: number, signal?: AbortSignal): Promise<{ status: number; body: string }> {
    const { response, release } = await this.follow(url, 'text/plain,*/*;q=0.5', signal);
    try {
      return await readText(response, maxBytes);
    } finally {
      release();
    }
  }

  /** Follows redirects; the caller must call `release()` once it has read (or dropped) the body. */
  private async follow(url: string, accept: string, signal?: AbortSignal, checkHop?: HopCheck) {
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
      return { ...(await this.hops(url, accept, controller.signal, checkHop)), release: cleanup };
    } catch (error) {
      cleanup();
      throw error;
    }
  }

  private async hops(url: string, accept: string, combined: AbortSignal, checkHop: HopCheck | undefined) {
    let current = url;
    for (let hop = 0; ; hop++) {
      if (parseHttpUrl(current) === null) throw new BlockedAddressError(`refusing to follow a redirect to ${current.slice(0, 200)}: only http(s)`);
      // the first URL was checked by the caller; every hop after it is checked against its own origin's rules
      if (hop > 0 && checkHop !== undefined) await checkHop(current);
      const response = await request(current, {
        method: 'GET',
        dispatcher: this.agent,
        headers: { 'user-agent': this.limits.userAgent, accept },
        headersTimeout: this.limits.timeoutMs,
        bodyTimeout: this.limits.timeoutMs,
        signal: combined,
      });
      const location = response.headers.location;
      if (REDIRECTS.has(response.statusCode) && typeof location === 'string') {
        discard(response.body);
        if (hop >= this.limits.maxRedirects) throw new Error(`more than ${this.limits.maxRedirects} redirects`);
        current = new URL(location, current).href;
        continue;
      }
      return { response, finalUrl: current };
    }
  }
}

async function readText(response: Dispatcher.ResponseData, maxBytes: number): Promise<{ status: number; body: string }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    // what fits is kept (RFC 9309 2.5: the first 500 KiB of a robots.txt are parsed), the rest is not read
    const room = maxBytes - bytes;
    bytes += chunk.length;
    if (bytes > maxBytes) {
      if (room > 0) chunks.push(chunk.subarray(0, room));
      discard(response.body);
      break;
    }
    chunks.push(chunk);
  }
  return { status: response.statusCode, body: Buffer.concat(chunks).toString('utf8') };
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
