import http from 'node:http';

/** A request that reached the stand-in Engine. */
export interface EngineCall {
  method: string;
  path: string;
  body: string;
}

/** The stand-in's answer to one call: a status and a body (an object is sent as JSON). */
export type EngineReply = [status: number, body: Buffer | string | object];

/**
 * A Docker Engine API stand-in on a unix socket for the engine gate's tests: `answer` decides each reply, and
 * every request that reaches it is recorded in `seen`, so a test shows what the gate let through.
 */
export async function startEngineStandIn(socket: string, answer: (call: EngineCall) => EngineReply): Promise<{ seen: EngineCall[]; close(): Promise<void> }> {
  const seen: EngineCall[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const call = { method: request.method!, path: request.url!, body: Buffer.concat(chunks).toString() };
      seen.push(call);
      const [status, body] = answer(call);
      const json = !(typeof body === 'string' || Buffer.isBuffer(body));
      response.writeHead(status, json ? { 'content-type': 'application/json' } : {});
      response.end(json ? JSON.stringify(body) : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** What the stand-ins answer to a call the gate should never have passed on. */
export const REFUSED_BY_GATE: EngineReply = [500, { message: 'the stand-in Engine was asked something the gate should have refused' }];
