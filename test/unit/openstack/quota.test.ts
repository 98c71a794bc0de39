import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';
import { createOpenStackProvider, type AllocationReport } from '../../../src/apply/providers/openstack.js';
import { HeatClient } from '../../../src/apply/openstack/heat.js';
import { KeystoneSession } from '../../../src/apply/openstack/keystone.js';
import { resolveCloudCredentials } from '../../../src/config/clouds.js';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { passwordLoginEnv, startOpenStackEmulator, type EmulatorOptions, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The allocation check against the emulated cloud's own quota APIs (Nova limits, Neutron quota details,
 * Cinder quota set), whose usage follows the servers Heat made, and Nova's 403 over quota.
 */
describe('quota and Service Units in the OpenStack plan', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 1;

  const start = async (options: Partial<EmulatorOptions> = {}) => {
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: `10.3.0.${next++}` }), deleteServer: async () => {} },
      ...options,
    });
  };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-os-quota-'));
  });
  afterEach(async () => {
    await emulator?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => passwordLoginEnv(emulator);
  const provider = (app: string, extra: Record<string, unknown> = {}) =>
    createOpenStackProvider(
      openStackProviderSettings({ config: parseConfig(stringify({ app, domain: 'd.localhost', provider: { type: 'openstack', ...extra }, services: { api: { image: 'x' } } })), file: path.join(dir, 'depl.yaml'), root: dir }),
      silentLogger,
      { env: env(), cwd: dir, interactive: false, pollMs: 10 },
    );

  it('a plan over the instance quota is refused with the numbers, before the key pair or the stack is made', async () => {
    await start({ quotas: { instances: 2 } });
    const p = await provider('over');
    const refused = await p.up(3, silentLogger).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UserError);
    expect(refused).toMatchObject({ exitCode: 2, code: 'QUOTA_EXCEEDED' });
    expect((refused as UserError).message).toBe("the plan does not fit the project's quota: instances (Nova): needs 3, 0 of 2 used, 2 left");
    expect((refused as UserError).hint).toContain('provider.nodes');
    expect(emulator.stacks()).toEqual([]);
    expect(emulator.keypairs()).toEqual([]);
    expect(emulator.requests.filter((r) => r.method !== 'GET' && !r.path.includes('/auth/tokens'))).toEqual([]);
    // --plan refuses the same way
    await expect(p.plan!(3, silentLogger)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
  });

  it('cores and RAM come from the flavor Nova describes; usage follows what the cloud already holds', async () => {
    await start({ quotas: { cores: 8 } });
    const first = await provider('first');
    expect(await first.up(2, silentLogger)).toHaveLength(2);
    // 2 x m3.small hold 4 of the 8 cores: 3 more (6 cores) do not fit, 2 more do
    const second = await provider('second');
    const refused = await second.up(3, silentLogger).catch((e: unknown) => e);
    expect((refused as UserError).message).toContain('vCPUs (Nova): needs 6, 4 of 8 used, 4 left');
    expect(await second.up(2, silentLogger)).toHaveLength(2);
  });

  it('an update needs only the nodes it adds, checked against what the stack itself already uses', async () => {
    await start({ quotas: { instances: 3 } });
    const p = await provider('grow');
    await p.up(2, silentLogger);
    const plan = await p.plan!(3, silentLogger);
    expect(plan.lines).toContain('    Nova instances: 2 / 3, 1 left, needs 1');
    await expect(p.up(4, silentLogger)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringContaining('instances (Nova): needs 2, 2 of 3 used, 1 left') });
    expect(await p.up(3, silentLogger)).toHaveLength(3);
  });

  it('the plan shows headroom per resource, the SU cost, the days the budget lasts; Cinder not planned and Octavia absent are "not checked"', async () => {
    await start({ services: { volume: true } });
    const p = await provider('shown', { parameters: { flavor: 'm3.small' }, serviceUnits: { rates: { 'm3.small': 0.5 } }, allocation: { suBudget: 360 } });
    const plan = await p.plan!(3, silentLogger);
    expect(plan.lines).toEqual(expect.arrayContaining([
      '    Nova instances: 0 / 100, 100 left, needs 3',
      '    Nova vCPUs: 0 / 200, 200 left, needs 6',
      '    Nova RAM (MB): 0 / 819200, 819200 left, needs 12288',
      '    Neutron ports: 0 / 50, 50 left, needs 3',
      '    Neutron security groups: 1 / 10, 9 left, needs 1',
      '    Neutron security group rules: 4 / 100, 96 left, needs 11',
      '  Cinder: not checked (the plan makes no volumes)',
      '  Octavia: not checked (the plan makes no load balancer)',
      'service units: 1.50 SU/hour, 36.0 SU/day (3 x m3.small at 0.50)',
      '  360 SU left: 10.0 days at this rate',
    ]));
    const allocation = plan.allocation as AllocationReport;
    expect(allocation.serviceUnits.perDay).toBe(36);
    expect(allocation.quota.over).toEqual([]);
  });

  it('status: what the project uses of its quotas and what the cluster as it is costs, and when the budget runs out', async () => {
    await start({ quotas: { instances: 3 } });
    const p = await provider('status', { serviceUnits: { rates: { 'm3.small': 1 } }, allocation: { suBudget: 48, endsOn: '2999-12-31' } });
    expect(await p.allocation!()).toBeUndefined();
    await p.up(3, silentLogger);
    const report = await p.allocation!();
    expect(report!.lines).toEqual(expect.arrayContaining([
      'quota (used / limit):',
      '  Nova: instances 3/3 (full), vCPUs 6/200, RAM (MB) 12288/819200',
      '  Neutron: floating IPs 0/2, networks 0/3, ports 3/50, security groups 2/10, security group rules 15/100',
      'service units: 3.00 SU/hour, 72.0 SU/day (3 x m3.small at 1.00)',
      '  48.0 SU left: 0.7 days at this rate',
    ]));
    expect(report!.lines.some((l) => /^ {2}! the allocation ends on 2999-12-31 \(in \d+ days\): the budget runs out \d+ days before it$/.test(l))).toBe(true);
  });

  it('volumes in the template: Cinder\'s quota set is read (with usage) and a volume over the gigabytes quota is refused', async () => {
    await start({ services: { volume: true }, quotas: { gigabytes: 100 } });
    const { writeFile } = await import('node:fs/promises');
    const template = (await readFile(new URL('../../../heat/stack.yaml', import.meta.url), 'utf8')).replace(
      /\nresources:\n/,
      '\nresources:\n  data:\n    type: OS::Cinder::Volume\n    properties: { size: { get_param: volume_size } }\n\n',
    ).replace(/\nparameters:\n/, '\nparameters:\n  volume_size: { type: number, default: 10 }\n');
    await writeFile(path.join(dir, 'volumes.yaml'), template);
    const fits = await provider('vol', { template: 'volumes.yaml', parameters: { volume_size: 60 } });
    await fits.up(1, silentLogger);
    expect((await fits.allocation!())!.lines).toContain('  Cinder: volumes 1/10, volume storage (GB) 60/100');
    const over = await provider('vol2', { template: 'volumes.yaml', parameters: { volume_size: 60 } });
    await expect(over.plan!(1, silentLogger)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringContaining('volume storage (GB) (Cinder): needs 60, 60 of 100 used, 40 left') });
    expect(emulator.requests.some((r) => r.path === `/volume/v3/${emulator.projectId}/os-quota-sets/${emulator.projectId}?usage=true`)).toBe(true);
  });

  it('a cloud without Neutron in its catalog: its quotas are "not checked", not an error', async () => {
    await start({ services: { network: false } });
    const p = await provider('noneutron');
    const plan = await p.plan!(1, silentLogger);
    expect(plan.lines).toContain('  Neutron: not checked (no network service in the catalog)');
    expect(emulator.requests.some((r) => r.path.startsWith('/network'))).toBe(false);
  });

  it('a flavor the project does not have is refused before anything, naming the ones it has', async () => {
    await start();
    const p = await provider('badflavor', { parameters: { flavor: 'x9.huge' } });
    await expect(p.up(1, silentLogger)).rejects.toMatchObject({ code: 'FLAVOR_NOT_FOUND', message: expect.stringContaining('no flavor named x9.huge in this project (have: m3.medium, m3.small, p3.small, t3.xsmall)') });
    expect(emulator.keypairs()).toEqual([]);
  });

  it('without the check, Heat fails halfway with Nova\'s 403 message: what depl refuses before', async () => {
    await start({ quotas: { instances: 2 } });
    const template = await readFile(new URL('../../../heat/stack.yaml', import.meta.url), 'utf8');
    const credentials = await resolveCloudCredentials({ env: env(), cwd: dir, configRoot: dir, interactive: false });
    const heat = new HeatClient(new KeystoneSession(credentials));
    const ref = await heat.create('unchecked', { template, parameters: { count: '3', key_name: '' }, timeoutMinutes: 5 });
    await expect(heat.waitFor(ref, { timeoutMs: 20_000, log: silentLogger, action: 'CREATE', pollMs: 10 })).rejects.toThrow();
    const stack = await heat.show(ref);
    expect(stack.stack_status).toBe('CREATE_FAILED');
    expect(stack.stack_status_reason).toMatch(/Forbidden: resources\.nodes\.resources\[\d\]: Quota exceeded for instances: Requested 1, but already used 2 of 2 instances \(HTTP 403\)/);
  });
});
