import { createHash } from 'node:crypto';
import { DomUtils, parseDocument } from 'htmlparser2';
import { describe, expect, it } from 'vitest';
import { escapeHtml, galleryHeaders, groupByPage, renderGallery, GALLERY_STYLE_SOURCE } from '../../../crawler/src/api/gallery.js';
import { fileFilterSchema, filterImageFiles } from '../../../crawler/src/core/image-files.js';
import { openApiDocument } from '../../../crawler/src/api/openapi.js';
import type { ImageFile, ImageListing, JobDocument } from '../../../crawler/src/jobs.js';

const HOSTILE = `"><script>alert(1)</script><img src=x onerror="alert(2)">'`;
const job: JobDocument = {
  id: '0f8fad5b-d9cb-469f-a165-70867728950e', status: 'done', createdAt: '2026-12-06T00:00:00.000Z', updatedAt: '2026-12-06T00:00:01.000Z', finishedAt: '2026-12-06T00:00:01.000Z',
  request: { urls: ['https://site.test/'], maxDepth: 1, maxPages: 10, scope: 'host', include: [], exclude: [], useSitemaps: false, fetchImages: true, maxImageBytes: 1000, imageTypes: ['png'], archive: false },
  counts: { queued: 2, pending: 0, fetched: 2, failed: 0, robots: 0, blocked: 0, cancelled: 0, images: 3, dataImages: 0, capped: 0, imagesStored: 2, imageFiles: 2, imagesNotStored: 1 },
  maxPagesReached: false,
};
const sha = (n: number) => createHash('sha256').update(String(n)).digest('hex');
const stored = (url: string, pages: string[], alt: string, n: number): ImageListing => ({
  url, page: pages[0]!, pages, alt, kind: 'img',
  fetch: { url, outcome: 'stored', type: 'png', bytes: 2048, width: 30, height: 20, sha256: sha(n) },
});

describe('the gallery page', () => {
  it('escapes every crawled string, in text and attributes, and links only http(s) URLs', () => {
    const items = [
      stored(`https://site.test/a.png?q=${encodeURIComponent(HOSTILE)}&x='y'`, ['https://site.test/'], HOSTILE, 1),
      stored('https://site.test/b.png', ['javascript:alert(3)//'], 'plain', 2),
    ];
    const html = renderGallery({ job, items, total: 2, offset: 0, limit: 200 });
    // parsed as a browser would: no markup from the crawl became an element or an attribute; it is all text
    const document = parseDocument(html, { decodeEntities: true });
    expect(DomUtils.getElementsByTagName('script', document)).toHaveLength(0);
    const images = DomUtils.getElementsByTagName('img', document);
    expect(images).toHaveLength(2);
    expect(images.map((i) => Object.keys(i.attribs).sort())).toEqual([['alt', 'decoding', 'height', 'loading', 'src', 'width'], ['alt', 'decoding', 'height', 'loading', 'src', 'width']]);
    expect(images[0]!.attribs.alt).toBe(HOSTILE);
    const captions = DomUtils.getElementsByTagName('dd', document).map((d) => DomUtils.textContent(d));
    expect(captions).toContain(HOSTILE);
    expect(captions).toContain(items[0]!.url);
    // a page URL that is not http(s) is shown, never linked
    expect(html).not.toContain('href="javascript:');
    expect(html).toContain('<h2>javascript:alert(3)//</h2>');
    expect(html).toContain('<a href="https://site.test/" rel="noopener noreferrer nofollow">');
  });

  it('groups the stored images by page (an image on two pages is in both), leaving out those not stored', () => {
    const notStored: ImageListing = { url: 'https://site.test/huge.png', page: 'https://site.test/', pages: ['https://site.test/'], alt: '', kind: 'img', fetch: { url: 'https://site.test/huge.png', outcome: 'too-large' } };
    const groups = groupByPage([
      stored('https://site.test/logo.png', ['https://site.test/', 'https://site.test/p2'], 'logo', 1),
      notStored,
      stored('https://site.test/p2.png', ['https://site.test/p2'], '', 2),
    ]);
    expect(groups.map((g) => [g.page, g.images.map((i) => i.url)])).toEqual([
      ['https://site.test/', ['https://site.test/logo.png']],
      ['https://site.test/p2', ['https://site.test/logo.png', 'https://site.test/p2.png']],
    ]);
  });

  it('serves the images from this API by their hash, with size attributes, and pages through the listing', () => {
    const html = renderGallery({ job, items: [stored('https://site.test/a.png', ['https://site.test/'], '', 7)], total: 450, offset: 200, limit: 200 });
    expect(html).toContain(`<img src="/v1/jobs/${job.id}/files/${sha(7)}" alt="" loading="lazy" decoding="async" width="30" height="20">`);
    expect(html).toContain(`href="/v1/jobs/${job.id}/gallery?offset=0&amp;limit=200">&larr; previous`);
    expect(html).toContain(`href="/v1/jobs/${job.id}/gallery?offset=400&amp;limit=200">next &rarr;`);
    expect(html).toContain('image URLs 201–400 of 450');
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
  });

  it('allows by its CSP exactly the inline style it carries and same-origin images, no script', () => {
    const html = renderGallery({ job, items: [], total: 0, offset: 0, limit: 200 });
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(GALLERY_STYLE_SOURCE).toBe(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    const headers = galleryHeaders();
    expect(headers['content-security-policy']).toBe(`default-src 'none'; img-src 'self'; style-src ${GALLERY_STYLE_SOURCE}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
    expect(headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    expect(escapeHtml(`<&>"'`)).toBe('&#60;&#38;&#62;&#34;&#39;');
  });
});

describe('the files filter', () => {
  const file = (type: ImageFile['type'], bytes: number, width: number | null, height: number | null): ImageFile => ({ sha256: sha(bytes), type, bytes, width, height, location: '', urls: [] });

  it('validates the query: types known, bounds whole numbers, nothing unknown', () => {
    expect(fileFilterSchema.parse({ type: 'png, JPEG', minBytes: '10', minWidth: '5' })).toMatchObject({ type: ['png', 'jpeg'], minBytes: 10, minWidth: 5, offset: 0, limit: 100 });
    for (const bad of [{ type: 'png,exe' }, { minBytes: '-1' }, { maxBytes: '1.5' }, { minHeight: 'tall' }, { limit: '1001' }, { size: '10' }]) {
      expect(fileFilterSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('keeps the files every bound holds for; unknown dimensions fail a pixel bound', () => {
    const files = [file('png', 100, 10, 10), file('jpeg', 5000, 800, 600), file('svg', 300, null, null)];
    expect(filterImageFiles(files, { type: ['png', 'svg'] }).map((f) => f.type)).toEqual(['png', 'svg']);
    expect(filterImageFiles(files, { minBytes: 200, maxBytes: 5000 }).map((f) => f.type)).toEqual(['jpeg', 'svg']);
    expect(filterImageFiles(files, { minWidth: 1 }).map((f) => f.type)).toEqual(['png', 'jpeg']);
    expect(filterImageFiles(files, { minHeight: 600, type: ['jpeg'] }).map((f) => f.type)).toEqual(['jpeg']);
  });

  it('is described in the OpenAPI document as it is validated', () => {
    const files = openApiDocument.paths['/v1/jobs/{id}/files'].get;
    const names = files.parameters.map((p) => p.name);
    expect(names).toEqual(['id', 'offset', 'limit', 'type', 'minBytes', 'maxBytes', 'minWidth', 'minHeight']);
    // every filter the schema takes is documented, and nothing more
    expect(new Set(names.slice(1))).toEqual(new Set(Object.keys(fileFilterSchema.shape)));
    const typeParameter = files.parameters.find((p) => p.name === 'type')!.schema as { pattern: string };
    const typePattern = new RegExp(typeParameter.pattern);
    expect(typePattern.test('png,jpeg')).toBe(true);
    expect(typePattern.test('png,exe')).toBe(false);
    expect(openApiDocument.paths['/v1/jobs/{id}/gallery'].get.responses['200'].content).toHaveProperty('text/html');
  });
});
