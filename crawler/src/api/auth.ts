import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import ipaddr from 'ipaddr.js';
import { parseNetworks } from '../core/address-policy.js';
import type { ServiceSecret } from '../core/secret.js';
import { HttpError } from './http-io.js';

/**
 * Bearer-token checks with a per-client brake on guessing: a client that sends `max` wrong tokens within
 * `windowMs` gets 429 (with Retry-After) for the rest of the window, whatever token it sends. Counted per
 * API process, in a bounded table, so a flood of addresses cannot grow it without limit.
 */
export class AuthFailureLimiter {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxClients = 10_000,
  ) {}

  /** Seconds until this client may try again, or 0. */
  blockedFor(client: string): number {
    const entry = this.failures.get(client);
    const now = this.now();
    if (entry === undefined || now >= entry.resetAt || entry.count < this.max) return 0;
    return Math.max(1, Math.ceil((entry.resetAt - now) / 1000));
  }

  fail(client: string): void {
    const now = this.now();
    const entry = this.failures.get(client);
    if (entry !== undefined && now < entry.resetAt) {
      entry.count += 1;
      return;
    }
    this.failures.delete(client);
    if (this.failures.size >= this.maxClients) this.evict(now);
    this.failures.set(client, { count: 1, resetAt: now + this.windowMs });
  }

  get size(): number {
    return this.failures.size;
  }

  private evict(now: number): void {
    for (const [client, entry] of this.failures) if (now >= entry.resetAt) this.failures.delete(client);
    // still full: drop the oldest (a Map iterates in insertion order)
    while (this.failures.size >= this.maxClients) this.failures.delete(this.failures.keys().next().value!);
  }
}

/**
 * Who the client is: the peer's address, or, when the peer is a trusted proxy (the edge), the last address
 * in X-Forwarded-For, which that proxy appended (anything before it was sent by the client and proves nothing).
 */
export function clientAddress(req: IncomingMessage, trusted: ReturnType<typeof parseNetworks>): string {
  const peer = normalize(req.socket.remoteAddress ?? 'unknown');
  if (!isTrusted(peer, trusted)) return peer;
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const last = forwarded.at(-1);
  return last !== undefined && ipaddr.isValid(last) ? normalize(last) : peer;
}

function normalize(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.parse(address);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address().toString() : parsed.toString();
}

function isTrusted(address: string, trusted: ReturnType<typeof parseNetworks>): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.parse(address);
  return trusted.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits));
}

export interface TokenGuard {
  /** Throws 401 (missing or wrong token) or 429 (too many wrong tokens from this client). */
  require(req: IncomingMessage): void;
}

/** Accepts any of `tokens` (the API token everywhere; the metrics token only where its guard lists it). */
export function tokenGuard(tokens: ServiceSecret | readonly ServiceSecret[], limiter: AuthFailureLimiter, trustedProxies: string[]): TokenGuard {
  const expected = (Array.isArray(tokens) ? tokens : [tokens as ServiceSecret]).map((token) => digest(token.reveal()));
  const trusted = parseNetworks(trustedProxies);
  const challenge = { 'www-authenticate': 'Bearer realm="crawler"' };
  return {
    require(req) {
      const client = clientAddress(req, trusted);
      const wait = limiter.blockedFor(client);
      if (wait > 0) {
        throw new HttpError(429, 'too_many_failed_logins', `too many wrong tokens from ${client}; try again in ${wait} s`, undefined, { 'retry-after': String(wait) });
      }
      const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      if (match === null) throw new HttpError(401, 'unauthorized', 'missing bearer token: send "Authorization: Bearer <the API token>"', undefined, challenge);
      const sent = digest(match[1]!.trim());
      // every token compared, so the time taken says nothing about which one came close
      const matches = expected.map((token) => timingSafeEqual(sent, token));
      if (!matches.includes(true)) {
        limiter.fail(client);
        throw new HttpError(401, 'unauthorized', 'invalid bearer token', undefined, { ...challenge, 'www-authenticate': 'Bearer realm="crawler", error="invalid_token"' });
      }
    },
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
