import { imageSize } from 'image-size';
import type { ImageType } from './image-types.js';

/**
 * An image's type and size read from its bytes, never from the Content-Type header or the URL (a server may
 * call anything image/png). The type comes from the file's magic number (the signatures the formats' own
 * specifications fix, as the WHATWG MIME Sniffing standard lists them for images); the width and height from
 * its header, read by image-size.
 */
export { IMAGE_EXTENSIONS, IMAGE_MEDIA_TYPES, IMAGE_TYPES, type ImageType } from './image-types.js';

const startsWith = (bytes: Uint8Array, signature: number[], at = 0) => bytes.length >= at + signature.length && signature.every((b, i) => bytes[at + i] === b);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** The type the bytes say they are, or null when they are no image this crawler knows. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBPVP'), 8)) return 'webp';
  // ISO-BMFF: a 'ftyp' box whose major brand is AVIF's
  if (startsWith(bytes, ascii('ftypavif'), 4) || startsWith(bytes, ascii('ftypavis'), 4)) return 'avif';
  if (startsWith(bytes, ascii('BM')) && bytes.length >= 26) return 'bmp';
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00]) && bytes.length >= 6) return 'ico';
  if (looksLikeSvg(bytes)) return 'svg';
  return null;
}

/** SVG has no magic number: an XML text whose first element is <svg>, after an optional BOM, prolog, comments and doctype. */
function looksLikeSvg(bytes: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 4096)).replace(/^\uFEFF/, '');
  return /^\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<svg[\s>]/i.test(head);
}

export interface ImageFacts {
  type: ImageType;
  /** Pixels; null when the header does not say (an SVG without width/height or viewBox). */
  width: number | null;
  height: number | null;
}

/** Type and dimensions, or null when the bytes are not an image of a known type. */
export function readImageFacts(bytes: Uint8Array): ImageFacts | null {
  const type = sniffImageType(bytes);
  if (type === null) return null;
  try {
    const size = imageSize(bytes);
    return { type, width: Number.isFinite(size.width) ? size.width : null, height: Number.isFinite(size.height) ? size.height : null };
  } catch {
    // the magic number is right but the header is damaged or cut: the type is known, the size is not
    return { type, width: null, height: null };
  }
}
