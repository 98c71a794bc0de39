import { describe, expect, it } from 'vitest';
import { checkDnsLabel, checkDomainName, checkVersionLabel } from '../../../src/names.js';
import { branchLabel, branchSlug, serviceName, versionFromTime } from '../../../src/plan/names.js';

describe('names', () => {
  it.each(['20261122-130512', 'v2', 'feature-login', 'a'])('accepts the version label %s', (label) => {
    expect(checkVersionLabel(label)).toEqual({ ok: true });
  });

  it.each([
    ['', /empty/],
    ['2026.11.22', /only a-z, 0-9/],
    ['-lead', /start and end/],
    ['trail-', /start and end/],
    ['UPPER', /upper-case/],
    ['a'.repeat(64), /at most 63/],
    ['x;rm -rf /', /only a-z/],
    ['a'.repeat(41), /longer than 40/],
  ])('rejects the version label %j', (label, reason) => {
    const check = checkVersionLabel(label);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(reason);
  });

  it('checks every label of a domain', () => {
    expect(checkDomainName('crawler.example.org').ok).toBe(true);
    expect(checkDomainName('crawler..org')).toEqual({ ok: false, reason: 'has a bad label "": it is empty' });
    expect(checkDnsLabel('a_b').ok).toBe(false);
  });

  it('makes the default version id from UTC time', () => {
    expect(versionFromTime(new Date(Date.UTC(2026, 10, 22, 13, 5, 12)))).toBe('20261122-130512');
  });

  it('turns a branch into a label, or nothing', () => {
    expect(branchSlug('feature/Login_Page')).toBe('feature-login-page');
    expect(branchSlug('--')).toBeNull();
    expect(branchSlug('x'.repeat(80))).toHaveLength(40);
  });

  it('labels a branch by its own name when that is a label, else by its slug and a hash of the name', () => {
    expect(branchLabel('main')).toBe('main');
    expect(branchLabel('feature-x')).toBe('feature-x');
    // sha256("feature/x") starts 217d2b, sha256("Feature_X") c6683d: slugs that collide, labels that do not
    expect(branchLabel('feature/x')).toBe('feature-x-217d2b');
    expect(branchLabel('Feature_X')).toBe('feature-x-c6683d');
    expect(branchLabel('feature/x')).toBe(branchLabel('feature/x'));
    expect(branchLabel('__/__')).toBeNull();
  });

  it('keeps every branch label one DNS label of at most 40 characters, distinct where truncation would merge', () => {
    const long = 'feature/' + 'a'.repeat(60);
    for (const branch of [long, `${long}-one`, `${long}-two`, 'x'.repeat(40), 'x'.repeat(41), 'A'.repeat(200)]) {
      const label = branchLabel(branch)!;
      expect(checkVersionLabel(label)).toEqual({ ok: true });
    }
    expect(branchLabel('x'.repeat(40))).toBe('x'.repeat(40));
    expect(branchLabel('x'.repeat(41))).toMatch(/^x{33}-[0-9a-f]{6}$/);
    expect(branchLabel(`${long}-one`)).not.toBe(branchLabel(`${long}-two`));
  });

  it('names services <app>-<version>-<service>', () => {
    expect(serviceName('crawler', 'v2', 'api')).toBe('crawler-v2-api');
  });
});
