import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { createOpenStackProvider } from '../../../src/apply/providers/openstack.js';
import { parseConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/util/log.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';
import { designateFor, ensureDomainRecords, managedDomain } from '../../../src/workflows/domain.js';
import { designateCloud } from '../../../src/workflows/adapter-slices.js';
import { nodeInputsFor } from '../../../src/workflows/command-inputs.js';
import { readDns } from '../../../src/workflows/status.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * `depl status` with provider.dns: the records depl keeps, read from the emulator's Designate, against the
 * cluster's entry address (the stack's), and what it says when they do not match or cannot be read.
 */
describe('depl status: the zero-config domain\'s records', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  const zone = 'myproject.cloud.edu.au.';
  let next = 0;

  beforeEach(async () => {
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: `10.7.0.${++next}` }), deleteServer: async () => {} },
      projectName: 'myproject', dnsPublishDelayMs: 20,
      keypairs: { mine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a me' },
    });
    emulator.designate.addZone(zone);
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-domain-status-'));
    for (const [k, v] of Object.entries(passwordLoginEnv(emulator))) vi.stubEnv(k, v);
    vi.stubEnv('OS_CLOUD', '');
    vi.stubEnv('OS_CLIENT_CONFIG_FILE', path.join(dir, 'none.yaml'));
  });
  afterEach(async () => {
    vi.unstubAllEnvs();
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  const loaded = () => ({
    config: parseConfig(stringify({ app: 'shop', domain: 'shop.myproject.cloud.edu.au', provider: { type: 'openstack', nodes: 1, parameters: { key_name: 'mine' }, dns: { zone } }, services: { web: { image: 'web', port: 80, http: true } } })),
    file: path.join(dir, 'depl.yaml'),
    root: dir,
  });

  it('names the zone, both names, their address and whether it is the entry address', async () => {
    const project = loaded();
    const provider = await createOpenStackProvider(openStackProviderSettings(project), silentLogger, { env: passwordLoginEnv(emulator), cwd: dir, interactive: false, pollMs: 10 });
    const [manager] = await provider.up(1, silentLogger);
    const designate = await designateFor(designateCloud(project), { env: passwordLoginEnv(emulator), cwd: dir, interactive: false });
    const managed = managedDomain(project.config)!;

    // nothing made yet: both missing
    const before = await readDns(nodeInputsFor(project), silentLogger, { interactive: false });
    expect(before).toMatchObject({ status: { zone, entryAddress: manager!.address, records: [{ addresses: [], depl: false }, { addresses: [], depl: false }] } });
    expect((before as { lines: string[] }).lines).toEqual([
      `zone ${zone}, entry address ${manager!.address}`,
      "shop.myproject.cloud.edu.au. no A record: missing: run 'depl node-up' to make it",
      "*.shop.myproject.cloud.edu.au. no A record: missing: run 'depl node-up' to make it",
    ]);

    await ensureDomainRecords(designate, managed, manager!.address, silentLogger);
    const kept = await readDns(nodeInputsFor(project), silentLogger, { interactive: false });
    expect((kept as { lines: string[] }).lines.slice(1)).toEqual([
      `shop.myproject.cloud.edu.au. A ${manager!.address} (depl's): matches the entry address`,
      `*.shop.myproject.cloud.edu.au. A ${manager!.address} (depl's): matches the entry address`,
    ]);

    // depl's records pointing elsewhere (the cluster was made again at another address): status says so
    await ensureDomainRecords(designate, managed, '203.0.113.99', silentLogger);
    const stale = await readDns(nodeInputsFor(project), silentLogger, { interactive: false });
    expect((stale as { status: { records: Array<{ matches: boolean }> } }).status.records.map((r) => r.matches)).toEqual([false, false]);
    expect((stale as { lines: string[] }).lines[1]).toBe("shop.myproject.cloud.edu.au. A 203.0.113.99 (depl's): does NOT match the entry address: run 'depl node-up' to point it there");
  });

  it('a zone that is not the project\'s: status says what Designate answered, and does not fail', async () => {
    const project = loaded();
    const other = { ...project, config: { ...project.config, provider: { ...project.config.provider, dns: { zone: 'elsewhere.example.' } } } } as typeof project;
    const dns = await readDns(nodeInputsFor({ ...other, config: { ...other.config, domain: 'shop.elsewhere.example' } }), silentLogger, { interactive: false });
    expect(dns).toEqual({ error: expect.stringMatching(/^provider\.dns\.zone elsewhere\.example\. is not a Designate zone of this project \(it has: myproject\.cloud\.edu\.au\.\)/) });
  });

  it('no provider.dns: nothing to show', async () => {
    const project = loaded();
    const plain = { ...project, config: { ...project.config, provider: { ...project.config.provider, dns: undefined } } } as typeof project;
    expect(await readDns(nodeInputsFor(plain), silentLogger, { interactive: false })).toBeUndefined();
  });
});
