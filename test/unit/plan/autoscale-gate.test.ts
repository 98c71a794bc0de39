import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REFUSED_BY_GATE, startEngineStandIn, type EngineCall, type EngineReply } from '../../support/engine-stand-in.js';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineSocket } from '../../../src/apply/engine-socket.js';
import { scaleGatePolicy } from '../../../src/engine-gate/policies.js';
import { startEngineGate } from '../../../src/engine-gate/server.js';
import { decideScaleGateRequest, scaleGateView, serviceToRead, type GateService, type ScaleGateSettings } from '../../../src/plan/autoscale-gate.js';

const settings: ScaleGateSettings = { policy: 'scale', app: 'shop', version: 'v7', services: [{ name: 'shop-v7-worker', min: 1, max: 4 }] };
const WORKER_ID = 'w0rkerserviceid0000000001';
const API_ID = 'ap1serviceid0000000000001';
const workerSpec = () => ({
  Name: 'shop-v7-worker',
  Labels: { 'depl.app': 'shop', 'depl.version': 'v7', 'depl.autoscale': '1-4' },
  TaskTemplate: { ContainerSpec: { Image: 'shop/api:v7', Env: ['REDIS_URL=redis://redis:6379'], Secrets: [{ SecretName: 'shop-token-1' }] } },
  Mode: { Replicated: { Replicas: 2 } },
});
const worker = (): GateService => ({ ID: WORKER_ID, Version: { Index: 42 }, Spec: workerSpec() });
const update = (body: unknown, options: { id?: string; version?: number } = {}) => ({
  method: 'POST', path: `/services/${options.id ?? WORKER_ID}/update?version=${options.version ?? 42}`, body: typeof body === 'string' ? body : JSON.stringify(body),
});
const replicas = (n: unknown) => ({ Replicated: { Replicas: n } });

describe('the autoscaler\'s engine gate decides as data', () => {
  it('passes on the inspect of the version\'s autoscaled services and their replicas within bounds, rebuilding the update from the current spec', () => {
    expect(decideScaleGateRequest(settings, { method: 'GET', path: '/services/shop-v7-worker', body: '' }, null)).toEqual({ allow: true, kind: 'inspect', method: 'GET', path: '/services/shop-v7-worker' });
    for (const n of [1, 3, 4]) {
      // the controller sends the spec as the gate showed it (name and mode), or the whole spec: either way the Engine gets the current spec with only the replicas changed
      for (const body of [{ Name: 'shop-v7-worker', Mode: replicas(n) }, { ...workerSpec(), Mode: replicas(n) }, { Mode: replicas(n) }]) {
        expect(decideScaleGateRequest(settings, update(body), worker())).toEqual({
          allow: true, kind: 'update', method: 'POST', path: `/services/${WORKER_ID}/update?version=42`, body: { ...workerSpec(), Mode: replicas(n) },
        });
      }
    }
    // only an update makes the gate read the service first, by the id it names
    expect(serviceToRead(update({}))).toBe(WORKER_ID);
    expect(serviceToRead({ method: 'GET', path: '/services/shop-v7-worker', body: '' })).toBeNull();
    expect(serviceToRead({ method: 'POST', path: '/containers/create', body: '{}' })).toBeNull();
    // what the controller is told: no image, environment, mounts or secrets
    expect(scaleGateView(worker())).toEqual({ ID: WORKER_ID, Version: { Index: 42 }, Spec: { Name: 'shop-v7-worker', Mode: replicas(2) } });
  });

  it('refuses other services, replicas outside the bounds, any other field changed, and every other call', () => {
    const api: GateService = { ID: API_ID, Version: { Index: 9 }, Spec: { ...workerSpec(), Name: 'shop-v7-api' } };
    const refused: Array<[string, { method: string; path: string; body: string }, GateService | null]> = [
      // other services: not autoscaled, another version's, another app's, the list
      ['inspect api', { method: 'GET', path: '/services/shop-v7-api', body: '' }, null],
      ['inspect v8', { method: 'GET', path: '/services/shop-v8-worker', body: '' }, null],
      ['inspect other app', { method: 'GET', path: '/services/other-v7-worker', body: '' }, null],
      ['inspect with a query', { method: 'GET', path: '/services/shop-v7-worker?insertDefaults=true', body: '' }, null],
      ['list services', { method: 'GET', path: '/services', body: '' }, null],
      ['update api', update({ Mode: replicas(2) }, { id: API_ID, version: 9 }), api],
      ['update a service that is not there', update({ Mode: replicas(2) }), null],
      ['update by an id that is not the service read', update({ Mode: replicas(2) }, { id: API_ID }), worker()],
      ['update by name', { method: 'POST', path: '/services/shop-v7-worker/update?version=42', body: JSON.stringify({ Mode: replicas(2) }) }, worker()],
      // replicas outside min..max, or not a count
      ['below min', update({ Mode: replicas(0) }), worker()],
      ['above max', update({ Mode: replicas(5) }), worker()],
      ['a string', update({ Mode: replicas('3') }), worker()],
      ['a fraction', update({ Mode: replicas(2.5) }), worker()],
      ['global', update({ Mode: { Global: {} } }), worker()],
      ['more in the mode', update({ Mode: { Replicated: { Replicas: 2, MaxConcurrent: 9 } } }), worker()],
      ['no mode', update({ Name: 'shop-v7-worker' }), worker()],
      // any other field changed: the image, the environment, labels, the name, a published port, the task template
      ['image', update({ ...workerSpec(), Mode: replicas(3), TaskTemplate: { ContainerSpec: { ...workerSpec().TaskTemplate.ContainerSpec, Image: 'evil:1' } } }), worker()],
      ['privileged mounts', update({ Mode: replicas(3), TaskTemplate: { ContainerSpec: { Image: 'shop/api:v7', Mounts: [{ Type: 'bind', Source: '/', Target: '/host' }] } } }), worker()],
      ['labels', update({ Mode: replicas(3), Labels: { 'depl.autoscale': '1-99' } }), worker()],
      ['name', update({ Mode: replicas(3), Name: 'shop-v7-api' }), worker()],
      ['a new field', update({ Mode: replicas(3), EndpointSpec: { Ports: [{ PublishedPort: 22, TargetPort: 22 }] } }), worker()],
      ['not json', update('{"Mode":'), worker()],
      ['an array', update([1]), worker()],
      // other endpoints: a privileged container (root on the manager), exec, secrets, a service's removal or logs
      ['privileged container', { method: 'POST', path: '/containers/create', body: JSON.stringify({ Image: 'x', HostConfig: { Privileged: true, Binds: ['/:/host'] } }) }, null],
      ['container list', { method: 'GET', path: '/containers/json', body: '' }, null],
      ['exec', { method: 'POST', path: `/containers/${'e'.repeat(64)}/exec`, body: JSON.stringify({ Cmd: ['sh'] }) }, null],
      ['service create', { method: 'POST', path: '/services/create', body: JSON.stringify(workerSpec()) }, null],
      ['service remove', { method: 'DELETE', path: `/services/${WORKER_ID}`, body: '' }, worker()],
      ['service logs', { method: 'GET', path: `/services/${WORKER_ID}/logs`, body: '' }, null],
      ['secrets', { method: 'GET', path: '/secrets', body: '' }, null],
      ['an update with another query', { method: 'POST', path: `/services/${WORKER_ID}/update?version=42&registryAuthFrom=previous-spec`, body: JSON.stringify({ Mode: replicas(2) }) }, worker()],
      ['an update by GET', { method: 'GET', path: `/services/${WORKER_ID}/update?version=42`, body: '' }, worker()],
    ];
    for (const [what, request, current] of refused) expect(decideScaleGateRequest(settings, request, current), what).toMatchObject({ allow: false, status: 403 });
    expect(decideScaleGateRequest(settings, update({ Mode: replicas(5) }), worker())).toMatchObject({ reason: expect.stringMatching(/5 replicas is outside shop-v7-worker's 1\.\.4/) });
    expect(decideScaleGateRequest(settings, update({ Mode: replicas(3), Labels: {} }), worker())).toMatchObject({ reason: expect.stringMatching(/changes Labels/) });
    // a spec read before someone else changed it: the Engine's own refusal, decided at the gate
    expect(decideScaleGateRequest(settings, update({ Mode: replicas(3) }, { version: 41 }), worker())).toMatchObject({ allow: false, status: 409, reason: expect.stringMatching(/version 41, now 42/) });
  });
});

describe('the autoscaler\'s engine gate between the controller\'s client and an Engine', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** An Engine API on a unix socket holding one service (inspect by name or id, update at its version) that records every request reaching it. */
  async function engineStandIn(dir: string): Promise<{ socket: string; seen: EngineCall[]; service: GateService }> {
    const socket = path.join(dir, 'docker.sock');
    const service = worker();
    const engine = await startEngineStandIn(socket, (call): EngineReply => {
      if (call.method === 'GET' && (call.path === '/services/shop-v7-worker' || call.path === `/services/${WORKER_ID}`)) return [200, service];
      if (call.method === 'POST' && call.path === `/services/${WORKER_ID}/update?version=${service.Version.Index}`) {
        service.Spec = JSON.parse(call.body) as Record<string, unknown>;
        service.Version.Index += 1;
        return [200, { Warnings: null }];
      }
      return REFUSED_BY_GATE;
    });
    cleanups.push(engine.close);
    return { socket, seen: engine.seen, service };
  }

  it('lets the controller read and scale its service within bounds, and stops everything else at the gate', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'depl-scale-gate-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const engine = await engineStandIn(dir);
    const gateSocket = path.join(dir, 'engine.sock');
    const warnings: string[] = [];
    const gate = await startEngineGate({ socket: gateSocket, policy: scaleGatePolicy(settings), engine: new EngineSocket(engine.socket), log: { info: () => undefined, warn: (m) => warnings.push(m) } });
    cleanups.push(() => new Promise((resolve) => gate.close(() => resolve())));
    expect((await stat(gateSocket)).mode & 0o777).toBe(0o600);

    // the controller's client (src/autoscaler/main.ts), pointed at the gate: it reads the worker and scales it to 4
    const client = new EngineSocket(gateSocket);
    const read = (await client.inspectService('shop-v7-worker'))!;
    expect(read).toEqual({ ID: WORKER_ID, Version: { Index: 42 }, Spec: { Name: 'shop-v7-worker', Mode: replicas(2) } });
    await client.setReplicas(read, 4);
    expect(engine.service.Spec).toEqual({ ...workerSpec(), Mode: replicas(4) });
    expect(engine.service.Version.Index).toBe(43);
    const reached = engine.seen.length;

    // beyond the bounds, with a stale version, or anything a taken-over controller could try: refused, and no change reaches the Engine
    await expect(client.setReplicas({ ...read, Version: { Index: 43 } }, 9)).rejects.toThrow(/HTTP 403 the engine gate of shop-v7-autoscaler refuses POST \/services\/.*: 9 replicas is outside shop-v7-worker's 1\.\.4/);
    await expect(client.setReplicas(read, 3)).rejects.toThrow(/HTTP 409 .*version 42, now 43/);
    expect((await client.request('POST', `/services/${WORKER_ID}/update?version=43`, { Mode: replicas(3), TaskTemplate: { ContainerSpec: { Image: 'evil:1', Privileged: true } } })).status).toBe(403);
    expect((await client.request('POST', '/containers/create', { Image: 'node', HostConfig: { Privileged: true, Binds: ['/:/host'] } })).status).toBe(403);
    expect((await client.request('GET', '/services/shop-v7-api')).status).toBe(403);
    expect((await client.request('GET', '/secrets')).status).toBe(403);
    expect(warnings.length).toBe(6);
    // what reached the Engine since: the reads by id an update is decided on, never a change
    expect(engine.seen.slice(reached).map((r) => `${r.method} ${r.path}`)).toEqual([`GET /services/${WORKER_ID}`, `GET /services/${WORKER_ID}`, `GET /services/${WORKER_ID}`]);
    expect(engine.service.Spec).toEqual({ ...workerSpec(), Mode: replicas(4) });

    // before: the controller's read, then the gate's read by id and the update it rebuilt
    expect(engine.seen.slice(0, reached).map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /services/shop-v7-worker', `GET /services/${WORKER_ID}`, `POST /services/${WORKER_ID}/update?version=42`,
    ]);
  });
});
