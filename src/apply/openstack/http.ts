import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { OperationError, UserError } from '../../errors.js';
import { redact } from '../../util/redact.js';

let proxyAgent: Dispatcher | undefined;

/**
 * Like the python client, go through HTTP(S)_PROXY when one is set (NO_PROXY is honoured);
 * undici's default dispatcher would ignore them.
 */
function defaultDispatcher(env: NodeJS.ProcessEnv = process.env): Dispatcher | undefined {
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k]);
  if (!proxied) return undefined;
  proxyAgent ??= new EnvHttpProxyAgent();
  return proxyAgent;
}

/** A dispatcher that also trusts the cloud's own CA (or, when asked, nothing at all); undefined: the default. */
export async function dispatcherFor(tls: { caCertFile?: string; insecure?: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<Dispatcher | undefined> {
  if (!tls.caCertFile && !tls.insecure) return undefined;
  let ca: string[] | undefined;
  if (tls.caCertFile) {
    try {
      ca = [...rootCertificates, await readFile(tls.caCertFile, 'utf8')];
    } catch (error) {
      throw new UserError(`cannot read the CA bundle ${tls.caCertFile}: ${(error as Error).message}`, 'Fix cacert in clouds.yaml or OS_CACERT.', 'CLOUD_CACERT_UNREADABLE');
    }
  }
  const connect = { ...(ca ? { ca } : {}), rejectUnauthorized: !tls.insecure };
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k]);
  return proxied ? new EnvHttpProxyAgent({ connect, requestTls: connect }) : new Agent({ connect });
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/**
 * How a request may be repeated when the cloud has a passing problem (a 502/503/504 page from the load
 * balancer, 413/429 with Retry-After, a reset connection, a timeout). Only calls that change nothing (GET,
 * a wait's lookups) or that are safe to repeat (a token request) set this: a POST that creates a stack is
 * never sent twice blindly.
 */
export interface RetryPolicy {
  /** ms since the epoch after which no retry starts (a wait's own deadline); default: 2 minutes from now. */
  deadline?: number;
  /** Attempts in all, the first included (default 6). */
  attempts?: number;
  /** First back-off; it doubles each time up to maxDelayMs (defaults 1 s and 30 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Told before each retry (for a log line). */
  onRetry?: (reason: string, delayMs: number) => void;
}

export interface HttpOptions {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  json?: unknown;
  /** Statuses the caller handles itself (a 404 lookup, a 302 redirect); others become errors. */
  accept?: number[];
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** "Keystone", "Heat": names the service in error messages. */
  service: string;
  /** Retry passing failures (see RetryPolicy). Default: on for GET and HEAD, off for everything else. */
  retry?: RetryPolicy | false;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_ERROR_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * One JSON request to an OpenStack API. Redirects are not followed (Heat's 302 would turn a POST into a
 * GET in a fetch-style client, so callers keep stack ids instead). Errors show the API's own message,
 * which both Keystone (`{error:{message}}`) and Heat (`{explanation, error:{message}}`) put in error.message;
 * an HTML page (a load balancer's) is shown as one short line.
 */
export async function openstackRequest(url: string, options: HttpOptions): Promise<HttpResponse> {
  const method = options.method ?? 'GET';
  const policy = options.retry ?? (method === 'GET' || method === 'HEAD' ? {} : false);
  if (policy === false) return once(url, options);
  const now = policy.now ?? Date.now;
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = policy.deadline ?? now() + 120_000;
  const attempts = policy.attempts ?? 6;
  let delay = policy.baseDelayMs ?? 1000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await once(url, options);
    } catch (error) {
      const verdict = retryVerdict(error);
      if (verdict === undefined) throw error;
      // the server's Retry-After is honoured as given; our own back-off doubles up to a cap
      const pause = verdict.retryAfterMs ?? delay;
      if (attempt >= attempts || now() + pause > deadline) throw error;
      policy.onRetry?.(verdict.reason, pause);
      await sleep(pause);
      delay = Math.min(delay * 2, policy.maxDelayMs ?? 30_000);
    }
  }
}

/** Is this failure a passing one, and how long did the server ask us to wait? */
function retryVerdict(error: unknown): { reason: string; retryAfterMs?: number } | undefined {
  if (error instanceof OpenStackApiError) {
    if (RETRY_STATUSES.has(error.status)) return { reason: `HTTP ${error.status}`, retryAfterMs: error.retryAfterMs };
    // 429 is always "slow down"; 413 only when the server says when to come back (RFC 9110 15.5.14)
    if (error.status === 429 || (error.status === 413 && error.retryAfterMs !== undefined)) return { reason: `HTTP ${error.status}`, retryAfterMs: error.retryAfterMs };
    return undefined;
  }
  if (error instanceof OperationError && error.code === 'OPENSTACK_UNREACHABLE') {
    const code = (error.cause as { code?: string } | undefined)?.code;
    if (code !== undefined && RETRY_ERROR_CODES.has(code)) return { reason: code };
  }
  return undefined;
}

/** Retry-After as ms: delta-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

async function once(url: string, options: HttpOptions): Promise<HttpResponse> {
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'depl', ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  const timeout = options.timeoutMs ?? 60_000;
  let response: Dispatcher.ResponseData;
  let text: string;
  try {
    response = await request(url, { method, headers, body, headersTimeout: timeout, bodyTimeout: timeout, dispatcher: options.dispatcher ?? defaultDispatcher() });
    text = await response.body.text();
  } catch (error) {
    const reason = (error as { code?: string }).code ?? (error as Error).message;
    const tlsProblem = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS/i.test(String(reason));
    throw new OperationError(
      `cannot reach ${options.service} at ${new URL(url).origin}: ${reason}`,
      tlsProblem ? "The cloud's certificate is not trusted here: set cacert in clouds.yaml (or OS_CACERT) to its CA bundle." : 'Check the auth URL and your network connection.',
      'OPENSTACK_UNREACHABLE',
      { cause: error },
    );
  }
  let parsed: unknown = undefined;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  const result: HttpResponse = { status: response.statusCode, headers: response.headers, body: parsed };
  if (response.statusCode < 300 || options.accept?.includes(response.statusCode)) return result;
  const retryAfter = header(result, 'retry-after');
  throw new OpenStackApiError(options.service, method, url, response.statusCode, apiMessage(parsed, text), retryAfterMs(retryAfter));
}

export class OpenStackApiError extends OperationError {
  constructor(
    readonly service: string,
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly apiText: string,
    /** The server's Retry-After, in ms, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(`${service} refused ${method} ${new URL(url).pathname} (HTTP ${status}): ${redact(apiText)}`, hintFor(status), 'OPENSTACK_API_ERROR');
  }
}

function hintFor(status: number): string | undefined {
  if (status === 401) return 'Check the credentials in clouds.yaml / OS_* (an application credential may have expired or been deleted).';
  if (status === 403) return 'Your OpenStack user lacks a role for this; ask your project manager.';
  return undefined;
}

/** The human part of an OpenStack error body. */
export function apiMessage(body: unknown, fallback: string): string {
  if (typeof body === 'object' && body !== null) {
    const b = body as { error?: { message?: unknown; title?: unknown }; explanation?: unknown; title?: unknown; message?: unknown };
    if (typeof b.error?.message === 'string' && b.error.message.trim() !== '') return b.error.message.trim();
    if (typeof b.explanation === 'string') return b.explanation;
    if (typeof b.message === 'string') return b.message;
    if (typeof b.error?.title === 'string') return b.error.title;
    // Nova: {"itemNotFound": {"code": 404, "message": "..."}}
    const values = Object.values(body as Record<string, unknown>);
    const only = values.length === 1 ? (values[0] as { message?: unknown }) : undefined;
    if (only && typeof only === 'object' && typeof only.message === 'string') return only.message;
  }
  return oneLine(fallback) || '(no message)';
}

/**
 * A body that is not an OpenStack error document, as one short line: an HTML page (a proxy's or load
 * balancer's 502/503) by its title or first heading, tags and whitespace gone, at most 160 characters.
 */
export function oneLine(text: string): string {
  let out = text;
  if (/<\/?[a-z!][^>]*>/i.test(text)) {
    const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(text)?.[1] ?? /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(text)?.[1];
    out = (title ?? text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')).replace(/<[^>]*>/g, ' ');
    out = out.replace(/&nbsp;/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  }
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > 160 ? `${out.slice(0, 157)}...` : out;
}

export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
