import { OperationError } from '../../errors.js';
import { pollUntil } from '../../util/poll.js';
import type { HttpOptions, HttpResponse } from './http.js';
import type { KeystoneSession } from './keystone.js';

/**
 * The part of OpenStack's DNS service (Designate v2) that DNS-01 needs: find the zone that holds a name,
 * put TXT values on a recordset, wait until Designate has pushed it to its name servers (status ACTIVE),
 * take values off again. Same Keystone session as Heat and Nova.
 */
export interface Zone {
  id: string;
  /** Fully qualified, with the trailing dot. */
  name: string;
}

interface RecordSet {
  id: string;
  name: string;
  type: string;
  records: string[];
  status?: string;
}

export class DesignateClient {
  private base?: string;

  constructor(
    private readonly session: KeystoneSession,
    private readonly options: { sleep?: (ms: number) => Promise<void>; activeTimeoutMs?: number } = {},
  ) {}

  private async call(path: string, options: Omit<HttpOptions, 'service'> = {}): Promise<HttpResponse> {
    if (this.base === undefined) {
      const endpoint = (await this.session.endpoint('dns')).replace(/\/+$/, '');
      this.base = /\/v2$/.test(endpoint) ? endpoint : `${endpoint}/v2`;
    }
    return this.session.serviceRequest(this.base, path, { ...options, service: 'Designate' });
  }

  /** The project's zone with the longest name that `fqdn` is in. */
  async zoneFor(fqdn: string): Promise<Zone> {
    const name = fqdn.endsWith('.') ? fqdn : `${fqdn}.`;
    const zones: Zone[] = [];
    let path: string | undefined = '/zones?limit=100';
    while (path !== undefined) {
      const page: { zones?: Zone[]; links?: { next?: string } } = (await this.call(path)).body as never;
      zones.push(...(page.zones ?? []));
      path = page.links?.next ? page.links.next.slice(page.links.next.indexOf('/zones')) : undefined;
    }
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
    await this.waitActive(zone, id, fqdn);
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

  private async waitActive(zone: Zone, id: string, fqdn: string): Promise<void> {
    let status = 'unknown';
    const published = await pollUntil(async () => {
      status = ((await this.call(`/zones/${zone.id}/recordsets/${id}`)).body as RecordSet).status ?? 'ACTIVE';
      return status === 'ACTIVE' || status === 'ERROR' ? status === 'ACTIVE' : undefined;
    }, { timeoutMs: this.options.activeTimeoutMs ?? 120_000, intervalMs: 250, maxIntervalMs: 5_000, onTimeout: () => false, sleep: this.options.sleep });
    if (published) return;
    throw new OperationError(`Designate did not publish the TXT record ${fqdn} (status ${status})`, 'Check `openstack recordset list ' + zone.name + '`; Designate may be busy, try again.', 'DNS_NOT_ACTIVE');
  }
}
