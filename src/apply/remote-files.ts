import type { Remote } from './remote.js';

/** The files' texts (null for each that does not exist): in one round trip where the remote can, else one by one. */
export function readFiles(remote: Remote, files: readonly string[]): Promise<Array<string | null>> {
  return remote.readFiles !== undefined ? remote.readFiles(files) : Promise.all(files.map((file) => remote.readFile(file)));
}
