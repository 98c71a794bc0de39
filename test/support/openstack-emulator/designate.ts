import { randomUUID } from 'node:crypto';
import type { Reply } from './http.js';

/**
 * The Designate v2 subset DNS-01 uses: zones (list, create, show) and their recordsets (list with
 * name/type filters, create, show, update, delete). As on a real cloud, changes are accepted with 202
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
    const name = query.get('name');
    const zones = [...this.zones.values()].filter((z) => name === null || z.name === fqdn(name));
    return { status: 200, body: { zones: zones.map((z) => this.zoneView(z, base)), links: { self: `${base}/v2/zones` }, metadata: { total_count: zones.length } } };
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
    const name = query.get('name');
    const type = query.get('type');
    const sets = [...this.recordsets.values()].filter((r) => r.zone_id === zone.id && (name === null || r.name === name) && (type === null || r.type === type));
    return { status: 200, body: { recordsets: sets.map((r) => this.rsView(r, base)), links: { self: `${base}/v2/zones/${zone.id}/recordsets` }, metadata: { total_count: sets.length } } };
  }

  private createRecordSet(zone: ZoneRow, body: unknown, base: string): Reply {
    const b = body as { name?: unknown; type?: unknown; records?: unknown; ttl?: unknown } | undefined;
    if (typeof b?.name !== 'string' || typeof b.type !== 'string' || !Array.isArray(b.records)) {
      return designateError(400, 'invalid_object', "Provided object does not match schema 'recordset': 'name', 'type' and 'records' are required");
    }
    if (!TYPES.has(b.type)) return designateError(400, 'invalid_object', `Provided object does not match schema 'recordset': '${b.type}' is not one of the supported types`);
    if (!b.name.endsWith('.')) return designateError(400, 'invalid_object', 'RecordSet name must be a fully qualified domain name ending in "."');
    if (b.name !== zone.name && !b.name.endsWith(`.${zone.name}`)) return designateError(400, 'invalid_recordset_location', 'RecordSet is not contained within it\'s parent zone');
    const invalid = this.invalidRecords(b.type, b.records);
    if (invalid) return invalid;
    if ([...this.recordsets.values()].some((r) => r.zone_id === zone.id && r.name === b.name && r.type === b.type)) return designateError(409, 'duplicate_recordset', 'Duplicate RecordSet');
    const now = new Date().toISOString();
    const rs: RecordSetRow = {
      id: randomUUID(), zone_id: zone.id, zone_name: zone.name, name: b.name, type: b.type, records: b.records as string[],
      ttl: typeof b.ttl === 'number' ? b.ttl : null, status: 'PENDING', action: 'CREATE', project_id: this.projectId, created_at: now, updated_at: null, version: 1,
    };
    this.recordsets.set(rs.id, rs);
    this.schedule(rs.name, rs.type, rs);
    return { status: 202, body: this.rsView(rs, base) };
  }

  private updateRecordSet(rs: RecordSetRow, body: unknown, base: string): Reply {
    const b = body as { records?: unknown; ttl?: unknown } | undefined;
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

  private invalidRecords(type: string, records: unknown[]): Reply | undefined {
    for (const record of records) {
      if (typeof record !== 'string' || record.length === 0) return designateError(400, 'invalid_object', 'records must be non-empty strings');
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
