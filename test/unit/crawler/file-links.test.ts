import { createHash } from 'node:crypto';
import { DomUtils, parseDocument } from 'htmlparser2';
import { describe, expect, it } from 'vitest';
import { FILE_LINK_STEP_SECONDS, FILE_LINK_TTL_SECONDS, fileLinkSigner } from '../../../crawler/src/api/file-links.js';
import { renderGallery } from '../../../crawler/src/api/gallery.js';
import type { ImageListing, JobDocument } from '../../../crawler/src/jobs.js';

const TOKEN = 'a-long-random-api-token-0123456789abcdef';
const JOB = '0f8fad5b-d9cb-469f-a165-70867728950e';
const OTHER_JOB = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const sha = (n: number) => createHash('sha256').update(String(n)).digest('hex');
const params = (query: string) => new URLSearchParams(query);

describe('signed file links (the gallery\'s thumbnails when reads need the token)', () => {
  it('opens the one file of the one job it was signed for, until it expires', () => {
    let now = Date.UTC(2026, 11, 6, 21, 3, 17);
    const signer = fileLinkSigner(TOKEN, () => now);
    const link = params(signer.sign(JOB, sha(1)));
    const expires = Number(link.get('expires'));
    // at least the TTL, at most a step more, on a step boundary (stable links: the browser's cache keeps working)
    expect(expires % FILE_LINK_STEP_SECONDS).toBe(0);
    expect(expires - now / 1000).toBeGreaterThanOrEqual(FILE_LINK_TTL_SECONDS);
    expect(expires - now / 1000).toBeLessThan(FILE_LINK_TTL_SECONDS + FILE_LINK_STEP_SECONDS);
    expect(signer.sign(JOB, sha(1))).toBe(link.toString());
    expect(link.toString()).not.toContain(TOKEN);

    const check = (job: string, file: string, query = link) => signer.check(job, file, query.get('expires'), query.get('sig'));
    expect(check(JOB, sha(1))).toBeNull();
    expect(check(JOB, sha(2))).toMatch(/signature does not match/);
    expect(check(OTHER_JOB, sha(1))).toMatch(/signature does not match/);
    // another API token (another deployment, or the token rotated) signs other links
    expect(fileLinkSigner(`${TOKEN}-rotated`, () => now).check(JOB, sha(1), link.get('expires'), link.get('sig'))).toMatch(/signature does not match/);
    // another expiry with the old signature does not pass, nor does one further ahead than this API signs
    expect(check(JOB, sha(1), params(`expires=${expires - 1}&sig=${link.get('sig')}`))).toMatch(/signature does not match/);
    expect(check(JOB, sha(1), params(`expires=${expires + 10 * FILE_LINK_TTL_SECONDS}&sig=${link.get('sig')}`))).toMatch(/later than any link/);
    expect(check(JOB, sha(1), params('sig=x'))).toMatch(/no valid expires/);
    expect(check(JOB, sha(1), params(`expires=${expires}&sig=${'A'.repeat(43)}`))).toMatch(/signature does not match/);

    now = (expires - 1) * 1000;
    expect(check(JOB, sha(1))).toBeNull();
    now = expires * 1000;
    expect(check(JOB, sha(1))).toMatch(/expired/);
  });

  it('puts a signed link on every thumbnail when the gallery is given one, and the bare file path when reads are public', () => {
    const job = {
      id: JOB, status: 'done', createdAt: '2026-12-06T00:00:00.000Z', updatedAt: '2026-12-06T00:00:01.000Z', finishedAt: '2026-12-06T00:00:01.000Z',
      request: { urls: ['https://site.test/'], maxDepth: 1, maxPages: 10, scope: 'host', include: [], exclude: [], useSitemaps: false, fetchImages: true, maxImageBytes: 1000, imageTypes: ['png'], archive: false },
      counts: { queued: 1, pending: 0, fetched: 1, failed: 0, robots: 0, blocked: 0, cancelled: 0, images: 2, dataImages: 0, capped: 0, imagesStored: 2, imageFiles: 2, imagesNotStored: 0 },
      maxPagesReached: false,
    } satisfies JobDocument;
    const items: ImageListing[] = [1, 2].map((n) => ({
      url: `https://site.test/${n}.png`, page: 'https://site.test/', pages: ['https://site.test/'], alt: '', kind: 'img',
      fetch: { url: `https://site.test/${n}.png`, outcome: 'stored', type: 'png', bytes: 10, width: 1, height: 1, sha256: sha(n) },
    }));
    const signer = fileLinkSigner(TOKEN, () => Date.UTC(2026, 11, 6));
    const sources = (html: string) => DomUtils.getElementsByTagName('img', parseDocument(html, { decodeEntities: true })).map((i) => i.attribs.src!);
    const signed = sources(renderGallery({ job, items, total: 2, offset: 0, limit: 200, fileQuery: (file) => signer.sign(JOB, file) }));
    expect(signed).toEqual([1, 2].map((n) => `/v1/jobs/${JOB}/files/${sha(n)}?${signer.sign(JOB, sha(n))}`));
    for (const [n, src] of signed.entries()) {
      const query = new URL(src, 'http://api.test').searchParams;
      expect(signer.check(JOB, sha(n + 1), query.get('expires'), query.get('sig'))).toBeNull();
    }
    expect(sources(renderGallery({ job, items, total: 2, offset: 0, limit: 200 }))).toEqual([1, 2].map((n) => `/v1/jobs/${JOB}/files/${sha(n)}`));
  });
});
