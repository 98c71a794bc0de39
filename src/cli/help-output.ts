import { fstatSync, writeSync } from 'node:fs';
import type { OutputConfiguration } from 'commander';

/**
 * Where commander writes `--help` and `--version` text. Into a pipe or a file (a script, `| less`, the
 * bench) the text goes straight to fd 1: touching process.stdout would build a stream and load Node's
 * net and stream modules, a tenth of `depl --help`'s start. A terminal (or /dev/null: both are character
 * devices) keeps commander's own process.stdout output, for its width and colours.
 */
export function helpOutput(): OutputConfiguration {
  if (fdIsCharacterDevice(1)) return {};
  return {
    writeOut: writeToFd1,
    // what commander would answer for a stdout that is no terminal, without building the stream to ask it
    getOutHelpWidth: () => 80,
    getOutHasColors: () => false,
  };
}

function fdIsCharacterDevice(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice();
  } catch {
    return true; // nothing to inspect: leave it to process.stdout, as before
  }
}

function writeToFd1(text: string): void {
  const bytes = Buffer.from(text);
  let written = 0;
  try {
    while (written < bytes.length) written += writeSync(1, bytes, written);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // the reader went away (`depl --help | head -1`): nothing left to write to
    if (code === 'EPIPE') return;
    // a full non-blocking pipe: the stream waits until it drains
    if (code === 'EAGAIN') process.stdout.write(bytes.subarray(written));
    else throw error;
  }
}
