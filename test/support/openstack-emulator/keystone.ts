import { randomBytes, randomUUID } from 'node:crypto';
import type { Reply } from './http.js';

export interface EmulatedUser {
  id?: string;
  name: string;
  domain?: string;
  password: string;
  /** Role names in the project (default member and reader, a Nectar member's); admin or service may validate anyone's token. */
  roles?: string[];
}

export interface EmulatedApplicationCredential {
  id: string;
  name?: string;
  secret: string;
  /** Owner, for lookups by name. */
  user?: string;
  description?: string | null;
  /** ms since the epoch; after it Keystone refuses the credential (401). */
  expiresAt?: number;
  /** Role names it carries (default: all its user's). */
  roles?: string[];
  unrestricted?: boolean;
  /** What its tokens may be used for (keystonemiddleware checks them at each service), when restricted so. */
  accessRules?: AccessRule[];
}

export interface AccessRule {
  id: string;
  service: string;
  method: string;
  path: string;
}

export interface IssuedToken {
  value: string;
  expiresAt: number;
  projectId?: string;
  userId: string;
  /** Issued for an application credential (a delegated token: Keystone refuses it trusts). */
  applicationCredential: boolean;
  /** Role names in the project: what GET /v3/auth/tokens lets it validate. */
  roles: string[];
  /** The application credential it was issued for (its access rules restrict where the token works). */
  credential?: EmulatedApplicationCredential;
  /** The token document as issued, without its catalog (a validation adds it back unless ?nocatalog). */
  document: Record<string, unknown>;
}

/** What Keystone reads from a token request besides its body. */
export interface KeystoneRequest {
  authToken?: string;
  subjectToken?: string;
  query?: URLSearchParams;
}

export interface KeystoneConfig {
  baseUrl: string;
  projectId: string;
  projectName: string;
  region: string;
  otherRegions: string[];
  users: Required<EmulatedUser>[];
  applicationCredentials: EmulatedApplicationCredential[];
  tokenTtlSeconds: number;
  rejectCredentials: () => boolean;
  now: () => number;
  /**
   * Optional services in the catalog: Neutron (`network`), Cinder (`volumev3`), Swift (`object-store`, a URL
   * elsewhere: one for every endpoint, or one per region and interface).
   */
  services: { network: boolean; volume: boolean; objectStore?: string | ((region: string, iface: string) => string) };
  /**
   * Application credentials as this cloud's Keystone makes them: 'access-rules' (Train and later: restricted
   * credentials with access rules), 'no-access-rules' (before Train: the schema lets unknown properties through, so
   * `access_rules` is silently dropped), 'forbidden' (policy refuses identity:create_application_credential).
   */
  applicationCredentialSupport: () => 'access-rules' | 'no-access-rules' | 'forbidden';
}

const DOMAIN = { id: 'default', name: 'Default' };

const unauthorized: Reply = {
  status: 401,
  body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } },
};

/** Keystone v3: version discovery and password / application-credential tokens with a service catalog. */
export class EmulatedKeystone {
  readonly tokens = new Map<string, IssuedToken>();
  issued = 0;

  constructor(private readonly config: KeystoneConfig) {}

  private versionDoc() {
    return {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${this.config.baseUrl}/identity/v3/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    };
  }

  /**
   * Every service in every region, with a URL of its own per interface: the first region's public
   * endpoints are the plain paths, the others live under /via/<region>/<interface>/, so a request shows
   * which catalog entry it was sent to.
   */
  catalog() {
    const { baseUrl, region, otherRegions, projectId } = this.config;
    const objectStore = this.config.services.objectStore;
    const at = (r: string, iface: string, tail: string) => (r === region && iface === 'public' ? `${baseUrl}${tail}` : `${baseUrl}/via/${encodeURIComponent(r)}/${iface}${tail}`);
    const endpoints = (tail: string) =>
      [region, ...otherRegions].flatMap((r) => ['public', 'internal', 'admin'].map((iface) => ({ id: randomUUID().replace(/-/g, ''), interface: iface, region: r, region_id: r, url: at(r, iface, tail) })));
    return [
      { type: 'identity', name: 'keystone', id: 'identity0', endpoints: endpoints('/identity/v3/') },
      { type: 'orchestration', name: 'heat', id: 'orchestration0', endpoints: endpoints(`/orchestration/v1/${projectId}`) },
      { type: 'compute', name: 'nova', id: 'compute0', endpoints: endpoints('/compute/v2.1') },
      // Designate's catalog entry names the service root, as Nectar's does (clients append /v2)
      { type: 'dns', name: 'designate', id: 'dns0', endpoints: endpoints('/dns/') },
      // Neutron's catalog URL is the service root (clients add /v2.0); Cinder's names the project, as on Nectar
      ...(this.config.services.network ? [{ type: 'network', name: 'neutron', id: 'network0', endpoints: endpoints('/network/') }] : []),
      ...(this.config.services.volume ? [{ type: 'volumev3', name: 'cinderv3', id: 'volumev30', endpoints: endpoints(`/volume/v3/${projectId}`) }] : []),
      // a Swift of its own (its account URL, as Nectar's names AUTH_<project>), the same for every interface and region
      ...(objectStore !== undefined ? [{ type: 'object-store', name: 'swift', id: 'objectstore0', endpoints: endpoints('').map((e) => ({ ...e, url: typeof objectStore === 'string' ? objectStore : objectStore(e.region, e.interface) })) }] : []),
    ];
  }

  handle(method: string, path: string, body: unknown, request: KeystoneRequest = {}): Reply | undefined {
    if (path === '/identity' || path === '/identity/') {
      return { status: 300, body: { versions: { values: [this.versionDoc()] } } };
    }
    if (method === 'GET' && (path === '/identity/v3' || path === '/identity/v3/')) return { status: 200, body: { version: this.versionDoc() } };
    if (method === 'POST' && path === '/identity/v3/auth/tokens') return this.issue(body);
    if ((method === 'GET' || method === 'HEAD') && path === '/identity/v3/auth/tokens') return this.validate(request);
    const credentials = /^\/identity\/v3\/users\/([^/]+)\/application_credentials(?:\/([^/]+))?$/.exec(path);
    if (credentials) return this.applicationCredentialCall(method, decodeURIComponent(credentials[1]!), credentials[2] === undefined ? undefined : decodeURIComponent(credentials[2]), body, request);
    if (path.startsWith('/identity/')) return { status: 404, body: { error: { code: 404, title: 'Not Found', message: `Could not find ${path}.` } } };
    return undefined;
  }

  /**
   * /v3/users/{user}/application_credentials[/{id}], as Keystone 22 answers (keystone/api/users.py): the caller's own
   * user only (403 naming the policy), never with a restricted application credential's token (403), roles only
   * among the caller's (400), a name once per user (409), the secret shown on create only; each refusal with
   * Keystone's message.
   */
  private applicationCredentialCall(method: string, userId: string, id: string | undefined, body: unknown, request: KeystoneRequest): Reply {
    const caller = this.check(request.authToken);
    if (!caller) return unauthorized;
    const forbidden = (action: string): Reply => ({ status: 403, body: { error: { code: 403, title: 'Forbidden', message: `You are not authorized to perform the requested action: ${action}.` } } });
    const restrictedCaller = caller.credential !== undefined && caller.credential.unrestricted !== true;
    const mine = () => this.config.applicationCredentials.filter((c) => this.config.users.find((u) => u.name === c.user)?.id === userId);
    const notFound = (what: string): Reply => ({ status: 404, body: { error: { code: 404, title: 'Not Found', message: `Could not find application credential: ${what}.` } } });
    if (id === undefined && (method === 'GET' || method === 'HEAD')) {
      if (caller.userId !== userId) return forbidden('identity:list_application_credentials');
      const name = request.query?.get('name');
      const listed = mine().filter((c) => name === null || name === undefined || c.name === name);
      return { status: 200, body: { application_credentials: listed.map((c) => this.credentialView(c)), links: { self: `${this.config.baseUrl}/identity/v3/users/${userId}/application_credentials`, previous: null, next: null } } };
    }
    if (id === undefined && method === 'POST') {
      if (this.config.applicationCredentialSupport() === 'forbidden') return forbidden('identity:create_application_credential');
      const given = (body as { application_credential?: Record<string, unknown> } | undefined)?.application_credential ?? {};
      const badInput = (message: string): Reply => ({ status: 400, body: { error: { code: 400, title: 'Bad Request', message } } });
      if (typeof given.name !== 'string' || given.name.length === 0) return badInput("Invalid input for field 'name': 'name' is a required property");
      const withRules = this.config.applicationCredentialSupport() === 'access-rules';
      const rules = withRules ? given.access_rules : undefined;
      if (rules !== undefined) {
        if (!Array.isArray(rules)) return badInput(`Invalid input for field 'access_rules': ${JSON.stringify(rules)} is not of type 'array'`);
        for (const rule of rules as Array<Record<string, unknown>>) {
          const extra = Object.keys(rule).find((k) => !['path', 'method', 'service', 'id'].includes(k));
          if (extra !== undefined) return badInput(`Invalid input for field 'access_rules/0': Additional properties are not allowed ('${extra}' was unexpected)`);
          if (typeof rule.method !== 'string' || !/^(POST|GET|HEAD|PATCH|PUT|DELETE)$/.test(rule.method)) return badInput(`Invalid input for field 'access_rules/0/method': ${JSON.stringify(rule.method)} does not match '^(POST|GET|HEAD|PATCH|PUT|DELETE)$'`);
          if (typeof rule.path !== 'string' || !rule.path.startsWith('/') || rule.path.length > 225) return badInput(`Invalid input for field 'access_rules/0/path': ${JSON.stringify(rule.path)} does not match '^\\/.*'`);
        }
      }
      if (restrictedCaller) return forbidden("Using method 'application_credential' is not allowed for managing additional application credentials");
      if (caller.userId !== userId) return forbidden('Cannot create an application credential for another user');
      const requested = Array.isArray(given.roles) ? (given.roles as Array<{ name?: string; id?: string }>).map((r) => r.name ?? r.id?.replace(/0$/, '') ?? '') : caller.roles;
      if (requested.some((r) => !caller.roles.includes(r))) return badInput('Invalid application credential: Cannot create an application credential with unassigned role');
      let expiresAt: number | undefined;
      if (typeof given.expires_at === 'string') {
        expiresAt = Date.parse(given.expires_at);
        if (!Number.isFinite(expiresAt)) return badInput('Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
        if (expiresAt < this.config.now()) return badInput("The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
      }
      const owner = this.config.users.find((u) => u.id === userId)!;
      if (mine().some((c) => c.name === given.name)) {
        return { status: 409, body: { error: { code: 409, title: 'Conflict', message: `Conflict occurred attempting to store application_credential - Duplicate entry found with name ${given.name}.` } } };
      }
      const created: EmulatedApplicationCredential = {
        id: randomUUID().replace(/-/g, ''),
        name: given.name,
        secret: typeof given.secret === 'string' && given.secret.length > 0 ? given.secret : randomBytes(64).toString('base64url'),
        user: owner.name,
        description: typeof given.description === 'string' ? given.description : null,
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        roles: requested,
        unrestricted: given.unrestricted === true,
        ...(rules !== undefined ? { accessRules: (rules as Array<Omit<AccessRule, 'id'>>).map((r) => ({ id: randomUUID().replace(/-/g, ''), service: r.service, method: r.method, path: r.path })) } : {}),
      };
      this.config.applicationCredentials.push(created);
      return { status: 201, body: { application_credential: { ...this.credentialView(created), secret: created.secret } } };
    }
    if (id !== undefined && (method === 'GET' || method === 'DELETE')) {
      const action = method === 'GET' ? 'identity:get_application_credential' : 'identity:delete_application_credential';
      if (caller.userId !== userId) return forbidden(action);
      const found = mine().find((c) => c.id === id);
      if (method === 'DELETE' && restrictedCaller) return forbidden("Using method 'application_credential' is not allowed for managing additional application credentials");
      if (found === undefined) return notFound(id);
      if (method === 'GET') return { status: 200, body: { application_credential: this.credentialView(found) } };
      this.config.applicationCredentials.splice(this.config.applicationCredentials.indexOf(found), 1);
      // its tokens die with it
      for (const [value, token] of this.tokens) if (token.credential === found) this.tokens.delete(value);
      return { status: 204 };
    }
    return { status: 405, body: { error: { code: 405, title: 'Method Not Allowed', message: `The method ${method} is not allowed for the requested URL.` } } };
  }

  private credentialView(c: EmulatedApplicationCredential): Record<string, unknown> {
    const withRules = this.config.applicationCredentialSupport() !== 'no-access-rules';
    return {
      id: c.id,
      name: c.name ?? c.id,
      description: c.description ?? null,
      expires_at: c.expiresAt === undefined ? null : new Date(c.expiresAt).toISOString().replace('Z', '000'),
      project_id: this.config.projectId,
      roles: (c.roles ?? []).map((name) => ({ id: `${name}0`, name, domain_id: null })),
      unrestricted: c.unrestricted === true,
      ...(withRules ? { access_rules: c.accessRules ?? [] } : {}),
      links: { self: `${this.config.baseUrl}/identity/v3/application_credentials/${c.id}` },
    };
  }

  /**
   * keystonemiddleware's check of a token's access rules at a service (auth_token validate_allowed_request): a
   * token of a credential with access rules passes only a request that one of them allows (the rule's service is
   * the service's type; its path, with `*` one segment and `**` any, matches the request's path); otherwise, and
   * at a service whose middleware has no service_type configured, 401. Tokens without access rules pass.
   */
  allowedAt(token: IssuedToken, service: { type: string | undefined }, method: string, path: string): boolean {
    const rules = token.credential?.accessRules;
    if (rules === undefined) return true;
    if (service.type === undefined) return false;
    return rules.some((rule) => rule.method === method && rule.service === service.type && accessRulePattern(rule.path).test(path));
  }

  private issue(body: unknown): Reply {
    if (this.config.rejectCredentials()) return unauthorized;
    const auth = (body as { auth?: { identity?: Record<string, unknown>; scope?: { project?: { id?: string; name?: string; domain?: { id?: string; name?: string } } } } })?.auth;
    const methods = auth?.identity?.methods as string[] | undefined;
    if (!auth || !Array.isArray(methods) || methods.length !== 1) {
      return { status: 400, body: { error: { code: 400, title: 'Bad Request', message: 'Invalid input for field \'identity\': \'methods\' is a required property' } } };
    }
    const { users, applicationCredentials, projectId, projectName } = this.config;
    let user: Required<EmulatedUser> | undefined;
    let appCred: EmulatedApplicationCredential | undefined;
    if (methods[0] === 'password') {
      const u = (auth.identity!.password as { user?: { id?: string; name?: string; password?: string; domain?: { id?: string; name?: string } } })?.user;
      user = users.find(
        (x) =>
          (u?.id ? x.id === u.id : x.name === u?.name && domainMatches(u?.domain, x.domain)) && x.password === u?.password,
      );
      if (!user) return unauthorized;
    } else if (methods[0] === 'application_credential') {
      if (auth.scope) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'Application credentials cannot request a scope.' } } };
      const c = auth.identity!.application_credential as { id?: string; name?: string; secret?: string; user?: { name?: string } };
      appCred = applicationCredentials.find((x) => (c?.id ? x.id === c.id : x.name === c?.name && x.user === c?.user?.name) && x.secret === c?.secret);
      if (!appCred) return unauthorized;
      // Keystone: "The application credential has expired" is a 401 like any refused credential
      if (appCred.expiresAt !== undefined && appCred.expiresAt <= this.config.now()) return unauthorized;
      // an application credential acts as the user who made it
      user = users.find((x) => x.name === appCred!.user) ?? users[0];
    } else {
      return unauthorized;
    }
    let project: string | undefined;
    if (appCred) project = projectId;
    else if (auth.scope?.project) {
      const p = auth.scope.project;
      const ok = p.id ? p.id === projectId : p.name === projectName && domainMatches(p.domain, DOMAIN.name);
      if (!ok) return unauthorized;
      project = projectId;
    }
    const value = 'gAAAAAB' + randomBytes(48).toString('base64url');
    const now = this.config.now();
    const expiresAt = now + this.config.tokenTtlSeconds * 1000;
    const roles = project ? (appCred?.roles ?? user!.roles) : [];
    const token = {
      methods,
      user: { id: user!.id, name: user!.name, domain: DOMAIN, password_expires_at: null },
      audit_ids: [randomBytes(16).toString('base64url')],
      expires_at: new Date(expiresAt).toISOString(),
      issued_at: new Date(now).toISOString(),
      ...(project
        ? {
            project: { id: projectId, name: projectName, domain: DOMAIN },
            is_domain: false,
            roles: roles.map((name) => ({ id: `${name}0`, name })),
          }
        : {}),
      ...(appCred
        ? {
            application_credential: {
              id: appCred.id,
              name: appCred.name ?? appCred.id,
              restricted: appCred.unrestricted !== true,
              ...(appCred.accessRules !== undefined ? { access_rules: appCred.accessRules } : {}),
            },
          }
        : {}),
    };
    this.tokens.set(value, { value, expiresAt, projectId: project, userId: user!.id, applicationCredential: appCred !== undefined, roles, document: token, ...(appCred ? { credential: appCred } : {}) });
    this.issued += 1;
    return { status: 201, headers: { 'x-subject-token': value }, body: { token: this.withCatalog(token, project !== undefined) } };
  }

  private withCatalog(document: Record<string, unknown>, scoped: boolean): Record<string, unknown> {
    return scoped ? { ...document, catalog: this.catalog() } : document;
  }

  /**
   * GET /v3/auth/tokens, as keystonemiddleware (a service's authtoken) asks it: the caller's X-Auth-Token must be
   * valid (401), and may validate X-Subject-Token when it holds admin or service, or is the subject's own user
   * (Keystone's identity:validate_token policy; 403 otherwise). A subject that is missing, unknown, expired or
   * revoked is 404, as real Keystone 22 answers each (messages checked against it).
   */
  private validate(request: KeystoneRequest): Reply {
    const caller = this.check(request.authToken);
    if (!caller) return unauthorized;
    const notFound = (message: string): Reply => ({ status: 404, body: { error: { code: 404, title: 'Not Found', message } } });
    if (!request.subjectToken) return notFound('No token in the request');
    const subject = this.tokens.get(request.subjectToken);
    if (!subject) return notFound('Could not recognize Fernet token');
    const allowExpired = request.query?.get('allow_expired') === '1' || request.query?.get('allow_expired') === 'true';
    const privileged = caller.roles.includes('admin') || caller.roles.includes('service');
    if (!privileged && caller.userId !== subject.userId) {
      return { status: 403, body: { error: { code: 403, title: 'Forbidden', message: 'You are not authorized to perform the requested action: identity:validate_token.' } } };
    }
    if (subject.expiresAt <= this.config.now() && !allowExpired) return notFound('Failed to validate token');
    const nocatalog = request.query?.has('nocatalog') === true;
    return { status: 200, headers: { 'x-subject-token': subject.value }, body: { token: this.withCatalog(subject.document, subject.projectId !== undefined && !nocatalog) } };
  }

  /** The token's record when it is known and not expired. */
  check(value: string | undefined): IssuedToken | undefined {
    if (!value) return undefined;
    const token = this.tokens.get(value);
    if (!token || token.expiresAt <= this.config.now()) return undefined;
    return token;
  }
}

/** An access rule's path as keystonemiddleware reads it: `{tag}` and `*` one path segment, `**` anything. */
function accessRulePattern(path: string): RegExp {
  let out = '';
  for (const token of path.matchAll(/(\{[^}]*\})|(\*\*)|(\*)|([^{}*])/g)) {
    if (token[1] !== undefined || token[3] !== undefined) out += '[^/]+';
    else if (token[2] !== undefined) out += '.*';
    else out += token[4]!.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

function domainMatches(given: { id?: string; name?: string } | undefined, domainName: string): boolean {
  if (!given) return false;
  if (given.id !== undefined) return given.id === DOMAIN.id && domainName === DOMAIN.name;
  return given.name === domainName;
}
