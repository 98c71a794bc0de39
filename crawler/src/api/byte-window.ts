import { Transform } from 'node:stream';

/** Passes on bytes `start`..`end` (inclusive) of what flows through it, drops the rest. */
export function byteWindow(start: number, end: number): Transform {
  let position = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const from = Math.max(0, start - position);
      const to = Math.min(chunk.length, end + 1 - position);
      position += chunk.length;
      done(null, to > from ? chunk.subarray(from, to) : undefined);
    },
  });
}
