import { createHash } from 'node:crypto';
import type { Reply } from './http.js';
import type { EmulatedQuotas } from './quota.js';
import type { EmulatedServers } from './nova-servers.js';

interface Keypair {
  name: string;
  public_key: string;
  fingerprint: string;
  type: string;
  created_at: string;
}

const fault = (status: number, kind: string, message: string): Reply => ({ status, body: { [kind]: { code: status, message } } });

/** Nova's key pairs (microversion 2.1 answers), which Heat's key_name refers to. */
export class EmulatedNova {
  private readonly keypairs = new Map<string, Keypair>();

  constructor(
    private readonly base: string,
    private readonly userId: string,
    /** Limits and flavors (the Heat emulator's cloud has them; the one beside real Heat answers its own). */
    private readonly quotas?: EmulatedQuotas,
    /** The stacks' servers with their shelve and unshelve actions. */
    private readonly servers?: EmulatedServers,
  ) {}

  has(name: string): boolean {
    return this.keypairs.has(name);
  }

  names(): string[] {
    return [...this.keypairs.keys()];
  }

  private versionDoc() {
    return {
      id: 'v2.1',
      status: 'CURRENT',
      version: '2.79',
      min_version: '2.1',
      updated: '2013-07-23T11:33:21Z',
      links: [{ rel: 'self', href: `${this.base}/compute/v2.1/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
    };
  }

  /** `path` below /compute. */
  handle(method: string, path: string, body: unknown): Reply {
    if (path === '' || path === '/') return { status: 200, body: { versions: [this.versionDoc()] } };
    if (path === '/v2.1' || path === '/v2.1/') return { status: 200, body: { version: this.versionDoc() } };
    const parts = path.replace(/^\/v2\.1/, '').split('/').filter(Boolean).map(decodeURIComponent);
    if (this.quotas !== undefined && method === 'GET' && parts[0] === 'limits' && parts.length === 1) return this.quotas.novaLimits();
    if (this.quotas !== undefined && method === 'GET' && parts[0] === 'flavors' && (parts[1] === 'detail' || parts[1] === undefined)) return this.quotas.novaFlavors();
    if (this.servers !== undefined && parts[0] === 'servers') return this.servers.handle(method, parts, body);
    if (parts[0] !== 'os-keypairs') return fault(404, 'itemNotFound', 'The resource could not be found.');
    const [, name] = parts;
    if (name === undefined) {
      if (method === 'GET') return { status: 200, body: { keypairs: [...this.keypairs.values()].map(({ name: n, public_key, fingerprint, type }) => ({ keypair: { name: n, public_key, fingerprint, type } })) } };
      if (method === 'POST') return this.create(body);
      return fault(405, 'badMethod', 'Method not allowed');
    }
    const keypair = this.keypairs.get(name);
    if (!keypair) return fault(404, 'itemNotFound', `Keypair ${name} not found for user ${this.userId}`);
    if (method === 'GET') {
      return { status: 200, body: { keypair: { ...keypair, user_id: this.userId, deleted: false, deleted_at: null, updated_at: null, id: 1 } } };
    }
    if (method === 'DELETE') {
      this.keypairs.delete(name);
      return { status: 202 };
    }
    return fault(405, 'badMethod', 'Method not allowed');
  }

  private create(body: unknown): Reply {
    const k = (body as { keypair?: { name?: unknown; public_key?: unknown; type?: unknown } })?.keypair;
    if (typeof k?.name !== 'string' || !/^[A-Za-z0-9 _.@-]{1,255}$/.test(k.name)) return fault(400, 'badRequest', "Invalid input for field/attribute name.");
    if (typeof k.public_key !== 'string') return fault(400, 'badRequest', 'Keypair data is invalid: the emulator only imports public keys');
    const [, data] = k.public_key.trim().split(/\s+/);
    const bytes = data ? Buffer.from(data, 'base64') : Buffer.alloc(0);
    if (!data || bytes.length < 16) return fault(400, 'badRequest', 'Keypair data is invalid: failed to generate fingerprint');
    if (this.keypairs.has(k.name)) return fault(409, 'conflictingRequest', `Key pair '${k.name}' already exists.`);
    const fingerprint = createHash('md5').update(bytes).digest('hex').match(/../g)!.join(':');
    const keypair: Keypair = { name: k.name, public_key: k.public_key.trim(), fingerprint, type: typeof k.type === 'string' ? k.type : 'ssh', created_at: new Date().toISOString() };
    this.keypairs.set(k.name, keypair);
    return { status: 200, body: { keypair: { name: keypair.name, public_key: keypair.public_key, fingerprint, user_id: this.userId, type: keypair.type } } };
  }
}
