import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';

/**
 * Steady load through the edge with autocannon, two kinds of clients at once: keep-alive connections, and
 * a new connection for every request. Each request carries a fresh client id cookie, so a canary split
 * shows as a share of responses. Every response's version is recorded with its time.
 */
export interface LoadOptions {
  url: string;
  host: string;
  durationSeconds: number;
  keepAlive: { connections: number; rate: number };
  newConnections: { connections: number; rate: number };
}

export interface LoadSample {
  /** performance.now() when the response was complete. */
  at: number;
  version: string;
  status: number;
}

export interface LoadResult {
  samples: LoadSample[];
  /** Requests autocannon counted: every started request that ended in a response, error or timeout. */
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
}

export async function runLoad(options: LoadOptions, scenario: () => Promise<void>): Promise<LoadResult> {
  const samples: LoadSample[] = [];
  const request: autocannon.Request = {
    method: 'GET',
    path: '/',
    setupRequest: (req) => ({
      ...req,
      headers: { ...req.headers, host: options.host, cookie: `depl_client=${randomBytes(6).toString('hex')}` },
    }),
    // autocannon passes the response headers as a fourth argument its types do not declare yet
    onResponse: ((status: number, _body: string, _context: unknown, headers?: Record<string, string | string[]>) => {
      const version = headers?.['x-depl-version'] ?? headers?.['X-Depl-Version'];
      samples.push({ at: performance.now(), status, version: String(version ?? '') });
    }) as autocannon.Request['onResponse'],
  };
  const common = { url: options.url, duration: options.durationSeconds, timeout: 10, requests: [request] };
  const keepAlive = autocannon({ ...common, connections: options.keepAlive.connections, overallRate: options.keepAlive.rate });
  const fresh = autocannon({ ...common, connections: options.newConnections.connections, overallRate: options.newConnections.rate, reconnectRate: 1 });
  const scenarioDone = scenario();
  const [a, b] = await Promise.all([keepAlive, fresh]);
  await scenarioDone;
  const results = [a, b];
  const sum = (pick: (r: autocannon.Result) => number) => results.reduce((total, r) => total + pick(r), 0);
  return {
    samples,
    requests: sum((r) => r.requests.total),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    resets: sum((r) => r.resets),
  };
}
