import { createHash } from 'node:crypto';
import type http from 'node:http';

/**
 * The Swift subset depl uses (src/apply/openstack/swift.ts), served by the emulator itself at
 * `/object-store/v1/AUTH_<project>` when its catalog is asked for one (`services.objectStore: 'emulated'`):
 * containers made by PUT (201 new, 202 there), objects written whole with their MD5 as ETag (a PUT whose ETag
 * header does not match the bytes is 422, as Swift answers), read (GET, HEAD: 404 when absent), deleted (204,
 * 404). Tokens are the emulator's Keystone tokens, scoped to the project (401 otherwise). test/support/swift.ts
 * is a real Swift, for the integration tests; this one is for unit tests, which start no Python processes.
 */
export class EmulatedSwift {
  private readonly containers = new Map<string, Map<string, { bytes: Buffer; etag: string; contentType: string; lastModified: string }>>();

  constructor(private readonly account: string) {}

  /** The account's path (what the catalog's object-store URL ends with). */
  get accountPath(): string {
    return `/object-store/v1/${this.account}`;
  }

  /** The object's bytes, or undefined. */
  object(container: string, name: string): Buffer | undefined {
    return this.containers.get(container)?.get(name)?.bytes;
  }

  /** Object names of a container (empty when it does not exist). */
  names(container: string): string[] {
    return [...(this.containers.get(container)?.keys() ?? [])].sort();
  }

  /**
   * Replaces an object's bytes keeping its recorded ETag, as a disk's bit rot or a bug in a proxy would leave it:
   * the MD5 checks of a reader are what catch it.
   */
  corrupt(container: string, name: string, bytes: Buffer): void {
    const found = this.containers.get(container)?.get(name);
    if (found === undefined) throw new Error(`no object ${container}/${name}`);
    found.bytes = bytes;
  }

  /** Answers a request under accountPath; `authorized`: its token is a valid one of the project. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Buffer, authorized: boolean): number {
    const answer = (status: number, headers: Record<string, string> = {}, payload: Buffer | string = '') => {
      const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
      res.writeHead(status, { 'content-length': String(bytes.byteLength), 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(req.method === 'HEAD' ? undefined : bytes);
      return status;
    };
    if (!authorized) return answer(401, {}, '<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>');
    const parts = path.slice(this.accountPath.length).split('/').filter((p) => p !== '').map(decodeURIComponent);
    const [container, ...rest] = parts;
    const name = rest.join('/');
    if (container === undefined) return answer(204);
    const method = req.method ?? 'GET';
    if (name === '') {
      if (method === 'PUT') {
        if (this.containers.has(container)) return answer(202);
        this.containers.set(container, new Map());
        return answer(201);
      }
      if (method === 'GET' || method === 'HEAD') {
        const objects = this.containers.get(container);
        if (objects === undefined) return answer(404);
        const listing = [...objects.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([n, o]) => ({ name: n, bytes: o.bytes.byteLength, hash: o.etag, content_type: o.contentType, last_modified: o.lastModified }));
        return answer(200, { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify(listing));
      }
      return answer(405);
    }
    const objects = this.containers.get(container);
    if (objects === undefined) return answer(404);
    if (method === 'PUT') {
      const etag = createHash('md5').update(body).digest('hex');
      const sent = req.headers.etag?.replace(/"/g, '');
      if (sent !== undefined && sent !== etag) return answer(422, {}, 'Unprocessable Entity');
      objects.set(name, { bytes: body, etag, contentType: req.headers['content-type'] ?? 'application/octet-stream', lastModified: new Date().toUTCString() });
      return answer(201, { etag });
    }
    const found = objects.get(name);
    if (method === 'GET' || method === 'HEAD') {
      if (found === undefined) return answer(404);
      return answer(200, { etag: found.etag, 'content-type': found.contentType, 'last-modified': found.lastModified }, found.bytes);
    }
    if (method === 'DELETE') {
      if (found === undefined) return answer(404);
      objects.delete(name);
      return answer(204);
    }
    return answer(405);
  }
}
