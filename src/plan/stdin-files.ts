import { posix } from 'node:path';
import { quote } from './shell.js';

/** A file a command writes from its stdin (stdinFilesLine). */
export interface StdinFile {
  file: string;
  content: string | Buffer;
  mode: number;
  /** Keep the file it replaces as `<file>.previous` (the way back); none when there was none. */
  keepPrevious?: boolean;
}

/**
 * One shell line that writes several files, in order, from one stdin: each from exactly its own number of
 * bytes (`dd ... iflag=fullblock` reads no further), so several writes cost one command on the node (one SSH
 * round trip) and still happen one after the other. Each file goes to `<file>.next` (never readable beyond its
 * mode, not even while written), is checked to hold all its bytes and is then renamed in: a reader sees the old
 * or the new file, never half of one. A stdin cut short (the connection dropped mid-way) fails that file's
 * check: it and every file after it stay as they were, and the line exits non-zero.
 */
export function stdinFilesLine(files: readonly StdinFile[]): { line: string; stdin: Buffer } {
  const parts = files.map((f) => ({ ...f, bytes: Buffer.from(f.content) }));
  const line = parts.map(({ file, mode, keepPrevious, bytes }) => {
    const next = quote(`${file}.next`);
    const folder = quote(posix.dirname(file));
    const read = bytes.length === 0 ? `: > ${next}` : `dd bs=${bytes.length} count=1 iflag=fullblock status=none > ${next}`;
    const keep = keepPrevious === true ? ` && ${keepPreviousLine(file)}` : '';
    return `{ { [ -d ${folder} ] || mkdir -p ${folder}; } && (umask 077 && ${read}) && [ "$(wc -c < ${next})" -eq ${bytes.length} ] && chmod ${mode.toString(8)} ${next}${keep} && mv -f ${next} ${quote(file)} || { rm -f ${next}; false; }; }`;
  }).join(' && ');
  return { line, stdin: Buffer.concat(parts.map((p) => p.bytes)) };
}

/** Copies `file` to `<file>.previous`, or removes a stale `.previous` when there is no file (so none is mistaken for the way back). */
export function keepPreviousLine(file: string): string {
  return `if [ -f ${quote(file)} ]; then cp -p ${quote(file)} ${quote(`${file}.previous`)}; else rm -f ${quote(`${file}.previous`)}; fi`;
}
