/** The image types the crawler recognises from their bytes (image-type.ts), and how it names and serves them. */
export const IMAGE_TYPES = ['png', 'jpeg', 'gif', 'webp', 'svg', 'avif', 'bmp', 'ico'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

export const IMAGE_EXTENSIONS: Record<ImageType, string> = { png: 'png', jpeg: 'jpg', gif: 'gif', webp: 'webp', svg: 'svg', avif: 'avif', bmp: 'bmp', ico: 'ico' };
export const IMAGE_MEDIA_TYPES: Record<ImageType, string> = {
  png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml', avif: 'image/avif', bmp: 'image/bmp', ico: 'image/x-icon',
};

