import { describe, expect, it } from 'vitest';
import { imagesCsv } from '../../../crawler/src/client.js';
import type { JobDocument } from '../../../crawler/src/jobs.js';
import { describeJob, progressLine } from '../../../src/workflows/crawl.js';

const job: JobDocument = {
  id: '6f1c1a52-8a35-4f5e-9d6b-1c2d3e4f5a6b',
  status: 'running',
  createdAt: '2026-11-22T15:00:00.000Z',
  updatedAt: '2026-11-22T15:00:01.000Z',
  finishedAt: null,
  request: { urls: ['http://s.test/'], maxDepth: 2, maxPages: 100, scope: 'host' },
  counts: { queued: 40, pending: 10, fetched: 28, failed: 1, robots: 1, blocked: 0, cancelled: 0, images: 70 },
};

describe('depl crawl output', () => {
  it('quotes CSV cells that need it', () => {
    expect(imagesCsv([
      { url: 'http://s.test/a.png', page: 'http://s.test/', alt: 'plain' },
      { url: 'http://s.test/b,c.png', page: 'http://s.test/x', alt: 'say "hi"\nthere' },
    ])).toBe('image_url,page_url,alt\nhttp://s.test/a.png,http://s.test/,plain\n"http://s.test/b,c.png",http://s.test/x,"say ""hi""\nthere"\n');
  });

  it('draws progress as pages done out of pages queued', () => {
    expect(progressLine(job, 10)).toBe('[########--] pages 28/40  images 70');
    expect(progressLine({ ...job, counts: { ...job.counts, queued: 0, pending: 0 } }, 4)).toBe('[----] pages 28/0  images 70');
  });

  it('summarises a job in words', () => {
    expect(describeJob(job)).toMatch(/running\n {2}pages: 28 fetched, 1 failed, 1 skipped by robots\.txt, 0 blocked, 10 pending \(of 40 queued\)\n {2}images: 70/);
  });
});
