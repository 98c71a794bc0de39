import { randomUUID } from 'node:crypto';
import type { Reply } from './http.js';

/**
 * The Designate v2 subset depl uses (DNS-01's TXT records, the zero-config domain's A records): zones (list with
 * a name filter, create, show) and their recordsets (list with name/type filters, create, show, update, delete),
 * lists paged as Designate pages them (20 by default, `links.next`), a name filter's `*` a wildcard, 409 on a
 * second recordset of one name and type, 400 on a name outside the zone or without its trailing dot, and
 * Designate's error body ({code, type, message, request_id}). As on a real cloud, changes are accepted with 202
 * and status PENDING, and become ACTIVE once "published" to the name servers; here publishing calls
 * `publish` (the tests point it at pebble-challtestsrv, the DNS that Pebble validates through).
 */
export interface DesignateBackend {
  /** The name's records of this type after a change (empty: removed). */
  publish(fqdn: string, type: string, records: string[]): Promise<void>;
}

interface ZoneRow {
  id: string;
  name: string;
  email: string;
  ttl: number;
  serial: number;
  status: 'PENDING' | 'ACTIVE';
  action: string;
  project_id: string;
  created_at: string;
  updated_at: string | null;
}

interface RecordSetRow {
  id: string;
  zone_id: string;
  zone_name: string;
  name: string;
  type: string;
  records: string[];
  ttl: number | null;
  description: string | null;
  status: 'PENDING' | 'ACTIVE';
  action: 'CREATE' | 'UPDATE' | 'DELETE' | 'NONE';
  project_id: string;
  created_at: string;
  updated_at: string | null;
  version: number;
}

const TYPES = new Set(['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'NS', 'CAA', 'PTR', 'SPF', 'SSHFP']);

export function designateError(status: number, type: string, message: string): Reply {
  return { status, body: { code: status, type, message, request_id: `req-${randomUUID()}` } };
}

/** Designate's schema refusal (InvalidObject): one message, and the failing attribute in `errors`. */
function schemaError(path: string, message: string): Reply {
  const reply = designateError(400, 'invalid_object', 'Provided object does not match schema');
  return { ...reply, body: { ...(reply.body as object), errors: { errors: [{ path: [path], message, validator: 'format' }] } } };
}

/** Designate's list limits: 20 items a page unless asked, at most 1000. */
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

/**
 * A name filter as Designate's storage applies it: `*` becomes SQL's `%` (any run of characters), and once a
 * filter has one, `_` matches any single character too (it is LIKE's); without one the match is exact.
 */
function nameFilter(filter: string | null): (name: string) => boolean {
  if (filter === null) return () => true;
  if (!filter.includes('*')) return (name) => name === filter;
  const pattern = filter.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/_/g, '.');
  const re = new RegExp(`^${pattern}$`, 'i');
  return (name) => re.test(name);
}

/** One page of `items` (created order, as Designate sorts by default) after `marker`, with the next page's link. */
function page<T extends { id: string }>(items: T[], query: URLSearchParams, self: string): { items: T[]; links: { self: string; next?: string } } | Reply {
  const limitText = query.get('limit');
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return designateError(400, 'invalid_limit', `limit must be an integer between 1 and ${MAX_LIMIT}`);
  const marker = query.get('marker');
  let start = 0;
  if (marker !== null) {
    const at = items.findIndex((i) => i.id === marker);
    if (at === -1) return designateError(400, 'marker_not_found', 'Marker not found');
    start = at + 1;
  }
  const slice = items.slice(start, start + limit);
  const links: { self: string; next?: string } = { self };
  if (start + limit < items.length && slice.length > 0) {
    const next = new URLSearchParams(query);
    next.set('limit', String(limit));
    next.set('marker', slice[slice.length - 1]!.id);
    links.next = `${self.split('?')[0]}?${next.toString()}`;
  }
  return { items: slice, links };
}

export class EmulatedDesignate {
  private readonly zones = new Map<string, ZoneRow>();
  private readonly recordsets = new Map<string, RecordSetRow>();
  private publishing = Promise.resolve();

  constructor(
    private readonly projectId: string,
    private readonly backend: DesignateBackend | undefined,
    /** How long a change stays PENDING before it is published. */
    private readonly publishDelayMs = 200,
  ) {}

  /** Makes a zone directly (as an operator would have with `openstack zone create`). */
  addZone(name: string, email = 'hostmaster@example.org'): string {
    const id = randomUUID();
    const now = new Date().toISOString();
    this.zones.set(id, { id, name: fqdn(name), email, ttl: 3600, serial: 1, status: 'ACTIVE', action: 'NONE', project_id: this.projectId, created_at: now, updated_at: null });
    return id;
  }

  /** The records of `name` of this type (for assertions). */
  records(name: string, type: string): string[] {
    return [...this.recordsets.values()].find((r) => r.name === fqdn(name) && r.type === type)?.records ?? [];
  }

  /** Settles once every pending change was published. */
  settle(): Promise<void> {
    return this.publishing;
  }

  handle(method: string, path: string, query: URLSearchParams, body: unknown, base: string): Reply {
    if (path === '' || path === '/') return { status: 200, body: { versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/v2` }] }] } };
    const parts = path.replace(/^\/v2/, '').split('/').filter(Boolean);
    if (!path.startsWith('/v2/') || parts[0] !== 'zones') return designateError(404, 'not_found', 'Not Found');
    const [, zoneId, sub, rsId] = parts;
    if (zoneId === undefined) {
      if (method === 'GET') return this.listZones(query, base);
      if (method === 'POST') return this.createZone(body, base);
      return designateError(405, 'method_not_allowed', 'Method Not Allowed');
    }
    const zone = this.zones.get(zoneId);
    if (zone === undefined) return designateError(404, 'zone_not_found', 'Could not find Zone');
    if (sub === undefined) return method === 'GET' ? { status: 200, body: this.zoneView(zone, base) } : designateError(405, 'method_not_allowed', 'Method Not Allowed');
    if (sub !== 'recordsets') return designateError(404, 'not_found', 'Not Found');
    if (rsId === undefined) {
      if (method === 'GET') return this.listRecordSets(zone, query, base);
      if (method === 'POST') return this.createRecordSet(zone, body, base);
      return designateError(405, 'method_not_allowed', 'Method Not Allowed');
    }
    const rs = this.recordsets.get(rsId);
    if (rs === undefined || rs.zone_id !== zone.id) return designateError(404, 'recordset_not_found', 'Could not find RecordSet');
    if (method === 'GET') return { status: 200, body: this.rsView(rs, base) };
    if (method === 'PUT') return this.updateRecordSet(rs, body, base);
    if (method === 'DELETE') {
      this.recordsets.delete(rs.id);
      rs.action = 'DELETE';
      rs.status = 'PENDING';
      this.schedule(rs.name, rs.type);
      return { status: 202, body: this.rsView(rs, base) };
    }
    return designateError(405, 'method_not_allowed', 'Method Not Allowed');
  }

  private listZones(query: URLSearchParams, base: string): Reply {
    const matches = nameFilter(query.get('name'));
    const zones = [...this.zones.values()].filter((z) => matches(z.name));
    const shown = page(zones, query, `${base}/v2/zones`);
    if ('status' in shown) return shown;
    return { status: 200, body: { zones: shown.items.map((z) => this.zoneView(z, base)), links: shown.links, metadata: { total_count: zones.length } } };
  }

  private createZone(body: unknown, base: string): Reply {
    const b = body as { name?: unknown; email?: unknown } | undefined;
    if (typeof b?.name !== 'string' || !b.name.endsWith('.')) return designateError(400, 'invalid_object', "Provided object does not match schema 'zone': name must be a fully qualified domain name ending in '.'");
    if (typeof b.email !== 'string') return designateError(400, 'invalid_object', "Provided object does not match schema 'zone': 'email' is a required property");
    if ([...this.zones.values()].some((z) => z.name === b.name)) return designateError(409, 'duplicate_zone', 'Duplicate Zone');
    const zone = this.zones.get(this.addZone(b.name, b.email))!;
    return { status: 202, body: this.zoneView(zone, base) };
  }

  private listRecordSets(zone: ZoneRow, query: URLSearchParams, base: string): Reply {
    const matches = nameFilter(query.get('name'));
    const type = query.get('type');
    const sets = [...this.recordsets.values()].filter((r) => r.zone_id === zone.id && matches(r.name) && (type === null || r.type === type));
    const shown = page(sets, query, `${base}/v2/zones/${zone.id}/recordsets`);
    if ('status' in shown) return shown;
    return { status: 200, body: { recordsets: shown.items.map((r) => this.rsView(r, base)), links: shown.links, metadata: { total_count: sets.length } } };
  }

  private createRecordSet(zone: ZoneRow, body: unknown, base: string): Reply {
    const b = body as { name?: unknown; type?: unknown; records?: unknown; ttl?: unknown; description?: unknown } | undefined;
    if (typeof b?.name !== 'string' || typeof b.type !== 'string' || !Array.isArray(b.records)) {
      return designateError(400, 'invalid_object', "Provided object does not match schema 'recordset': 'name', 'type' and 'records' are required");
    }
    if (!TYPES.has(b.type)) return designateError(400, 'invalid_object', `Provided object does not match schema 'recordset': '${b.type}' is not one of the supported types`);
    if (!b.name.endsWith('.')) return schemaError('name', `Domain ${b.name} does not end with a dot`);
    const description = this.invalidDescription(b.description);
    if (typeof description !== 'string' && description !== null) return description;
    if (b.name !== zone.name && !b.name.endsWith(`.${zone.name}`)) return designateError(400, 'invalid_recordset_location', 'RecordSet is not contained within it\'s parent zone');
    const invalid = this.invalidRecords(b.type, b.records);
    if (invalid) return invalid;
    if ([...this.recordsets.values()].some((r) => r.zone_id === zone.id && r.name === b.name && r.type === b.type)) return designateError(409, 'duplicate_recordset', 'Duplicate RecordSet');
    const now = new Date().toISOString();
    const rs: RecordSetRow = {
      id: randomUUID(), zone_id: zone.id, zone_name: zone.name, name: b.name, type: b.type, records: b.records as string[],
      ttl: typeof b.ttl === 'number' ? b.ttl : null, description, status: 'PENDING', action: 'CREATE', project_id: this.projectId, created_at: now, updated_at: null, version: 1,
    };
    this.recordsets.set(rs.id, rs);
    this.schedule(rs.name, rs.type, rs);
    return { status: 202, body: this.rsView(rs, base) };
  }

  private updateRecordSet(rs: RecordSetRow, body: unknown, base: string): Reply {
    const b = body as { records?: unknown; ttl?: unknown; description?: unknown } | undefined;
    if (b?.description !== undefined) {
      const description = this.invalidDescription(b.description);
      if (typeof description !== 'string' && description !== null) return description;
      rs.description = description;
    }
    if (b?.records !== undefined) {
      if (!Array.isArray(b.records)) return designateError(400, 'invalid_object', "'records' must be an array");
      const invalid = this.invalidRecords(rs.type, b.records);
      if (invalid) return invalid;
      rs.records = b.records as string[];
    }
    if (typeof b?.ttl === 'number') rs.ttl = b.ttl;
    rs.status = 'PENDING';
    rs.action = 'UPDATE';
    rs.version += 1;
    rs.updated_at = new Date().toISOString();
    this.schedule(rs.name, rs.type, rs);
    return { status: 202, body: this.rsView(rs, base) };
  }

  /** A recordset's description: a string of at most 160 characters, or null; a refusal otherwise. */
  private invalidDescription(value: unknown): string | null | Reply {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value.length > 160) return schemaError('description', 'description must be a string of at most 160 characters');
    return value;
  }

  private invalidRecords(type: string, records: unknown[]): Reply | undefined {
    for (const record of records) {
      if (typeof record !== 'string' || record.length === 0) return designateError(400, 'invalid_object', 'records must be non-empty strings');
      // Designate's A data is a dotted-quad IPv4 address, leading zeros refused
      if (type === 'A' && !/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(record)) return schemaError('records', `${record} is not an IPv4 address`);
      // Designate's TXT rule: at most 255 characters per string, no unescaped trailing backslash
      if (type === 'TXT' && (record.length > 255 + 2 || /(^|[^\\])\\$/.test(record))) return designateError(400, 'invalid_object', `Provided object does not match schema 'recordset': invalid TXT record ${record.slice(0, 40)}`);
    }
    return undefined;
  }

  private schedule(name: string, type: string, rs?: RecordSetRow): void {
    const version = rs?.version;
    this.publishing = this.publishing.then(async () => {
      await new Promise((r) => setTimeout(r, this.publishDelayMs));
      const current = [...this.recordsets.values()].find((r) => r.name === name && r.type === type);
      const values = current?.records.map((r) => (type === 'TXT' ? r.replace(/^"(.*)"$/, '$1') : r)) ?? [];
      let published = true;
      await this.backend?.publish(name, type, values).catch(() => (published = false));
      if (rs !== undefined && rs.version === version) {
        (rs as { status: string }).status = published ? 'ACTIVE' : 'ERROR';
        rs.action = 'NONE';
      }
    });
  }

  private zoneView(zone: ZoneRow, base: string) {
    return { ...zone, links: { self: `${base}/v2/zones/${zone.id}` } };
  }

  private rsView(rs: RecordSetRow, base: string) {
    return { ...rs, records: [...rs.records], links: { self: `${base}/v2/zones/${rs.zone_id}/recordsets/${rs.id}` } };
  }
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}
