import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { byteWindow } from '../../../crawler/src/api/byte-window.js';
import { contentRangeStart, rangeFor } from '../../../crawler/src/core/byte-range.js';

const ETAG = '"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"';

describe('byte ranges of a stored file (RFC 9110 14.2-14.4)', () => {
  it('serves one range, a suffix or an open end, clipped to the file', () => {
    expect(rangeFor('bytes=0-99', undefined, ETAG, 1000)).toEqual({ kind: 'part', start: 0, end: 99 });
    expect(rangeFor('bytes=400-', undefined, ETAG, 1000)).toEqual({ kind: 'part', start: 400, end: 999 });
    expect(rangeFor('bytes=900-5000', undefined, ETAG, 1000)).toEqual({ kind: 'part', start: 900, end: 999 });
    expect(rangeFor('bytes=-100', undefined, ETAG, 1000)).toEqual({ kind: 'part', start: 900, end: 999 });
    expect(rangeFor('bytes=-5000', undefined, ETAG, 1000)).toEqual({ kind: 'part', start: 0, end: 999 });
    expect(rangeFor('Bytes = 10 - 19', undefined, ETAG, 1000)).toEqual({ kind: 'part', start: 10, end: 19 });
  });

  it('answers 416 for a range that starts past the end, and the whole file for what it does not serve', () => {
    expect(rangeFor('bytes=1000-', undefined, ETAG, 1000)).toEqual({ kind: 'unsatisfiable' });
    expect(rangeFor('bytes=-0', undefined, ETAG, 1000)).toEqual({ kind: 'unsatisfiable' });
    expect(rangeFor(undefined, undefined, ETAG, 1000)).toEqual({ kind: 'whole' });
    for (const ignored of ['bytes=0-1,5-9', 'items=0-9', 'bytes=9-1', 'bytes=-', 'bytes=a-b']) expect(rangeFor(ignored, undefined, ETAG, 1000), ignored).toEqual({ kind: 'whole' });
  });

  it('serves the range only when If-Range is this file\'s own strong ETag', () => {
    expect(rangeFor('bytes=400-', ETAG, ETAG, 1000)).toEqual({ kind: 'part', start: 400, end: 999 });
    expect(rangeFor('bytes=400-', `W/${ETAG}`, ETAG, 1000)).toEqual({ kind: 'whole' });
    expect(rangeFor('bytes=400-', '"another"', ETAG, 1000)).toEqual({ kind: 'whole' });
    expect(rangeFor('bytes=400-', 'Sun, 06 Dec 2026 21:00:00 GMT', ETAG, 1000)).toEqual({ kind: 'whole' });
  });

  it('reads where a 206 answer starts from its Content-Range', () => {
    expect(contentRangeStart('bytes 400-999/1000')).toBe(400);
    expect(contentRangeStart('bytes 0-0/*')).toBe(0);
    expect(contentRangeStart('bytes */1000')).toBeNull();
    expect(contentRangeStart(undefined)).toBeNull();
  });

  it('cuts the part out of the stored file as it streams, whatever the chunks', async () => {
    const file = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const windowOf = async (start: number, end: number, chunk: number) => {
      const pieces = Array.from({ length: Math.ceil(file.length / chunk) }, (_, i) => file.subarray(i * chunk, (i + 1) * chunk));
      const out: Buffer[] = [];
      for await (const piece of Readable.from(pieces).pipe(byteWindow(start, end))) out.push(piece as Buffer);
      return Buffer.concat(out);
    };
    for (const chunk of [1, 7, 100]) {
      expect(await windowOf(0, 99, chunk), `chunks of ${chunk}`).toEqual(file);
      expect(await windowOf(40, 99, chunk), `chunks of ${chunk}`).toEqual(file.subarray(40));
      expect(await windowOf(13, 13, chunk), `chunks of ${chunk}`).toEqual(file.subarray(13, 14));
      expect(await windowOf(90, 94, chunk), `chunks of ${chunk}`).toEqual(file.subarray(90, 95));
    }
  });
});
