import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { edgeReport } from '../../../src/apply/edge/site.js';
import { LocalRemote } from '../../../src/apply/local-remote.js';
import type { Remote } from '../../../src/apply/remote.js';
import { CONFIG_PROBE_PATH, PROBE_HOST, parseRawHttpAnswer } from '../../../src/plan/nginx.js';

/**
 * A stand-in edge whose probe refuses the operator (403, as nginx's `deny all` does for an address outside
 * the cluster) and answers a request made on its own node. Both arrive from loopback here, so it tells them
 * apart by the HTTP/1.0 that the node-side request (bash's /dev/tcp) speaks.
 */
describe('an operator outside the cluster asks the probe from the edge\'s node', () => {
  let server: Server;
  let url: string;
  const seen: string[] = [];
  beforeEach(async () => {
    seen.length = 0;
    server = createServer((req, res) => {
      const from = req.httpVersion === '1.0' ? 'node' : 'operator';
      seen.push(`${from} ${req.headers.host} ${req.url}`);
      if (from === 'operator') res.writeHead(403).end('forbidden');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('c0ffee00 1234abcd\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('after one refusal, and only from then on, for that machine', async () => {
    const remote: Remote = new LocalRemote();
    expect(await edgeReport({ url, remote })).toEqual({ config: 'c0ffee00', routing: '1234abcd', status: 200 });
    expect(await edgeReport({ url, remote })).toMatchObject({ routing: '1234abcd', status: 200 });
    const probe = `${PROBE_HOST} ${CONFIG_PROBE_PATH}`;
    expect(seen).toEqual([`operator ${probe}`, `node ${probe}`, `node ${probe}`]);
    // without a machine to ask from, the refusal is the answer
    expect(await edgeReport({ url })).toMatchObject({ status: 403, routing: null });
  });

  it('reads a raw HTTP answer', () => {
    expect(parseRawHttpAnswer('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc def\n')).toEqual({ status: 200, body: 'abc def\n' });
    expect(parseRawHttpAnswer('')).toEqual({ status: 0, body: '' });
  });
});
