import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmulatedHeat, type HeatBehaviour, type ServerDriver, type StackHoldings } from './heat.js';
import { heatError, type Reply } from './http.js';
import { EmulatedNova } from './nova.js';
import { EmulatedServers, type ShelveBehaviour } from './nova-servers.js';
import { EmulatedDesignate, type DesignateBackend } from './designate.js';
import { DEFAULT_FLAVORS, EmulatedQuotas, type EmulatedFlavor, type QuotaLimits } from './quota.js';
import { EmulatedKeystone, type EmulatedApplicationCredential, type EmulatedUser } from './keystone.js';
import { EmulatedSwift } from './swift.js';

export type { ServerDriver } from './heat.js';

/**
 * A passing failure the next matching request meets, as a real cloud's load balancer or rate limiter
 * produces them: an HTML 503 page, a connection closed without an answer, 429/413 with Retry-After.
 */
export interface Fault {
  kind: 'html-503' | 'drop' | 'throttle-429' | 'throttle-413';
  /** Which requests: method and a substring of the path (default: any). */
  method?: string;
  path?: string;
  /** Seconds, sent as Retry-After for the throttles (default 1). */
  retryAfter?: number;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** How many matching requests pass before the first fails (default 0): a failure mid-way through a run. */
  after?: number;
}

export interface EmulatorBehaviour extends HeatBehaviour, ShelveBehaviour {
  /** Keystone answers every token request with 401. */
  rejectCredentials?: boolean;
  /** Faults still to happen, first match first. */
  faults?: Fault[];
  /** How Keystone makes application credentials (default 'access-rules', as Keystone since Train). */
  applicationCredentials?: 'access-rules' | 'no-access-rules' | 'forbidden';
  /**
   * The service_type Designate's keystonemiddleware is configured with (default 'dns'); null: none, so it
   * refuses every token with access rules (401), as keystonemiddleware does.
   */
  dnsServiceType?: string | null;
}

export interface EmulatorOptions {
  servers: ServerDriver;
  /** The first region; its public endpoints are the plain URLs. */
  region?: string;
  /** More regions in the catalog (each with its own URLs for every interface). */
  otherRegions?: string[];
  projectId?: string;
  projectName?: string;
  users?: EmulatedUser[];
  applicationCredentials?: EmulatedApplicationCredential[];
  tokenTtlSeconds?: number;
  behaviour?: EmulatorBehaviour;
  /** Where Designate publishes records (the DNS server a test's ACME server resolves through). */
  dns?: DesignateBackend;
  /** How long a Designate change stays PENDING before it is published (default 200 ms). */
  dnsPublishDelayMs?: number;
  /** Key pairs that exist from the start: name -> OpenSSH public key. */
  keypairs?: Record<string, string>;
  /** The project's quotas (unset: DEFAULT_LIMITS); change them later with `emulator.quotas.set`. */
  quotas?: Partial<QuotaLimits>;
  flavors?: EmulatedFlavor[];
  /**
   * Optional services in the catalog (default: Neutron yes, Cinder no); one left out answers 404. `objectStore`:
   * the account URL of a real Swift (test/support/swift.ts) the catalog names as `object-store` (or a URL per
   * region and interface, asked each time a catalog is made); `'emulated'`: the emulator's own Swift subset
   * (./swift.ts), at /object-store/v1/AUTH_<project>.
   */
  services?: { network?: boolean; volume?: boolean; objectStore?: 'emulated' | string | ((region: string, iface: string) => string) };
  /**
   * The address the emulator listens on and names in its catalog (default 127.0.0.1): a Docker bridge's gateway
   * when a program on the nodes signs in (the renewal task with node-up's credential), which reach this machine there.
   */
  listenHost?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  /** The catalog entry's region and interface the request came in through. */
  region: string;
  interface: string;
  /** 'html-503', 'drop', ...: the fault it met. */
  fault?: Fault['kind'];
  /** The application credential whose token the request carried, when it carried one. */
  credential?: string;
}

export interface OpenStackEmulator {
  /** http://<listenHost>:<port> */
  url: string;
  /** The Keystone v3 URL to put in clouds.yaml / OS_AUTH_URL. */
  authUrl: string;
  region: string;
  projectId: string;
  projectName: string;
  /** Change how the cloud behaves between steps of a test. */
  behaviour: EmulatorBehaviour;
  requests: RecordedRequest[];
  /** Names of the Nova key pairs. */
  keypairs(): string[];
  /** The application credentials Keystone holds (those given at the start and those made through its API). */
  applicationCredentials(): readonly EmulatedApplicationCredential[];
  /** How many tokens Keystone has issued. */
  tokensIssued(): number;
  /** Forget every token, as a revocation would: the next Heat call with one gets a 401. */
  revokeTokens(): void;
  stacks: EmulatedHeat['list'];
  /** Takes a server back as a preemptible instance is: shutdown signal, then deleted behind Heat's back. */
  preempt(serverName: string): Promise<void>;
  /** The DNS service (Designate v2 subset). */
  designate: EmulatedDesignate;
  /** Quotas and their usage (Nova limits, Neutron and Cinder quotas). */
  quotas: EmulatedQuotas;
  /** Nova's view of the stacks' servers: status and task state by name (shelve, unshelve). */
  servers: Pick<EmulatedServers, 'statusOf'>;
  /** The emulated Swift (`services.objectStore: 'emulated'`), else undefined. */
  swift?: Pick<EmulatedSwift, 'object' | 'names' | 'corrupt'>;
  close(): Promise<void>;
}

/**
 * A stand-in for an OpenStack cloud (Keystone v3 + the Heat v1 subset depl uses), on plain HTTP on a free port of
 * loopback (or of listenHost). Both depl and the real `openstack` client talk to it; its servers come from `servers`.
 */
/**
 * OS_* variables that log the emulator's default user in with its password, as an operator's openrc does (a
 * password login: Heat's stack create needs one, application credentials cannot make trusts).
 */
export function passwordLoginEnv(emulator: Pick<OpenStackEmulator, 'authUrl' | 'projectId' | 'region'>): Record<string, string> {
  return {
    OS_AUTH_URL: emulator.authUrl, OS_USERNAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_PASSWORD: 'demo-password',
    OS_PROJECT_ID: emulator.projectId, OS_REGION_NAME: emulator.region,
  };
}

export async function startOpenStackEmulator(options: EmulatorOptions): Promise<OpenStackEmulator> {
  const region = options.region ?? 'Melbourne';
  const listenHost = options.listenHost ?? '127.0.0.1';
  const projectId = options.projectId ?? randomUUID().replace(/-/g, '');
  const projectName = options.projectName ?? 'depl-test-project';
  const behaviour: EmulatorBehaviour = options.behaviour ?? {};
  const users = (options.users ?? [{ name: 'demo', domain: 'Default', password: 'demo-password' }]).map((u) => ({
    id: u.id ?? randomUUID().replace(/-/g, ''),
    name: u.name,
    domain: u.domain ?? 'Default',
    password: u.password,
    roles: u.roles ?? ['member', 'reader'],
  }));
  const requests: RecordedRequest[] = [];
  const applicationCredentials = [...(options.applicationCredentials ?? [])];
  const designate = new EmulatedDesignate(projectId, options.dns, options.dnsPublishDelayMs);
  const swift = options.services?.objectStore === 'emulated' ? new EmulatedSwift(`AUTH_${projectId}`) : undefined;
  const objectStore = swift !== undefined ? () => `${base}${swift.accountPath}` : options.services?.objectStore;
  const services = { network: options.services?.network ?? true, volume: options.services?.volume ?? false, objectStore };
  const quotas: EmulatedQuotas = new EmulatedQuotas(options.quotas ?? {}, options.flavors ?? DEFAULT_FLAVORS, (): StackHoldings => heat.holdings());
  const heat: EmulatedHeat = new EmulatedHeat(options.servers, behaviour, projectId, (name: string): boolean => nova.has(name), (flavor: string): string | undefined => quotas.novaRefusal(flavor));

  const server = http.createServer((req, res) => {
    const faulted = injectFault(req, res);
    if (faulted) return;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        const via = stripVia(url);
        if (swift !== undefined && url.pathname.startsWith(swift.accountPath)) {
          // Swift's bodies are bytes, not JSON: answered here, with the project's Keystone tokens
          const issued = keystone.check(req.headers['x-auth-token'] as string | undefined);
          const status = swift.handle(req, res, url.pathname, Buffer.concat(chunks), issued !== undefined && issued.projectId === projectId);
          requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, status, ...via });
          return;
        }
        let reply: Reply;
        try {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = undefined;
          if (text.length > 0) {
            try {
              body = JSON.parse(text);
            } catch {
              reply = heatError(400, 'HTTPBadRequest', 'The request body is not valid JSON.');
              return send(res, req, url, reply, via);
            }
          }
          reply = await route(req.method ?? 'GET', url, body, req.headers['x-auth-token'] as string | undefined, via, req.headers['x-subject-token'] as string | undefined);
        } catch (error) {
          reply = heatError(500, 'InternalError', (error as Error).message);
        }
        send(res, req, url, reply, via);
      })();
    });
  });

  /** Endpoints other than the first region's public ones live under /via/<region>/<interface>/... */
  function stripVia(url: URL): { region: string; interface: string } {
    const match = /^\/via\/([^/]+)\/(public|internal|admin)(\/.*)$/.exec(url.pathname);
    if (!match) return { region, interface: 'public' };
    url.pathname = match[3]!;
    return { region: decodeURIComponent(match[1]!), interface: match[2]! };
  }

  function injectFault(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const faults = behaviour.faults ?? [];
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const via = stripVia(url);
    const at = faults.findIndex((f) => (f.method === undefined || f.method === req.method) && (f.path === undefined || url.pathname.includes(f.path)));
    if (at === -1) return false;
    const fault = faults[at]!;
    if ((fault.after ?? 0) > 0) {
      fault.after! -= 1;
      return false;
    }
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) faults.splice(at, 1);
    requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, status: fault.kind === 'drop' ? 0 : fault.kind === 'html-503' ? 503 : fault.kind === 'throttle-429' ? 429 : 413, ...via, fault: fault.kind });
    req.resume();
    if (fault.kind === 'drop') {
      // the connection closes with no answer at all, as when a proxy restarts
      req.socket.destroy();
      return true;
    }
    if (fault.kind === 'html-503') {
      const page = '<html><head><title>503 Service Unavailable</title></head>\n<body>\n<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.</p>\n<hr>\n<address>Apache/2.4.57 (Debian) Server at cloud.example Port 443</address>\n</body></html>\n';
      res.writeHead(503, { 'content-type': 'text/html; charset=iso-8859-1', 'content-length': Buffer.byteLength(page) });
      res.end(page);
      return true;
    }
    const status = fault.kind === 'throttle-429' ? 429 : 413;
    const payload = JSON.stringify({ overLimit: { code: status, message: 'Over limit', retryAfter: String(fault.retryAfter ?? 1) } });
    res.writeHead(status, { 'content-type': 'application/json', 'retry-after': String(fault.retryAfter ?? 1), 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
    return true;
  }

  function send(res: http.ServerResponse, req: http.IncomingMessage, url: URL, reply: Reply, via: { region: string; interface: string }): void {
    const credential = keystone.tokens.get(req.headers['x-auth-token'] as string)?.credential?.id;
    requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, status: reply.status, ...via, ...(credential !== undefined ? { credential } : {}) });
    const payload = reply.body === undefined || reply.status === 204 ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...(payload ? { 'content-type': 'application/json' } : {}), ...reply.headers, 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  async function route(method: string, url: URL, body: unknown, token: string | undefined, via: { region: string; interface: string }, subjectToken?: string): Promise<Reply> {
    const path = url.pathname;
    const fromKeystone = keystone.handle(method, path, body, { authToken: token, subjectToken, query: url.searchParams });
    if (fromKeystone) return fromKeystone;
    const prefix = `/orchestration/v1/${projectId}`;
    if (path === '/orchestration' || path === '/orchestration/') {
      return { status: 300, body: { versions: [{ id: 'v1.0', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/orchestration/v1/` }] }] } };
    }
    if (path === '/compute' || path.startsWith('/compute/')) {
      const rest = path.slice('/compute'.length);
      // version documents are public, as on a real cloud
      if (rest === '' || rest === '/' || rest === '/v2.1' || rest === '/v2.1/') return nova.handle(method, rest, body);
      const issued = keystone.check(token);
      if (!issued || !keystone.allowedAt(issued, { type: 'compute' }, method, path)) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      return nova.handle(method, rest, body);
    }
    if (path === '/dns' || path.startsWith('/dns/')) {
      const rest = path.slice('/dns'.length);
      if (rest === '' || rest === '/') return designate.handle(method, rest, url.searchParams, body, `${base}/dns`);
      const issued = keystone.check(token);
      const dnsType = behaviour.dnsServiceType === undefined ? 'dns' : behaviour.dnsServiceType ?? undefined;
      // the path as the service sees it, its mount point included (webob's request.path), without the query
      if (!issued || !keystone.allowedAt(issued, { type: dnsType }, method, path)) return { status: 401, body: { code: 401, type: 'unauthorized', message: 'The request you have made requires authentication.' } };
      return designate.handle(method, rest, url.searchParams, body, `${base}/dns`);
    }
    if (services.network && (path === '/network' || path.startsWith('/network/'))) {
      if (!keystone.check(token)) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      const rest = path.slice('/network'.length);
      if (method === 'GET' && rest === `/v2.0/quotas/${projectId}/details.json`) return quotas.neutronDetails();
      return { status: 404, body: { NeutronError: { type: 'HTTPNotFound', message: 'The resource could not be found.', detail: '' } } };
    }
    if (services.volume && path.startsWith(`/volume/v3/${projectId}/`)) {
      if (!keystone.check(token)) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      const rest = path.slice(`/volume/v3/${projectId}`.length);
      if (method === 'GET' && rest === `/os-quota-sets/${projectId}` && url.searchParams.get('usage') === 'true') return quotas.cinderQuotaSet(projectId);
      return { status: 404, body: { itemNotFound: { code: 404, message: 'The resource could not be found.' } } };
    }
    if (path.startsWith('/orchestration/v1/')) {
      const issued = keystone.check(token);
      // keystonemiddleware's answer to a missing, unknown or expired token
      if (!issued || !keystone.allowedAt(issued, { type: 'orchestration' }, method, path)) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      if (!(path === prefix || path.startsWith(prefix + '/')) || issued.projectId !== projectId) {
        return heatError(403, 'Forbidden', 'You are not authorized to complete this action.');
      }
      const rest = path.slice(prefix.length) || '/';
      const prefixOf = via.region === region && via.interface === 'public' ? '' : `/via/${encodeURIComponent(via.region)}/${via.interface}`;
      // Heat decides where it makes a Keystone trust with the caller's token (src: emulator heat.ts, trustRefused)
      return heat.handle({ method, path: rest, query: url.searchParams, body, base: `${base}${prefixOf}${prefix}`, caller: { userId: issued.userId, applicationCredential: issued.applicationCredential } });
    }
    return heatError(404, 'HTTPNotFound', `The resource could not be found: ${path}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://${listenHost}:${port}`;
  // requests only arrive after listen(), so route() never sees keystone before this line
  const keystone = new EmulatedKeystone({
    baseUrl: base,
    projectId,
    projectName,
    region,
    otherRegions: options.otherRegions ?? [],
    users,
    applicationCredentials,
    tokenTtlSeconds: options.tokenTtlSeconds ?? 3600,
    rejectCredentials: () => behaviour.rejectCredentials === true,
    applicationCredentialSupport: () => behaviour.applicationCredentials ?? 'access-rules',
    now: () => Date.now(),
    services,
  });

  const servers = new EmulatedServers(() => heat.list().flatMap((stack) => stack.servers), base, options.servers, behaviour);
  const nova: EmulatedNova = new EmulatedNova(base, users[0]?.id ?? 'nobody', quotas, servers);
  for (const [name, publicKey] of Object.entries(options.keypairs ?? {})) nova.handle('POST', '/v2.1/os-keypairs', { keypair: { name, public_key: publicKey } });

  return {
    url: base,
    keypairs: () => nova.names(),
    authUrl: `${base}/identity/v3`,
    region,
    projectId,
    projectName,
    behaviour,
    requests,
    tokensIssued: () => keystone.issued,
    applicationCredentials: () => applicationCredentials,
    revokeTokens: () => keystone.tokens.clear(),
    stacks: () => heat.list(),
    preempt: (serverName) => heat.preempt(serverName),
    designate,
    quotas,
    servers,
    ...(swift !== undefined ? { swift } : {}),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await heat.settle();
      await servers.settle();
      await designate.settle();
    },
  };
}
