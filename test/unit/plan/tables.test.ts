import { describe, expect, it } from 'vitest';
import { formatTable } from '../../../src/plan/table.js';
import { formatVersions, type VersionRow } from '../../../src/plan/versions-table.js';

const row = (over: Partial<VersionRow>): VersionRow => ({
  version: 'v1', createdAt: '2026-11-22T13:05:12.000Z', branch: null, url: 'http://v1.shop.example/', live: false, previous: false, canary: null,
  services: [{ name: 'shop-v1-api', replicas: 2, running: 2 }], ...over,
});

/** The column each header word starts at must be where every row's cell starts. */
function columnStarts(line: string): number[] {
  return [...line.matchAll(/(?:^|\s{2,})(\S)/g)].map((m) => m.index! + m[0].length - 1);
}

describe('formatTable', () => {
  it('pads every column to its widest cell and trims trailing spaces', () => {
    expect(formatTable(['A', 'LONG HEADER', 'C'], [['wide cell', 'x', ''], ['y', 'z', 'end']])).toBe([
      'A          LONG HEADER  C',
      'wide cell  x',
      'y          z            end',
    ].join('\n'));
  });
});

describe('depl versions table', () => {
  it('lines every row up under the header', () => {
    const text = formatVersions([
      row({ version: '20261122-130512', url: 'http://20261122-130512.shop.example/', live: true,
        services: [{ name: 'shop-20261122-130512-api', replicas: 2, running: 2 }, { name: 'shop-20261122-130512-worker', replicas: 3, running: 1 }] }),
      row({ previous: true }),
      row({ version: 'feature-login', branch: 'feature/login', canary: { weight: 10 }, services: [{ name: 'shop-feature-login-api', replicas: 2, running: null }] }),
    ]);
    const [header, ...lines] = text.split('\n');
    expect(header).toMatch(/^VERSION\s+CREATED\s+TASKS\s+URL\s+MARKS$/);
    const starts = columnStarts(header!);
    for (const line of lines) for (const start of starts.slice(0, 4)) expect(line[start - 1] === ' ' || start === 0).toBe(true);
    expect(lines[0]).toMatch(/^20261122-130512 {2}2026-11-22 13:05:12 {2}api 2\/2 worker 1\/3 {2}http:\/\/20261122-130512\.shop\.example\/\s+live$/);
    expect(lines[1]!.indexOf('http://v1.')).toBe(starts[3]);
    expect(lines[2]).toContain('api ?/2');
    expect(lines[2]).toMatch(/canary 10%, branch feature\/login$/);
  });

  it('marks the version a buildinst is installing, or was killed installing', () => {
    const text = formatVersions([row({ version: 'v3', installing: { command: 'depl buildinst --version v3', by: 'ana@laptop', at: '2026-11-30T06:00:00Z' } })]);
    expect(text.split('\n')[1]).toMatch(/installing \(ana@laptop\)$/);
  });

  it('says what to do when nothing is installed', () => {
    expect(formatVersions([])).toBe('No versions installed. Run `depl buildinst`.');
  });
});
