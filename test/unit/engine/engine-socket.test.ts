import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EngineSocket } from '../../../src/apply/engine-socket.js';

/** A frame of a non-TTY exec stream: stream (1 out, 2 err), three zero bytes, the size, the bytes. */
const frame = (stream: 1 | 2, text: string) => {
  const body = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
};

let dir: string;
let server: Server;
let socket: string;
const seen: Array<{ method: string; url: string; body: string }> = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'depl-engine-'));
  socket = path.join(dir, 'docker.sock');
  seen.length = 0;
  // the Engine API as the renewal task and the autoscaler use it, on a Unix socket of this test's own
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body });
      if (req.url!.startsWith('/containers/json')) res.writeHead(200).end(JSON.stringify([{ Id: 'c0ffee' }]));
      else if (req.url === '/containers/c0ffee/exec') res.writeHead(201).end(JSON.stringify({ Id: 'x1' }));
      else if (req.url === '/exec/x1/start') res.writeHead(200).end(Buffer.concat([frame(1, 'ok\n'), frame(2, 'warn\n'), frame(1, 'done\n')]));
      else if (req.url === '/exec/x1/json') res.writeHead(200).end(JSON.stringify({ ExitCode: 3 }));
      else if (req.url === '/services/shop-v1-worker') res.writeHead(200).end(JSON.stringify({ ID: 's1', Version: { Index: 7 }, Spec: { Name: 'shop-v1-worker', Mode: { Replicated: { Replicas: 1 } } } }));
      else if (req.url === '/services/s1/update?version=7') res.writeHead(200).end('{}');
      else res.writeHead(404).end(JSON.stringify({ message: `no such thing: ${req.url}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('the Engine client the programs on the cluster share', () => {
  it('runs a command in a container: exit code and the demultiplexed output', async () => {
    const engine = new EngineSocket(socket);
    const container = await engine.runningContainerOf('shop-edge');
    expect(container).toBe('c0ffee');
    expect(decodeURIComponent(seen[0]!.url)).toBe('/containers/json?filters={"label":["com.docker.swarm.service.name=shop-edge"],"status":["running"]}');
    expect(await engine.exec(container!, ['nginx', '-t'])).toEqual({ code: 3, stdout: 'ok\ndone\n', stderr: 'warn\n' });
    expect(JSON.parse(seen[1]!.body)).toEqual({ Cmd: ['nginx', '-t'], AttachStdout: true, AttachStderr: true, Tty: false });
  });

  it('scales a service at the version it was read at; a missing one is null; a refusal names what was refused', async () => {
    const engine = new EngineSocket(socket);
    const service = await engine.inspectService('shop-v1-worker');
    await engine.setReplicas(service!, 4);
    expect(JSON.parse(seen[1]!.body)).toEqual({ Name: 'shop-v1-worker', Mode: { Replicated: { Replicas: 4 } } });
    expect(await engine.inspectService('gone')).toBeNull();
    await expect(engine.setReplicas({ ...service!, ID: 'nope' }, 2)).rejects.toThrow('the Docker Engine refused to update nope: HTTP 404 no such thing: /services/nope/update?version=7');
  });
});
