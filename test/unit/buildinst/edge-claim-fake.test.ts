import { afterEach, describe, expect, it } from 'vitest';
import { claimEdgeApp, readEdgeApps } from '../../../src/apply/edge/apps.js';
import type { Remote } from '../../../src/apply/remote.js';
import { edgeAppsPath, renderEdgeApps } from '../../../src/plan/edge-apps.js';
import { fakeBuildinst } from '../../support/fake-buildinst.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * An app's hosts are claimed on the cluster's edge (`_edge/apps`, src/plan/edge-apps.ts) by its buildinst before
 * any other step, by compare-and-set under flock on the manager: a host another app answers is refused with
 * HOST_TAKEN (exit 2, nothing changed), a claim made by a failed install is taken back, and one left by a killed
 * install is the app's own on its next run. Two fake clusters share one swarm and one state root, as two apps'
 * depl runs share the manager's /var/lib/depl.
 */
const blogYaml = `
app: blog
domain: blog.test
images: { node: depl-base/node:20 }
services:
  web: { build: { context: ., dockerfile: Dockerfile }, port: 8080, http: true, health: /healthz, replicas: 1 }
`;
const shopYaml = (domain: string) => blogYaml.replace('app: blog', 'app: shop').replace('domain: blog.test', `domain: ${domain}`);

let blogFake: FakeCluster;
let shopFake: FakeCluster | undefined;
afterEach(async () => {
  await shopFake?.close();
  shopFake = undefined;
  await blogFake.close();
});

const blog = fakeBuildinst(() => blogFake, blogYaml);
const shopAt = (domain: string) => fakeBuildinst(() => shopFake!, shopYaml(domain));
const appsText = (f: FakeCluster) => f.control.stateRemote.readFile(edgeAppsPath(f.control.stateRoot));

async function twoApps(shopDomain = 'shop.blog.test'): Promise<void> {
  blogFake = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [] });
  shopFake = await startFakeCluster({ app: 'shop', domain: shopDomain, versions: [], swarm: blogFake.swarm, stateRoot: blogFake.control.stateRoot });
}

describe("an app's hosts on the cluster's edge", () => {
  it('the first install claims its domain before any other step; the next install of the same app claims nothing', async () => {
    blogFake = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [] });
    await blog.buildinst('b1');
    expect(await appsText(blogFake)).toBe(renderEdgeApps([{ app: 'blog', domain: 'blog.test' }]));
    const plan = await blog.buildinst('b2');
    expect(plan.plan.steps.map((s) => s.kind)).not.toContain('claim-edge-hosts');
    expect((await blogFake.get('b2.blog.test', '/healthz')).status).toBe(200);
  }, 60_000);

  it("another app at the same domain, or at a version host of it, is refused with HOST_TAKEN naming both apps and the host: exit 2, nothing changed", async () => {
    await twoApps();
    await blog.buildinst('b1');
    const calls = [...blogFake.swarm.calls];
    const before = await appsText(blogFake);
    for (const domain of ['blog.test', 'shop.blog.test']) {
      const refused = await shopAt(domain).buildinst('s1').catch((error: unknown) => error);
      expect(refused, domain).toMatchObject({ code: 'HOST_TAKEN', exitCode: 2, message: expect.stringMatching(new RegExp(`host ${domain.replace(/\./g, '\\.')} is claimed by two apps .*app blog .*app shop`)) });
      expect(blogFake.swarm.calls, domain).toEqual(calls);
      expect(await appsText(blogFake), domain).toBe(before);
    }
    expect((await blogFake.get('b1.blog.test', '/healthz')).status).toBe(200);
  }, 60_000);

  it("a claim written by another app's command between this one's read and its write is seen: planned again, refused, the other's claim kept", async () => {
    await twoApps();
    const manager = shopFake!.control.stateRemote;
    const root = shopFake!.control.stateRoot;
    // blog's command claims blog.test just after shop's read (the same moment another depl would)
    let raced = false;
    const racing: Remote = Object.assign(Object.create(manager) as Remote, {
      async shell(line: string, options?: Parameters<Remote['shell']>[1]) {
        if (!raced) {
          raced = true;
          await claimEdgeApp(manager, root, 'blog', 'blog.test');
        }
        return manager.shell(line, options);
      },
    });
    await expect(claimEdgeApp(racing, root, 'shop', 'shop.blog.test')).rejects.toMatchObject({ code: 'HOST_TAKEN' });
    expect((await readEdgeApps(manager, root)).apps).toEqual([{ app: 'blog', domain: 'blog.test' }]);
    // without a conflict the second try writes both
    raced = false;
    await claimEdgeApp(manager, root, 'blog', 'blog.test');
    const other: Remote = Object.assign(Object.create(manager) as Remote, {
      async shell(line: string, options?: Parameters<Remote['shell']>[1]) {
        if (!raced) {
          raced = true;
          await claimEdgeApp(manager, root, 'wiki', 'wiki.test');
        }
        return manager.shell(line, options);
      },
    });
    await claimEdgeApp(other, root, 'shop', 'shop.test');
    expect((await readEdgeApps(manager, root)).apps.map((a) => a.app)).toEqual(['blog', 'shop', 'wiki']);
  }, 60_000);

  it("a failed first install takes its claim back; one killed after claiming keeps it, and its next install finishes without claiming again", async () => {
    blogFake = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [] });
    blogFake.swarm.failing.add('blog-b1-web');
    await expect(blog.buildinst('b1')).rejects.toMatchObject({ code: 'TASKS_FAILED' });
    expect((await readEdgeApps(blogFake.control.stateRemote, blogFake.control.stateRoot)).apps).toEqual([]);
    blogFake.swarm.failing.delete('blog-b1-web');
    await expect(blog.buildinst('b1', 0)).rejects.toBeInstanceOf(Killed);
    expect((await readEdgeApps(blogFake.control.stateRemote, blogFake.control.stateRoot)).apps).toEqual([{ app: 'blog', domain: 'blog.test' }]);
    const done = await blog.buildinst('b1');
    expect(done.plan.steps.map((s) => s.kind)).not.toContain('claim-edge-hosts');
    expect((await blogFake.get('b1.blog.test', '/healthz')).status).toBe(200);
  }, 60_000);

  it("an app without an http service neither reads nor writes the list: a torn one refuses only the apps the edge routes", async () => {
    blogFake = await startFakeCluster({ app: 'blog', domain: 'blog.test', versions: [] });
    const file = edgeAppsPath(blogFake.control.stateRoot);
    await blogFake.control.stateRemote.writeFileAtomic(file, 'depl-edge-apps 1\napp blog blog.test\n');
    const workers = fakeBuildinst(() => blogFake, blogYaml.replace('port: 8080, http: true, health: /healthz, ', ''));
    await workers.buildinst('w1');
    expect(await appsText(blogFake)).toBe('depl-edge-apps 1\napp blog blog.test\n');
    await expect(blog.buildinst('b1')).rejects.toMatchObject({ code: 'EDGE_APPS_INVALID', exitCode: 2 });
  }, 60_000);
});

describe("two apps with http services on one cluster: the cluster's edge", () => {
  const kindsOf = (plan: { steps: { kind: string }[] }) => plan.steps.map((s) => s.kind);
  const networksOf = (f: FakeCluster, service: string) => (f.swarm.specs.get(service) as { TaskTemplate: { Networks: { Target: string }[] } }).TaskTemplate.Networks.map((n) => n.Target);
  const shop = () => shopAt('shop.test');

  it("the second app's install claims its hosts, then takes the first app's own edge over into depl_edge before anything is built; its http service joins depl_edge-net", async () => {
    await twoApps('shop.test');
    await blog.buildinst('b1');
    expect(networksOf(blogFake, 'blog-b1-web')).toEqual(['blog-net', 'blog-b1-net']);
    const before = blogFake.swarm.calls.length;
    const done = await shop().buildinst('s1');
    expect(kindsOf(done.plan).slice(0, 4)).toEqual(['claim-edge-hosts', 'hook', 'ensure-edge', 'build-image']);
    expect(done.plan.steps[2]).toMatchObject({ kind: 'ensure-edge', cluster: true });
    expect(done.plan.notes).toContainEqual(expect.stringContaining("app shop is routed by the cluster's edge depl_edge"));
    expect(blogFake.swarm.calls.slice(before, before + 5)).toEqual(['ensure-cluster-edge', 'check-image depl-edge:fake', 'ensure-network depl_edge-net', 'remove-edge blog-edge', 'create-edge depl_edge']);
    expect(blogFake.swarm.calls.indexOf('create-edge depl_edge')).toBeLessThan(blogFake.swarm.calls.indexOf('build-image shop/web:s1'));
    expect([...blogFake.swarm.edges.keys()]).toEqual(['depl_edge']);
    expect(networksOf(shopFake!, 'shop-s1-web')).toEqual(['shop-net', 'shop-s1-net', 'depl_edge-net']);
    expect((await readEdgeApps(blogFake.control.stateRemote, blogFake.control.stateRoot)).apps).toEqual([{ app: 'blog', domain: 'blog.test' }, { app: 'shop', domain: 'shop.test' }]);
    // the first app's next install is on the cluster's edge too, which is there: nothing to take over
    const next = await blog.buildinst('b2');
    expect(next.plan.steps.find((s) => s.kind === 'ensure-edge')).toMatchObject({ cluster: true });
    expect(networksOf(blogFake, 'blog-b2-web')).toEqual(['blog-net', 'blog-b2-net', 'depl_edge-net']);
    expect(blogFake.swarm.calls.filter((c) => c.startsWith('create-edge') || c.startsWith('remove-edge'))).toEqual(['remove-edge blog-edge', 'create-edge depl_edge']);
  }, 60_000);

  it("HTTPS stays with an app's own edge: a second app with TLS on, or beside an edge that serves HTTPS, is refused with EDGE_TAKEN, nothing changed", async () => {
    await twoApps();
    await blog.buildinst('b1');
    const calls = [...blogFake.swarm.calls];
    const secure = fakeBuildinst(() => shopFake!, `${shopYaml('shop.test')}tls: { mode: acme, email: ops@shop.test }\n`);
    await expect(secure.buildinst('s1')).rejects.toMatchObject({ code: 'EDGE_TAKEN', exitCode: 2, message: expect.stringContaining('app shop has TLS on') });
    blogFake.swarm.edges.set('blog-edge', { ...blogFake.swarm.edges.get('blog-edge')!, ports: [80, 443] } as never);
    await expect(shop().buildinst('s1')).rejects.toMatchObject({ code: 'EDGE_TAKEN', exitCode: 2, message: expect.stringContaining("app blog's edge (blog-edge) serves HTTPS") });
    expect(blogFake.swarm.calls).toEqual(calls);
    expect((await readEdgeApps(blogFake.control.stateRemote, blogFake.control.stateRoot)).apps).toEqual([{ app: 'blog', domain: 'blog.test' }]);
    expect([...blogFake.swarm.edges.keys()]).toEqual(['blog-edge']);
  }, 60_000);

  it("a failed install after the takeover takes back its claim and keeps the cluster's edge (forward only); killed after the takeover, the next install finds nothing to take over", async () => {
    await twoApps('shop.test');
    await blog.buildinst('b1');
    shopFake!.swarm.failing.add('shop-s1-web');
    await expect(shop().buildinst('s1')).rejects.toMatchObject({ code: 'TASKS_FAILED' });
    expect((await readEdgeApps(blogFake.control.stateRemote, blogFake.control.stateRoot)).apps).toEqual([{ app: 'blog', domain: 'blog.test' }]);
    expect([...blogFake.swarm.edges.keys()]).toEqual(['depl_edge']);
    expect((await blogFake.get('b1.blog.test', '/healthz')).status).toBe(200);
    shopFake!.swarm.failing.delete('shop-s1-web');
    // killed right after the edge step (claim 0, hook 1, ensure-edge 2)
    await expect(shop().buildinst('s1', 2)).rejects.toBeInstanceOf(Killed);
    const done = await shop().buildinst('s1');
    expect(kindsOf(done.plan)).not.toContain('claim-edge-hosts');
    expect(blogFake.swarm.calls.filter((c) => c.startsWith('create-edge') || c.startsWith('remove-edge'))).toEqual(['remove-edge blog-edge', 'create-edge depl_edge']);
    expect((await shopFake!.get('s1.shop.test', '/healthz')).status).toBe(200);
  }, 60_000);
});
