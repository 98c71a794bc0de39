import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REFUSED_BY_GATE, startEngineStandIn, type EngineReply } from '../../support/engine-stand-in.js';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineSocket } from '../../../src/apply/engine-socket.js';
import { poolSwarmOn } from '../../../src/autoscaler/pool-swarm.js';
import { scaleGatePolicy } from '../../../src/engine-gate/policies.js';
import { startEngineGate } from '../../../src/engine-gate/server.js';
import type { ScaleGateSettings } from '../../../src/plan/autoscale-gate.js';
import { decidePoolGateRequest, nodeToRead, poolTaskView, type GateNode } from '../../../src/plan/autoscale-pool-gate.js';

const pools = { app: 'shop', version: 'v7', pools: ['crawl'] };
const POOL_NODE = 'p00lnode00000000000000001';
const MANAGER = 'manager000000000000000001';
const spec = (labels: Record<string, string>, availability = 'active') => ({ Name: '', Labels: labels, Role: 'worker', Availability: availability });
const poolNode = (): GateNode => ({ ID: POOL_NODE, Version: { Index: 9 }, Spec: spec({ 'depl.node': 'shop-crawl-0', 'depl.pool': 'crawl' }) });
const manager = (): GateNode => ({ ID: MANAGER, Version: { Index: 3 }, Spec: spec({ 'depl.node': 'shop-0', 'depl.edge': 'true' }) });
const filters = (f: unknown) => encodeURIComponent(JSON.stringify(f));
const get = (p: string) => ({ method: 'GET', path: p, body: '' });
const update = (id: string, version: number, body: unknown) => ({ method: 'POST', path: `/nodes/${id}/update?version=${version}`, body: JSON.stringify(body) });

describe('the pool part of the autoscaler\'s engine gate decides as data', () => {
  it('passes on the pool\'s node listing, the tasks of its nodes and their availability, rebuilt from the node\'s spec', () => {
    const listing = `/nodes?filters=${filters({ label: ['depl.pool=crawl'] })}`;
    expect(decidePoolGateRequest(pools, get(listing), null)).toEqual({ allow: true, kind: 'nodes', method: 'GET', path: listing });
    const tasks = `/tasks?filters=${filters({ node: [POOL_NODE] })}`;
    expect(nodeToRead(get(tasks))).toBe(POOL_NODE);
    expect(decidePoolGateRequest(pools, get(tasks), poolNode())).toMatchObject({ allow: true, kind: 'tasks' });
    expect(decidePoolGateRequest(pools, get(`/nodes/${POOL_NODE}`), poolNode())).toMatchObject({ allow: true, kind: 'node' });
    // the controller sends the spec it read with the availability changed, or only the availability
    for (const body of [{ ...poolNode().Spec, Availability: 'drain' }, { Availability: 'drain' }]) {
      expect(decidePoolGateRequest(pools, update(POOL_NODE, 9, body), poolNode())).toEqual({
        allow: true, kind: 'node-update', method: 'POST', path: `/nodes/${POOL_NODE}/update?version=9`, body: { ...poolNode().Spec, Availability: 'drain' },
      });
    }
  });

  it('refuses other nodes, other changes, other listings, and everything when the version sizes no pool', () => {
    const refused = (request: { method: string; path: string; body: string }, node: GateNode | null) => decidePoolGateRequest(pools, request, node);
    // the manager (or any node outside the pools): not listed by label, not drained, its tasks not shown
    expect(refused(get(`/nodes?filters=${filters({ label: ['depl.edge=true'] })}`), null)).toMatchObject({ allow: false, status: 403 });
    expect(refused(get(`/nodes?filters=${filters({ label: ['depl.pool=other'] })}`), null)).toMatchObject({ allow: false, status: 403 });
    expect(refused(get('/nodes'), null)).toMatchObject({ allow: false, status: 403 });
    expect(refused(get(`/nodes?filters=${filters({ label: ['depl.pool=crawl'], role: ['manager'] })}`), null)).toMatchObject({ allow: false });
    expect(refused(get(`/tasks?filters=${filters({ node: [MANAGER] })}`), manager())).toMatchObject({ allow: false, status: 403 });
    expect(refused(get(`/tasks?filters=${filters({ service: ['shop-v7-api'] })}`), null)).toMatchObject({ allow: false, status: 403 });
    expect(refused(update(MANAGER, 3, { Availability: 'drain' }), manager())).toMatchObject({ allow: false, status: 403 });
    // a pool node: only drain or active, nothing else of its spec, at the version read
    expect(refused(update(POOL_NODE, 9, { Availability: 'pause' }), poolNode())).toMatchObject({ allow: false, status: 403 });
    expect(refused(update(POOL_NODE, 9, { Availability: 'drain', Role: 'manager' }), poolNode())).toMatchObject({ allow: false, reason: expect.stringContaining('changes Role') });
    expect(refused(update(POOL_NODE, 9, { Availability: 'drain', Labels: { 'depl.pool': 'crawl', 'depl.edge': 'true' } }), poolNode())).toMatchObject({ allow: false, status: 403 });
    expect(refused(update(POOL_NODE, 8, { Availability: 'drain' }), poolNode())).toMatchObject({ allow: false, status: 409 });
    expect(refused({ method: 'DELETE', path: `/nodes/${POOL_NODE}`, body: '' }, poolNode())).toMatchObject({ allow: false, status: 403 });
    // the node the gate read is not the one asked for
    expect(refused(get(`/nodes/${POOL_NODE}`), manager())).toMatchObject({ allow: false, status: 403 });
    expect(decidePoolGateRequest({ ...pools, pools: [] }, get(`/nodes?filters=${filters({ label: ['depl.pool=crawl'] })}`), null)).toMatchObject({ allow: false });
  });

  it('shows the controller a task\'s id and state only', () => {
    expect(poolTaskView([{ ID: 't1', Spec: { ContainerSpec: { Env: ['TOKEN=secret'] } }, Status: { State: 'running', Message: 'started' } }])).toEqual([{ ID: 't1', Status: { State: 'running' } }]);
  });
});

describe('a pool drain through the autoscaler\'s engine gate', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('the controller\'s pool client lists, drains and reactivates a pool node through the gate; the manager stays out of reach', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'depl-pool-gate-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const nodes = new Map([[POOL_NODE, poolNode()], [MANAGER, manager()]]);
    const tasks = [{ ID: 't1', NodeID: POOL_NODE, Spec: { ContainerSpec: { Env: ['REDIS_PASSWORD=secret'] } }, Status: { State: 'running' } }];
    const engineSocket = path.join(dir, 'docker.sock');
    const labelled = (n: GateNode, label: string) => {
      const [key, value] = label.split('=');
      return (n.Spec.Labels as Record<string, string>)[key!] === value;
    };
    const engine = await startEngineStandIn(engineSocket, (call): EngineReply => {
      const url = new URL(call.path, 'http://engine');
      const filter = JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[]; node?: string[] };
      if (call.method === 'GET' && url.pathname === '/nodes') {
        return [200, [...nodes.values()].filter((n) => (filter.label ?? []).every((l) => labelled(n, l))).map((n) => ({ ...n, Description: { Hostname: String((n.Spec.Labels as Record<string, string>)['depl.node']) }, Status: { State: 'ready' } }))];
      }
      if (call.method === 'GET' && url.pathname === '/tasks') return [200, tasks.filter((t) => filter.node?.includes(t.NodeID) ?? true)];
      const node = /^\/nodes\/([a-z0-9]+)(\/update)?$/.exec(url.pathname);
      const n = node === null ? undefined : nodes.get(node[1]!);
      if (n !== undefined && call.method === 'GET' && node![2] === undefined) return [200, n];
      if (n !== undefined && call.method === 'POST' && node![2] !== undefined && Number(url.searchParams.get('version')) === n.Version.Index) {
        n.Spec = JSON.parse(call.body) as Record<string, unknown>;
        n.Version.Index += 1;
        return [200, {}];
      }
      return REFUSED_BY_GATE;
    });
    cleanups.push(engine.close);
    const seen = () => engine.seen.map((c) => `${c.method} ${c.path}`);
    const settings: ScaleGateSettings = { policy: 'scale', app: 'shop', version: 'v7', services: [{ name: 'shop-v7-worker', min: 1, max: 4 }], pools: ['crawl'] };
    const gateSocket = path.join(dir, 'engine.sock');
    const gate = await startEngineGate({ socket: gateSocket, policy: scaleGatePolicy(settings), engine: new EngineSocket(engineSocket), log: { info: () => undefined, warn: () => undefined } });
    cleanups.push(() => new Promise((resolve) => gate.close(() => resolve())));

    const client = new EngineSocket(gateSocket);
    const swarm = poolSwarmOn(client);
    expect(await swarm.nodes('crawl')).toEqual([{ id: POOL_NODE, hostname: 'shop-crawl-0', availability: 'active', state: 'ready', tasks: 1 }]);
    await swarm.drain(POOL_NODE);
    expect(nodes.get(POOL_NODE)!.Spec).toEqual({ ...poolNode().Spec, Availability: 'drain' });
    await swarm.activate(POOL_NODE);
    expect(nodes.get(POOL_NODE)!.Spec).toEqual(poolNode().Spec);
    // the tasks' specs (their environment) never reach the controller
    expect((await client.request('GET', `/tasks?filters=${filters({ node: [POOL_NODE] })}`)).body.toString()).not.toContain('secret');
    // the manager: neither drained nor listed, and nothing of it reaches the Engine but the gate's read
    const before = seen().length;
    await expect(swarm.drain(MANAGER)).rejects.toThrow(/403/);
    await expect(swarm.nodes('other')).rejects.toThrow(/403/);
    expect(nodes.get(MANAGER)!.Spec).toEqual(manager().Spec);
    expect(seen().slice(before)).toEqual([`GET /nodes/${MANAGER}`]);
  });
});
