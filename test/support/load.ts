import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import http from 'node:http';
import { Agent, request } from 'undici';
import { pollUntil } from '../../src/util/poll.js';

/**
 * Steady load through the edge, two kinds of clients at once: keep-alive connections (autocannon), and a
 * new connection for every request (undici with `reset`, which also checks each status). Each request
 * carries a fresh client id cookie, so a canary split shows as a share of responses. Every response is
 * recorded with its send time and the version that served it.
 */
export interface LoadOptions {
  url: string;
  host: string;
  /** The load runs at least this long, and until 2 s after the scenario finished. */
  durationSeconds: number;
  keepAlive: { connections: number; rate: number };
  newConnections: { connections: number; rate: number };
  /**
   * Clients that keep one cookie for the whole run (Node's http, a keep-alive agent of one socket each; it
   * never retries a request): a canary split must keep each of them on its side.
   */
  sticky?: { clients: number; rate: number };
  /** For an https url reached by address: the name the certificate is for, and the CA it chains to. */
  tls?: { servername: string; ca: string };
}

export interface LoadSample {
  client: 'keep-alive' | 'new-connection' | 'sticky';
  /** The cookie of a sticky client. */
  cookie?: string;
  /** performance.now() when the request was written. */
  sentAt: number;
  /** performance.now() when the response was complete. */
  at: number;
  version: string;
  status: number;
}

export interface LoadResult {
  samples: LoadSample[];
  /** Requests made: answered, failed or timed out. */
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** What failed, when, and on which kind of client. */
  failures: { at: number; client: LoadSample['client']; error: string }[];
}

const clientCookie = () => `depl_client=${randomBytes(6).toString('hex')}`;

/** What a scenario can ask of the load running around it. */
export interface RunningLoad {
  /**
   * Resolves once `count` more responses than now have come back (of those `which` accepts): a step waits for
   * traffic to have landed, not for time to have passed, so a slow machine only makes the run longer.
   */
  responses(count: number, which?: (sample: LoadSample) => boolean): Promise<void>;
}

export async function runLoad(options: LoadOptions, scenario: (load: RunningLoad) => Promise<void>): Promise<LoadResult> {
  const samples: LoadSample[] = [];
  const failures: LoadResult['failures'] = [];
  const keepAliveRequest: autocannon.Request = {
    method: 'GET',
    path: '/',
    // One request in flight per connection: the context autocannon hands to both callbacks carries its send time.
    setupRequest: (req, context) => {
      (context as { sentAt?: number }).sentAt = performance.now();
      return { ...req, headers: { ...req.headers, host: options.host, cookie: clientCookie() } };
    },
    // autocannon passes the response headers as a fourth argument its types do not declare yet
    onResponse: ((status: number, _body: string, context: { sentAt?: number }, headers?: Record<string, string | string[]>) => {
      const at = performance.now();
      const version = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'x-depl-version')?.[1];
      samples.push({ client: 'keep-alive', sentAt: context.sentAt ?? at, at, status, version: String(version ?? '') });
    }) as autocannon.Request['onResponse'],
  };
  // Without a callback autocannon returns its instance, an event emitter that is also a promise of the result.
  type Running = autocannon.Instance & Promise<autocannon.Result>;
  const keepAlive = autocannon({
    url: options.url, duration: 3_600, timeout: 10, requests: [keepAliveRequest],
    connections: options.keepAlive.connections, overallRate: options.keepAlive.rate,
    ...(options.tls ? { servername: options.tls.servername, tlsOptions: { ca: options.tls.ca } } : {}),
  }) as unknown as Running;
  keepAlive.on('reqError', (error: Error & { code?: string }) => failures.push({ at: performance.now(), client: 'keep-alive', error: error.code ?? error.message }));

  const fresh = { requests: 0, non2xx: 0, timeouts: 0 };
  // new-connection clients check the certificate: name and chain
  const dispatcher = options.tls ? new Agent({ connect: { servername: options.tls.servername, ca: options.tls.ca } }) : undefined;
  let stopAt = Infinity;
  const gapMs = (options.newConnections.connections / options.newConnections.rate) * 1000;
  const freshClient = async () => {
    let next = performance.now();
    while (performance.now() < stopAt) {
      const sentAt = performance.now();
      fresh.requests++;
      try {
        const response = await request(new URL('/', options.url), {
          reset: true,
          headers: { host: options.host, cookie: clientCookie() },
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
          ...(dispatcher ? { dispatcher } : {}),
        });
        await response.body.text();
        if (response.statusCode < 200 || response.statusCode > 299) fresh.non2xx++;
        samples.push({ client: 'new-connection', sentAt, at: performance.now(), status: response.statusCode, version: String(response.headers['x-depl-version'] ?? '') });
      } catch (error) {
        const code = (error as { code?: string }).code ?? (error as Error).message;
        if (/Timeout/i.test(code)) fresh.timeouts++;
        failures.push({ at: performance.now(), client: 'new-connection', error: code });
      }
      next += gapMs;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };

  const sticky = options.sticky ?? { clients: 0, rate: 1 };
  const stickyGapMs = (sticky.clients / sticky.rate) * 1000;
  const stickyClient = async (index: number) => {
    const cookie = `depl_client=sticky-${index}-${randomBytes(4).toString('hex')}`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let next = performance.now();
    try {
      while (performance.now() < stopAt) {
        const sentAt = performance.now();
        fresh.requests++;
        try {
          const { status, version } = await nodeGet(options.url, { host: options.host, cookie }, agent);
          if (status < 200 || status > 299) fresh.non2xx++;
          samples.push({ client: 'sticky', cookie, sentAt, at: performance.now(), status, version });
        } catch (error) {
          const code = (error as { code?: string }).code ?? (error as Error).message;
          if (/Timeout/i.test(code)) fresh.timeouts++;
          failures.push({ at: performance.now(), client: 'sticky', error: code });
        }
        next += stickyGapMs;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      agent.destroy();
    }
  };

  const started = performance.now();
  const loads = Promise.all([
    keepAlive,
    ...Array.from({ length: options.newConnections.connections }, freshClient),
    ...Array.from({ length: sticky.clients }, (_, i) => stickyClient(i)),
  ]);
  loads.catch(() => undefined); // awaited below; this only keeps a failed scenario from leaving it unhandled
  const running: RunningLoad = {
    async responses(count, which = () => true) {
      const seen = () => samples.filter(which).length;
      const target = seen() + count;
      await pollUntil(async () => (seen() >= target ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 20,
        onTimeout: () => { throw new Error(`the load got ${seen() - target + count} of ${count} responses within 60 s`); },
      });
    },
  };
  try {
    await scenario(running);
  } finally {
    stopAt = Math.max(started + options.durationSeconds * 1000, performance.now() + 2_000);
    setTimeout(() => keepAlive.stop(), stopAt - performance.now());
  }
  const [result] = await loads;
  const freshFailures = failures.filter((f) => f.client !== 'keep-alive').length;
  return {
    samples,
    requests: result.requests.total + fresh.requests,
    errors: result.errors + freshFailures,
    timeouts: result.timeouts + fresh.timeouts,
    non2xx: result.non2xx + fresh.non2xx,
    failures,
  };
}

/** One GET with Node's own http client, which never retries, not even on a reused connection the server closed. */
function nodeGet(url: string, headers: Record<string, string>, agent: http.Agent): Promise<{ status: number; version: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL('/', url), { agent, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, version: String(res.headers['x-depl-version'] ?? '') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('Timeout'), { code: 'Timeout' })));
    req.on('error', reject);
  });
}
