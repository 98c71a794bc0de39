import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmulatedHeat, type HeatBehaviour, type ServerDriver } from './heat.js';
import { heatError, type Reply } from './http.js';
import { EmulatedNova } from './nova.js';
import { EmulatedDesignate, type DesignateBackend } from './designate.js';
import { EmulatedKeystone, type EmulatedApplicationCredential, type EmulatedUser } from './keystone.js';

export type { ServerDriver } from './heat.js';

export interface EmulatorBehaviour extends HeatBehaviour {
  /** Keystone answers every token request with 401. */
  rejectCredentials?: boolean;
}

export interface EmulatorOptions {
  servers: ServerDriver;
  region?: string;
  projectId?: string;
  projectName?: string;
  users?: EmulatedUser[];
  applicationCredentials?: EmulatedApplicationCredential[];
  tokenTtlSeconds?: number;
  behaviour?: EmulatorBehaviour;
  /** Where Designate publishes records (the DNS server a test's ACME server resolves through). */
  dns?: DesignateBackend;
  /** Key pairs that exist from the start: name -> OpenSSH public key. */
  keypairs?: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
}

export interface OpenStackEmulator {
  /** http://127.0.0.1:<port> */
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
  /** How many tokens Keystone has issued. */
  tokensIssued(): number;
  /** Forget every token, as a revocation would: the next Heat call with one gets a 401. */
  revokeTokens(): void;
  stacks: EmulatedHeat['list'];
  /** The DNS service (Designate v2 subset). */
  designate: EmulatedDesignate;
  close(): Promise<void>;
}

/**
 * A stand-in for an OpenStack cloud (Keystone v3 + the Heat v1 subset depl uses), on plain HTTP on a free
 * loopback port. Both depl and the real `openstack` client talk to it; its servers come from `servers`.
 */
export async function startOpenStackEmulator(options: EmulatorOptions): Promise<OpenStackEmulator> {
  const region = options.region ?? 'Melbourne';
  const projectId = options.projectId ?? randomUUID().replace(/-/g, '');
  const projectName = options.projectName ?? 'depl-test-project';
  const behaviour: EmulatorBehaviour = options.behaviour ?? {};
  const users = (options.users ?? [{ name: 'demo', domain: 'Default', password: 'demo-password' }]).map((u) => ({
    id: u.id ?? randomUUID().replace(/-/g, ''),
    name: u.name,
    domain: u.domain ?? 'Default',
    password: u.password,
  }));
  const requests: RecordedRequest[] = [];
  const designate = new EmulatedDesignate(projectId, options.dns);
  const heat = new EmulatedHeat(options.servers, behaviour, projectId, (name) => nova.has(name));

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        let reply: Reply;
        try {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = undefined;
          if (text.length > 0) {
            try {
              body = JSON.parse(text);
            } catch {
              reply = heatError(400, 'HTTPBadRequest', 'The request body is not valid JSON.');
              return send(res, req, url, reply);
            }
          }
          reply = await route(req.method ?? 'GET', url, body, req.headers['x-auth-token'] as string | undefined);
        } catch (error) {
          reply = heatError(500, 'InternalError', (error as Error).message);
        }
        send(res, req, url, reply);
      })();
    });
  });

  function send(res: http.ServerResponse, req: http.IncomingMessage, url: URL, reply: Reply): void {
    requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, status: reply.status });
    const payload = reply.body === undefined || reply.status === 204 ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...(payload ? { 'content-type': 'application/json' } : {}), ...reply.headers, 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  async function route(method: string, url: URL, body: unknown, token: string | undefined): Promise<Reply> {
    const path = url.pathname;
    const fromKeystone = keystone.handle(method, path, body);
    if (fromKeystone) return fromKeystone;
    const prefix = `/orchestration/v1/${projectId}`;
    if (path === '/orchestration' || path === '/orchestration/') {
      return { status: 300, body: { versions: [{ id: 'v1.0', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/orchestration/v1/` }] }] } };
    }
    if (path === '/compute' || path.startsWith('/compute/')) {
      const rest = path.slice('/compute'.length);
      // version documents are public, as on a real cloud
      if (rest === '' || rest === '/' || rest === '/v2.1' || rest === '/v2.1/') return nova.handle(method, rest, body);
      if (!keystone.check(token)) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      return nova.handle(method, rest, body);
    }
    if (path === '/dns' || path.startsWith('/dns/')) {
      const rest = path.slice('/dns'.length);
      if (rest === '' || rest === '/') return designate.handle(method, rest, url.searchParams, body, `${base}/dns`);
      const issued = keystone.check(token);
      if (!issued) return { status: 401, body: { code: 401, type: 'unauthorized', message: 'The request you have made requires authentication.' } };
      return designate.handle(method, rest, url.searchParams, body, `${base}/dns`);
    }
    if (path.startsWith('/orchestration/v1/')) {
      const issued = keystone.check(token);
      // keystonemiddleware's answer to a missing, unknown or expired token
      if (!issued) return { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };
      if (!(path === prefix || path.startsWith(prefix + '/')) || issued.projectId !== projectId) {
        return heatError(403, 'Forbidden', 'You are not authorized to complete this action.');
      }
      return heat.handle({ method, path: path.slice(prefix.length) || '/', query: url.searchParams, body, base: `${base}${prefix}` });
    }
    return heatError(404, 'HTTPNotFound', `The resource could not be found: ${path}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  // requests only arrive after listen(), so route() never sees keystone before this line
  const keystone = new EmulatedKeystone({
    baseUrl: base,
    projectId,
    projectName,
    region,
    users,
    applicationCredentials: options.applicationCredentials ?? [],
    tokenTtlSeconds: options.tokenTtlSeconds ?? 3600,
    rejectCredentials: () => behaviour.rejectCredentials === true,
    now: () => Date.now(),
  });

  const nova = new EmulatedNova(base, users[0]?.id ?? 'nobody');
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
    revokeTokens: () => keystone.tokens.clear(),
    stacks: () => heat.list(),
    designate,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await heat.settle();
      await designate.settle();
    },
  };
}
