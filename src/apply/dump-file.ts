import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * A database dump written as it streams in: to `<file>.partial` (0600, in a 0700 folder: it holds the data), and
 * renamed to `<file>` only once the dump ended well, so a file under its final name is always a whole dump.
 */
export interface DumpFile {
  write(chunk: Uint8Array): void;
  /** Flushes and gives the dump its final name. */
  commit(): Promise<void>;
  /** Removes the partial file. */
  discard(): Promise<void>;
}

export async function openDumpFile(file: string): Promise<DumpFile> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const partial = `${file}.partial`;
  const stream = createWriteStream(partial, { mode: 0o600 });
  let failure: Error | undefined;
  stream.on('error', (error) => {
    failure = error;
  });
  const closed = () => new Promise<void>((resolve) => stream.end(resolve));
  return {
    write(chunk) {
      stream.write(chunk);
    },
    async commit() {
      await closed();
      if (failure !== undefined) throw failure;
      await rename(partial, file);
    },
    async discard() {
      await closed();
      await rm(partial, { force: true });
    },
  };
}
