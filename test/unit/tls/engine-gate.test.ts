import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REFUSED_BY_GATE, startEngineStandIn, type EngineCall, type EngineReply } from '../../support/engine-stand-in.js';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineSocket } from '../../../src/apply/engine-socket.js';
import {
  decideGateRequest, engineGateSocket, planEngineGateService, renewerEdgeCommands, runningContainerPath, type GateFacts,
} from '../../../src/plan/tls/engine-gate.js';
import { edgeGatePolicy } from '../../../src/engine-gate/policies.js';
import { startEngineGate } from '../../../src/engine-gate/server.js';

const EDGE = 'e'.repeat(64);
const OTHER = 'f'.repeat(64);
const EXEC = 'a'.repeat(64);
const facts = (over: Partial<GateFacts> = {}): GateFacts => ({ edgeContainer: EDGE, execs: new Set([EXEC]), ...over });
const create = (container: string, body: unknown) => ({ method: 'POST', path: `/containers/${container}/exec`, body: JSON.stringify(body) });

describe('the engine gate decides as data', () => {
  const commands = renewerEdgeCommands('shop');

  it('passes on the edge container\'s listing and the renewal task\'s four edge commands, rebuilding the exec body', () => {
    expect(decideGateRequest('shop', { method: 'GET', path: runningContainerPath('shop-edge'), body: '' }, facts())).toMatchObject({ allow: true, kind: 'list' });
    for (const argv of Object.values(commands)) {
      // anything else the client puts in the body is dropped: no Privileged, User, Env or TTY reaches the Engine
      const decision = decideGateRequest('shop', create(EDGE, { Cmd: argv, Privileged: true, User: 'root', Env: ['X=1'], Tty: true }), facts());
      expect(decision).toEqual({ allow: true, kind: 'exec-create', method: 'POST', path: `/containers/${EDGE}/exec`, body: { Cmd: argv, AttachStdout: true, AttachStderr: true, Tty: false } });
    }
    expect(decideGateRequest('shop', { method: 'POST', path: `/exec/${EXEC}/start`, body: '{"Detach":true,"Tty":true}' }, facts()))
      .toEqual({ allow: true, kind: 'exec-start', method: 'POST', path: `/exec/${EXEC}/start`, body: { Detach: false, Tty: false } });
    expect(decideGateRequest('shop', { method: 'GET', path: `/exec/${EXEC}/json`, body: '' }, facts())).toMatchObject({ allow: true, kind: 'exec-inspect' });
  });

  it('refuses every other call, container, command and exec', () => {
    const refused = [
      // another app's edge, another listing, any other Engine call
      { method: 'GET', path: runningContainerPath('other-edge'), body: '' },
      { method: 'GET', path: '/containers/json', body: '' },
      { method: 'POST', path: '/containers/create', body: JSON.stringify({ Image: 'x', HostConfig: { Privileged: true, Binds: ['/:/host'] } }) },
      { method: 'GET', path: '/services', body: '' },
      { method: 'POST', path: `/containers/${EDGE}/kill?signal=HUP`, body: '' },
      { method: 'GET', path: `/containers/${EDGE}/archive?path=/`, body: '' },
      { method: 'GET', path: '/secrets', body: '' },
      // an exec in a container that is not the edge's, or a command the task does not run
      create(OTHER, { Cmd: commands.reload }),
      create(EDGE, { Cmd: ['sh', '-c', 'cat /etc/shadow'] }),
      create(EDGE, { Cmd: [...commands.reload, 'extra'] }),
      create(EDGE, { Cmd: ['nginx', '-t', '-c', '/tmp/evil.conf'] }),
      create(EDGE, { Cmd: 'nginx -s reload' }),
      { method: 'POST', path: `/containers/${EDGE}/exec`, body: 'not json' },
      // an exec the gate did not make (another client's, or an id guessed)
      { method: 'POST', path: `/exec/${OTHER}/start`, body: '{}' },
      { method: 'GET', path: `/exec/${OTHER}/json`, body: '' },
      { method: 'GET', path: `/exec/${EXEC}/start`, body: '' },
    ];
    for (const request of refused) expect(decideGateRequest('shop', request, facts()), `${request.method} ${request.path}`).toMatchObject({ allow: false });
    // no running edge: no exec at all
    expect(decideGateRequest('shop', create(EDGE, { Cmd: commands.reload }), facts({ edgeContainer: null }))).toMatchObject({ allow: false, reason: expect.stringMatching(/not the running container of shop-edge/) });
  });

  it('the gate is the one with the Docker socket: beside the edge, its folder and its code read-only, no network', () => {
    const spec = planEngineGateService({ app: 'shop', image: 'node:20-bookworm-slim', script: '/var/lib/depl/shop/renewer/gate-abc.mjs', scriptHash: 'abc' });
    expect(spec.Name).toBe('shop-edge-gate');
    expect(spec.Labels).toMatchObject({ 'depl.app': 'shop', 'depl.role': 'tls-renewer' });
    expect(spec.TaskTemplate.ContainerSpec.Mounts).toEqual([
      { Type: 'bind', Source: '/var/lib/depl/shop/edge-gate', Target: '/var/lib/depl/shop/edge-gate' },
      { Type: 'bind', Source: '/var/lib/depl/shop/renewer/gate-abc.mjs', Target: '/var/lib/depl/shop/renewer/gate-abc.mjs', ReadOnly: true },
      { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' },
    ]);
    expect(spec.TaskTemplate.Networks).toEqual([]);
    expect(spec.TaskTemplate.ContainerSpec.Secrets).toBeUndefined();
    expect(spec.TaskTemplate.Placement?.Constraints).toEqual(['node.labels.depl.edge==true']);
    expect(engineGateSocket('shop')).toBe('/var/lib/depl/shop/edge-gate/engine.sock');
  });
});

describe('the engine gate between the renewal task and an Engine', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /**
   * An Engine API on a unix socket that answers the calls of `docker exec` for one container and records every
   * request that reaches it: what the gate lets through is what it sees.
   */
  async function engineStandIn(dir: string): Promise<{ socket: string; seen: EngineCall[] }> {
    const socket = path.join(dir, 'docker.sock');
    const engine = await startEngineStandIn(socket, (call): EngineReply => {
      if (call.path.startsWith('/containers/json')) return [200, JSON.stringify([{ Id: EDGE }])];
      if (call.path === `/containers/${EDGE}/exec`) return [201, JSON.stringify({ Id: EXEC })];
      if (call.path === `/exec/${EXEC}/start`) {
        const text = Buffer.from('nginx: configuration file test is successful\n');
        const header = Buffer.alloc(8);
        header[0] = 1;
        header.writeUInt32BE(text.length, 4);
        return [200, Buffer.concat([header, text])];
      }
      if (call.path === `/exec/${EXEC}/json`) return [200, JSON.stringify({ ExitCode: 0 })];
      return REFUSED_BY_GATE;
    });
    cleanups.push(engine.close);
    return { socket, seen: engine.seen };
  }

  it('runs the task\'s edge commands through to the Engine and stops everything else at the gate', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'depl-gate-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const engine = await engineStandIn(dir);
    const gateSocket = path.join(dir, 'engine.sock');
    const warnings: string[] = [];
    const gate = await startEngineGate({ socket: gateSocket, policy: edgeGatePolicy('shop'), engine: new EngineSocket(engine.socket), log: { info: () => undefined, warn: (m) => warnings.push(m) } });
    cleanups.push(() => new Promise((resolve) => gate.close(() => resolve())));
    expect((await stat(gateSocket)).mode & 0o777).toBe(0o600);

    // the renewal task's client, pointed at the gate: it finds the edge and runs nginx -t there
    const client = new EngineSocket(gateSocket);
    expect(await client.runningContainerOf('shop-edge')).toBe(EDGE);
    const check = await client.exec(EDGE, renewerEdgeCommands('shop').check);
    expect(check).toEqual({ code: 0, stdout: 'nginx: configuration file test is successful\n', stderr: '' });
    const reached = engine.seen.length;

    // what the task could try if it were taken over: each is refused at the gate and never reaches the Engine
    expect((await client.request('POST', '/containers/create', { Image: 'node', HostConfig: { Privileged: true, Binds: ['/:/host'] } })).status).toBe(403);
    expect((await client.request('POST', `/containers/${EDGE}/exec`, { Cmd: ['sh', '-c', 'cat /var/lib/depl/shop/edge/tls/*/key.pem'] })).status).toBe(403);
    expect((await client.request('GET', runningContainerPath('other-edge'))).status).toBe(403);
    await expect(client.runningContainerOf('other-edge')).rejects.toThrow(/HTTP 403 the engine gate refuses GET \/containers\/json/);
    expect(engine.seen.length).toBe(reached);
    expect(warnings.length).toBe(4);

    // the Engine saw the listing, the exec of the allowed command as the gate rebuilt it, its start and its inspect
    expect(engine.seen.map((r) => `${r.method} ${r.path.split('?')[0]}`)).toEqual([
      'GET /containers/json', 'GET /containers/json', `POST /containers/${EDGE}/exec`, `POST /exec/${EXEC}/start`, `GET /exec/${EXEC}/json`,
    ]);
    expect(JSON.parse(engine.seen[2]!.body)).toEqual({ Cmd: renewerEdgeCommands('shop').check, AttachStdout: true, AttachStderr: true, Tty: false });
  });
});
