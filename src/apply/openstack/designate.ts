import { OperationError } from '../../errors.js';
import { pollUntil } from '../../util/poll.js';
import type { HttpOptions, HttpResponse } from './http.js';
import type { KeystoneSession } from './keystone.js';
import type { RecordSetView } from '../../plan/domain-records.js';

/**
 * The part of OpenStack's DNS service (Designate v2) depl uses: the project's zones, TXT values for DNS-01
 * (put on a recordset, waited for until Designate has pushed it to its name servers: status ACTIVE, taken off
 * again), and the domain's A records node-up keeps (src/plan/domain-records.ts). Same Keystone session as Heat
 * and Nova.
 */
export interface Zone {
  id: string;
  /** Fully qualified, with the trailing dot. */
  name: string;
}

type RecordSet = RecordSetView;

export class DesignateClient {
  private base?: string;

  constructor(
    readonly session: KeystoneSession,
    private readonly options: { sleep?: (ms: number) => Promise<void>; activeTimeoutMs?: number } = {},
  ) {}

  private async call(path: string, options: Omit<HttpOptions, 'service'> = {}): Promise<HttpResponse> {
    if (this.base === undefined) {
      const endpoint = (await this.session.endpoint('dns')).replace(/\/+$/, '');
      this.base = /\/v2$/.test(endpoint) ? endpoint : `${endpoint}/v2`;
    }
    return this.session.serviceRequest(this.base, path, { ...options, service: 'Designate' });
  }

  /** Every zone of the project (Designate pages its lists: the `next` links are followed). */
  async zones(): Promise<Zone[]> {
    return this.list<Zone>('/zones?limit=100', 'zones');
  }

  /** The project's zone of exactly this name (fully qualified), or undefined. */
  async zoneNamed(name: string): Promise<Zone | undefined> {
    const fqdn = name.endsWith('.') ? name : `${name}.`;
    return (await this.list<Zone>(`/zones?name=${encodeURIComponent(fqdn)}`, 'zones')).find((z) => z.name === fqdn);
  }

  /** The project's zone with the longest name that `fqdn` is in. */
  async zoneFor(fqdn: string): Promise<Zone> {
    const name = fqdn.endsWith('.') ? fqdn : `${fqdn}.`;
    const zones = await this.zones();
    const match = zones.filter((z) => name === z.name || name.endsWith(`.${z.name}`)).sort((a, b) => b.name.length - a.name.length)[0];
    if (match === undefined) {
      throw new OperationError(
        `no Designate zone in this project holds ${name} (zones: ${zones.map((z) => z.name).join(', ') || 'none'})`,
        'Create the zone (openstack zone create --email you@example.org example.org.) and delegate the domain to Nectar\'s name servers, or use challenge: http-01.',
        'DNS_NO_ZONE',
      );
    }
    return match;
  }

  /**
   * The recordsets named exactly `fqdn`, of every type. Designate's name filter reads `*` as a wildcard (so
   * `*.app.example.org.` lists every name under it): the list is narrowed to the exact name here.
   */
  async recordSetsNamed(zone: Zone, fqdn: string): Promise<RecordSetView[]> {
    const sets = await this.list<RecordSetView>(`/zones/${zone.id}/recordsets?name=${encodeURIComponent(fqdn)}`, 'recordsets');
    return sets.filter((r) => r.name.toLowerCase() === fqdn.toLowerCase());
  }

  /** Creates a recordset and waits until Designate has published it (ACTIVE). */
  async createRecordSet(zone: Zone, set: { name: string; type: string; records: string[]; ttl: number; description?: string }): Promise<void> {
    const created = await this.call(`/zones/${zone.id}/recordsets`, { method: 'POST', json: set });
    await this.waitActive(zone, (created.body as RecordSet).id, `${set.type} record ${set.name}`);
  }

  /** Replaces a recordset's values and waits until Designate has published them. */
  async updateRecordSet(zone: Zone, id: string, name: string, records: string[]): Promise<void> {
    await this.call(`/zones/${zone.id}/recordsets/${id}`, { method: 'PUT', json: { records } });
    await this.waitActive(zone, id, `record ${name}`);
  }

  /** Deletes a recordset; one already gone is fine (an earlier, interrupted run may have deleted it). */
  async deleteRecordSet(zone: Zone, id: string): Promise<void> {
    await this.call(`/zones/${zone.id}/recordsets/${id}`, { method: 'DELETE', accept: [404] });
  }

  /** All items of a Designate list, following its `links.next` pages. */
  private async list<T>(first: string, key: string): Promise<T[]> {
    const items: T[] = [];
    let path: string | undefined = first;
    while (path !== undefined) {
      const page = (await this.call(path)).body as Record<string, unknown> & { links?: { next?: string } };
      items.push(...((page[key] as T[] | undefined) ?? []));
      const next = page.links?.next;
      path = next ? next.slice(next.indexOf('/v2/') + 3) : undefined;
    }
    return items;
  }

  /** Adds one TXT value to `fqdn` (creating the recordset when needed) and waits until it is ACTIVE. */
  async addTxt(zone: Zone, fqdn: string, value: string): Promise<void> {
    const quoted = `"${value}"`;
    const existing = await this.findRecordSet(zone, fqdn, 'TXT');
    let id: string;
    if (existing === undefined) {
      const created = await this.call(`/zones/${zone.id}/recordsets`, { method: 'POST', json: { name: fqdn, type: 'TXT', records: [quoted], ttl: 60 } });
      id = (created.body as RecordSet).id;
    } else {
      id = existing.id;
      if (!existing.records.includes(quoted)) {
        await this.call(`/zones/${zone.id}/recordsets/${id}`, { method: 'PUT', json: { records: [...existing.records, quoted] } });
      }
    }
    await this.waitActive(zone, id, `TXT record ${fqdn}`);
  }

  /** Takes these TXT values off `fqdn`; the recordset goes when nothing is left on it. */
  async removeTxt(zone: Zone, fqdn: string, values: readonly string[]): Promise<void> {
    const existing = await this.findRecordSet(zone, fqdn, 'TXT');
    if (existing === undefined) return;
    const remove = new Set(values.map((v) => `"${v}"`));
    const left = existing.records.filter((r) => !remove.has(r));
    if (left.length === existing.records.length) return;
    if (left.length === 0) await this.call(`/zones/${zone.id}/recordsets/${existing.id}`, { method: 'DELETE', accept: [404] });
    else await this.call(`/zones/${zone.id}/recordsets/${existing.id}`, { method: 'PUT', json: { records: left } });
  }

  private async findRecordSet(zone: Zone, fqdn: string, type: string): Promise<RecordSet | undefined> {
    const response = await this.call(`/zones/${zone.id}/recordsets?name=${encodeURIComponent(fqdn)}&type=${type}`);
    return ((response.body as { recordsets?: RecordSet[] }).recordsets ?? []).find((r) => r.name === fqdn && r.type === type);
  }

  private async waitActive(zone: Zone, id: string, what: string): Promise<void> {
    let status = 'unknown';
    const published = await pollUntil(async () => {
      status = ((await this.call(`/zones/${zone.id}/recordsets/${id}`)).body as RecordSet).status ?? 'ACTIVE';
      return status === 'ACTIVE' || status === 'ERROR' ? status === 'ACTIVE' : undefined;
    }, { timeoutMs: this.options.activeTimeoutMs ?? 120_000, intervalMs: 250, maxIntervalMs: 5_000, onTimeout: () => false, sleep: this.options.sleep });
    if (published) return;
    throw new OperationError(`Designate did not publish the ${what} (status ${status})`, 'Check `openstack recordset list ' + zone.name + '`; Designate may be busy, try again.', 'DNS_NOT_ACTIVE');
  }
}
