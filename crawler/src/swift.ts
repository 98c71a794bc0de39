import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { request } from './undici-on-use.js';
import type { SwiftAuth } from './swift-auth.js';

/**
 * The little of OpenStack Swift the crawler's image store needs: a container made once, objects written with
 * their MD5 as ETag (Swift refuses bytes that arrive changed) and an expiry (X-Delete-At: Swift's object server
 * answers 404 for an object past it, and its expirer daemon removes it later), read as streams, listed by
 * prefix, their expiry moved (POST), deleted. Objects are images and page bodies, far below Swift's 5 GiB
 * single-object limit: segmented large objects are not written, a larger body is refused.
 * Tokens come from swift-auth.ts (tempauth or Keystone v3). The crawler is its own package (its image installs
 * only its own dependencies), so this does not share depl's client (src/apply/openstack/swift.ts).
 */
const MAX_OBJECT_BYTES = 5 * 1024 ** 3;
const LIST_PAGE = 1000;

export class SwiftError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface PutOptions {
  contentType?: string;
  /** Unix seconds after which Swift no longer serves the object (X-Delete-At). */
  deleteAt?: number;
}

export class SwiftContainer {
  private made?: Promise<void>;

  constructor(private readonly auth: SwiftAuth, readonly container: string) {}

  /** Writes the object whole; false when Swift already had it (a HEAD first: contents are named by their hash). */
  async put(name: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    if (bytes.byteLength > MAX_OBJECT_BYTES) throw new SwiftError(`${name} is ${bytes.byteLength} bytes: above Swift's 5 GiB object limit (segmented objects are not written)`);
    if (await this.head(name)) {
      // the same content again (a redelivered task): its expiry follows the latest write's
      if (options.deleteAt !== undefined) await this.expireAt(name, options.deleteAt);
      return false;
    }
    this.made ??= this.ensureContainer().catch((error: unknown) => {
      this.made = undefined;
      throw error;
    });
    await this.made;
    const md5 = createHash('md5').update(bytes).digest('hex');
    const headers: Record<string, string> = { etag: md5, 'content-type': options.contentType ?? 'application/octet-stream' };
    if (options.deleteAt !== undefined) headers['x-delete-at'] = String(options.deleteAt);
    const response = await this.call('PUT', name, headers, bytes);
    if (response.statusCode === 422) {
      await response.body.dump();
      throw new SwiftError(`Swift refused ${name}: the bytes it received do not match their MD5`, 422);
    }
    await expectStatus(response, [201], `PUT ${name}`);
    const etag = String(response.headers.etag ?? '').replace(/"/g, '');
    if (etag !== md5) throw new SwiftError(`Swift stored ${name} with MD5 ${etag}, but the crawler sent ${md5}`);
    return true;
  }

  async head(name: string): Promise<boolean> {
    return (await expectStatus(await this.call('HEAD', name), [200], `HEAD ${name}`, { absent: 404 })) !== null;
  }

  /** The object's bytes as a stream and their size; null when it is not there (or past its X-Delete-At). */
  async open(name: string): Promise<{ stream: Readable; bytes: number } | null> {
    const response = await expectStatus(await this.call('GET', name), [200], `GET ${name}`, { absent: 404, keepBody: true });
    if (response === null) return null;
    return { stream: response.body, bytes: Number(response.headers['content-length'] ?? 0) };
  }

  /** Removes the object; false when it was not there. */
  async delete(name: string): Promise<boolean> {
    return (await expectStatus(await this.call('DELETE', name), [204], `DELETE ${name}`, { absent: 404 })) !== null;
  }

  /** Moves the object's expiry (Swift's POST replaces X-Delete-At); false when it is not there. */
  async expireAt(name: string, deleteAt: number): Promise<boolean> {
    return (await expectStatus(await this.call('POST', name, { 'x-delete-at': String(deleteAt) }), [202], `POST ${name}`, { absent: 404 })) !== null;
  }

  /** The names of the objects under a prefix, page by page (none when the container does not exist yet). */
  async *list(prefix: string): AsyncGenerator<string> {
    for (let marker = ''; ;) {
      const query = new URLSearchParams({ format: 'json', prefix, limit: String(LIST_PAGE), ...(marker === '' ? {} : { marker }) });
      const response = await expectStatus(await this.call('GET', null, {}, undefined, query), [200, 204], `GET ${this.container}?prefix=${prefix}`, { absent: 404, keepBody: true });
      if (response === null) return;
      const names = response.statusCode === 204 ? [] : (await response.body.json() as Array<{ name: string }>).map((item) => item.name);
      yield* names;
      if (names.length < LIST_PAGE) return;
      marker = names.at(-1)!;
    }
  }

  private async ensureContainer(): Promise<void> {
    await expectStatus(await this.call('PUT', null), [201, 202], `PUT container ${this.container}`);
  }

  /** One request with the current token; a 401 (token expired or revoked) gets one retry with a new one. */
  private async call(method: Dispatcher.HttpMethod, name: string | null, headers: Record<string, string> = {}, body?: Uint8Array, query?: URLSearchParams): Promise<Dispatcher.ResponseData> {
    for (let attempt = 1; ; attempt += 1) {
      const { token, storageUrl } = await this.auth.access();
      const path = [this.container, ...(name === null ? [] : name.split('/'))].map(encodeURIComponent).join('/');
      const ms = this.auth.timeoutMs ?? 30_000;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(`${storageUrl}/${path}${query === undefined ? '' : `?${query}`}`, { method, headers: { ...headers, 'x-auth-token': token }, body, headersTimeout: ms, bodyTimeout: ms, dispatcher: this.auth.dispatcher });
      } catch (error) {
        throw new SwiftError(`cannot reach Swift at ${new URL(storageUrl).origin}: ${(error as Error).message}`);
      }
      if (response.statusCode !== 401) return response;
      await response.body.dump();
      if (attempt === 2) throw new SwiftError(`Swift refused a fresh token of the ${this.auth.who} (HTTP 401): its roles do not open this account`, 401);
      this.auth.invalidate();
    }
  }
}

/**
 * The response when its status is one of `ok`; null (body read) for the `absent` status; otherwise a SwiftError
 * that quotes the start of Swift's own answer. The body is read unless `keepBody` asks for it to stay a stream.
 */
async function expectStatus(response: Dispatcher.ResponseData, ok: number[], what: string, options: { absent?: number; keepBody?: boolean } = {}): Promise<Dispatcher.ResponseData | null> {
  if (ok.includes(response.statusCode)) {
    if (options.keepBody !== true) await response.body.dump();
    return response;
  }
  if (response.statusCode === options.absent) {
    await response.body.dump();
    return null;
  }
  const text = (await response.body.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
  throw new SwiftError(`Swift refused ${what} (HTTP ${response.statusCode})${text === '' ? '' : `: ${text}`}`, response.statusCode);
}
