import http from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import { EngineSocket } from '../apply/engine-socket.js';
import type { GateRequest } from '../plan/engine-gate-request.js';

/**
 * The engine gate's server: HTTP on a unix socket, each request handed to the gate's one policy
 * (src/engine-gate/policies.ts, which asks the pure decision in src/plan and, when it allows, sends the Engine
 * what the decision rebuilt). Refusals are answered (403, or 409 for a stale update) and logged, and never reach
 * the Engine. One policy per gate, one gate per client: a client reaches only its own gate's socket.
 */
const MAX_BODY_BYTES = 64 * 1024;

export interface GateLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface GateAnswer {
  status: number;
  body: Buffer;
}

/** A request the policy would not pass on: `status` and why (the message the client gets and the log line). */
export interface GateRefusal {
  refused: string;
  status: number;
}

export interface GatePolicy {
  /** What it passes on, for the gate's first log line. */
  readonly passes: string;
  handle(asked: GateRequest, engine: EngineSocket): Promise<GateAnswer | GateRefusal>;
}

export async function startEngineGate(options: { socket: string; policy: GatePolicy; engine?: EngineSocket; log: GateLog }): Promise<http.Server> {
  const { socket, policy, log } = options;
  const engine = options.engine ?? new EngineSocket();
  const server = http.createServer((request, response) => {
    void answer(request).then(({ status, body }) => {
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
      response.end(body);
    });
  });

  async function answer(request: http.IncomingMessage): Promise<GateAnswer> {
    try {
      const body = await readBody(request);
      if (body === null) return refuse(413, `the engine gate takes bodies of at most ${MAX_BODY_BYTES} bytes`);
      const handled = await policy.handle({ method: request.method ?? '', path: request.url ?? '', body }, engine);
      return 'refused' in handled ? refuse(handled.status, handled.refused) : handled;
    } catch (error) {
      return refuse(502, `the engine gate could not reach the Docker Engine: ${(error as Error).message}`);
    }
  }

  function refuse(status: number, message: string): GateAnswer {
    log.warn(message);
    return { status, body: Buffer.from(JSON.stringify({ message })) };
  }

  // a socket left by an earlier run of the gate (a restarted task) would stop the listen
  await rm(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  await chmod(socket, 0o600);
  log.info(`engine gate: listening on ${socket}; passes on ${policy.passes}`);
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
