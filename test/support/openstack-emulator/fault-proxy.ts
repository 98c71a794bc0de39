import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Fault } from './index.js';

export interface FaultProxy {
  url: string;
  port: number;
  /** Faults still to happen, first match first (the same shapes the emulator injects). */
  faults: Fault[];
  /** Requests seen, with the fault each met (if any). */
  requests: Array<{ method: string; path: string; fault?: Fault['kind'] }>;
  close(): Promise<void>;
}

/**
 * An HTTP hop in front of a real service (Heat), as a cloud's load balancer is: it passes requests on
 * unchanged, except that it can answer some with a load balancer's failures instead (an HTML 503 page,
 * a connection closed without an answer, 429/413 with Retry-After).
 */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const faults: Fault[] = [];
  const requests: FaultProxy['requests'] = [];
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const at = faults.findIndex((f) => (f.method === undefined || f.method === req.method) && (f.path === undefined || pathname.includes(f.path)));
    const fault = at === -1 ? undefined : faults[at]!;
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', fault: fault?.kind });
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) faults.splice(at, 1);
      req.resume();
      if (fault.kind === 'drop') {
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'html-503') {
        const page = '<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>No server is available to handle this request.</p></body></html>\n';
        res.writeHead(503, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page), connection: 'close' });
        res.end(page);
        return;
      }
      const status = fault.kind === 'throttle-429' ? 429 : 413;
      const page = `<html><body><h1>${status} Too Many Requests</h1>You have sent too many requests in a given amount of time.</body></html>\n`;
      res.writeHead(status, { 'content-type': 'text/html', 'retry-after': String(fault.retryAfter ?? 1), 'content-length': Buffer.byteLength(page), connection: 'close' });
      res.end(page);
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    faults,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
