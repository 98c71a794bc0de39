import type { Dispatcher } from 'undici';
import { request } from './undici-on-use.js';
import type { ServiceSecret } from './core/secret.js';

/**
 * How the crawler's Swift client gets a token and the account's storage URL, and renews them.
 * - tempauth (Swift's own v1 auth): GET the auth URL with X-Auth-User / X-Auth-Key.
 * - Keystone v3 (Nectar's Swift): POST /v3/auth/tokens with an application credential (Nectar's advice for
 *   services: it names one project and can be revoked alone) or a user's password scoped to a project; the
 *   storage URL is the `object-store` entry of the token's catalog (interface and region chosen by config),
 *   and the token is renewed before its expires_at.
 * Either is renewed at once when Swift answers 401 (revoked, or expired early): see SwiftContainer.call.
 */
export interface SwiftAccess {
  token: string;
  storageUrl: string;
}

export interface SwiftAuth {
  /** The current token and storage URL, renewed when it is about to expire. */
  access(): Promise<SwiftAccess>;
  /** Forget the token: the next access() asks for a new one. */
  invalidate(): void;
  /** Who logs in, for error messages (never a secret). */
  readonly who: string;
  readonly dispatcher?: Dispatcher;
  readonly timeoutMs?: number;
}

export class SwiftAuthError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface TempAuthOptions {
  authUrl: string;
  user: string;
  key: ServiceSecret;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export function tempAuth(options: TempAuthOptions): SwiftAuth {
  return new CachedAuth(`Swift user ${options.user}`, options, async () => {
    const response = await request(options.authUrl, { headers: { 'x-auth-user': options.user, 'x-auth-key': options.key.reveal() }, ...timeouts(options.timeoutMs), dispatcher: options.dispatcher });
    await response.body.dump();
    const token = response.headers['x-auth-token'];
    const storageUrl = response.headers['x-storage-url'];
    if (response.statusCode >= 300 || typeof token !== 'string' || typeof storageUrl !== 'string') {
      throw new SwiftAuthError(`Swift's auth at ${options.authUrl} answered HTTP ${response.statusCode} for ${options.user} without a token`, response.statusCode);
    }
    // tempauth tokens carry no expiry in their answer (X-Auth-Token-Expires is optional): renewed on a 401
    return { token, storageUrl: storageUrl.replace(/\/+$/, ''), expiresAt: Number.POSITIVE_INFINITY };
  });
}

/** Keystone v3 login: an application credential, or a user's password scoped to a project. */
export type KeystoneLogin =
  | { kind: 'application_credential'; id: string; secret: ServiceSecret }
  | { kind: 'password'; username: string; userDomainName: string; password: ServiceSecret; project: { id: string } | { name: string; domainName: string } };

export interface KeystoneAuthOptions {
  /** Keystone's v3 URL (https://keystone.rc.nectar.org.au:5000/v3); "/v3" is added when it is missing. */
  authUrl: string;
  login: KeystoneLogin;
  /** The catalog's object-store endpoint of this interface (Nectar's services reach the public one). */
  interface: 'public' | 'internal' | 'admin';
  /** The endpoint of this region; unset: the first of the chosen interface. */
  region?: string;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** Renew this long before expires_at (at most half the token's life). Default 5 minutes. */
  renewBeforeMs?: number;
  /** The clock renewal compares expires_at with (tests move it). */
  now?: () => number;
}

interface CatalogEndpoint {
  interface?: string;
  region?: string;
  region_id?: string;
  url?: string;
}

export function keystoneAuth(options: KeystoneAuthOptions): SwiftAuth {
  const base = options.authUrl.replace(/\/+$/, '');
  const tokensUrl = `${/\/v3$/.test(base) ? base : `${base}/v3`}/auth/tokens`;
  const login = options.login;
  const who = login.kind === 'application_credential' ? `application credential ${login.id}` : `Keystone user ${login.username}`;
  return new CachedAuth(who, options, async () => {
    const identity = login.kind === 'application_credential'
      ? { methods: ['application_credential'], application_credential: { id: login.id, secret: login.secret.reveal() } }
      : { methods: ['password'], password: { user: { name: login.username, domain: { name: login.userDomainName }, password: login.password.reveal() } } };
    // an application credential carries its project: Keystone refuses a scope with it
    const scope = login.kind === 'password' ? { scope: { project: 'id' in login.project ? { id: login.project.id } : { name: login.project.name, domain: { name: login.project.domainName } } } } : {};
    let response: Dispatcher.ResponseData;
    try {
      response = await request(tokensUrl, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity, ...scope } }),
        ...timeouts(options.timeoutMs), dispatcher: options.dispatcher,
      });
    } catch (error) {
      throw new SwiftAuthError(`cannot reach Keystone at ${tokensUrl}: ${(error as Error).message}`);
    }
    const text = await response.body.text();
    if (response.statusCode === 401) throw new SwiftAuthError(`Keystone at ${tokensUrl} refused the ${who} (HTTP 401): check its id and secret (or user, password and project)`, 401);
    if (response.statusCode !== 201) throw new SwiftAuthError(`Keystone at ${tokensUrl} answered HTTP ${response.statusCode} to the ${who}'s login: ${text.slice(0, 200)}`, response.statusCode);
    const token = response.headers['x-subject-token'];
    let body: { token?: { expires_at?: string; catalog?: Array<{ type?: string; endpoints?: CatalogEndpoint[] }> } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new SwiftAuthError(`Keystone at ${tokensUrl} answered the ${who}'s login with a body that is not JSON`);
    }
    const expiresAt = Date.parse(body.token?.expires_at ?? '');
    if (typeof token !== 'string' || token === '' || Number.isNaN(expiresAt)) throw new SwiftAuthError(`Keystone at ${tokensUrl} answered the ${who}'s login without a token or its expires_at`);
    return { token, storageUrl: objectStoreUrl(body.token?.catalog ?? [], options.interface, options.region, who).replace(/\/+$/, ''), expiresAt };
  });
}

/** The object-store endpoint of the chosen interface (and region): the catalog decides where Swift is. */
function objectStoreUrl(catalog: Array<{ type?: string; endpoints?: CatalogEndpoint[] }>, iface: string, region: string | undefined, who: string): string {
  const stores = catalog.filter((service) => service.type === 'object-store');
  if (stores.length === 0) throw new SwiftAuthError(`the ${who}'s token has no object-store in its catalog: this project has no Swift (or the credential's project is not the one meant)`);
  const endpoints = stores.flatMap((service) => service.endpoints ?? []);
  const regionOf = (endpoint: CatalogEndpoint) => endpoint.region_id ?? endpoint.region;
  const chosen = endpoints.find((endpoint) => endpoint.interface === iface && (region === undefined || regionOf(endpoint) === region) && typeof endpoint.url === 'string');
  if (chosen === undefined) {
    const offered = [...new Set(endpoints.map((endpoint) => `${regionOf(endpoint) ?? '(no region)'}/${endpoint.interface ?? '?'}`))].join(', ');
    throw new SwiftAuthError(`the catalog's object-store has no ${iface} endpoint${region === undefined ? '' : ` in region ${region}`}; it offers ${offered || 'no endpoints'} (images.swift.keystone.interface / region)`);
  }
  return chosen.url!;
}

/**
 * One login shared by every caller at a time; a failed login is forgotten (the next call tries again), a token
 * is renewed once the clock passes its expires_at minus the margin (at most half its life, so a short-lived
 * token is still used for a while).
 */
class CachedAuth implements SwiftAuth {
  private current?: Promise<SwiftAccess & { expiresAt: number; renewAt: number }>;
  readonly dispatcher?: Dispatcher;
  readonly timeoutMs?: number;
  private readonly now: () => number;

  constructor(readonly who: string, private readonly options: { dispatcher?: Dispatcher; timeoutMs?: number; renewBeforeMs?: number; now?: () => number }, private readonly login: () => Promise<SwiftAccess & { expiresAt: number }>) {
    this.dispatcher = options.dispatcher;
    this.timeoutMs = options.timeoutMs;
    this.now = options.now ?? Date.now;
  }

  async access(): Promise<SwiftAccess> {
    const held = this.current;
    if (held !== undefined) {
      const access = await held.catch(() => undefined);
      if (access !== undefined && this.now() < access.renewAt) return { token: access.token, storageUrl: access.storageUrl };
      // expired, about to, or failed: one new login, unless another caller started it already
      if (this.current === held) this.current = undefined;
    }
    this.current ??= this.renew();
    const access = await this.current;
    return { token: access.token, storageUrl: access.storageUrl };
  }

  invalidate(): void {
    this.current = undefined;
  }

  private renew(): Promise<SwiftAccess & { expiresAt: number; renewAt: number }> {
    const issuedAt = this.now();
    const attempt = this.login().then((access) => {
      const margin = Math.min(this.options.renewBeforeMs ?? 5 * 60_000, Math.max(0, (access.expiresAt - issuedAt) / 2));
      return { ...access, renewAt: access.expiresAt - margin };
    });
    attempt.catch(() => {
      if (this.current === attempt) this.current = undefined;
    });
    return attempt;
  }
}

function timeouts(timeoutMs: number | undefined) {
  const ms = timeoutMs ?? 30_000;
  return { headersTimeout: ms, bodyTimeout: ms };
}
