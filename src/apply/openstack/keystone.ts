import type { Dispatcher } from 'undici';
import type { CloudCredentials, OpenStackAuth } from '../../config/clouds.js';
import { OperationError } from '../../errors.js';
import { registerSecret } from '../../util/redact.js';
import { header, OpenStackApiError, openstackRequest, type HttpOptions, type HttpResponse } from './http.js';

export interface CatalogEndpoint {
  interface: string;
  region?: string | null;
  region_id?: string | null;
  url: string;
  id?: string;
}

export interface CatalogService {
  type: string;
  name?: string;
  id?: string;
  endpoints: CatalogEndpoint[];
}

interface Token {
  value: string;
  /** ms since the epoch after which we fetch a new one (shortly before Keystone's expires_at). */
  renewAt: number;
  expiresAt: number;
  catalog: CatalogService[];
  projectId?: string;
  projectName?: string;
  userId?: string;
  roles: string[];
}

export interface KeystoneOptions {
  dispatcher?: Dispatcher;
  now?: () => number;
  /** Renew this long before expiry at most (default 5 minutes); short-lived tokens renew at 3/4 of their life. */
  renewMarginMs?: number;
}

/**
 * A Keystone v3 session: one token, reused until shortly before it expires, and the service catalog
 * that came with it. The token and every credential are registered as secrets so they never print.
 */
export class KeystoneSession {
  private current?: Token;
  private pending?: Promise<Token>;
  private identityBase?: string;

  constructor(
    readonly credentials: CloudCredentials,
    private readonly options: KeystoneOptions = {},
  ) {}

  /** The dispatcher (TLS settings, proxy) every service call of this cloud should use. */
  get dispatcher(): Dispatcher | undefined {
    return this.options.dispatcher;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  async token(): Promise<string> {
    return (await this.valid()).value;
  }

  async projectId(): Promise<string | undefined> {
    return (await this.valid()).projectId;
  }

  /** The token's project name (Nectar names each project's DNS zone after it). */
  async projectName(): Promise<string | undefined> {
    return (await this.valid()).projectName;
  }

  /** The signed-in user (application credentials are made under /v3/users/<id>/). */
  async userId(): Promise<string | undefined> {
    return (await this.valid()).userId;
  }

  /** The token's role names in its project (an application credential may carry only these). */
  async roles(): Promise<string[]> {
    return (await this.valid()).roles;
  }

  /** The Keystone v3 base URL (as the auth URL names it, or as Keystone's version document does). */
  async identityUrl(): Promise<string> {
    return this.discoverIdentity();
  }

  /** Forget the token (after a 401 from a service: it was revoked or expired early). */
  invalidate(): void {
    this.current = undefined;
  }

  /**
   * One authenticated request to a service's endpoint from the catalog. A token can be revoked before
   * its expiry, so a 401 gets one retry with a new token.
   */
  async serviceRequest(
    endpoint: string,
    path: string,
    options: Omit<HttpOptions, 'dispatcher'> & { dispatcher?: Dispatcher },
  ): Promise<HttpResponse> {
    const send = async () =>
      openstackRequest(endpoint + path, {
        ...options,
        headers: { ...options.headers, 'x-auth-token': await this.token() },
        dispatcher: options.dispatcher ?? this.dispatcher,
      });
    try {
      return await send();
    } catch (error) {
      if (error instanceof OpenStackApiError && error.status === 401) {
        this.invalidate();
        return send();
      }
      throw error;
    }
  }

  private async valid(): Promise<Token> {
    if (this.current && this.now() < this.current.renewAt) return this.current;
    this.pending ??= this.issue().finally(() => {
      this.pending = undefined;
    });
    this.current = await this.pending;
    return this.current;
  }

  /**
   * The URL of a service, or undefined when the catalog has no service of that type at all (a cloud without
   * Cinder, Octavia...); a service that is there but not in this region or interface is still an error.
   */
  async optionalEndpoint(type: string): Promise<string | undefined> {
    const { catalog } = await this.valid();
    if (!catalog.some((s) => s.type === type)) return undefined;
    return pickEndpoint(catalog, type, this.credentials.interface, this.credentials.regionName);
  }

  /** The URL of a service from the catalog, by type, interface and region. */
  async endpoint(type: string): Promise<string> {
    const { catalog } = await this.valid();
    return pickEndpoint(catalog, type, this.credentials.interface, this.credentials.regionName);
  }

  private async issue(): Promise<Token> {
    const base = await this.discoverIdentity();
    let response;
    try {
      response = await openstackRequest(`${base}/auth/tokens`, {
        method: 'POST',
        json: authRequestBody(this.credentials.auth),
        service: 'Keystone',
        // asking for a token twice only yields two tokens: safe to repeat after a passing failure
        retry: {},
        dispatcher: this.options.dispatcher,
      });
    } catch (error) {
      if (error instanceof OpenStackApiError && (error.status === 401 || error.status === 403 || error.status === 404)) {
        throw new OperationError(
          `Keystone rejected the credentials from ${this.credentials.source}: ${error.apiText}`,
          'Check them (an application credential may have expired or been deleted; a password may have been reset on the dashboard).',
          'OPENSTACK_AUTH_FAILED',
          { cause: error },
        );
      }
      throw error;
    }
    const value = header(response, 'x-subject-token');
    if (!value) throw new OperationError(`Keystone at ${base} answered without an X-Subject-Token header`, undefined, 'OPENSTACK_PROTOCOL');
    registerSecret(value);
    const body = response.body as { token?: { expires_at?: string; issued_at?: string; catalog?: CatalogService[]; project?: { id?: string; name?: string }; user?: { id?: string }; roles?: Array<{ name?: string }> } };
    const expiresAt = Date.parse(body.token?.expires_at ?? '');
    if (!Number.isFinite(expiresAt)) throw new OperationError('Keystone answered with a token without a valid expires_at', undefined, 'OPENSTACK_PROTOCOL');
    const issuedAt = Date.parse(body.token?.issued_at ?? '');
    const now = this.now();
    const life = expiresAt - (Number.isFinite(issuedAt) ? issuedAt : now);
    const margin = Math.min(this.options.renewMarginMs ?? 5 * 60_000, Math.max(0, life / 4));
    return { value, expiresAt, renewAt: expiresAt - margin, catalog: body.token?.catalog ?? [], projectId: body.token?.project?.id, projectName: body.token?.project?.name, userId: body.token?.user?.id, roles: (body.token?.roles ?? []).flatMap((r) => (r.name ? [r.name] : [])) };
  }

  /** The v3 base URL: the auth URL itself when it names v3, else found through Keystone's version document. */
  private async discoverIdentity(): Promise<string> {
    if (this.identityBase) return this.identityBase;
    const url = this.credentials.authUrl.replace(/\/+$/, '');
    if (/\/v3$/.test(url)) return (this.identityBase = url);
    const response = await openstackRequest(url + '/', { service: 'Keystone', accept: [300], dispatcher: this.options.dispatcher });
    const body = response.body as { versions?: { values?: VersionDoc[] }; version?: VersionDoc };
    const versions = body.versions?.values ?? (body.version ? [body.version] : []);
    const v3 = versions.find((v) => typeof v.id === 'string' && v.id.startsWith('v3'));
    const self = v3?.links?.find((l) => l.rel === 'self')?.href;
    if (!self) {
      throw new OperationError(`${url} does not offer the Keystone v3 API (versions: ${versions.map((v) => v.id).join(', ') || 'none'})`, 'Point auth_url at the v3 endpoint, e.g. https://keystone.rc.nectar.org.au:5000/v3/', 'OPENSTACK_NO_V3');
    }
    return (this.identityBase = self.replace(/\/+$/, ''));
  }
}

interface VersionDoc {
  id?: string;
  links?: Array<{ rel?: string; href?: string }>;
}

export function authRequestBody(auth: OpenStackAuth): unknown {
  const user = (a: { username?: string; userId?: string; userDomainName?: string; userDomainId?: string }) => ({
    ...(a.userId ? { id: a.userId } : { name: a.username }),
    ...(a.userId ? {} : { domain: a.userDomainId ? { id: a.userDomainId } : { name: a.userDomainName } }),
  });
  if (auth.type === 'application_credential') {
    const credential = auth.id ? { id: auth.id, secret: auth.secret } : { name: auth.name, user: user(auth), secret: auth.secret };
    return { auth: { identity: { methods: ['application_credential'], application_credential: credential } } };
  }
  const project = auth.projectId
    ? { id: auth.projectId }
    : { name: auth.projectName, domain: auth.projectDomainId ? { id: auth.projectDomainId } : { name: auth.projectDomainName } };
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { ...user(auth), password: auth.password } } },
      scope: { project },
    },
  };
}

export function pickEndpoint(catalog: CatalogService[], type: string, iface: string, region: string | undefined): string {
  const service = catalog.find((s) => s.type === type);
  const matches = (service?.endpoints ?? []).filter(
    (e) => e.interface === iface && (region === undefined || e.region_id === region || e.region === region),
  );
  if (matches.length > 0) return matches[0]!.url.replace(/\/+$/, '');
  const have = catalog.flatMap((s) => s.endpoints.map((e) => `${s.type}/${e.interface}/${e.region_id ?? e.region ?? '-'}`));
  const wanted = `${type}/${iface}/${region ?? 'any region'}`;
  throw new OperationError(
    `the service catalog has no ${wanted} endpoint (it has: ${have.length > 0 ? have.join(', ') : 'nothing'})`,
    region !== undefined && service ? 'Set provider.region (or region_name in clouds.yaml) to a region listed above.' : 'Is this cloud running that service (Heat for orchestration)?',
    'OPENSTACK_NO_ENDPOINT',
  );
}
