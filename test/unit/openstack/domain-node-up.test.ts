import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig, type LoadedConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { designateFor, ensureDomainRecords, managedDomain } from '../../../src/workflows/domain.js';
import { designateCloud } from '../../../src/workflows/adapter-slices.js';
import { providerFor } from '../../../src/workflows/cluster.js';
import { nodeInputsFor } from '../../../src/workflows/command-inputs.js';
import { nodeDown } from '../../../src/workflows/node-down.js';
import { nodeUp } from '../../../src/workflows/node-up.js';
import { planNodeUp } from '../../../src/workflows/node-up-plan.js';
import { prepareRenewerCredential } from '../../../src/workflows/tls/renewer-credential.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The zero-config domain in node-up's plan, node-up's refusal before anything is made, and node-down, through the
 * commands' own workflows against the emulator (credentials from the project's clouds.yaml, as an operator has).
 * node-up's whole run, records included, is in test/integration/openstack-node-up.test.ts (real nodes).
 */
describe('node-up and node-down with provider.dns', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 0;
  const zone = 'myproject.cloud.edu.au.';

  beforeAll(async () => {
    emulator = await startOpenStackEmulator({ servers: { createServer: async () => ({ address: `10.7.0.${++next}` }), deleteServer: async () => {} }, projectName: 'myproject', dnsPublishDelayMs: 20, keypairs: { mine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a mine' } });
    emulator.designate.addZone(zone);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-domain-node-up-'));
    await writeFile(path.join(dir, 'clouds.yaml'), stringify({
      clouds: { emu: { auth: { auth_url: emulator.authUrl, username: 'demo', password: 'demo-password', user_domain_name: 'Default', project_id: emulator.projectId }, region_name: emulator.region } },
    }));
  });
  afterAll(async () => {
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function project(app: string, more: Record<string, unknown> = {}): Promise<LoadedConfig> {
    const file = path.join(dir, `${app}.yaml`);
    await writeFile(file, stringify({ app, domain: `${app}.myproject.cloud.edu.au`, provider: { type: 'openstack', cloud: 'emu', nodes: 1, parameters: { key_name: 'mine' }, dns: { zone } }, services: { web: { image: 'web', port: 80, http: true } }, ...more }));
    return loadConfig(file);
  }

  it('node-up --plan shows the records it would make, before the stack exists', async () => {
    const plan = await planNodeUp(nodeInputsFor(await project('planned')), silentLogger, { interactive: false });
    expect(plan.lines).toEqual(expect.arrayContaining([
      'DNS records (provider.dns):',
      `  + create planned.myproject.cloud.edu.au. A (the entry address, known once the stack exists) in zone ${zone}`,
      `  + create *.planned.myproject.cloud.edu.au. A (the entry address, known once the stack exists) in zone ${zone}`,
    ]));
    expect(emulator.designate.records('planned.myproject.cloud.edu.au.', 'A')).toEqual([]);
  });

  it('node-up --plan says what it will do about the renewal task\'s DNS credential, and makes none', async () => {
    const loaded = await project('cred', { tls: { mode: 'acme', directory: 'letsencrypt' } });
    const posts = () => emulator.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/application_credentials')).length;
    const before = posts();
    const first = await planNodeUp(nodeInputsFor(loaded), silentLogger, { interactive: false });
    expect(first.lines).toEqual(expect.arrayContaining([
      'The renewal task\'s DNS credential (create):',
      '  = the renewal task has no DNS credential yet: one is made',
      expect.stringMatching(new RegExp(`^  \\+ make the application credential depl-cred-tls-renewer-dns01-<now> \\(member role, ${zone.replace(/\./g, '\\.')}'s recordsets only, expires in 365 days`)),
    ]));
    expect(posts()).toBe(before);
    // one left by a node-up that failed before the swarm held it: a new one is made and that one deleted
    const designate = await designateFor(designateCloud(loaded), { interactive: false });
    const zoneRow = (await designate.zoneNamed(zone))!;
    await prepareRenewerCredential({ app: 'cred', domain: loaded.config.domain, designate, zone: zoneRow, now: Date.now, log: silentLogger });
    const [left] = emulator.applicationCredentials().filter((c) => c.name?.startsWith('depl-cred-'));
    const second = await planNodeUp(nodeInputsFor(loaded), silentLogger, { interactive: false });
    expect(second.resources.renewerCredential).toEqual([
      expect.stringMatching(/^make the application credential depl-cred-tls-renewer-dns01-<now>/),
      `delete the leftover application credential ${left!.name} (expires in 364 days (${new Date(left!.expiresAt!).toISOString()}); no swarm secret holds it)`,
    ]);
    expect(emulator.applicationCredentials().filter((c) => c.name?.startsWith('depl-cred-'))).toHaveLength(1);
  });

  it('node-up refuses someone else\'s record at the domain before it makes anything (no stack)', async () => {
    const loaded = await project('clash');
    const designate = await designateFor(designateCloud(loaded), { interactive: false });
    // another app of the project already answers at the name, made by its own depl
    await ensureDomainRecords(designate, { ...managedDomain(loaded.config)!, app: 'other' }, '198.51.100.8', silentLogger);
    const error = await nodeUp(nodeInputsFor(loaded), silentLogger, { interactive: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'DNS_RECORD_CONFLICT' });
    expect((error as Error).message).toContain('clash.myproject.cloud.edu.au. A 198.51.100.8');
    expect(emulator.stacks().filter((s) => s.name === 'clash-nodes')).toEqual([]);
    expect(emulator.keypairs()).toEqual(['mine']);
  });

  it('node-down removes the records node-up made, then the stack', async () => {
    const loaded = await project('leaving');
    const provider = await providerFor(loaded, silentLogger, { interactive: false });
    const [manager] = await provider.up(1, silentLogger);
    expect(await provider.entryAddress!()).toBe(manager!.address);
    await ensureDomainRecords(await designateFor(designateCloud(loaded), { interactive: false }), managedDomain(loaded.config)!, manager!.address, silentLogger);
    expect(emulator.designate.records('*.leaving.myproject.cloud.edu.au.', 'A')).toEqual([manager!.address]);

    const result = await nodeDown(nodeInputsFor(loaded), silentLogger, false);
    expect(result.records).toEqual([`leaving.myproject.cloud.edu.au. A ${manager!.address}`, `*.leaving.myproject.cloud.edu.au. A ${manager!.address}`]);
    await emulator.designate.settle();
    expect(emulator.designate.records('leaving.myproject.cloud.edu.au.', 'A')).toEqual([]);
    expect(emulator.designate.records('*.leaving.myproject.cloud.edu.au.', 'A')).toEqual([]);
    expect(emulator.stacks().filter((s) => s.name === 'leaving-nodes')).toEqual([]);
    // the record deletions came before the stack's
    const order = emulator.requests.filter((r) => r.method === 'DELETE').map((r) => (r.path.includes('/recordsets/') ? 'record' : 'stack'));
    expect(order).toEqual(['record', 'record', 'stack']);
  });
});
