import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { OperationError } from '../../errors.js';
import { registerSecret } from '../../util/redact.js';
import { oneLine } from './http.js';
import type { KeystoneSession } from './keystone.js';

/**
 * An OpenStack Swift object store (Nectar's "object-store" in the Keystone catalog): containers made on demand,
 * objects written with their MD5 checked by Swift and by us, read as streams, listed page by page.
 * Large objects (Swift's SLO/DLO, past the cluster's max_file_size, 5 GiB by default) are not supported: a
 * larger object is refused with OBJECT_STORE_TOO_LARGE rather than half written.
 */

/** Where the account is and the token that opens it. */
export interface ObjectStoreAccess {
  storageUrl: string;
  token: string;
}

/** How a client gets (and renews) its access: through the Keystone session's catalog, or tempauth's v1 auth. */
export interface ObjectStoreAuth {
  access(): Promise<ObjectStoreAccess>;
  /** Forget the token (a 401: revoked or expired early). */
  invalidate(): void;
  readonly dispatcher?: Dispatcher;
}

/** The `object-store` endpoint of the session's catalog, or undefined when the cloud has no Swift. */
export async function keystoneObjectStore(session: KeystoneSession): Promise<ObjectStoreAuth | undefined> {
  const storageUrl = await session.optionalEndpoint('object-store');
  if (storageUrl === undefined) return undefined;
  return {
    access: async () => ({ storageUrl, token: await session.token() }),
    invalidate: () => session.invalidate(),
    dispatcher: session.dispatcher,
  };
}

/** Swift's own v1 auth (tempauth, swauth): GET the auth URL with X-Auth-User/X-Auth-Key for a token and the storage URL. */
export function tempAuthObjectStore(options: { authUrl: string; user: string; key: string; dispatcher?: Dispatcher }): ObjectStoreAuth {
  registerSecret(options.key);
  let current: Promise<ObjectStoreAccess> | undefined;
  const issue = async (): Promise<ObjectStoreAccess> => {
    const response = await send(options.authUrl, { headers: { 'x-auth-user': options.user, 'x-auth-key': options.key }, dispatcher: options.dispatcher });
    await response.body.dump();
    if (response.statusCode === 401 || response.statusCode === 403) {
      throw new OperationError(`Swift's auth at ${options.authUrl} rejected user ${options.user} (HTTP ${response.statusCode})`, 'Check the Swift user and key.', 'OBJECT_STORE_AUTH_FAILED');
    }
    const token = headerOf(response.headers, 'x-auth-token');
    const storageUrl = headerOf(response.headers, 'x-storage-url');
    if (response.statusCode >= 300 || token === undefined || storageUrl === undefined) {
      throw new OperationError(`Swift's auth at ${options.authUrl} answered HTTP ${response.statusCode} without a token and storage URL`, undefined, 'OBJECT_STORE_AUTH_FAILED');
    }
    registerSecret(token);
    return { token, storageUrl: storageUrl.replace(/\/+$/, '') };
  };
  return {
    access: () => {
      current ??= issue().catch((error: unknown) => {
        current = undefined;
        throw error;
      });
      return current;
    },
    invalidate: () => {
      current = undefined;
    },
    dispatcher: options.dispatcher,
  };
}

/** Swift's default max_file_size: one object above it needs segments (SLO), which this client does not write. */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 3;

export interface StoredObject {
  bytes: number;
  etag: string;
  contentType: string;
  lastModified: string;
}

export interface ListedObject {
  name: string;
  bytes: number;
  hash: string;
  contentType: string;
  lastModified: string;
}

export class SwiftClient {
  private readonly made = new Set<string>();

  constructor(private readonly auth: ObjectStoreAuth, private readonly options: { pageSize?: number; timeoutMs?: number } = {}) {}

  /** PUT on a container is idempotent (201 made, 202 there already); asked once per container per client. */
  async ensureContainer(container: string): Promise<void> {
    if (this.made.has(container)) return;
    const response = await this.call('PUT', [container]);
    await response.body.dump();
    if (response.statusCode !== 201 && response.statusCode !== 202) throw this.failure('PUT', [container], response.statusCode, '');
    this.made.add(container);
  }

  /**
   * Writes an object whole (Swift makes it visible only once all bytes arrived). A buffer goes with its MD5 as
   * ETag, so Swift refuses bytes that arrive changed (422); a stream's MD5 is computed on the way and compared
   * with the ETag Swift answers. Either mismatch is OBJECT_STORE_CORRUPT. Returns the MD5 (hex).
   */
  async putObject(container: string, name: string, body: Uint8Array | Readable, options: { contentType?: string; bytes?: number } = {}): Promise<string> {
    const size = body instanceof Uint8Array ? body.byteLength : options.bytes;
    if (size !== undefined && size > MAX_OBJECT_BYTES) {
      throw new OperationError(`${container}/${name} is ${size} bytes: objects above 5 GiB need Swift's segmented large objects, which depl does not write`, 'Split the data into smaller files.', 'OBJECT_STORE_TOO_LARGE');
    }
    await this.ensureContainer(container);
    const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/octet-stream' };
    let sent: Uint8Array | Readable;
    let digest: () => string;
    if (body instanceof Uint8Array) {
      const md5 = createHash('md5').update(body).digest('hex');
      headers.etag = md5;
      sent = body;
      digest = () => md5;
    } else {
      if (size !== undefined) headers['content-length'] = String(size);
      const hash = createHash('md5');
      sent = body.pipe(new Transform({ transform(chunk: Buffer, _encoding, done) { hash.update(chunk); done(null, chunk); } }));
      digest = () => hash.digest('hex');
    }
    // a stream cannot be sent twice: no retry with a new token for it (the token is fetched fresh enough)
    const response = await this.call('PUT', [container, name], { headers, body: sent, retryOn401: body instanceof Uint8Array });
    const text = await response.body.text();
    if (response.statusCode === 422) throw new OperationError(`Swift refused ${container}/${name}: the bytes it received do not match their MD5`, 'Write it again.', 'OBJECT_STORE_CORRUPT');
    if (response.statusCode === 413) {
      throw new OperationError(`Swift refused ${container}/${name} as too large (HTTP 413): objects above the cluster's max_file_size need segmented large objects, which depl does not write`, 'Split the data into smaller files.', 'OBJECT_STORE_TOO_LARGE');
    }
    if (response.statusCode !== 201) throw this.failure('PUT', [container, name], response.statusCode, text);
    const md5 = digest();
    const etag = headerOf(response.headers, 'etag')?.replace(/"/g, '');
    if (etag !== md5) throw new OperationError(`Swift stored ${container}/${name} with MD5 ${etag ?? '(none)'}, but depl sent bytes with MD5 ${md5}`, 'Write it again.', 'OBJECT_STORE_CORRUPT');
    return md5;
  }

  /** The object as a stream (the caller consumes or destroys it), or null when there is none. */
  async getObject(container: string, name: string): Promise<(StoredObject & { stream: Readable }) | null> {
    const response = await this.call('GET', [container, name]);
    if (response.statusCode === 404) {
      await response.body.dump();
      return null;
    }
    if (response.statusCode !== 200) throw this.failure('GET', [container, name], response.statusCode, await response.body.text());
    return { ...describeObject(response.headers), stream: response.body };
  }

  async headObject(container: string, name: string): Promise<StoredObject | null> {
    const response = await this.call('HEAD', [container, name]);
    await response.body.dump();
    if (response.statusCode === 404) return null;
    if (response.statusCode !== 200) throw this.failure('HEAD', [container, name], response.statusCode, '');
    return describeObject(response.headers);
  }

  /** Removes the object; false when there was none (a repeated delete is not an error). */
  async deleteObject(container: string, name: string): Promise<boolean> {
    const response = await this.call('DELETE', [container, name]);
    const text = await response.body.text();
    if (response.statusCode === 404) return false;
    if (response.statusCode !== 204) throw this.failure('DELETE', [container, name], response.statusCode, text);
    return true;
  }

  /** Every object of the container under the prefix, in name order, fetched a page at a time (Swift's marker). */
  async *listObjects(container: string, options: { prefix?: string } = {}): AsyncGenerator<ListedObject> {
    const limit = this.options.pageSize ?? 1000;
    let marker = '';
    for (;;) {
      const query = new URLSearchParams({ format: 'json', limit: String(limit), ...(marker !== '' ? { marker } : {}), ...(options.prefix !== undefined ? { prefix: options.prefix } : {}) });
      const response = await this.call('GET', [container], { query: query.toString() });
      const text = await response.body.text();
      if (response.statusCode === 404) return;
      if (response.statusCode !== 200 && response.statusCode !== 204) throw this.failure('GET', [container], response.statusCode, text);
      const page = (text === '' ? [] : JSON.parse(text)) as Array<{ name: string; bytes: number; hash: string; content_type: string; last_modified: string }>;
      for (const item of page) yield { name: item.name, bytes: item.bytes, hash: item.hash, contentType: item.content_type, lastModified: item.last_modified };
      if (page.length < limit) return;
      marker = page.at(-1)!.name;
    }
  }

  private async call(method: Dispatcher.HttpMethod, parts: string[], extra: { headers?: Record<string, string>; body?: Uint8Array | Readable; query?: string; retryOn401?: boolean } = {}): Promise<Dispatcher.ResponseData> {
    const attempt = async () => {
      const { storageUrl, token } = await this.auth.access();
      const url = `${storageUrl}/${parts.map(encodeURIComponent).join('/')}${extra.query !== undefined ? `?${extra.query}` : ''}`;
      return send(url, { method, headers: { ...extra.headers, 'x-auth-token': token }, body: extra.body, dispatcher: this.auth.dispatcher, timeoutMs: this.options.timeoutMs });
    };
    const response = await attempt();
    if (response.statusCode !== 401 || extra.retryOn401 === false) return response;
    await response.body.dump();
    this.auth.invalidate();
    const again = await attempt();
    if (again.statusCode === 401) {
      await again.body.dump();
      throw new OperationError(`Swift refused the token for ${method} ${parts.join('/')} (HTTP 401)`, 'Check the credentials: is the user allowed to use the object store?', 'OBJECT_STORE_AUTH_FAILED');
    }
    return again;
  }

  private failure(method: string, parts: string[], status: number, text: string): OperationError {
    const hint = status === 403 ? 'Your user lacks a role for this container (Swift operator or ACL).' : status === 507 ? 'The object store is out of space (or over its quota).' : undefined;
    return new OperationError(`Swift refused ${method} ${parts.join('/')} (HTTP ${status})${text !== '' ? `: ${oneLine(text)}` : ''}`, hint, 'OBJECT_STORE_ERROR');
  }
}

async function send(url: string, options: { method?: Dispatcher.HttpMethod; headers: Record<string, string>; body?: Uint8Array | Readable; dispatcher?: Dispatcher; timeoutMs?: number }): Promise<Dispatcher.ResponseData> {
  const timeout = options.timeoutMs ?? 60_000;
  try {
    return await request(url, { method: options.method ?? 'GET', headers: { 'user-agent': 'depl', ...options.headers }, body: options.body, headersTimeout: timeout, bodyTimeout: timeout, dispatcher: options.dispatcher });
  } catch (error) {
    throw new OperationError(`cannot reach Swift at ${new URL(url).origin}: ${(error as { code?: string }).code ?? (error as Error).message}`, 'Check the object store URL and your network connection.', 'OBJECT_STORE_ERROR', { cause: error });
  }
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function describeObject(headers: Record<string, string | string[] | undefined>): StoredObject {
  return {
    bytes: Number(headerOf(headers, 'content-length') ?? 0),
    etag: (headerOf(headers, 'etag') ?? '').replace(/"/g, ''),
    contentType: headerOf(headers, 'content-type') ?? 'application/octet-stream',
    lastModified: headerOf(headers, 'last-modified') ?? '',
  };
}
