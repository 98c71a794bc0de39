import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import type { ServiceSecret } from './core/secret.js';

/**
 * The little of OpenStack Swift the crawler's image store needs: Swift's v1 auth (tempauth: X-Auth-User and
 * X-Auth-Key for a token and the account's storage URL), a container made once, objects written with their MD5
 * as ETag (Swift refuses bytes that arrive changed), read as streams. Objects are images and page bodies, far
 * below Swift's 5 GiB single-object limit: segmented large objects are not written, a larger body is refused.
 * The crawler is its own package (its image installs only its own dependencies), so this does not share depl's
 * client (src/apply/openstack/swift.ts).
 */
export interface SwiftAuthOptions {
  authUrl: string;
  user: string;
  key: ServiceSecret;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

const MAX_OBJECT_BYTES = 5 * 1024 ** 3;

export class SwiftError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export class SwiftContainer {
  private access?: Promise<{ token: string; storageUrl: string }>;
  private made?: Promise<void>;

  constructor(private readonly auth: SwiftAuthOptions, readonly container: string) {}

  /** Writes the object whole; false when Swift already had it (a HEAD first: contents are named by their hash). */
  async put(name: string, bytes: Uint8Array, contentType = 'application/octet-stream'): Promise<boolean> {
    if (bytes.byteLength > MAX_OBJECT_BYTES) throw new SwiftError(`${name} is ${bytes.byteLength} bytes: above Swift's 5 GiB object limit (segmented objects are not written)`);
    if (await this.head(name)) return false;
    this.made ??= this.ensureContainer().catch((error: unknown) => {
      this.made = undefined;
      throw error;
    });
    await this.made;
    const md5 = createHash('md5').update(bytes).digest('hex');
    const response = await this.call('PUT', name, { etag: md5, 'content-type': contentType }, bytes);
    await response.body.dump();
    if (response.statusCode === 422) throw new SwiftError(`Swift refused ${name}: the bytes it received do not match their MD5`, 422);
    if (response.statusCode !== 201) throw new SwiftError(`Swift refused PUT ${name} (HTTP ${response.statusCode})`, response.statusCode);
    const etag = String(response.headers.etag ?? '').replace(/"/g, '');
    if (etag !== md5) throw new SwiftError(`Swift stored ${name} with MD5 ${etag}, but the crawler sent ${md5}`);
    return true;
  }

  async head(name: string): Promise<boolean> {
    const response = await this.call('HEAD', name);
    await response.body.dump();
    if (response.statusCode === 404) return false;
    if (response.statusCode !== 200) throw new SwiftError(`Swift refused HEAD ${name} (HTTP ${response.statusCode})`, response.statusCode);
    return true;
  }

  /** The object's bytes as a stream and their size; null when it is not there. */
  async open(name: string): Promise<{ stream: Readable; bytes: number } | null> {
    const response = await this.call('GET', name);
    if (response.statusCode === 404) {
      await response.body.dump();
      return null;
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new SwiftError(`Swift refused GET ${name} (HTTP ${response.statusCode})`, response.statusCode);
    }
    return { stream: response.body, bytes: Number(response.headers['content-length'] ?? 0) };
  }

  /** Removes the object; false when it was not there. */
  async delete(name: string): Promise<boolean> {
    const response = await this.call('DELETE', name);
    await response.body.dump();
    if (response.statusCode === 404) return false;
    if (response.statusCode !== 204) throw new SwiftError(`Swift refused DELETE ${name} (HTTP ${response.statusCode})`, response.statusCode);
    return true;
  }

  private async ensureContainer(): Promise<void> {
    const response = await this.call('PUT', null);
    await response.body.dump();
    if (response.statusCode !== 201 && response.statusCode !== 202) throw new SwiftError(`Swift refused to create container ${this.container} (HTTP ${response.statusCode})`, response.statusCode);
  }

  /** One request with the current token; a 401 (token expired or revoked) gets one retry with a new one. */
  private async call(method: Dispatcher.HttpMethod, name: string | null, headers: Record<string, string> = {}, body?: Uint8Array): Promise<Dispatcher.ResponseData> {
    for (let attempt = 1; ; attempt += 1) {
      const { token, storageUrl } = await this.token();
      const path = [this.container, ...(name === null ? [] : name.split('/'))].map(encodeURIComponent).join('/');
      const response = await request(`${storageUrl}/${path}`, { method, headers: { ...headers, 'x-auth-token': token }, body, ...this.timeouts(), dispatcher: this.auth.dispatcher });
      if (response.statusCode !== 401 || attempt === 2) {
        if (response.statusCode === 401) {
          await response.body.dump();
          throw new SwiftError(`Swift refused the token of ${this.auth.user} (HTTP 401)`, 401);
        }
        return response;
      }
      await response.body.dump();
      this.access = undefined;
    }
  }

  private token(): Promise<{ token: string; storageUrl: string }> {
    this.access ??= this.authenticate().catch((error: unknown) => {
      this.access = undefined;
      throw error;
    });
    return this.access;
  }

  private async authenticate(): Promise<{ token: string; storageUrl: string }> {
    const response = await request(this.auth.authUrl, { headers: { 'x-auth-user': this.auth.user, 'x-auth-key': this.auth.key.reveal() }, ...this.timeouts(), dispatcher: this.auth.dispatcher });
    await response.body.dump();
    const token = response.headers['x-auth-token'];
    const storageUrl = response.headers['x-storage-url'];
    if (response.statusCode >= 300 || typeof token !== 'string' || typeof storageUrl !== 'string') {
      throw new SwiftError(`Swift's auth at ${this.auth.authUrl} answered HTTP ${response.statusCode} for ${this.auth.user} without a token`, response.statusCode);
    }
    return { token, storageUrl: storageUrl.replace(/\/+$/, '') };
  }

  private timeouts() {
    const ms = this.auth.timeoutMs ?? 30_000;
    return { headersTimeout: ms, bodyTimeout: ms };
  }
}
