import { describe, expect, it } from 'vitest';
import { imagesCsv, imagesJsonl } from '../../../crawler/src/client.js';
import type { JobDocument } from '../../../crawler/src/jobs.js';
import { describeJob, progressLine } from '../../../src/workflows/crawl.js';
import { runningJob } from './job-fixture.js';

const job: JobDocument = runningJob();

describe('depl crawl output', () => {
  it('writes RFC 4180 CSV: CRLF rows, quoted commas, quotes and line breaks', () => {
    expect(imagesCsv([
      { url: 'http://s.test/a.png', page: 'http://s.test/', alt: 'plain', kind: 'img' },
      { url: 'http://s.test/b,c.png', page: 'http://s.test/x', alt: 'say "hi"\nthere, twice\r\n', kind: 'srcset' },
    ])).toBe('image_url,page_url,alt,kind\r\nhttp://s.test/a.png,http://s.test/,plain,img\r\n"http://s.test/b,c.png",http://s.test/x,"say ""hi""\nthere, twice\r\n",srcset\r\n');
  });

  it('guards cells a spreadsheet would run as formulas, and can start with a UTF-8 BOM', () => {
    const rows = (alt: string) => imagesCsv([{ url: 'http://s.test/a.png', page: 'http://s.test/', alt, kind: 'img' }]).split('\r\n')[1];
    expect(rows('=HYPERLINK("http://evil.test","x")')).toBe(`http://s.test/a.png,http://s.test/,"'=HYPERLINK(""http://evil.test"",""x"")",img`);
    expect(rows('+1')).toBe("http://s.test/a.png,http://s.test/,'+1,img");
    expect(rows('-2+3')).toBe("http://s.test/a.png,http://s.test/,'-2+3,img");
    expect(rows('@SUM(A1)')).toBe("http://s.test/a.png,http://s.test/,'@SUM(A1),img");
    expect(rows('a=b')).toBe('http://s.test/a.png,http://s.test/,a=b,img');
    expect(imagesCsv([], { bom: true })).toBe('\uFEFFimage_url,page_url,alt,kind\r\n');
  });

  it('writes JSON Lines, one image a line', () => {
    const text = imagesJsonl([{ url: 'http://s.test/a.png', page: 'http://s.test/', alt: 'line\nbreak', kind: 'css' }, { url: 'http://s.test/b.png', page: 'http://s.test/', alt: '', kind: 'og' }]);
    expect(text.split('\n')).toHaveLength(3);
    expect(text.trimEnd().split('\n').map((line) => JSON.parse(line) as { kind: string }).map((i) => i.kind)).toEqual(['css', 'og']);
  });

  it('draws progress as pages done out of pages queued', () => {
    expect(progressLine(job, 10)).toBe('[########--] pages 28/40  images 70');
    expect(progressLine({ ...job, counts: { ...job.counts, queued: 0, pending: 0 } }, 4)).toBe('[----] pages 28/0  images 70');
  });

  it('summarises a job in words', () => {
    expect(describeJob(job)).toMatch(/running\n {2}pages: 28 fetched, 1 failed, 1 skipped by robots\.txt, 0 blocked, 10 pending \(of 40 queued\)\n {2}images: 70/);
  });
});
