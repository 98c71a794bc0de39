import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { OperationError, UserError } from '../errors.js';
import { MANIFEST_NAME, parseManifest, renderManifest, type BackupManifest, type RestoreEntry } from '../plan/backup.js';
import { BACKUPS_FOLDER } from '../plan/operator-files.js';
import { onInterrupt } from '../util/interrupt.js';
import { ensurePrivateDir } from './secrets-store.js';

/**
 * The backup file on the operator's machine: a tar holding `manifest.json` first (app, accessory, type,
 * image, time, and the payload's size and SHA-256) and then the payload (`dump.rdb`, or `volume.tar`: Docker's
 * archive of the volume). Written to a temporary name and renamed, 0600; read back only after the checksum
 * of the whole payload matched.
 */

const MAX_MANIFEST = 1 << 20;

/** `.depl/backups/` beside depl.yaml, made 0700 like `.depl/` itself (whatever the umask, or an older folder). */
export async function ensureBackupsDir(root: string): Promise<string> {
  await ensurePrivateDir(root);
  const dir = path.resolve(root, BACKUPS_FOLDER);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return dir;
}

export interface PayloadFacts {
  size: number;
  sha256: string;
  /** The first 16 bytes (an RDB's magic and version). */
  head: Buffer;
}

/**
 * Streams the payload to a temporary file, then writes the backup file with the manifest `build` makes from
 * the payload's size, hash and first bytes (it may throw to refuse the payload); returns that manifest.
 */
export async function writeBackupFile(out: string, payloadName: string, payload: Readable, build: (facts: PayloadFacts) => BackupManifest, mtime = new Date()): Promise<BackupManifest> {
  const part = `${out}.part-${process.pid}`;
  const tmp = `${out}.tmp-${process.pid}`;
  const cleanup = async () => {
    await rm(part, { force: true });
    await rm(tmp, { force: true });
  };
  const unregister = onInterrupt(cleanup, `removing the unfinished ${out}`);
  try {
    const hash = createHash('sha256');
    let size = 0;
    let head = Buffer.alloc(0);
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        if (head.length < 16) head = Buffer.concat([head, chunk.subarray(0, 16 - head.length)]);
        done(null, chunk);
      },
    });
    await pipeline(payload, measure, createWriteStream(part, { mode: 0o600 }));
    const complete = build({ size, sha256: hash.digest('hex'), head });
    if (complete.payload.file !== payloadName || complete.payload.size !== size) throw new Error(`manifest for ${payloadName} does not describe the payload written`);
    const pack = tar.pack();
    const written = pipeline(pack, createWriteStream(tmp, { mode: 0o600 }));
    pack.entry({ name: MANIFEST_NAME, mode: 0o600, mtime }, renderManifest(complete));
    await pipeline(createReadStream(part), pack.entry({ name: complete.payload.file, size, mode: 0o600, mtime }));
    pack.finalize();
    await written;
    await rename(tmp, out);
    await rm(part, { force: true });
    return complete;
  } catch (error) {
    await cleanup();
    throw error;
  } finally {
    unregister();
  }
}

function invalid(file: string, problem: string): UserError {
  return new UserError(`${file} is not a usable depl backup: ${problem}`, 'Nothing was changed. Use a file written by `depl backup` (check it with `tar tvf`; manifest.json says what it holds).', 'BACKUP_FILE_INVALID');
}

/**
 * Reads the whole file: the manifest must come first and be valid, the payload must follow with the size and
 * SHA-256 the manifest records, and nothing else may be in it. A damaged file is a UserError (exit 2).
 */
export async function verifyBackupFile(file: string): Promise<{ manifest: BackupManifest; head: Buffer }> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new UserError(`cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, 'Give the path of a file written by `depl backup`.', 'BACKUP_FILE_MISSING');
  });
  await handle.close();
  let manifest: BackupManifest | undefined;
  let payloadSeen: { size: number; sha256: string; head: Buffer } | undefined;
  let problem: string | undefined;
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const fail = (why: string) => {
      problem ??= why;
      stream.resume();
      stream.on('end', () => next());
    };
    if (manifest === undefined && problem === undefined) {
      if (header.name !== MANIFEST_NAME) return fail(`its first entry is ${JSON.stringify(header.name)}, not ${MANIFEST_NAME}`);
      if ((header.size ?? 0) > MAX_MANIFEST) return fail(`${MANIFEST_NAME} is too large`);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const parsed = parseManifest(Buffer.concat(chunks).toString('utf8'));
        if (parsed.ok) manifest = parsed.manifest;
        else problem ??= parsed.problem;
        next();
      });
      return;
    }
    if (manifest === undefined || payloadSeen !== undefined) return fail(`unexpected entry ${JSON.stringify(header.name)}`);
    if (header.name !== manifest.payload.file) return fail(`the manifest names ${manifest.payload.file} but the file holds ${JSON.stringify(header.name)}`);
    const hash = createHash('sha256');
    let size = 0;
    let head = Buffer.alloc(0);
    stream.on('data', (c: Buffer) => {
      hash.update(c);
      size += c.length;
      if (head.length < 16) head = Buffer.concat([head, c.subarray(0, 16 - head.length)]);
    });
    stream.on('end', () => {
      payloadSeen = { size, sha256: hash.digest('hex'), head };
      next();
    });
  });
  try {
    await pipeline(createReadStream(file), extract);
  } catch (error) {
    throw invalid(file, `it is not a complete tar archive (${(error as Error).message})`);
  }
  if (problem !== undefined) throw invalid(file, problem);
  if (manifest === undefined) throw invalid(file, `it holds no ${MANIFEST_NAME}`);
  if (payloadSeen === undefined) throw invalid(file, `it holds no ${manifest.payload.file}`);
  if (payloadSeen.size !== manifest.payload.size) throw invalid(file, `${manifest.payload.file} has ${payloadSeen.size} bytes, the manifest says ${manifest.payload.size} (truncated or altered)`);
  if (payloadSeen.sha256 !== manifest.payload.sha256) throw invalid(file, `the SHA-256 of ${manifest.payload.file} does not match the manifest's (the data was altered or damaged)`);
  return { manifest, head: payloadSeen.head };
}

/** The payload of a (verified) backup file as a stream. */
export function openPayload(file: string, name: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const source = createReadStream(file);
    const extract = tar.extract();
    let found = false;
    extract.on('entry', (header, stream, next) => {
      stream.on('end', () => next());
      if (header.name === name && !found) {
        found = true;
        resolve(stream);
      } else {
        stream.resume();
      }
    });
    extract.on('finish', () => { if (!found) reject(new OperationError(`${file} holds no ${name}`, undefined, 'BACKUP_PAYLOAD')); });
    extract.on('error', reject);
    source.on('error', reject);
    source.pipe(extract);
  });
}

/** The owner of the first entry of a volume copy (the volume's root directory), for files written beside it. */
export async function volumeRootOwner(file: string, name: string): Promise<{ uid: number; gid: number }> {
  const payload = await openPayload(file, name);
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    let done = false;
    extract.on('entry', (header, stream, next) => {
      if (!done) {
        done = true;
        resolve({ uid: header.uid ?? 0, gid: header.gid ?? 0 });
      }
      stream.resume();
      stream.on('end', () => next());
    });
    extract.on('finish', () => { if (!done) resolve({ uid: 0, gid: 0 }); });
    extract.on('error', reject);
    payload.pipe(extract);
  });
}

/** A tar of the files a Redis restore writes, each file's content streamed from the backup's RDB. */
export function redisRestoreArchive(entries: RestoreEntry[], backupFile: string, manifest: BackupManifest, owner: { uid: number; gid: number }, mtime: Date): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  void (async () => {
    for (const entry of entries) {
      const header = { name: entry.name, mode: entry.mode, uid: owner.uid, gid: owner.gid, mtime };
      if (entry.type === 'directory') {
        pack.entry({ ...header, type: 'directory' });
      } else if (entry.content !== undefined && 'text' in entry.content) {
        pack.entry({ ...header, type: 'file' }, entry.content.text);
      } else {
        const rdb = await openPayload(backupFile, manifest.payload.file);
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ ...header, type: 'file', size: manifest.payload.size }, (error) => (error ? reject(error) : resolve()));
          rdb.on('error', reject);
          rdb.pipe(sink);
        });
      }
    }
    pack.finalize();
  })().catch((error: Error) => out.destroy(error));
  return out;
}
