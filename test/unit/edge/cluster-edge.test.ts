import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readEdgeApps } from '../../../src/apply/edge/apps.js';
import { LocalRemote } from '../../../src/apply/local-remote.js';
import { CLUSTER_EDGE_NETWORK, CLUSTER_EDGE_SERVICE, clusterRoutesFile, planClusterEdge, type ClusterEdgeFacts } from '../../../src/plan/cluster-edge.js';
import { renderRoutingTable } from '../../../src/plan/edge-routing.js';
import { emptyReleaseState, routingFor } from '../../../src/plan/release-state.js';
import { silentLogger } from '../../../src/util/log.js';
import { ensureClusterEdge } from '../../../src/workflows/cluster-edge.js';
import { fakeClusterEdgeHost, fakeEdgeSwarm, legacyEdge, type FakeEdgeSwarm } from '../../support/fake-cluster-edge.js';
import { Killed } from '../../support/fake-cluster.js';

/**
 * The cluster's one edge, depl_edge (src/plan/cluster-edge.ts): planned from what the swarm and the manager's files
 * show, so a run killed after any step of the takeover of an earlier depl's `<app>-edge` is finished by the next,
 * which then finds nothing more to take over.
 */
const shopRouting = renderRoutingTable({ ...routingFor(emptyReleaseState('shop'), 'shop', 'shop.test', [{ label: 'v1', http: { service: 'shop-v1-web', port: 8080 } }] as never), live: 'v1' }).text;
const facts = (over: Partial<ClusterEdgeFacts> = {}): ClusterEdgeFacts => ({
  legacy: [], edgeExists: false, networkExists: false, apps: [], image: 'depl-edge:1', https: false, root: '/var/lib/depl', command: 'depl buildinst --version v2', ...over,
});
const shopLegacy = { app: 'shop', service: 'shop-edge', network: 'shop-net', routingFile: '/var/lib/depl/shop/edge/routing', routing: shopRouting };

describe('the plan of the cluster edge', () => {
  it('a cluster without an edge: its network, then depl_edge on it, with no app label (no app prunes it) and the apps list and routes in its nginx.conf', () => {
    const planned = planClusterEdge(facts());
    if (!planned.ok) throw new Error(planned.refusal.message);
    expect(planned.plan.steps.map((s) => s.kind)).toEqual(['check-edge-image', 'ensure-edge-network', 'create-cluster-edge']);
    expect(planned.plan.notes).toEqual([]);
    const create = planned.plan.steps[2]!;
    if (create.kind !== 'create-cluster-edge') throw new Error(create.kind);
    expect(create.spec).toMatchObject({
      Name: CLUSTER_EDGE_SERVICE, Labels: { 'depl.role': 'edge' },
      TaskTemplate: { Networks: [{ Target: CLUSTER_EDGE_NETWORK }], ContainerSpec: { Mounts: [{ Type: 'bind', Source: '/var/lib/depl/_edge', Target: '/var/lib/depl/_edge' }] } },
      EndpointSpec: { Ports: [{ PublishedPort: 80, PublishMode: 'host' }] },
    });
    expect(create.spec.Labels['depl.app']).toBeUndefined();
    expect(create.nginxConf).toContain('/var/lib/depl/_edge/routes/<app> for the apps /var/lib/depl/_edge/apps lists');
    expect(planClusterEdge(facts({ https: true })).ok && (planClusterEdge(facts({ https: true })) as { plan: { steps: { spec?: { EndpointSpec: { Ports: unknown[] } } }[] } }).plan.steps[2]!.spec!.EndpointSpec.Ports).toHaveLength(2);
    // all there: nothing to do
    expect(planClusterEdge(facts({ edgeExists: true, networkExists: true }))).toEqual({ ok: true, plan: { command: 'depl buildinst --version v2', notes: [], steps: [] } });
  });

  it("an earlier depl's edge: routing copied and its domain claimed before it goes, then depl_edge on its app's network too; the plan says requests are refused for a moment", () => {
    const planned = planClusterEdge(facts({ legacy: [shopLegacy], networkExists: true }));
    if (!planned.ok) throw new Error(planned.refusal.message);
    expect(planned.plan.steps.map((s) => s.describe)).toEqual([
      "check that depl-edge:1 has nginx's Lua module (the edge routes with it) before anything changes",
      "copy app shop's routing from its earlier edge shop-edge to the cluster's edge",
      "claim shop.test and its version hosts for app shop in the edge's app list",
      "remove app shop's earlier edge shop-edge and wait until it lets go of ports 80/443",
      "create the cluster's edge depl_edge (depl-edge:1) on depl_edge-net, shop-net and wait until it answers",
    ]);
    expect(planned.plan.steps[1]).toMatchObject({ from: '/var/lib/depl/shop/edge/routing', to: clusterRoutesFile('shop', '/var/lib/depl') });
    expect(planned.plan.notes[0]).toMatch(/requests arriving between the earlier edge's graceful stop and depl_edge's start \(a second or two\) are refused; this happens once/);
    // no step can be undone: forward only, finished by the next run
    expect(planned.plan.steps.filter((s) => 'undo' in s)).toEqual([]);
    // claimed already (an interrupted takeover): not claimed again
    expect(planClusterEdge(facts({ legacy: [shopLegacy], apps: [{ app: 'shop', domain: 'shop.test' }] })).ok && true).toBe(true);
    const again = planClusterEdge(facts({ legacy: [shopLegacy], apps: [{ app: 'shop', domain: 'shop.test' }], networkExists: true, edgeExists: false }));
    expect(again.ok && again.plan.steps.map((s) => s.kind)).toEqual(['check-edge-image', 'copy-routing', 'remove-legacy-edge', 'create-cluster-edge']);
  });

  it("refuses, changing nothing, an earlier edge whose table names no domain, or whose domain another app has claimed", () => {
    expect(planClusterEdge(facts({ legacy: [{ ...shopLegacy, routing: 'depl-routing 1\ngeneration x\n' }] }))).toEqual({ ok: false, refusal: expect.objectContaining({ code: 'EDGE_TAKEOVER_UNREADABLE' }) });
    expect(planClusterEdge(facts({ legacy: [shopLegacy], apps: [{ app: 'blog', domain: 'shop.test' }] }))).toEqual({ ok: false, refusal: expect.objectContaining({ code: 'HOST_TAKEN', message: expect.stringContaining('app blog') }) });
    // an edge that never routed anything has nothing to copy or claim
    const bare = planClusterEdge(facts({ legacy: [{ ...shopLegacy, routing: null }], networkExists: true }));
    expect(bare.ok && bare.plan.steps.map((s) => s.kind)).toEqual(['check-edge-image', 'remove-legacy-edge', 'create-cluster-edge']);
  });
});

describe("the takeover of an earlier depl's edge on the fake cluster", () => {
  let root: string;
  const manager = new LocalRemote();
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'depl-cluster-edge-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const request = () => ({ image: 'depl-edge:1', https: false, command: 'depl buildinst --version v2', root });
  const run = (swarm: FakeEdgeSwarm, killAfter?: number) => ensureClusterEdge(fakeClusterEdgeHost(swarm, manager, root), manager, request(), silentLogger, (index) => {
    if (index === killAfter) throw new Killed(`after step ${index + 1}`);
  });
  async function expectTakenOver(swarm: FakeEdgeSwarm, why: string): Promise<void> {
    expect([...swarm.edges.keys()], why).toEqual([CLUSTER_EDGE_SERVICE]);
    expect(swarm.edges.get(CLUSTER_EDGE_SERVICE)?.networks, why).toEqual([CLUSTER_EDGE_NETWORK, 'shop-net']);
    expect(await manager.readFile(clusterRoutesFile('shop', root)), why).toBe(shopRouting);
    expect((await readEdgeApps(manager, root)).apps, why).toEqual([{ app: 'shop', domain: 'shop.test' }]);
    expect(await manager.readFile(`${root}/_edge/nginx.conf`), why).toContain(`${root}/_edge/routes`);
  }

  it('copies, claims, removes, creates, in that order; the next run finds nothing to do (it runs once)', async () => {
    const swarm = fakeEdgeSwarm();
    await legacyEdge(swarm, manager, root, 'shop', shopRouting);
    await run(swarm);
    expect(swarm.calls).toEqual(['check-image depl-edge:1', 'ensure-network depl_edge-net', 'copy shop/edge/routing _edge/routes/shop', 'remove-edge shop-edge', 'create-edge depl_edge']);
    await expectTakenOver(swarm, 'taken over');
    expect((await run(swarm)).steps).toEqual([]);
  });

  it('killed after each step, or failing at one, the next run finishes it: one edge, the routing and the claim there, each service made or removed once', async () => {
    const plan = await (async () => {
      const swarm = fakeEdgeSwarm();
      await legacyEdge(swarm, manager, root, 'shop', shopRouting);
      const { planClusterEdgeOn } = await import('../../../src/workflows/cluster-edge.js');
      return planClusterEdgeOn(fakeClusterEdgeHost(swarm, manager, root), manager, request());
    })();
    expect(plan.steps).toHaveLength(6);
    for (let index = 0; index < plan.steps.length; index++) {
      await rm(root, { recursive: true, force: true });
      const swarm = fakeEdgeSwarm();
      await legacyEdge(swarm, manager, root, 'shop', shopRouting);
      await expect(run(swarm, index), `killed after step ${index + 1}`).rejects.toBeInstanceOf(Killed);
      await run(swarm);
      await expectTakenOver(swarm, `killed after step ${index + 1} (${plan.steps[index]!.kind})`);
      expect(swarm.calls.filter((c) => c.startsWith('create-edge')), `step ${index + 1}`).toHaveLength(1);
      expect(swarm.calls.filter((c) => c.startsWith('remove-edge')), `step ${index + 1}`).toHaveLength(1);
    }
    for (const failing of ['copy', 'remove-edge', 'create-edge']) {
      await rm(root, { recursive: true, force: true });
      const swarm = fakeEdgeSwarm();
      await legacyEdge(swarm, manager, root, 'shop', shopRouting);
      swarm.failOnce.add(failing);
      await expect(run(swarm), failing).rejects.toThrow(/refused \(fake\)/);
      await run(swarm);
      await expectTakenOver(swarm, `${failing} failed once`);
    }
  });

  it('an image without the Lua module is refused before anything changes: the earlier edge keeps serving', async () => {
    const swarm = fakeEdgeSwarm();
    await legacyEdge(swarm, manager, root, 'shop', shopRouting);
    const host = fakeClusterEdgeHost(swarm, manager, root);
    await expect(ensureClusterEdge(host, manager, { ...request(), image: 'no-lua/nginx:1' }, silentLogger)).rejects.toMatchObject({ code: 'EDGE_IMAGE_NO_LUA' });
    expect(swarm.calls).toEqual(['check-image no-lua/nginx:1']);
    expect([...swarm.edges.keys()]).toEqual(['shop-edge']);
    expect(await manager.readFile(clusterRoutesFile('shop', root))).toBeNull();
  });

  it('depl_edge cannot start while the earlier edge holds the port: the order is what makes it work', async () => {
    const swarm = fakeEdgeSwarm();
    await legacyEdge(swarm, manager, root, 'shop', shopRouting);
    const host = fakeClusterEdgeHost(swarm, manager, root);
    await expect(host.createEdge({ Name: CLUSTER_EDGE_SERVICE, TaskTemplate: { Networks: [] } } as never, '')).rejects.toThrow(/port 80 is already held by shop-edge/);
  });
});
