import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { claimEdgeHosts, EDGE_APPS_CHANGED, edgeAppsWriteCommand, parseEdgeApps, releaseEdgeHosts, renderEdgeApps, sharedHost } from '../../../src/plan/edge-apps.js';

const gitea = { app: 'gitea', domain: 'git.lab.example.org' };
const api = { app: 'api', domain: 'api.lab.example.org' };

describe("the cluster edge's app list", () => {
  it('renders sorted by app and reads back what it rendered', () => {
    const text = renderEdgeApps([gitea, api]);
    expect(text).toBe('depl-edge-apps 1\napp api api.lab.example.org\napp gitea git.lab.example.org\nend\n');
    expect(parseEdgeApps(text)).toEqual([api, gitea]);
    expect(parseEdgeApps(null)).toEqual([]);
  });

  it('refuses a torn list, a foreign one and a name that could change what a line means', () => {
    expect(() => parseEdgeApps('depl-edge-apps 1\napp api api.lab.example.org\n')).toThrow(expect.objectContaining({ code: 'EDGE_APPS_INVALID' }));
    expect(() => parseEdgeApps('something else\nend\n')).toThrow(/not a "depl-edge-apps 1" file/);
    expect(() => parseEdgeApps('depl-edge-apps 1\napp api api.lab.example.org extra\nend\n')).toThrow(/cannot read/);
    expect(() => renderEdgeApps([{ app: 'Api', domain: 'x.org' }])).toThrow(/app name "Api"/);
    expect(() => renderEdgeApps([{ app: 'api', domain: 'x .org' }])).toThrow(/domain "x .org"/);
  });
});

describe('which host two domains share', () => {
  it('is the domain itself, or a version host (one label) of the other; nothing deeper or beside', () => {
    expect(sharedHost('shop.org', 'shop.org')).toBe('shop.org');
    expect(sharedHost('api.shop.org', 'shop.org')).toBe('api.shop.org');
    expect(sharedHost('shop.org', 'api.shop.org')).toBe('api.shop.org');
    expect(sharedHost('v1.api.shop.org', 'shop.org')).toBeNull();
    expect(sharedHost('api.shop.org', 'git.shop.org')).toBeNull();
    expect(sharedHost('myshop.org', 'shop.org')).toBeNull();
  });
});

describe('claiming hosts on the cluster edge', () => {
  it('adds a new app, keeps the others, and is no change when the claim is already there', () => {
    const first = claimEdgeHosts([], gitea.app, gitea.domain);
    expect(first).toMatchObject({ ok: true, changed: true, apps: [gitea] });
    const second = claimEdgeHosts([gitea], api.app, api.domain);
    expect(second).toMatchObject({ ok: true, changed: true, text: renderEdgeApps([gitea, api]) });
    expect(claimEdgeHosts([gitea, api], api.app, api.domain)).toMatchObject({ ok: true, changed: false });
  });

  it("moves an app's claim when its domain changes", () => {
    const moved = claimEdgeHosts([gitea, api], 'api', 'api2.lab.example.org');
    expect(moved).toMatchObject({ ok: true, changed: true, apps: [gitea, { app: 'api', domain: 'api2.lab.example.org' }] });
  });

  it('refuses a domain another app claims, naming both apps and the host', () => {
    const same = claimEdgeHosts([gitea], 'api', gitea.domain);
    expect(same).toEqual({ ok: false, refusal: expect.objectContaining({ code: 'HOST_TAKEN' }) });
    if (same.ok) return;
    expect(same.refusal.message).toBe('host git.lab.example.org is claimed by two apps on this cluster\'s edge: app gitea (its domain) and app api (its domain); the edge routes a host to one app');
    expect(same.refusal.hint).toMatch(/Give app api a domain of its own/);
  });

  it('refuses a domain that is a version host of another app, either way round', () => {
    const under = claimEdgeHosts([{ app: 'shop', domain: 'shop.org' }], 'blog', 'blog.shop.org');
    expect(under).toMatchObject({ ok: false, refusal: { code: 'HOST_TAKEN' } });
    if (!under.ok) expect(under.refusal.message).toMatch(/^host blog\.shop\.org is claimed by two apps .*app shop \(a version host of its domain shop\.org\) and app blog \(its domain\)/);
    const over = claimEdgeHosts([{ app: 'blog', domain: 'blog.shop.org' }], 'shop', 'shop.org');
    expect(over).toMatchObject({ ok: false, refusal: { code: 'HOST_TAKEN' } });
    if (!over.ok) expect(over.refusal.message).toMatch(/app blog \(its domain\) and app shop \(a version host of its domain shop\.org\)/);
    // two labels under: a version host of neither
    expect(claimEdgeHosts([{ app: 'shop', domain: 'shop.org' }], 'blog', 'www.blog.shop.org')).toMatchObject({ ok: true });
  });

  it('takes an app off the list and leaves the others', () => {
    expect(releaseEdgeHosts([gitea, api], 'api')).toEqual({ apps: [gitea], text: renderEdgeApps([gitea]), changed: true });
    expect(releaseEdgeHosts([gitea], 'api')).toMatchObject({ changed: false });
  });
});

describe('writing the app list (compare-and-set under flock)', () => {
  it('writes when the file is what was read, and refuses when another claim came first', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'depl-edge-apps-'));
    try {
      const file = path.join(dir, 'apps');
      const run = (read: string | null, next: string) => {
        const [command, ...args] = edgeAppsWriteCommand(file, read);
        return execa(command!, args, { input: next, reject: false });
      };
      const withGitea = renderEdgeApps([gitea]);
      expect((await run(null, withGitea)).exitCode).toBe(0);
      expect(await readFile(file, 'utf8')).toBe(withGitea);
      // a second writer that read no file (before the first wrote) is refused and changes nothing
      const raced = await run(null, renderEdgeApps([api]));
      expect(raced.exitCode).toBe(EDGE_APPS_CHANGED);
      expect(await readFile(file, 'utf8')).toBe(withGitea);
      // read again, planned again: written
      const both = renderEdgeApps([gitea, api]);
      expect((await run(withGitea, both)).exitCode).toBe(0);
      expect(await readFile(file, 'utf8')).toBe(both);
      await writeFile(file, 'changed by hand\n');
      expect((await run(both, withGitea)).exitCode).toBe(EDGE_APPS_CHANGED);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
