import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HeatClient, type StackRef } from '../../../src/apply/openstack/heat.js';
import { KeystoneSession } from '../../../src/apply/openstack/keystone.js';
import { OperationError, UserError } from '../../../src/errors.js';
import type { Logger } from '../../../src/util/log.js';
import { packagePath } from '../../../src/util/paths.js';
import { startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

const TEST_PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a test';

describe('Heat v1 client against the emulator', () => {
  let emulator: OpenStackEmulator;
  let heat: HeatClient;
  let template: string;
  let next = 1;
  const lines: string[] = [];
  const log: Logger = { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), step: (m) => lines.push(m) };
  const fast = { timeoutMs: 10_000, log, pollMs: 20, maxPollMs: 50 };
  let counter = 0;
  const unique = () => `t${++counter}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    template = await readFile(packagePath('heat', 'stack.yaml'), 'utf8');
    emulator = await startOpenStackEmulator({
      servers: { createServer: async () => ({ address: `10.1.0.${next++}` }), deleteServer: async () => {} },
      applicationCredentials: [{ id: 'ac', secret: 'ac-secret' }],
      keypairs: { k: TEST_PUBLIC_KEY },
    });
    heat = new HeatClient(new KeystoneSession({ authUrl: emulator.authUrl, regionName: emulator.region, interface: 'public', auth: { type: 'password', username: 'demo', userDomainName: 'Default', password: 'demo-password', projectId: emulator.projectId }, source: 'test' }));
  });
  afterAll(async () => emulator.close());
  beforeEach(() => {
    lines.length = 0;
    emulator.behaviour.failCreate = undefined;
    emulator.behaviour.stepDelayMs = 0;
  });

  async function created(count = 2): Promise<StackRef> {
    const ref = await heat.create(unique(), { template, parameters: { key_name: 'k', count: String(count) } });
    await heat.waitFor(ref, { ...fast, action: 'CREATE' });
    return ref;
  }

  const addresses = async (ref: StackRef) => (await heat.output(ref, 'node_addresses')).output_value as string[];

  it('creates a stack, shows the events while waiting, and finds it again by name through the 302', async () => {
    const name = unique();
    expect(await heat.find(name)).toBeUndefined();
    const ref = await heat.create(name, { template, parameters: { key_name: 'k', count: '2' } });
    const stack = await heat.waitFor(ref, { ...fast, action: 'CREATE' });
    expect(stack?.stack_status).toBe('CREATE_COMPLETE');
    expect(lines).toContain('nodes CREATE_COMPLETE');
    expect(lines.at(-1)).toBe(`stack ${name} CREATE_COMPLETE: Stack CREATE completed successfully`);
    expect(await heat.find(name)).toEqual(ref);
    expect(emulator.requests.some((r) => r.status === 302 && r.path.endsWith(`/stacks/${name}`))).toBe(true);
    expect(await addresses(ref)).toHaveLength(2);
  });

  it('says how the stack ended when its status is complete before its own event is listed', async () => {
    emulator.behaviour.stackEventLagMs = 500;
    try {
      const name = unique();
      const ref = await heat.create(name, { template, parameters: { key_name: 'k', count: '1' } });
      const stack = await heat.waitFor(ref, { ...fast, action: 'CREATE' });
      expect(stack?.stack_status).toBe('CREATE_COMPLETE');
      expect(lines.filter((line) => line.startsWith(`stack ${name} CREATE_COMPLETE`))).toEqual([`stack ${name} CREATE_COMPLETE: Stack CREATE completed successfully`]);
    } finally {
      emulator.behaviour.stackEventLagMs = undefined;
    }
  });

  it('pages events with a marker', async () => {
    const ref = await created();
    const all = await heat.events(ref);
    expect(all.length).toBeGreaterThan(3);
    expect(await heat.events(ref, all[1]!.id)).toEqual(all.slice(2));
    expect(await heat.lastEventId(ref)).toBe(all.at(-1)!.id);
  });

  it('PATCH keeps the template and changes only the given parameters; PUT replaces both', async () => {
    const ref = await created(2);
    const first = await addresses(ref);
    let marker = await heat.lastEventId(ref);
    await heat.update(ref, { parameters: { count: '3' } });
    await heat.waitFor(ref, { ...fast, action: 'UPDATE', marker });
    expect(emulator.requests.at(-1)?.method).not.toBe('PUT');
    expect((await addresses(ref)).slice(0, 2)).toEqual(first);
    expect((await heat.show(ref)).parameters).toMatchObject({ key_name: 'k', count: '3' });

    marker = await heat.lastEventId(ref);
    await heat.update(ref, { template, parameters: { key_name: 'k', count: '1' } });
    await heat.waitFor(ref, { ...fast, action: 'UPDATE', marker });
    expect(await addresses(ref)).toEqual(first.slice(0, 1));
    expect(emulator.requests.filter((r) => r.method === 'PATCH' || r.method === 'PUT').map((r) => r.method)).toEqual(expect.arrayContaining(['PATCH', 'PUT']));
  });

  it('a second, slow update is waited for until the new servers are there', async () => {
    const ref = await created(1);
    let marker = await heat.lastEventId(ref);
    await heat.update(ref, { parameters: { count: '2' } });
    await heat.waitFor(ref, { ...fast, action: 'UPDATE', marker });
    emulator.behaviour.stepDelayMs = 150;
    marker = await heat.lastEventId(ref);
    await heat.update(ref, { parameters: { count: '4' } });
    const stack = await heat.waitFor(ref, { ...fast, action: 'UPDATE', marker });
    expect(stack?.stack_status).toBe('UPDATE_COMPLETE');
    expect(await addresses(ref)).toHaveLength(4);
  });

  it('CREATE_FAILED: throws with Heat\'s reason', async () => {
    emulator.behaviour.failCreate = 'No valid host was found.';
    const ref = await heat.create(unique(), { template, parameters: { key_name: 'k' } });
    const error = await heat.waitFor(ref, { ...fast, action: 'CREATE' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).code).toBe('HEAT_STACK_FAILED');
    expect((error as Error).message).toMatch(/CREATE_FAILED: Resource CREATE failed: ResourceInError: resources.nodes.resources\[0\]: .*No valid host was found/);
  });

  it('UPDATE_FAILED: throws with Heat\'s reason, and the stack keeps its servers', async () => {
    const ref = await created(1);
    emulator.behaviour.failCreate = 'Quota exceeded for instances: Requested 1, but already used 10 of 10 instances';
    const marker = await heat.lastEventId(ref);
    await heat.update(ref, { parameters: { count: '2' } });
    const error = await heat.waitFor(ref, { ...fast, action: 'UPDATE', marker }).catch((e: unknown) => e);
    expect((error as OperationError).code).toBe('HEAT_STACK_FAILED');
    expect((error as Error).message).toMatch(/UPDATE_FAILED: Resource UPDATE failed: .*Quota exceeded for instances/);
    expect(await addresses(ref)).toHaveLength(1);
  });

  it('gives up after the timeout, saying how to raise it', async () => {
    emulator.behaviour.stepDelayMs = 2000;
    const ref = await heat.create(unique(), { template, parameters: { key_name: 'k', count: '1' } });
    const error = await heat.waitFor(ref, { ...fast, timeoutMs: 300, action: 'CREATE' }).catch((e: unknown) => e);
    expect((error as OperationError).code).toBe('HEAT_TIMEOUT');
    expect((error as OperationError).hint).toContain('provider.timeoutMinutes');
  });

  it('shows Heat\'s error message: a duplicate name, and a bad template as a UserError from validate', async () => {
    const ref = await created(1);
    await expect(heat.create(ref.name, { template, parameters: { key_name: 'k' } })).rejects.toThrow(`The Stack (${ref.name}) already exists.`);
    const invalid = await heat.validate(template, { count: '3' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(UserError);
    expect((invalid as Error).message).toBe('Heat rejected the template or its parameters: The Parameter (key_name) was not provided.');
    await expect(heat.validate(template, { key_name: 'k', count: '0' })).rejects.toThrow(/Parameter 'count' is invalid/);
    expect(await heat.validate(template, { key_name: 'k' })).toMatchObject({ Parameters: { flavor: { Default: 'm3.small' } } });
  });

  it('gets a new token once when Heat answers 401 (a revoked token)', async () => {
    const ref = await created(1);
    const before = emulator.tokensIssued();
    emulator.revokeTokens();
    expect((await heat.show(ref)).stack_status).toBe('CREATE_COMPLETE');
    expect(emulator.tokensIssued()).toBe(before + 1);
  });

  it('checks key_name against Nova\'s key pairs, as Heat\'s nova.keypair constraint does', async () => {
    await expect(heat.validate(template, { key_name: 'nobody-has-this' })).rejects.toThrow("The Key (nobody-has-this) could not be found.");
    await expect(heat.create(unique(), { template, parameters: { key_name: 'nobody-has-this' } })).rejects.toThrow(/The Key \(nobody-has-this\) could not be found/);
  });

  it('deletes a stack and waits until it is gone', async () => {
    const ref = await created(2);
    const marker = await heat.lastEventId(ref);
    await heat.delete(ref);
    expect(await heat.waitFor(ref, { ...fast, action: 'DELETE', marker })).toBeUndefined();
    expect(await heat.find(ref.name)).toBeUndefined();
  });
});
