import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { DesignateClient } from '../../../src/apply/openstack/designate.js';
import { parseConfig } from '../../../src/config/load.js';
import { OperationError, UserError } from '../../../src/errors.js';
import { ownerDescription } from '../../../src/plan/domain-records.js';
import { silentLogger } from '../../../src/util/log.js';
import { designateFor, ensureDomainRecords, managedDomain, removeDomainRecords, type ManagedDomain } from '../../../src/workflows/domain.js';
import { designateCloud } from '../../../src/workflows/adapter-slices.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * node-up's and node-down's DNS records for the zero-config domain, against the emulator's Designate: what the
 * zone holds after each run, refusals that change nothing, and a run that failed mid-way (a 503, a killed depl)
 * repaired by the next one.
 */
describe('the zero-config domain\'s records in Designate', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let designate: DesignateClient;
  let zoneId: string;
  const zone = 'myproject.cloud.edu.au.';
  let next = 0;
  /** Each test its own app and domain in the one zone. */
  const app = (name: string): ManagedDomain => {
    const config = parseConfig(stringify({ app: name, domain: `${name}.myproject.cloud.edu.au`, provider: { type: 'openstack', dns: { zone } }, services: { web: { image: 'web', port: 80, http: true } } }));
    return managedDomain(config)!;
  };
  const records = (name: string) => emulator.designate.records(name, 'A');
  const created = () => emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/recordsets') && r.status === 202).length;
  const changed = () => emulator.requests.filter((r) => ['POST', 'PUT', 'DELETE'].includes(r.method) && r.path.includes('/recordsets')).length;

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({ servers: { createServer: async () => ({ address: `10.9.0.${++next}` }), deleteServer: async () => {} }, projectName: 'myproject', dnsPublishDelayMs: 20 });
    zoneId = emulator.designate.addZone(zone);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-domain-records-'));
    const config = parseConfig(stringify({ app: 'any', domain: 'any.myproject.cloud.edu.au', provider: { type: 'openstack', dns: { zone } }, services: { web: { image: 'web', port: 80, http: true } } }));
    designate = await designateFor(designateCloud({ config, file: path.join(dir, 'depl.yaml'), root: dir }), { env: passwordLoginEnv(emulator), cwd: dir, interactive: false });
  });
  afterAll(async () => {
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates <domain> and *.<domain> at the entry address, published (ACTIVE) and marked as depl\'s; a second run changes nothing', async () => {
    const shop = app('shop');
    const plan = await ensureDomainRecords(designate, shop, '203.0.113.10', silentLogger);
    expect(plan.steps.map((s) => s.kind)).toEqual(['create-record', 'create-record']);
    expect(records('shop.myproject.cloud.edu.au.')).toEqual(['203.0.113.10']);
    expect(records('*.shop.myproject.cloud.edu.au.')).toEqual(['203.0.113.10']);
    const listed = await designate.recordSetsNamed({ id: zoneId, name: zone }, '*.shop.myproject.cloud.edu.au.');
    expect(listed).toEqual([expect.objectContaining({ type: 'A', status: 'ACTIVE', description: ownerDescription('shop'), ttl: 300 })]);

    const before = changed();
    const again = await ensureDomainRecords(designate, shop, '203.0.113.10', silentLogger);
    expect(again.steps).toEqual([]);
    expect(changed()).toBe(before);
  });

  it('a re-made cluster (another address): depl\'s records are pointed at it', async () => {
    const moved = app('moved');
    await ensureDomainRecords(designate, moved, '203.0.113.20', silentLogger);
    const plan = await ensureDomainRecords(designate, moved, '203.0.113.21', silentLogger);
    expect(plan.steps.map((s) => s.kind)).toEqual(['update-record', 'update-record']);
    expect(records('moved.myproject.cloud.edu.au.')).toEqual(['203.0.113.21']);
    expect(records('*.moved.myproject.cloud.edu.au.')).toEqual(['203.0.113.21']);
  });

  it('a record someone else made at the domain is refused by name (exit 2) and nothing is written', async () => {
    const taken = app('taken');
    // the project member's own record, made with the openstack client
    const answer = await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: '*.taken.myproject.cloud.edu.au.', type: 'A', records: ['198.51.100.3'] });
    expect(answer.status).toBe(202);
    const before = changed();
    const error = await ensureDomainRecords(designate, taken, '203.0.113.30', silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'DNS_RECORD_CONFLICT', exitCode: 2 });
    expect((error as UserError).message).toContain('*.taken.myproject.cloud.edu.au. A 198.51.100.3');
    expect((error as UserError).hint).toContain(`openstack recordset delete ${zone} <name>`);
    expect(changed()).toBe(before);
    expect(records('taken.myproject.cloud.edu.au.')).toEqual([]);
  });

  it('a zone the project does not have is refused with the zones it has', async () => {
    const config = parseConfig(stringify({ app: 'nozone', domain: 'nozone.elsewhere.org', provider: { type: 'openstack', dns: { zone: 'elsewhere.org.' } }, services: { web: { image: 'web', port: 80, http: true } } }));
    const error = await ensureDomainRecords(designate, managedDomain(config)!, '203.0.113.40', silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'DNS_ZONE_MISSING', message: `provider.dns.zone elsewhere.org. is not a Designate zone of this project (it has: ${zone})` });
  });

  it('Designate failing mid-way (a 503 on the second create): the run fails, the next run finishes the job', async () => {
    const flaky = app('flaky');
    emulator.behaviour.faults = [{ kind: 'html-503', method: 'POST', path: '/recordsets', after: 1 }];
    const error = await ensureDomainRecords(designate, flaky, '203.0.113.50', silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as Error).message).toMatch(/HTTP 503/);
    expect(records('flaky.myproject.cloud.edu.au.')).toEqual(['203.0.113.50']);
    expect(records('*.flaky.myproject.cloud.edu.au.')).toEqual([]);

    const repair = await ensureDomainRecords(designate, flaky, '203.0.113.50', silentLogger);
    expect(repair.steps.map((s) => `${s.kind} ${s.name}`)).toEqual(['create-record *.flaky.myproject.cloud.edu.au.']);
    expect(records('*.flaky.myproject.cloud.edu.au.')).toEqual(['203.0.113.50']);
  });

  it('a depl killed after any step: the next run repairs it (and makes no record twice)', async () => {
    for (const killAfter of [0, 1]) {
      const killed = app(`killed${killAfter}`);
      const name = `killed${killAfter}.myproject.cloud.edu.au.`;
      const kill = await ensureDomainRecords(designate, killed, '203.0.113.60', silentLogger, { afterStep: (i) => { if (i === killAfter) throw new Error(`killed after step ${i + 1}`); } }).catch((e: unknown) => e);
      expect((kill as Error).message).toBe(`killed after step ${killAfter + 1}`);
      const before = created();
      await ensureDomainRecords(designate, killed, '203.0.113.60', silentLogger);
      expect(created() - before).toBe(killAfter === 0 ? 1 : 0);
      expect([records(name), records(`*.${name}`)]).toEqual([['203.0.113.60'], ['203.0.113.60']]);
    }
  });

  it('node-down removes the records depl made and leaves everyone else\'s; a 503 mid-way is finished by the next run', async () => {
    const gone = app('gone');
    await ensureDomainRecords(designate, gone, '203.0.113.70', silentLogger);
    await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'gone.myproject.cloud.edu.au.', type: 'TXT', records: ['"site-verification=abc"'] });
    emulator.behaviour.faults = [{ kind: 'html-503', method: 'DELETE', path: '/recordsets/', after: 1 }];
    await expect(removeDomainRecords(designate, gone, silentLogger)).rejects.toThrow(/HTTP 503/);
    await emulator.designate.settle();
    expect(records('gone.myproject.cloud.edu.au.')).toEqual([]);
    expect(records('*.gone.myproject.cloud.edu.au.')).toEqual(['203.0.113.70']);

    const second = await removeDomainRecords(designate, gone, silentLogger);
    expect(second?.steps.map((s) => `${s.kind} ${s.name}`)).toEqual(['delete-record *.gone.myproject.cloud.edu.au.']);
    await emulator.designate.settle();
    expect(records('*.gone.myproject.cloud.edu.au.')).toEqual([]);
    expect(emulator.designate.records('gone.myproject.cloud.edu.au.', 'TXT')).toEqual(['"site-verification=abc"']);
    expect((await removeDomainRecords(designate, gone, silentLogger))?.steps).toEqual([]);
  });

  /** A request as the operator's openstack client would send it, with a token of the emulator's user. */
  async function fetchDesignate(method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const token = await fetch(`${emulator.authUrl}/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: 'demo-password' } } }, scope: { project: { id: emulator.projectId } } } }),
    });
    const response = await fetch(`${emulator.url}/dns/v2${apiPath}`, { method, headers: { 'x-auth-token': token.headers.get('x-subject-token')!, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) as Record<string, unknown> : {} };
  }

  describe('the emulator\'s Designate behaves as Designate v2 does', () => {
    it('refuses a second recordset of one name and type (409), a name outside the zone or without its dot (400), bad A data (400), in Designate\'s error shape', async () => {
      await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'dup.myproject.cloud.edu.au.', type: 'A', records: ['192.0.2.1'] });
      const duplicate = await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'dup.myproject.cloud.edu.au.', type: 'A', records: ['192.0.2.2'] });
      expect(duplicate).toEqual({ status: 409, body: { code: 409, type: 'duplicate_recordset', message: 'Duplicate RecordSet', request_id: expect.stringMatching(/^req-/) } });
      const outside = await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'www.example.org.', type: 'A', records: ['192.0.2.1'] });
      expect(outside).toMatchObject({ status: 400, body: { code: 400, type: 'invalid_recordset_location' } });
      const noDot = await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'nodot.myproject.cloud.edu.au', type: 'A', records: ['192.0.2.1'] });
      expect(noDot).toMatchObject({ status: 400, body: { type: 'invalid_object', message: 'Provided object does not match schema' } });
      const badA = await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'bad.myproject.cloud.edu.au.', type: 'A', records: ['192.0.2.01'] });
      expect(badA).toMatchObject({ status: 400, body: { type: 'invalid_object' } });
    });

    it('a change is PENDING, then ACTIVE once published; a name filter\'s * is a wildcard; lists come in pages of 20', async () => {
      const made = await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: 'p.myproject.cloud.edu.au.', type: 'A', records: ['192.0.2.9'] });
      expect(made.body).toMatchObject({ status: 'PENDING', action: 'CREATE' });
      await emulator.designate.settle();
      expect((await fetchDesignate('GET', `/zones/${zoneId}/recordsets/${made.body.id as string}`)).body).toMatchObject({ status: 'ACTIVE', action: 'NONE' });

      for (let i = 0; i < 22; i += 1) await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: `v${i}.many.myproject.cloud.edu.au.`, type: 'A', records: ['192.0.2.10'] });
      await fetchDesignate('POST', `/zones/${zoneId}/recordsets`, { name: '*.many.myproject.cloud.edu.au.', type: 'A', records: ['192.0.2.11'] });
      const first = await fetchDesignate('GET', `/zones/${zoneId}/recordsets?name=${encodeURIComponent('*.many.myproject.cloud.edu.au.')}`);
      expect((first.body.recordsets as unknown[]).length).toBe(20);
      expect((first.body.links as { next?: string }).next).toContain('marker=');
      expect(first.body.metadata).toEqual({ total_count: 23 });
      // depl's client follows the pages (the wildcard record is on the second) and keeps the exact name only
      expect(await designate.recordSetsNamed({ id: zoneId, name: zone }, '*.many.myproject.cloud.edu.au.')).toEqual([expect.objectContaining({ name: '*.many.myproject.cloud.edu.au.', records: ['192.0.2.11'] })]);
      expect((await fetchDesignate('GET', `/zones?name=${encodeURIComponent(zone)}`)).body.zones).toEqual([expect.objectContaining({ name: zone })]);
    });
  });
});
