import { request } from 'undici';
import { pollUntil } from '../util/poll.js';
import { followHttpsRedirect } from './tls/edge-https.js';

export interface ProbeAnswer {
  status: number;
  body: string;
  version: string | null;
}

/** GET `path` from the edge at `edgeUrl` as if for `host` (the Host header picks the version's server block). */
export async function probeThroughEdge(edgeUrl: string, host: string, path: string, timeoutMs = 5_000): Promise<ProbeAnswer> {
  const first = await request(new URL(path, edgeUrl), { headers: { host }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const secure = await followHttpsRedirect(edgeUrl, host, first, timeoutMs);
  if (secure !== null) await first.body.dump();
  const response = secure ?? first;
  const body = await response.body.text();
  const header = response.headers['x-depl-version'];
  return { status: response.statusCode, body, version: typeof header === 'string' ? header : null };
}

/** Probes until the answer is 200 or `timeoutMs` has passed; returns the last answer or error text. */
export type HealthResult = { ok: true; answer: ProbeAnswer } | { ok: false; last: string };

export async function waitForHealthy(edgeUrl: string, host: string, path: string, timeoutMs: number): Promise<HealthResult> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  return pollUntil<HealthResult>(async () => {
    try {
      const answer = await probeThroughEdge(edgeUrl, host, path, Math.min(5_000, Math.max(1_000, deadline - Date.now())));
      if (answer.status === 200) return { ok: true, answer };
      last = `HTTP ${answer.status}: ${answer.body.trim().slice(0, 300)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    return undefined;
  }, { timeoutMs, intervalMs: 500, onTimeout: () => ({ ok: false, last }) });
}
