import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';

/**
 * The images a synthetic site serves (SiteOptions.images): real files of every type the crawler reads, built
 * here byte by byte so a test knows each one's exact hash, type and size. Several URLs share one content
 * (duplicates to merge); some servers lie in Content-Type; one ".jpg" is HTML; one file is too large.
 */
export interface SyntheticImage {
  bytes: Buffer;
  /** What the server says; the crawler must not believe it. */
  contentType: string;
  /** What the bytes are, or null when they are no image. */
  type: 'png' | 'jpeg' | 'gif' | 'webp' | 'svg' | null;
  width: number | null;
  height: number | null;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid truecolor PNG of one colour. */
export function png(width: number, height: number, shade: number): Buffer {
  const row = Buffer.alloc(width * 3, shade % 256);
  return truecolorPng(width, height, () => row);
}

/** A valid truecolor PNG whose row y holds the width * 3 bytes `rowAt(y)` gives (RGB, unfiltered). */
export function truecolorPng(width: number, height: number, rowAt: (y: number) => Buffer): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: height }, (_, y) => [Buffer.from([0]), rowAt(y)]).flat()));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}

/** A JPEG's header as far as its frame (SOF0): what a reader needs for the type and the size. */
export function jpeg(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.from([0xff, 0xd9])]);
}

export function gif(width: number, height: number): Buffer {
  return Buffer.concat([Buffer.from('GIF89a'), Buffer.from([width & 0xff, width >> 8, height & 0xff, height >> 8, 0, 0, 0]), Buffer.from([0x3b])]);
}

/** An extended-format WebP header (VP8X): the canvas size, minus one, in 24-bit fields. */
export function webp(width: number, height: number): Buffer {
  const vp8x = Buffer.alloc(10);
  vp8x.writeUIntLE(width - 1, 4, 3);
  vp8x.writeUIntLE(height - 1, 7, 3);
  const body = Buffer.concat([Buffer.from('WEBP'), Buffer.from('VP8X'), Buffer.from([10, 0, 0, 0]), vp8x]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(body.length);
  return Buffer.concat([Buffer.from('RIFF'), size, body]);
}

export function svg(width: number, height: number): Buffer {
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="${width}" height="${height}" fill="teal"/></svg>\n`);
}

/** Bytes above the size the image tests allow (maxImageBytes 100,000). */
export const HUGE_IMAGE_BYTES = 300_000;

/** The image at `path` on a site with `images: true`, or undefined (404). Page i names the ones of its own i. */
export function syntheticImage(path: string): SyntheticImage | undefined {
  if (path === '/img/logo.png') return { bytes: png(16, 16, 200), contentType: 'image/png', type: 'png', width: 16, height: 16 };
  if (path === '/big/huge.png') return { bytes: Buffer.concat([png(1, 1, 0), Buffer.alloc(HUGE_IMAGE_BYTES)]), contentType: 'image/png', type: 'png', width: 1, height: 1 };
  const match = /^\/(?:(og)\/(\d+)\.png|(?:p|based)\/img\/p(\d+)\.png|(abs)\/(\d+)\.jpg|s\/(\d+)-(1x|2x)\.png|pic\/(\d+)-(wide|narrow)\.webp|(pic)\/(\d+)\.jpg)$/.exec(path);
  if (match === null) return undefined;
  const [, og, ogI, pI, abs, absI, sI, density, picI, width, plain, plainI] = match;
  // the page's own picture, also served as its og:image: one content at two URLs
  if (og !== undefined || pI !== undefined) {
    const i = Number(ogI ?? pI);
    return { bytes: png(10 + i, 20 + i, i), contentType: 'image/png', type: 'png', width: 10 + i, height: 20 + i };
  }
  // JPEG bytes the server calls PNG
  if (abs !== undefined) return { bytes: jpeg(30 + Number(absI), 40 + Number(absI)), contentType: 'image/png', type: 'jpeg', width: 30 + Number(absI), height: 40 + Number(absI) };
  if (density === '1x') return { bytes: gif(5 + Number(sI), 7), contentType: 'image/png', type: 'gif', width: 5 + Number(sI), height: 7 };
  if (density === '2x') return { bytes: svg(2 * (5 + Number(sI)), 14), contentType: 'application/octet-stream', type: 'svg', width: 2 * (5 + Number(sI)), height: 14 };
  if (width === 'wide') return { bytes: webp(800, 400 + Number(picI)), contentType: 'image/webp', type: 'webp', width: 800, height: 400 + Number(picI) };
  // the logo again, under another name on every page
  if (width === 'narrow') return syntheticImage('/img/logo.png');
  // an HTML error page answered with 200 and an image type
  if (plain !== undefined) return { bytes: Buffer.from(`<!doctype html><title>not found ${plainI}</title>`), contentType: 'image/jpeg', type: null, width: null, height: null };
  return undefined;
}

export const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * A site of image pages on a free loopback port: `images` (path -> bytes, sent as `contentType`, image/png by
 * default) and `pages` (path -> HTML), by default one page at / with an <img> tag per image. Paths are compared
 * decoded, so a test may name files with characters a URL escapes. Anything else is 404. `beforeImage`, when given,
 * is awaited before an image is answered: a test holds a download in flight while it does what races with it.
 */
export async function serveImagePage(images: Map<string, Buffer>, options: { pages?: Record<string, string>; contentType?: string; beforeImage?: (path: string) => Promise<void> } = {}): Promise<{ origin: string; close(): Promise<void> }> {
  const pages = options.pages ?? { '/': [...images.keys()].map((p) => `<img src="${p}">`).join('') };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(req.url!);
    const bytes = images.get(path);
    if (pages[path] !== undefined) res.writeHead(200, { 'content-type': 'text/html' }).end(pages[path]);
    else if (bytes !== undefined) {
      const answer = () => res.writeHead(200, { 'content-type': options.contentType ?? 'image/png' }).end(bytes);
      if (options.beforeImage === undefined) answer();
      else void options.beforeImage(path).then(answer);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
