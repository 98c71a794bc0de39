import { describe, expect, it } from 'vitest';
import { canonicalUrl, describeUnsupportedUrl } from '../../../crawler/src/core/url.js';

describe('canonicalUrl', () => {
  it.each([
    ['HTTP://Example.COM:80/a/b#frag', 'http://example.com/a/b'],
    ['https://example.com:443', 'https://example.com/'],
    ['http://user:pw@example.com/x', 'http://example.com/x'],
    ['http://example.com./x', 'http://example.com/x'],
    ['http://example.com/p?b=2&a=1', 'http://example.com/p?a=1&b=2'],
    ['http://example.com/p?utm_source=x&id=3&fbclid=y', 'http://example.com/p?id=3'],
    ['http://example.com/p?utm_source=x', 'http://example.com/p'],
    ['http://2130706433/', 'http://127.0.0.1/'],
    ['http://www.example.com/dir/', 'http://www.example.com/dir/'],
  ])('%s -> %s', (raw, expected) => {
    expect(canonicalUrl(raw)).toBe(expected);
  });

  it('keeps an already sorted query byte for byte', () => {
    expect(canonicalUrl('http://e.com/s?a=x%20y&b=1')).toBe('http://e.com/s?a=x%20y&b=1');
  });

  it('resolves relative references against a base', () => {
    expect(canonicalUrl('../img/a.png', 'http://e.com/x/y/page.html')).toBe('http://e.com/x/img/a.png');
    expect(canonicalUrl('//cdn.e.com/a.png', 'https://e.com/')).toBe('https://cdn.e.com/a.png');
  });

  it.each(['javascript:alert(1)', 'mailto:a@b.c', 'ftp://e.com/f', 'file:///etc/passwd', 'data:image/png;base64,AA', 'not a url'])(
    'refuses %s', (raw) => {
      expect(canonicalUrl(raw)).toBeNull();
    });
});

describe('describeUnsupportedUrl', () => {
  it('explains what is wrong with a submitted URL', () => {
    expect(describeUnsupportedUrl('file:///etc/passwd')).toMatch(/file: \(only http: and https:/);
    expect(describeUnsupportedUrl('ftp://e.com/')).toMatch(/ftp:/);
    expect(describeUnsupportedUrl('javascript:alert(1)')).toMatch(/javascript:/);
    expect(describeUnsupportedUrl('/relative')).toMatch(/not an absolute URL/);
    expect(describeUnsupportedUrl('https://e.com/')).toBeNull();
  });
});
