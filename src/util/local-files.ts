import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A file on this machine written whole or not at all (a temporary beside it, renamed in), the way a
 * Remote's writeFileAtomic promises, for the Remotes whose files are local (LocalRemote, the renewal task's
 * edge folder).
 */
export async function writeLocalFileAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(temp, content, { mode });
  await rename(temp, file);
}

/** A local file's text, or null when there is none (a Remote's readFile). */
export async function readLocalFile(file: string): Promise<string | null> {
  return readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
}
