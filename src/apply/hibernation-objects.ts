import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, rename, rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OperationError } from '../errors.js';
import { HIBERNATION_RECORD_OBJECT } from '../plan/hibernation.js';
import { SwiftClient, type ObjectStoreAuth } from './openstack/swift.js';

/**
 * The Swift container where depl hibernate keeps a copy of its backups (the cluster's own, private: Swift gives
 * no one else access to a container without an ACL, and depl sets none), and where depl wake fetches one this
 * machine does not have. Every object's MD5 is checked both ways: Swift's ETag against the bytes sent, and the
 * bytes fetched against the MD5 the hibernation record keeps.
 */
export interface BackupObjects {
  container: string;
  /** The account's storage URL, for messages and the record. */
  endpoint: string;
  /** Uploads the file as the object; returns its MD5 (hex), which Swift confirmed. */
  upload(file: string, object: string): Promise<string>;
  /** Whether Swift holds the object with that MD5. */
  has(object: string, md5: string): Promise<boolean>;
  /** Downloads the object to the file (0600), refusing bytes whose MD5 is not `md5`; nothing is left at `file` when it fails. */
  download(object: string, md5: string, file: string): Promise<void>;
  /**
   * The hibernation record's copy in the container (HIBERNATION_RECORD_OBJECT): its text, its bytes' MD5 checked
   * against Swift's ETag (OBJECT_STORE_CORRUPT when they differ); null when Swift has none.
   */
  readRecord(): Promise<string | null>;
  /** Writes the record's copy (sent with its MD5, which Swift checks: 422 on changed bytes). */
  writeRecord(text: string): Promise<void>;
  /** Removes the record's copy; a copy already gone is not an error. */
  removeRecord(): Promise<void>;
}

export async function swiftBackupObjects(auth: ObjectStoreAuth, container: string): Promise<BackupObjects> {
  const client = new SwiftClient(auth);
  const { storageUrl } = await auth.access();
  return {
    container,
    endpoint: storageUrl,
    async upload(file, object) {
      const { size } = await stat(file);
      return client.putObject(container, object, createReadStream(file), { bytes: size, contentType: 'application/octet-stream' });
    },
    async has(object, md5) {
      const found = await client.headObject(container, object);
      return found !== null && found.etag === md5;
    },
    async download(object, md5, file) {
      const found = await client.getObject(container, object);
      if (found === null) {
        throw new OperationError(`Swift has no object ${container}/${object}, which the hibernation record names`, 'Copy the backup from the machine that ran depl hibernate into .depl/backups/, then run depl wake again.', 'WAKE_BACKUP_MISSING');
      }
      const hash = createHash('md5');
      const part = `${file}.part`;
      try {
        await pipeline(found.stream, new Transform({ transform(chunk: Buffer, _encoding, done) { hash.update(chunk); done(null, chunk); } }), createWriteStream(part, { mode: 0o600 }));
        const got = hash.digest('hex');
        if (got !== md5) {
          throw new OperationError(`${container}/${object} from Swift has MD5 ${got}, but the hibernation record says ${md5}`, 'The object changed since depl hibernate uploaded it; find the right backup before waking.', 'OBJECT_STORE_CORRUPT');
        }
        await chmod(part, 0o600);
        await rename(part, file);
      } catch (error) {
        await rm(part, { force: true });
        throw error;
      }
    },
    async readRecord() {
      const found = await client.getObject(container, HIBERNATION_RECORD_OBJECT);
      if (found === null) return null;
      const chunks: Buffer[] = [];
      for await (const chunk of found.stream) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      const got = createHash('md5').update(bytes).digest('hex');
      if (got !== found.etag) {
        throw new OperationError(`${container}/${HIBERNATION_RECORD_OBJECT} from Swift has MD5 ${got}, but Swift's ETag says ${found.etag}`,
          'The hibernation record in Swift is damaged; wake from the machine that ran depl hibernate (its .depl/hibernation.json), which writes Swift\'s copy again.', 'OBJECT_STORE_CORRUPT');
      }
      return bytes.toString('utf8');
    },
    async writeRecord(text) {
      await client.putObject(container, HIBERNATION_RECORD_OBJECT, Buffer.from(text, 'utf8'), { contentType: 'application/json' });
    },
    async removeRecord() {
      await client.deleteObject(container, HIBERNATION_RECORD_OBJECT);
    },
  };
}
