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
}

/**
 * One JSON request to an OpenStack API. Redirects are not followed (Heat's 302 would turn a POST into a
 * GET in a fetch-style client, so callers keep stack ids instead). Errors show the API's own message,
 * which both Keystone (`{error:{message}}`) and Heat (`{explanation, error:{message}}`) put in error.message.
 */
export async function openstackRequest(url: string, options: HttpOptions): Promise<HttpResponse> {
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'depl', ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  const timeout = options.timeoutMs ?? 60_000;
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, { method, headers, body, headersTimeout: timeout, bodyTimeout: timeout, dispatcher: options.dispatcher ?? defaultDispatcher() });
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
  const text = await response.body.text();
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
  throw new OpenStackApiError(options.service, method, url, response.statusCode, apiMessage(parsed, text));
}

export class OpenStackApiError extends OperationError {
  constructor(
    readonly service: string,
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly apiText: string,
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
  return fallback.trim().slice(0, 500) || '(no message)';
}

export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
