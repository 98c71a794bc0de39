import { png, svg, truecolorPng } from './synthetic-images.js';

/**
 * The images a benchmark site serves (SiteOptions.benchImages): every image its pages name is a whole, decodable
 * file (PNG, baseline JPEG, GIF, SVG), sent with its true Content-Type, with dimensions no other file of its
 * type has, and the same for every run (no randomness). Duplicates as on real sites: the logo at one URL and,
 * under another name, on every page; a page's picture also as its og:image. The test images
 * (synthetic-images.ts) are headers only or lie about their type on purpose; these are what a crawl of real
 * pages downloads, for a benchmark that has two crawlers download and hash them.
 */
export interface BenchImage {
  bytes: Buffer;
  contentType: string;
}

/** Page i's images get dimensions from i: a bijection, so no two pages' files of one kind share a size. */
const across = (i: number) => i % 50;
const down = (i: number) => Math.floor(i / 50);

/** The image at `path` (the paths synthetic-site.ts pages name), or undefined (404). */
export function benchImage(path: string): BenchImage | undefined {
  if (path === '/img/logo.png') return { bytes: png(16, 16, 200), contentType: 'image/png' };
  const match = /^\/(?:og\/(\d+)\.png|(?:p|based)\/img\/p(\d+)\.png|abs\/(\d+)\.jpg|s\/(\d+)-(1x|2x)\.png|pic\/(\d+)-(wide|narrow)\.webp|pic\/(\d+)\.jpg)$/.exec(path);
  if (match === null) return undefined;
  const [, ogI, pI, absI, sI, density, picI, width, plainI] = match;
  // the page's own picture, also its og:image: one content at two URLs; noise, so it weighs what a photo's thumbnail does
  if (ogI !== undefined || pI !== undefined) {
    const i = Number(ogI ?? pI);
    return { bytes: noisePng(40 + across(i), 30 + down(i), i), contentType: 'image/png' };
  }
  if (absI !== undefined) return { bytes: greyJpeg(100 + across(Number(absI)), 30 + down(Number(absI))), contentType: 'image/jpeg' };
  if (plainI !== undefined) return { bytes: greyJpeg(200 + across(Number(plainI)), 30 + down(Number(plainI))), contentType: 'image/jpeg' };
  if (density === '1x') return { bytes: solidGif(20 + across(Number(sI)), 20 + down(Number(sI)), Number(sI)), contentType: 'image/gif' };
  if (density === '2x') return { bytes: svg(2 * (20 + across(Number(sI))), 2 * (20 + down(Number(sI)))), contentType: 'image/svg+xml' };
  if (width === 'wide') return { bytes: png(300 + across(Number(picI)), 30 + down(Number(picI)), Number(picI)), contentType: 'image/png' };
  // the logo again, under another name on every page
  return benchImage('/img/logo.png');
}

/** A PNG of pseudo-random pixels (xorshift32 from `seed`): deflate cannot shrink it, as with a photograph. */
export function noisePng(width: number, height: number, seed: number): Buffer {
  let state = (seed * 2654435761 + 1) >>> 0 || 1;
  return truecolorPng(width, height, () => {
    const row = Buffer.alloc(width * 3);
    for (let x = 0; x < row.length; x++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      row[x] = state & 0xff;
    }
    return row;
  });
}

/**
 * A baseline JPEG, one grey channel, every 8x8 block mid-grey: its Huffman tables have one code each (DC
 * difference 0, end of block), so a block is two 0 bits. Decodable by any JPEG reader.
 */
export function greyJpeg(width: number, height: number): Buffer {
  const segment = (marker: number, body: number[]) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
  const oneCodeTable = (classAndId: number) => segment(0xc4, [classAndId, 1, ...Array<number>(15).fill(0), 0x00]);
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const data = Buffer.alloc(Math.ceil((2 * blocks) / 8));
  // the last byte's unused bits are 1s (padding, ITU T.81 F.1.2.3)
  const usedBits = (2 * blocks) % 8;
  if (usedBits > 0) data[data.length - 1] = 0xff >> usedBits;
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    Buffer.from(segment(0xe0, [...Buffer.from('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0])),
    Buffer.from(segment(0xdb, [0x00, ...Array<number>(64).fill(1)])),
    Buffer.from(segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0])),
    Buffer.from(oneCodeTable(0x00)),
    Buffer.from(oneCodeTable(0x10)),
    Buffer.from(segment(0xda, [1, 1, 0x00, 0, 63, 0])),
    data,
    Buffer.from([0xff, 0xd9]),
  ]);
}

/**
 * A GIF89a of one colour (a two-colour table, every pixel index 0). The LZW stream sends a clear code before every
 * second pixel, so its codes stay 3 bits wide and no table is built: valid for every GIF decoder, if not small.
 */
export function solidGif(width: number, height: number, shade: number): Buffer {
  const CLEAR = 4;
  const END = 5;
  const codes: number[] = [];
  for (let left = width * height; left > 0; left -= 2) codes.push(CLEAR, ...(left >= 2 ? [0, 0] : [0]));
  codes.push(END);
  const packed = Buffer.alloc(Math.ceil((codes.length * 3) / 8));
  codes.forEach((code, n) => {
    for (let bit = 0; bit < 3; bit++) if ((code >> bit) & 1) packed[(n * 3 + bit) >> 3]! |= 1 << ((n * 3 + bit) & 7);
  });
  const blocks: Buffer[] = [];
  for (let at = 0; at < packed.length; at += 255) {
    const piece = packed.subarray(at, at + 255);
    blocks.push(Buffer.from([piece.length]), piece);
  }
  const le16 = (n: number) => [n & 0xff, n >> 8];
  return Buffer.concat([
    Buffer.from('GIF89a'), Buffer.from([...le16(width), ...le16(height), 0x80, 0, 0]),
    Buffer.from([shade & 0xff, (shade * 7) & 0xff, (shade * 13) & 0xff, 0, 0, 0]),
    Buffer.from([0x2c, 0, 0, 0, 0, ...le16(width), ...le16(height), 0]),
    Buffer.from([2]), ...blocks, Buffer.from([0, 0x3b]),
  ]);
}
