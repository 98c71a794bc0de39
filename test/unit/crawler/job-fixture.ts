import type { JobDocument } from '../../../crawler/src/jobs.js';

/** A running job partway through, as the API shows it; `request` and `counts` overridden where a test needs it. */
export function runningJob(overrides: { request?: Partial<JobDocument['request']>; counts?: Partial<JobDocument['counts']> } = {}): JobDocument {
  return {
    id: '6f1c1a52-8a35-4f5e-9d6b-1c2d3e4f5a6b',
    status: 'running',
    createdAt: '2026-11-22T15:00:00.000Z',
    updatedAt: '2026-11-22T15:00:01.000Z',
    finishedAt: null,
    request: { urls: ['http://s.test/'], maxDepth: 2, maxPages: 100, scope: 'host', include: [], exclude: [], useSitemaps: false, fetchImages: false, maxImageBytes: 5 * 1024 * 1024, imageTypes: ['png'], archive: false, ...overrides.request },
    counts: { queued: 40, pending: 10, fetched: 28, failed: 1, robots: 1, blocked: 0, cancelled: 0, images: 70, dataImages: 0, capped: 0, imagesStored: 0, imageFiles: 0, imagesNotStored: 0, ...overrides.counts },
    maxPagesReached: false,
  };
}
