import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The image store `directory` (image-store.ts; the default is `redis`): contents under `images.storePath`, named by their SHA-256: the same
 * content found at several URLs (or by several jobs) is one file. A file appears whole or not at all (written
 * under a temporary name, then renamed), so a worker killed mid-write leaves no half image behind a name.
 * The API reads the same directory: the services that share a store must share the path (one node's volume,
 * or a shared mount). Who holds which content is kept in Redis (image-store.ts, DirectoryImageStore), so that
 * deleting a job removes only the files no other job holds.
 */
export class BlobStore {
  constructor(readonly root: string) {}

  /** The location of a content, relative to the store: sha256/ab/abcdef....png */
  static locationOf(sha256: string, extension: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256) || !/^[a-z0-9]{1,8}$/.test(extension)) throw new Error(`not a content name: ${sha256}.${extension}`);
    return `sha256/${sha256.slice(0, 2)}/${sha256}.${extension}`;
  }

  /** Stores the bytes once; returns the location and whether this call wrote them. */
  async put(sha256: string, extension: string, bytes: Uint8Array): Promise<{ location: string; written: boolean }> {
    const location = BlobStore.locationOf(sha256, extension);
    const file = path.join(this.root, location);
    if (await this.has(location)) return { location, written: false };
    await mkdir(path.dirname(file), { recursive: true });
    const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
    try {
      await writeFile(temporary, bytes, { mode: 0o644 });
      await rename(temporary, file);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    return { location, written: true };
  }

  /** Removes a stored content; false when it was not there. */
  async remove(location: string): Promise<boolean> {
    try {
      await unlink(this.fileOf(location));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  async has(location: string): Promise<boolean> {
    try {
      return (await stat(this.fileOf(location))).isFile();
    } catch {
      return false;
    }
  }

  /** A stream of a stored content and its size; null when it is not (or no longer) there. */
  async open(location: string): Promise<{ stream: ReadStream; bytes: number } | null> {
    const file = this.fileOf(location);
    try {
      const info = await stat(file);
      if (!info.isFile()) return null;
      return { stream: createReadStream(file), bytes: info.size };
    } catch {
      return null;
    }
  }

  /** Only locations this store makes are opened: a stored record can never name a path outside the store. */
  private fileOf(location: string): string {
    if (!/^sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\.[a-z0-9]{1,8}$/.test(location)) throw new Error(`not a location in the image store: ${location.slice(0, 100)}`);
    return path.join(this.root, location);
  }
}
