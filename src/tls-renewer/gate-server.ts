import http from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import { EngineSocket } from '../apply/engine-socket.js';
import { edgeServiceName } from '../plan/edge-service.js';
import { decideGateRequest, needsEdgeContainer, type GateRequest } from '../plan/tls/engine-gate.js';

/**
 * The engine gate's server (src/plan/tls/engine-gate.ts decides): HTTP on a unix socket, each request decided
 * and, when allowed, sent to the Engine as the decision rebuilt it. Refusals are 403 and logged. The execs it
 * created are remembered (the newest few hundred) so that only those can be started and inspected.
 */
const MAX_BODY_BYTES = 64 * 1024;
const REMEMBERED_EXECS = 256;
/** An exec's start lasts as long as its command: the renewal task gives nginx -t and the probe at most 60 s. */
const FORWARD_TIMEOUT_MS = 120_000;

export interface GateLog {
  info(message: string): void;
  warn(message: string): void;
}

export async function startEngineGate(options: { app: string; socket: string; engine?: EngineSocket; log: GateLog }): Promise<http.Server> {
  const { app, socket, log } = options;
  const engine = options.engine ?? new EngineSocket();
  const execs = new Set<string>();
  const server = http.createServer((request, response) => {
    void answer(request).then(({ status, body }) => {
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
      response.end(body);
    });
  });

  async function answer(request: http.IncomingMessage): Promise<{ status: number; body: Buffer }> {
    try {
      const body = await readBody(request);
      if (body === null) return refuse(413, `the engine gate takes bodies of at most ${MAX_BODY_BYTES} bytes`);
      const asked: GateRequest = { method: request.method ?? '', path: request.url ?? '', body };
      // the edge's container is looked up only for an exec of an allowed command: the one fact the gate asks the Engine first
      const edgeContainer = needsEdgeContainer(app, asked) ? await engine.runningContainerOf(edgeServiceName(app)) : null;
      const decision = decideGateRequest(app, asked, { edgeContainer, execs });
      if (!decision.allow) return refuse(403, decision.reason);
      const forwarded = await engine.request(decision.method, decision.path, decision.body, FORWARD_TIMEOUT_MS);
      if (decision.kind === 'exec-create' && forwarded.status === 201) remember((JSON.parse(forwarded.body.toString()) as { Id: string }).Id);
      return { status: forwarded.status, body: forwarded.body };
    } catch (error) {
      return refuse(502, `the engine gate could not reach the Docker Engine: ${(error as Error).message}`);
    }
  }

  function refuse(status: number, message: string): { status: number; body: Buffer } {
    log.warn(message);
    return { status, body: Buffer.from(JSON.stringify({ message })) };
  }

  function remember(id: string): void {
    execs.add(id);
    if (execs.size > REMEMBERED_EXECS) execs.delete(execs.values().next().value!);
  }

  // a socket left by an earlier run of the gate (a restarted task) would stop the listen
  await rm(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  await chmod(socket, 0o600);
  log.info(`engine gate for ${app}: listening on ${socket}; passes on the edge container's listing and the renewal task's edge commands only`);
  return server;
}

function readBody(request: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
