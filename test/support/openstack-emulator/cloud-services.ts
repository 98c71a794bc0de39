import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerDriver } from './heat.js';
import type { Reply } from './http.js';
import { EmulatedNova } from './nova.js';

/**
 * The part of Nova, Glance and Neutron that real Heat calls to orchestrate heat/stack.yaml: version
 * documents, images by name, flavors, key pairs, servers (each a real local node made by `servers`),
 * Neutron's extension list, security groups and their rules, networks. Answers are shaped as those
 * services answer (python-novaclient, glanceclient and neutronclient inside Heat parse them).
 */

export interface CloudServicesOptions {
  servers: ServerDriver;
  images?: string[];
  flavors?: string[];
  /** Project networks, by name (the `network` parameter may name one). */
  networks?: string[];
  keypairs?: Record<string, string>;
  /** Listen here (default: a free port). */
  port?: number;
}

export interface RecordedCall {
  method: string;
  path: string;
  status: number;
}

export interface CloudServices {
  url: string;
  /** Catalog URLs: compute, image, network. */
  endpoints: { compute: string; image: string; network: string };
  calls: RecordedCall[];
  servers(): Array<{ id: string; name: string; status: string; address?: string; availabilityZone?: string; networks: unknown }>;
  securityGroups(): Array<{ id: string; name: string; rules: number }>;
  keypairs(): string[];
  close(): Promise<void>;
}

interface EmulatedServer {
  id: string;
  name: string;
  status: 'BUILD' | 'ACTIVE' | 'ERROR' | 'DELETED';
  address?: string;
  fault?: string;
  created: string;
  flavorId: string;
  imageId: string;
  keyName: string | null;
  availabilityZone?: string;
  securityGroups: string[];
  networks: unknown;
  metadata: Record<string, string>;
}

const novaFault = (status: number, kind: string, message: string): Reply => ({ status, body: { [kind]: { code: status, message } } });
const neutronFault = (status: number, type: string, message: string): Reply => ({ status, body: { NeutronError: { type, message, detail: '' } } });

export async function startCloudServices(options: CloudServicesOptions): Promise<CloudServices> {
  const calls: RecordedCall[] = [];
  const images = (options.images ?? ['NeCTAR Ubuntu 22.04 LTS (Jammy) amd64']).map((name) => ({ id: randomUUID(), name }));
  const flavors = (options.flavors ?? ['m3.small', 'm3.medium']).map((name, i) => ({ id: String(100 + i), name }));
  const networks = (options.networks ?? []).map((name) => ({ id: randomUUID(), name }));
  const servers = new Map<string, EmulatedServer>();
  const groups = new Map<string, { id: string; name: string; description: string; rules: Map<string, Record<string, unknown>> }>();
  const tenant = randomUUID().replace(/-/g, '');
  const pending = new Set<Promise<unknown>>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      let reply: Reply;
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        reply = route(req.method ?? 'GET', url, text ? (JSON.parse(text) as unknown) : undefined);
      } catch (error) {
        reply = { status: 500, body: { error: (error as Error).message } };
      }
      calls.push({ method: req.method ?? 'GET', path: url.pathname + url.search, status: reply.status });
      const payload = reply.body === undefined || reply.status === 204 ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { ...(payload ? { 'content-type': 'application/json' } : {}), ...reply.headers, 'content-length': Buffer.byteLength(payload), connection: 'close' });
      res.end(payload);
    });
  });

  function route(method: string, url: URL, body: unknown): Reply {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/compute' || path.startsWith('/compute/')) return compute(method, path.slice('/compute'.length), url.searchParams, body);
    if (path === '/image' || path.startsWith('/image/')) return image(method, path.slice('/image'.length), url.searchParams);
    if (path === '/network' || path.startsWith('/network/')) return network(method, path.slice('/network'.length), url.searchParams, body);
    return { status: 404, body: { error: `nothing at ${path}` } };
  }

  // ---- Nova (2.1 with microversions up to 2.79) ----
  function serverDoc(s: EmulatedServer) {
    const flavor = flavors.find((f) => f.id === s.flavorId);
    return {
      id: s.id,
      name: s.name,
      status: s.status,
      tenant_id: tenant,
      user_id: 'depl',
      metadata: s.metadata,
      hostId: 'emulated',
      image: { id: s.imageId, links: [] },
      flavor: { vcpus: 2, ram: 4096, disk: 30, ephemeral: 0, swap: 0, original_name: flavor?.name ?? s.flavorId, extra_specs: {} },
      created: s.created,
      updated: s.created,
      addresses: s.address ? { 'depl-test': [{ version: 4, addr: s.address, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:01' }] } : {},
      accessIPv4: '',
      accessIPv6: '',
      links: [{ rel: 'self', href: `${base}/compute/v2.1/servers/${s.id}` }],
      'OS-DCF:diskConfig': 'MANUAL',
      progress: s.status === 'ACTIVE' ? 100 : 0,
      'OS-EXT-AZ:availability_zone': s.availabilityZone ?? 'nova',
      config_drive: '',
      key_name: s.keyName,
      'OS-SRV-USG:launched_at': s.status === 'ACTIVE' ? s.created : null,
      'OS-SRV-USG:terminated_at': null,
      security_groups: s.securityGroups.map((name) => ({ name })),
      'OS-EXT-STS:task_state': s.status === 'BUILD' ? 'spawning' : null,
      'OS-EXT-STS:vm_state': s.status === 'ACTIVE' ? 'active' : s.status === 'ERROR' ? 'error' : 'building',
      'OS-EXT-STS:power_state': s.status === 'ACTIVE' ? 1 : 0,
      'os-extended-volumes:volumes_attached': [],
      locked: false,
      description: null,
      tags: [],
      trusted_image_certificates: null,
      server_groups: [],
      ...(s.fault ? { fault: { code: 500, message: s.fault, created: s.created } } : {}),
    };
  }

  function compute(method: string, path: string, query: URLSearchParams, body: unknown): Reply {
    // version documents and key pairs as the python client already sees them
    if (path === '' || path === '/' || path === '/v2.1') return nova.handle(method, path, body);
    const rest = path.replace(/^\/v2\.1/, '');
    if (rest.startsWith('/os-keypairs')) return nova.handle(method, `/v2.1${rest}`, body);
    const parts = rest.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'flavors') {
      const flavorDoc = (f: { id: string; name: string }) => ({ id: f.id, name: f.name, ram: 4096, disk: 30, vcpus: 2, swap: '', 'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': false, rxtx_factor: 1, 'os-flavor-access:is_public': true, description: null, extra_specs: {}, links: [] });
      if (parts[1] === undefined || parts[1] === 'detail') return { status: 200, body: { flavors: flavors.map(flavorDoc) } };
      const flavor = flavors.find((f) => f.id === parts[1]);
      if (!flavor) return novaFault(404, 'itemNotFound', `Flavor ${parts[1]} could not be found.`);
      if (parts[2] === 'os-extra_specs') return { status: 200, body: { extra_specs: {} } };
      return { status: 200, body: { flavor: flavorDoc(flavor) } };
    }
    if (parts[0] === 'limits') {
      return { status: 200, body: { limits: { rate: [], absolute: { maxServerMeta: 128, maxPersonality: 5, maxPersonalitySize: 10240, maxTotalInstances: 50, maxTotalCores: 100, maxTotalRAMSize: 512000, totalInstancesUsed: servers.size, totalCoresUsed: 0, totalRAMUsed: 0, maxTotalKeypairs: 100, maxImageMeta: 128, maxSecurityGroups: 10, maxSecurityGroupRules: 20, maxServerGroups: 10, maxServerGroupMembers: 10, totalSecurityGroupsUsed: 0, totalServerGroupsUsed: 0, totalFloatingIpsUsed: 0, maxTotalFloatingIps: 10 } } } };
    }
    if (parts[0] === 'os-availability-zone') return { status: 200, body: { availabilityZoneInfo: [{ zoneName: 'melbourne-qh2', zoneState: { available: true }, hosts: null }] } };
    if (parts[0] !== 'servers') return novaFault(404, 'itemNotFound', 'The resource could not be found.');
    if (parts[1] === undefined && method === 'POST') return createServer(body);
    if ((parts[1] === undefined || parts[1] === 'detail') && method === 'GET') {
      const name = query.get('name');
      const list = [...servers.values()].filter((s) => s.status !== 'DELETED' && (!name || new RegExp(name).test(s.name)));
      return { status: 200, body: { servers: parts[1] === 'detail' ? list.map(serverDoc) : list.map((s) => ({ id: s.id, name: s.name, links: [] })) } };
    }
    const s = servers.get(parts[1]!);
    if (!s || s.status === 'DELETED') return novaFault(404, 'itemNotFound', `Instance ${parts[1]} could not be found.`);
    if (parts[2] === undefined) {
      if (method === 'GET') return { status: 200, body: { server: serverDoc(s) } };
      if (method === 'DELETE') return deleteServer(s);
      if (method === 'PUT') return { status: 200, body: { server: serverDoc(s) } };
    }
    if (parts[2] === 'os-interface' && method === 'GET') {
      return { status: 200, body: { interfaceAttachments: s.address ? [{ port_id: `port-${s.id}`, net_id: 'depl-test', mac_addr: 'fa:16:3e:00:00:01', port_state: 'ACTIVE', fixed_ips: [{ ip_address: s.address, subnet_id: 'subnet' }] }] : [] } };
    }
    if (parts[2] === 'metadata') return { status: 200, body: { metadata: s.metadata } };
    if (parts[2] === 'action' && method === 'POST') return { status: 202 };
    return novaFault(404, 'itemNotFound', 'The resource could not be found.');
  }

  function createServer(body: unknown): Reply {
    const b = (body as { server?: Record<string, unknown> })?.server;
    if (!b || typeof b.name !== 'string') return novaFault(400, 'badRequest', "Invalid input for field/attribute server. Value: None. 'name' is a required property");
    const image = images.find((i) => i.id === b.imageRef);
    if (!image) return novaFault(400, 'badRequest', `Image ${String(b.imageRef)} could not be found.`);
    if (!flavors.some((f) => f.id === b.flavorRef)) return novaFault(400, 'badRequest', `Flavor ${String(b.flavorRef)} could not be found.`);
    if (typeof b.key_name === 'string' && !nova.has(b.key_name)) return novaFault(400, 'badRequest', `Invalid key_name provided.`);
    const s: EmulatedServer = {
      id: randomUUID(),
      name: b.name,
      status: 'BUILD',
      created: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      flavorId: String(b.flavorRef),
      imageId: image.id,
      keyName: typeof b.key_name === 'string' ? b.key_name : null,
      availabilityZone: typeof b.availability_zone === 'string' ? b.availability_zone : undefined,
      securityGroups: Array.isArray(b.security_groups) ? (b.security_groups as Array<{ name: string }>).map((g) => g.name) : ['default'],
      networks: b.networks,
      metadata: (b.metadata as Record<string, string>) ?? {},
    };
    servers.set(s.id, s);
    const made = options.servers.createServer(s.name).then(
      ({ address }) => {
        if (s.status === 'BUILD') {
          s.address = address;
          s.status = 'ACTIVE';
        }
      },
      (error: unknown) => {
        s.status = 'ERROR';
        s.fault = `Build of instance ${s.id} aborted: ${(error as Error).message}`;
      },
    );
    pending.add(made);
    void made.finally(() => pending.delete(made));
    return { status: 202, headers: { location: `${base}/compute/v2.1/servers/${s.id}` }, body: { server: { id: s.id, links: [], 'OS-DCF:diskConfig': 'MANUAL', security_groups: s.securityGroups.map((name) => ({ name })), adminPass: 'not-used' } } };
  }

  function deleteServer(s: EmulatedServer): Reply {
    const gone = options.servers.deleteServer(s.name).finally(() => {
      s.status = 'DELETED';
      servers.delete(s.id);
    });
    pending.add(gone);
    void gone.catch(() => undefined).finally(() => pending.delete(gone));
    return { status: 204 };
  }

  // ---- Glance v2 ----
  function imageDoc(i: { id: string; name: string }) {
    return {
      id: i.id,
      name: i.name,
      status: 'active',
      visibility: 'public',
      protected: false,
      os_hidden: false,
      container_format: 'bare',
      disk_format: 'qcow2',
      min_disk: 10,
      min_ram: 0,
      size: 2361393152,
      checksum: '0123456789abcdef0123456789abcdef',
      owner: 'nectar',
      tags: [],
      created_at: '2024-05-01T00:00:00Z',
      updated_at: '2024-05-01T00:00:00Z',
      self: `/v2/images/${i.id}`,
      file: `/v2/images/${i.id}/file`,
      schema: '/v2/schemas/image',
    };
  }

  function image(method: string, path: string, query: URLSearchParams): Reply {
    if (path === '' || path === '/') {
      return { status: 300, body: { versions: [{ id: 'v2.9', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/image/v2/` }] }] } };
    }
    if (path === '/v2/schemas/image') {
      return { status: 200, body: { name: 'image', properties: { id: { type: 'string' }, name: { type: ['null', 'string'] }, status: { type: 'string' }, visibility: { type: 'string' } }, additionalProperties: { type: 'string' }, links: [] } };
    }
    if (path === '/v2/images' && method === 'GET') {
      const name = query.get('name');
      const list = images.filter((i) => name === null || i.name === name || `in:"${i.name}"` === name);
      return { status: 200, body: { images: list.map(imageDoc), schema: '/v2/schemas/images', first: '/v2/images' } };
    }
    const match = /^\/v2\/images\/([^/]+)$/.exec(path);
    if (match && method === 'GET') {
      const found = images.find((i) => i.id === decodeURIComponent(match[1]!));
      return found ? { status: 200, body: imageDoc(found) } : { status: 404, body: `<html><body><h1>404 Not Found</h1>No image found with ID ${match[1]}</body></html>` as unknown };
    }
    return { status: 404, body: { error: 'not found' } };
  }

  // ---- Neutron v2.0 ----
  const extensions = ['security-group', 'standard-attr-description', 'auto-allocated-topology', 'network-ip-availability', 'quotas', 'router', 'external-net', 'port-security', 'binding', 'agent']
    .map((alias) => ({ alias, name: alias, description: alias, links: [], updated: '2016-01-01T00:00:00-00:00' }));

  function groupDoc(g: { id: string; name: string; description: string; rules: Map<string, Record<string, unknown>> }) {
    return { id: g.id, name: g.name, description: g.description, tenant_id: tenant, project_id: tenant, security_group_rules: [...g.rules.values()], tags: [], stateful: true, revision_number: 1 };
  }

  function network(method: string, path: string, query: URLSearchParams, body: unknown): Reply {
    if (path === '' || path === '/') return { status: 200, body: { versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/network/v2.0/` }] }] } };
    const parts = path.replace(/^\/v2\.0/, '').split('/').filter(Boolean).map((p) => decodeURIComponent(p.replace(/\.json$/, '')));
    if (parts[0] === 'extensions') {
      if (parts[1] === undefined) return { status: 200, body: { extensions } };
      const ext = extensions.find((e) => e.alias === parts[1]);
      return ext ? { status: 200, body: { extension: ext } } : neutronFault(404, 'ExtensionNotFound', `Extension with alias ${parts[1]} does not exist`);
    }
    if (parts[0] === 'networks') {
      const doc = (n: { id: string; name: string }) => ({ id: n.id, name: n.name, status: 'ACTIVE', admin_state_up: true, shared: false, subnets: [], tenant_id: tenant, project_id: tenant, 'router:external': false, mtu: 1500 });
      if (parts[1] === undefined) {
        const name = query.get('name');
        const id = query.get('id');
        return { status: 200, body: { networks: networks.filter((n) => (name === null || n.name === name) && (id === null || n.id === id)).map(doc) } };
      }
      const n = networks.find((x) => x.id === parts[1]);
      return n ? { status: 200, body: { network: doc(n) } } : neutronFault(404, 'NetworkNotFound', `Network ${parts[1]} could not be found.`);
    }
    if (parts[0] === 'security-groups') {
      if (parts[1] === undefined && method === 'POST') {
        const g = (body as { security_group?: { name?: string; description?: string } })?.security_group ?? {};
        const id = randomUUID();
        const group = { id, name: g.name ?? '', description: g.description ?? '', rules: new Map<string, Record<string, unknown>>() };
        // Neutron gives every new group two egress rules
        for (const ethertype of ['IPv4', 'IPv6']) {
          const ruleId = randomUUID();
          group.rules.set(ruleId, { id: ruleId, security_group_id: id, direction: 'egress', ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, tenant_id: tenant, project_id: tenant, description: '' });
        }
        groups.set(id, group);
        return { status: 201, body: { security_group: groupDoc(group) } };
      }
      if (parts[1] === undefined) {
        const name = query.get('name');
        return { status: 200, body: { security_groups: [...groups.values()].filter((g) => name === null || g.name === name).map(groupDoc) } };
      }
      const group = groups.get(parts[1]);
      if (!group) return neutronFault(404, 'SecurityGroupNotFound', `Security group ${parts[1]} does not exist`);
      if (method === 'GET') return { status: 200, body: { security_group: groupDoc(group) } };
      if (method === 'PUT') return { status: 200, body: { security_group: groupDoc(group) } };
      if (method === 'DELETE') {
        const inUse = [...servers.values()].some((s) => s.status !== 'DELETED' && s.securityGroups.includes(group.id));
        if (inUse) return neutronFault(409, 'SecurityGroupInUse', `Security Group ${group.id} in use.`);
        groups.delete(group.id);
        return { status: 204 };
      }
    }
    if (parts[0] === 'security-group-rules') {
      if (parts[1] === undefined && method === 'POST') {
        const r = (body as { security_group_rule?: Record<string, unknown> })?.security_group_rule ?? {};
        const group = groups.get(String(r.security_group_id));
        if (!group) return neutronFault(404, 'SecurityGroupNotFound', `Security group ${String(r.security_group_id)} does not exist`);
        const id = randomUUID();
        const rule = { id, ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, description: '', ...r, tenant_id: tenant, project_id: tenant };
        group.rules.set(id, rule);
        return { status: 201, body: { security_group_rule: rule } };
      }
      if (parts[1] === undefined) return { status: 200, body: { security_group_rules: [...groups.values()].flatMap((g) => [...g.rules.values()]) } };
      for (const g of groups.values()) {
        const rule = g.rules.get(parts[1]);
        if (!rule) continue;
        if (method === 'DELETE') {
          g.rules.delete(parts[1]);
          return { status: 204 };
        }
        return { status: 200, body: { security_group_rule: rule } };
      }
      return neutronFault(404, 'SecurityGroupRuleNotFound', `Security group rule ${parts[1]} does not exist`);
    }
    if (parts[0] === 'ports') return { status: 200, body: { ports: [] } };
    if (parts[0] === 'quotas' && parts[2] === 'details') {
      // GET /v2.0/quotas/{project}/details.json: limit, used and reserved per resource, usage from what exists
      const live = [...servers.values()].filter((s) => s.status !== 'DELETED').length;
      const rules = [...groups.values()].reduce((n, g) => n + g.rules.size, 0);
      const row = (limit: number, used: number) => ({ limit, used, reserved: 0 });
      return { status: 200, body: { quota: { floatingip: row(50, 0), network: row(10, networks.length), port: row(50, live), router: row(10, 0), subnet: row(10, 0), security_group: row(10, groups.size), security_group_rule: row(100, rules) } } };
    }
    if (parts[0] === 'quotas') return { status: 200, body: { quota: { security_group: 10, security_group_rule: 100 } } };
    return neutronFault(404, 'HTTPNotFound', `The resource could not be found.`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  // requests only arrive after listen(), so the handlers never see these before they are set
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const nova = new EmulatedNova(base, 'depl');
  for (const [name, publicKey] of Object.entries(options.keypairs ?? {})) nova.handle('POST', '/v2.1/os-keypairs', { keypair: { name, public_key: publicKey } });

  return {
    url: base,
    endpoints: { compute: `${base}/compute/v2.1`, image: `${base}/image`, network: `${base}/network` },
    calls,
    servers: () => [...servers.values()].filter((s) => s.status !== 'DELETED').map((s) => ({ id: s.id, name: s.name, status: s.status, address: s.address, availabilityZone: s.availabilityZone, networks: s.networks })),
    securityGroups: () => [...groups.values()].map((g) => ({ id: g.id, name: g.name, rules: g.rules.size })),
    keypairs: () => nova.names(),
    async close() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
