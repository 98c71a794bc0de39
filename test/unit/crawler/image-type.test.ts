import { describe, expect, it } from 'vitest';
import { readImageFacts, sniffImageType } from '../../../crawler/src/core/image-type.js';
import { filterImageFiles } from '../../../crawler/src/core/image-files.js';
import type { ImageFile } from '../../../crawler/src/jobs.js';
import { gif, jpeg, png, svg, webp } from '../../support/synthetic-images.js';

describe('image type and size from the bytes', () => {
  it('reads PNG, JPEG, GIF, WebP and SVG, whatever the name or header said', () => {
    expect(readImageFacts(png(13, 23, 1))).toEqual({ type: 'png', width: 13, height: 23 });
    expect(readImageFacts(jpeg(33, 43))).toEqual({ type: 'jpeg', width: 33, height: 43 });
    expect(readImageFacts(gif(8, 7))).toEqual({ type: 'gif', width: 8, height: 7 });
    expect(readImageFacts(webp(800, 403))).toEqual({ type: 'webp', width: 800, height: 403 });
    expect(readImageFacts(svg(16, 14))).toEqual({ type: 'svg', width: 16, height: 14 });
  });

  it('refuses what is no image: HTML error pages, text, empty bodies', () => {
    expect(sniffImageType(Buffer.from('<!doctype html><title>404</title>'))).toBeNull();
    expect(sniffImageType(Buffer.from('<html><svg></svg></html>'))).toBeNull();
    expect(sniffImageType(Buffer.alloc(0))).toBeNull();
    expect(readImageFacts(Buffer.from('GIF8'))).toBeNull();
  });

  it('knows the type of a damaged file but not its size', () => {
    expect(readImageFacts(png(10, 10, 0).subarray(0, 12))).toEqual({ type: 'png', width: null, height: null });
  });
});

describe('file filters', () => {
  const file = (type: ImageFile['type'], bytes: number, width: number | null): ImageFile => ({ sha256: `${type}${bytes}`, type, bytes, width, height: width, location: '', urls: [] });
  const files = [file('png', 100, 10), file('jpeg', 5000, 400), file('svg', 300, null)];
  it('by type and by bytes and pixels, a file of unknown size failing a pixel bound', () => {
    expect(filterImageFiles(files, { type: ['png', 'svg'] }).map((f) => f.type)).toEqual(['png', 'svg']);
    expect(filterImageFiles(files, { minBytes: 200, maxBytes: 4000 }).map((f) => f.type)).toEqual(['svg']);
    expect(filterImageFiles(files, { minWidth: 1 }).map((f) => f.type)).toEqual(['png', 'jpeg']);
  });
});
