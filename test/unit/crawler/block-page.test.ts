import { describe, expect, it } from 'vitest';
import { classifyBlockPage } from '../../../crawler/src/core/block-page.js';

const page = (status: number, bodyStart: string, headers: Record<string, string> = {}) => classifyBlockPage({ status, headers, bodyStart });

describe('classifyBlockPage', () => {
  it('takes a Cloudflare challenge for a block page by its header or its markup, whatever the status', () => {
    expect(page(403, '<html></html>', { 'cf-mitigated': 'challenge' })).toEqual({ blocked: true, reason: 'Cloudflare challenge (cf-mitigated, HTTP 403)' });
    expect(page(503, '<!DOCTYPE html><html><head><title>Just a moment...</title>')).toEqual({ blocked: true, reason: 'Cloudflare challenge (HTTP 503)' });
    expect(page(200, '<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"></script>')).toEqual({ blocked: true, reason: 'Cloudflare challenge (HTTP 200)' });
    expect(page(403, '<title>Attention Required! | Cloudflare</title>')).toEqual({ blocked: true, reason: 'Cloudflare block (HTTP 403)' });
  });

  it('takes a 200 captcha wall or access-denied page for a block page', () => {
    expect(page(200, '<html><head><title>Security check: CAPTCHA</title>')).toEqual({ blocked: true, reason: 'captcha (HTTP 200)' });
    expect(page(200, '<form><div class="g-recaptcha" data-sitekey="x"></div></form>')).toEqual({ blocked: true, reason: 'captcha (HTTP 200)' });
    expect(page(200, '<script src="https://geo.captcha-delivery.com/captcha/"></script>')).toEqual({ blocked: true, reason: 'captcha (HTTP 200)' });
    expect(page(200, '<html><head><title>Access Denied</title></head><body>You don\'t have permission to access "/" on this server.')).toEqual({ blocked: true, reason: 'access denied (HTTP 200)' });
  });

  it('takes every 429 for rate limiting, and a 403 or 503 only with a block signature', () => {
    expect(page(429, '')).toEqual({ blocked: true, reason: 'rate limited (HTTP 429)' });
    expect(page(503, '<h1>Too Many Requests</h1>')).toEqual({ blocked: true, reason: 'rate limited (HTTP 503)' });
    expect(page(403, '<h1>Access denied</h1><p>Incapsula incident ID: 123</p>')).toEqual({ blocked: true, reason: 'access denied (HTTP 403)' });
    expect(page(403, '<h1>Members only</h1>')).toEqual({ blocked: false });
    expect(page(503, '<h1>Down for maintenance</h1>')).toEqual({ blocked: false });
  });

  it('leaves content alone: an article about captchas, a large page, a 404', () => {
    expect(page(200, '<title>How CAPTCHAs work</title><p>Too many requests slow down a site.</p>')).toEqual({ blocked: false });
    expect(page(200, '<title>Why rate limits exist</title><p>Too many requests slow down a site; a captcha helps.</p>')).toEqual({ blocked: false });
    expect(page(200, `<title>Access Denied</title>${'x'.repeat(30 * 1024)}`)).toEqual({ blocked: false });
    expect(page(404, '<title>Access Denied</title>')).toEqual({ blocked: false });
  });
});
