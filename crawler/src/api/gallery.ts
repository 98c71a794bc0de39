import { createHash } from 'node:crypto';
import type { ImageListing, JobDocument } from '../jobs.js';

/**
 * GET /v1/jobs/:id/gallery: a job's stored images as an HTML page of thumbnails, grouped by the page they were
 * found on, each one's metadata shown on hover or keyboard/tap focus. Pure: the route reads the job and one page
 * of its image listing, this turns them into text.
 *
 * Everything shown came from crawled sites (URLs, alt text) and is hostile: every string goes through escapeHtml
 * (text and attribute values alike), links are written only for http(s) URLs, and the page runs no script at
 * all. Its Content-Security-Policy (galleryHeaders) allows only what the page needs: its one inline style (by
 * hash) and images from the API's own origin.
 * Thumbnails are the stored files scaled by the browser (no resized copies are made), loaded lazily.
 */
export interface GalleryInput {
  job: JobDocument;
  /** One page of the job's image listing (offset..offset+limit of `total` image URLs). */
  items: ImageListing[];
  total: number;
  offset: number;
  limit: number;
  /** The query a thumbnail's file link needs (a signed link when reads need the token), none when reads are public. */
  fileQuery?: (sha256: string) => string;
}

const STYLE = `
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0 auto; padding: 0.75rem; max-width: 80rem; }
h1 { font-size: 1.25rem; margin: 0 0 0.25rem; overflow-wrap: anywhere; }
h2 { font-size: 0.95rem; font-weight: 600; margin: 1.25rem 0 0.5rem; overflow-wrap: anywhere; }
p.summary, nav { font-size: 0.85rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(7.5rem, 1fr)); gap: 0.5rem; margin: 0; padding: 0; list-style: none; }
figure { position: relative; margin: 0; border: 1px solid #8884; border-radius: 0.25rem; outline-offset: 2px; }
figure img { display: block; width: 100%; height: 7.5rem; object-fit: contain; background: #8882; }
figcaption { display: none; position: absolute; z-index: 1; left: 0; right: 0; top: 100%; padding: 0.4rem; font-size: 0.75rem;
  background: Canvas; color: CanvasText; border: 1px solid #888; border-radius: 0.25rem; overflow-wrap: anywhere; }
figure:hover figcaption, figure:focus figcaption, figure:focus-within figcaption { display: block; }
dl { margin: 0; } dt { font-weight: 600; } dd { margin: 0 0 0.2rem; }
a { color: LinkText; }
`;

/** The CSP source of the page's one inline style. */
export const GALLERY_STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/** The response headers of the gallery page. */
export function galleryHeaders(): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; img-src 'self'; style-src ${GALLERY_STYLE_SOURCE}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    // the job id in this page's URL is what reads the job: never sent on to the crawled sites it links to
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

/** Text and attribute values: the five characters that can end either, as character references. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A crawled URL as a link when it is http(s), else as text only. */
function link(url: string): string {
  let safe = false;
  try {
    const parsed = new URL(url);
    safe = parsed.protocol === 'http:' || parsed.protocol === 'https:';
  } catch {
    safe = false;
  }
  return safe ? `<a href="${escapeHtml(url)}" rel="noopener noreferrer nofollow">${escapeHtml(url)}</a>` : escapeHtml(url);
}

/** Stored images grouped by page, in the order the pages first appear; an image on several pages is in each. */
export function groupByPage(items: ImageListing[]): Array<{ page: string; images: ImageListing[] }> {
  const groups = new Map<string, ImageListing[]>();
  for (const item of items) {
    if (item.fetch?.outcome !== 'stored' || item.fetch.sha256 === undefined) continue;
    for (const page of item.pages.length > 0 ? item.pages : [item.page]) {
      const list = groups.get(page) ?? [];
      list.push(item);
      groups.set(page, list);
    }
  }
  return [...groups].map(([page, images]) => ({ page, images }));
}

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function thumbnail(jobId: string, item: ImageListing, fileQuery: GalleryInput['fileQuery']): string {
  const f = item.fetch!;
  const query = fileQuery === undefined ? '' : `?${fileQuery(f.sha256!)}`;
  const dimensions = f.width != null && f.height != null ? `${f.width} × ${f.height}` : 'unknown';
  const sizeAttributes = f.width != null && f.height != null ? ` width="${f.width}" height="${f.height}"` : '';
  return `<li><figure tabindex="0">`
    + `<img src="/v1/jobs/${escapeHtml(jobId)}/files/${escapeHtml(f.sha256!)}${escapeHtml(query)}" alt="${escapeHtml(item.alt)}" loading="lazy" decoding="async"${sizeAttributes}>`
    + `<figcaption><dl>`
    + `<dt>URL</dt><dd>${link(item.url)}</dd>`
    + (item.alt !== '' ? `<dt>alt</dt><dd>${escapeHtml(item.alt)}</dd>` : '')
    + `<dt>type</dt><dd>${escapeHtml(f.type ?? '')}, ${escapeHtml(size(f.bytes ?? 0))}</dd>`
    + `<dt>pixels</dt><dd>${escapeHtml(dimensions)}</dd>`
    + `<dt>SHA-256</dt><dd><code>${escapeHtml(f.sha256!)}</code></dd>`
    + `</dl></figcaption></figure></li>`;
}

export function renderGallery(input: GalleryInput): string {
  const { job, items, total, offset, limit } = input;
  const id = job.id;
  const c = job.counts;
  const groups = groupByPage(items);
  const pageLink = (from: number, text: string) => `<a href="/v1/jobs/${escapeHtml(id)}/gallery?offset=${from}&amp;limit=${limit}">${text}</a>`;
  const nav = [
    offset > 0 ? pageLink(Math.max(0, offset - limit), '&larr; previous') : '',
    offset + limit < total ? pageLink(offset + limit, 'next &rarr;') : '',
  ].filter(Boolean).join(' · ');
  const body = groups.length === 0
    ? '<p>No stored images in this part of the listing.</p>'
    : groups.map((g) => `<section><h2>${link(g.page)}</h2><ul class="grid">${g.images.map((i) => thumbnail(id, i, input.fileQuery)).join('')}</ul></section>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Crawl ${escapeHtml(id)}: images</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Images of crawl ${escapeHtml(id)}</h1>
<p class="summary">${escapeHtml(job.status)} · started from ${job.request.urls.map(link).join(', ')} · ${c.fetched} pages fetched · ${c.imageFiles} distinct images stored from ${c.imagesStored} URLs (${c.imagesNotStored} not stored) · image URLs ${total === 0 ? 0 : offset + 1}–${Math.min(total, offset + limit)} of ${total}</p>
${nav ? `<nav>${nav}</nav>` : ''}
${body}
${nav ? `<nav>${nav}</nav>` : ''}
</body>
</html>
`;
}
