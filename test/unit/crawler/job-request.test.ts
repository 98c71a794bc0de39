import { describe, expect, it } from 'vitest';
import { jobRequestFromText, parseJobRequest } from '../../../crawler/src/core/job-request.js';

const limits = { maxPages: 1000, maxImageBytes: 50 * 1024 * 1024 };

describe('parseJobRequest', () => {
  it('fills defaults and canonicalises and dedupes seeds', () => {
    const result = parseJobRequest({ urls: ['http://S.test/#a', 'http://s.test/'] }, limits);
    expect(result).toEqual({ ok: true, value: { urls: ['http://s.test/'], maxDepth: 2, maxPages: 100, scope: 'host', include: [], exclude: [], useSitemaps: false,
      fetchImages: false, maxImageBytes: 5 * 1024 * 1024, imageTypes: ['png', 'jpeg', 'gif', 'webp', 'svg', 'avif', 'bmp', 'ico'], archive: false } });
  });

  it('takes image fetching per job, its size within the service limit and known types only', () => {
    const result = parseJobRequest({ urls: ['http://s.test/'], fetchImages: true, maxImageBytes: 1000, imageTypes: ['png', 'svg', 'png'] }, limits);
    expect(result).toMatchObject({ ok: true, value: { fetchImages: true, maxImageBytes: 1000, imageTypes: ['png', 'svg'] } });
    expect(parseJobRequest({ urls: ['http://s.test/'], maxImageBytes: 60 * 1024 * 1024 }, limits)).toEqual({ ok: false, errors: ['maxImageBytes: expected at most 52428800 (this service\'s limit)'] });
    const unknown = parseJobRequest({ urls: ['http://s.test/'], imageTypes: ['tiff'] }, limits);
    expect(unknown.ok).toBe(false);
  });

  it('takes include/exclude patterns (globs or /regex/) and useSitemaps, and refuses a bad regex', () => {
    const result = parseJobRequest({ urls: ['http://s.test/'], include: ['http://s.test/docs/**'], exclude: ['/\\.pdf$/i'], useSitemaps: true }, limits);
    expect(result.ok && result.value).toMatchObject({ include: ['http://s.test/docs/**'], exclude: ['/\\.pdf$/i'], useSitemaps: true });
    const bad = parseJobRequest({ urls: ['http://s.test/'], exclude: ['/(unclosed/'] }, limits);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors.join('\n')).toMatch(/exclude\.0: .*not a valid regular expression/);
  });

  it('refuses a pattern it cannot match in linear time, naming it and the reason, and more than 50 patterns in all', () => {
    const backreference = parseJobRequest({ urls: ['http://s.test/'], include: ['http://s.test/**', '/(a)\\1/'] }, limits);
    expect(!backreference.ok && backreference.errors).toEqual([expect.stringMatching(/^include\.1: "\/\(a\)\\1\/" cannot be used: .*backreference/)]);
    const tooMany = parseJobRequest({ urls: ['http://s.test/'], include: Array(30).fill('**a'), exclude: Array(21).fill('**b') }, limits);
    expect(!tooMany.ok && tooMany.errors).toEqual(['include: expected at most 50 include and exclude patterns together, got 51']);
    const fifty = parseJobRequest({ urls: ['http://s.test/'], include: Array(30).fill('**a'), exclude: Array(20).fill('**b') }, limits);
    expect(fifty.ok).toBe(true);
    // matched in linear time, so accepted
    expect(parseJobRequest({ urls: ['http://s.test/'], include: ['/(a|a)*b/', '**a**a**a**a**a**a**b'] }, limits).ok).toBe(true);
  });

  it('maps sameHost:false to any scope', () => {
    const result = parseJobRequest({ urls: ['http://s.test/'], sameHost: false }, limits);
    expect(result.ok && result.value.scope).toBe('any');
  });

  it.each([
    [{ urls: ['file:///etc/passwd'] }, /urls\.0: "file:\/\/\/etc\/passwd" uses file:/],
    [{ urls: ['ftp://x.test/'] }, /ftp:/],
    [{ urls: ['javascript:alert(1)'] }, /javascript:/],
    [{ urls: [] }, /at least one URL/],
    [{ urls: ['http://x.test/'], maxDepth: -1 }, /maxDepth/],
    [{ urls: ['http://x.test/'], maxPages: 5000 }, /maxPages: expected at most 1000/],
    [{ urls: ['http://x.test/'], extra: 1 }, /extra/],
    ['http://x.test/', /body/],
  ])('rejects %j', (input, message) => {
    const result = parseJobRequest(input, limits);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join('\n')).toMatch(message);
  });
});

describe('jobRequestFromText', () => {
  it('reads the seed form: one URL per line', () => {
    expect(jobRequestFromText('http://a.test/\r\n\n# comment\n  http://b.test/  \n')).toEqual({ urls: ['http://a.test/', 'http://b.test/'] });
  });
});
