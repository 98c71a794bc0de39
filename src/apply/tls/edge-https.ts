import { Agent, request, type Dispatcher } from 'undici';

/**
 * Health probes and depl's own requests go to the edge by address over HTTP with the version's Host. A
 * host with a certificate answers that with a redirect to https: follow it to the same edge address, with
 * the host as TLS server name. What is probed is the version behind the edge, so the certificate's chain
 * is not checked here (the CA may be private, as Pebble's is); `depl status` and the tests check it.
 */
const probing: Dispatcher = new Agent({ connect: { rejectUnauthorized: false } });

export async function followHttpsRedirect(
  edgeUrl: string,
  host: string,
  answer: { statusCode: number; headers: Record<string, string | string[] | undefined> },
  timeoutMs: number,
): Promise<Dispatcher.ResponseData | null> {
  if (answer.statusCode !== 301 && answer.statusCode !== 308) return null;
  const location = answer.headers.location;
  if (typeof location !== 'string') return null;
  let target: URL;
  try {
    target = new URL(location);
  } catch {
    return null;
  }
  if (target.protocol !== 'https:' || target.hostname !== host.toLowerCase()) return null;
  const direct = new URL(`${target.pathname}${target.search}`, `https://${new URL(edgeUrl).hostname}:${target.port || 443}`);
  return request(direct, {
    headers: { host },
    reset: true,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    // undici takes the TLS server name from the Host header
    dispatcher: probing,
  });
}
