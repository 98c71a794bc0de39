import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createOpenStackProvider } from '../../../src/apply/providers/openstack.js';
import type { StackServers } from '../../../src/apply/providers/types.js';
import { parseConfig } from '../../../src/config/load.js';
import { OperationError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { pollUntil } from '../../../src/util/poll.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * Nova's shelve family through depl's provider and the emulator: the server goes ACTIVE -> SHELVED ->
 * SHELVED_OFFLOADED (and stays SHELVED where the cloud does not offload at once, until shelveOffload), back
 * to ACTIVE on unshelve, with the task states seen on the way, and 409 conflictingRequest for an action its
 * state does not allow, in Nova's error body.
 */
describe('shelve and unshelve (Nova)', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let servers: StackServers;
  let next = 1;
  const power: string[] = [];
  // the machine's power-off (shelve) and power-on (unshelve) wait on this while a test holds it: the server
  // stays in its last task state meanwhile, whatever the machine's load
  let held: Promise<void> = Promise.resolve();
  let release = () => {};
  const hold = () => {
    held = new Promise((resolve) => { release = resolve; });
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-shelve-'));
    emulator = await startOpenStackEmulator({
      servers: {
        createServer: async () => ({ address: `10.3.0.${next++}` }),
        deleteServer: async () => {},
        stopServer: async (name) => {
          power.push(`stop ${name}`);
          await held;
        },
        startServer: async (name) => {
          power.push(`start ${name}`);
          await held;
        },
      },
      behaviour: { serverActionMs: 5 },
    });
    const provider = await createOpenStackProvider(
      openStackProviderSettings({ config: parseConfig(stringify({ app: 'shelf', domain: 'd.localhost', provider: { type: 'openstack' }, services: { api: { image: 'x' } } })), file: path.join(dir, 'depl.yaml'), root: dir }),
      silentLogger,
      { env: passwordLoginEnv(emulator), cwd: dir, interactive: false, pollMs: 10 },
    );
    await provider.up(2, silentLogger);
    servers = provider.servers!;
  });
  afterAll(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  const statuses = async () => (await servers.list()).map((s) => `${s.name} ${s.status}${s.taskState ? ` ${s.taskState}` : ''}`);
  const settled = (status: string) => pollUntil(async () => ((await servers.list()).every((s) => s.status === status && s.taskState === null) ? true : undefined), {
    timeoutMs: 30_000, intervalMs: 5, onTimeout: async () => { throw new Error(`not all ${status}: ${(await statuses()).join(', ')}`); },
  });

  it('lists the stack\'s instances in node order, ACTIVE', async () => {
    expect(await statuses()).toEqual(['shelf-nodes-0 ACTIVE', 'shelf-nodes-1 ACTIVE']);
  });

  it('shelves to SHELVED_OFFLOADED through the task states, and unshelves back to ACTIVE', async () => {
    const [first] = await servers.list();
    hold();
    await servers.shelve(first!);
    // Nova answers 202 at once; the status says when it is done
    expect((await servers.list())[0]).toMatchObject({ status: 'ACTIVE', taskState: expect.stringMatching(/^shelving/) });
    release();
    await pollUntil(async () => (emulator.servers.statusOf('shelf-nodes-0')?.status === 'SHELVED_OFFLOADED' ? true : undefined), { timeoutMs: 30_000, intervalMs: 5, onTimeout: () => { throw new Error('not offloaded'); } });
    expect(power).toEqual(['stop shelf-nodes-0']);

    hold();
    await servers.unshelve(first!);
    expect((await servers.list())[0]).toMatchObject({ status: 'SHELVED_OFFLOADED', taskState: expect.stringMatching(/^(unshelving|spawning)$/) });
    release();
    await settled('ACTIVE');
    expect(power).toEqual(['stop shelf-nodes-0', 'start shelf-nodes-0']);
  });

  it('refuses an action the state does not allow with 409 conflictingRequest, as Nova words it', async () => {
    const [first] = await servers.list();
    const refused = await servers.unshelve(first!).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OperationError);
    expect(refused).toMatchObject({ code: 'NOVA_ACTION_CONFLICT', message: `Nova refused to unshelve shelf-nodes-0: Cannot 'unshelve' instance ${first!.id} while it is in vm_state active` });

    hold();
    await servers.shelve(first!);
    // asked again while the first shelve runs
    expect(await servers.shelve(first!).catch((e: Error) => e.message)).toMatch(/Cannot 'shelve' instance \S+ while it is in task_state shelving/);
    release();
    await pollUntil(async () => (emulator.servers.statusOf('shelf-nodes-0')?.status === 'SHELVED_OFFLOADED' ? true : undefined), { timeoutMs: 30_000, intervalMs: 5, onTimeout: () => { throw new Error('not offloaded'); } });
    expect(await servers.shelve(first!).catch((e: Error) => e.message)).toContain('while it is in vm_state shelved_offloaded');
    await servers.unshelve(first!);
    await settled('ACTIVE');
  });

  it('keeps a server SHELVED where the cloud does not offload at once, until shelveOffload; the error body is Nova\'s', async () => {
    emulator.behaviour.shelvedOffloadTime = -1;
    try {
      const [, second] = await servers.list();
      await servers.shelve(second!);
      await pollUntil(async () => (emulator.servers.statusOf('shelf-nodes-1')?.status === 'SHELVED' && emulator.servers.statusOf('shelf-nodes-1')?.taskState === null ? true : undefined), { timeoutMs: 30_000, intervalMs: 5, onTimeout: () => { throw new Error('not shelved'); } });
      const token = await login(emulator);
      const action = (body: unknown) => request(`${emulator.url}/compute/v2.1/servers/${second!.id}/action`, { method: 'POST', headers: { 'x-auth-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const again = await action({ shelve: null });
      expect(again.statusCode).toBe(409);
      expect(await again.body.json()).toEqual({ conflictingRequest: { code: 409, message: `Cannot 'shelve' instance ${second!.id} while it is in vm_state shelved` } });
      const offload = await action({ shelveOffload: null });
      expect(offload.statusCode).toBe(202);
      await offload.body.dump();
      await pollUntil(async () => (emulator.servers.statusOf('shelf-nodes-1')?.status === 'SHELVED_OFFLOADED' ? true : undefined), { timeoutMs: 30_000, intervalMs: 5, onTimeout: () => { throw new Error('not offloaded'); } });
      const offloadAgain = await action({ shelveOffload: null });
      expect(offloadAgain.statusCode).toBe(409);
      await offloadAgain.body.dump();
      await servers.unshelve(second!);
      await settled('ACTIVE');
    } finally {
      emulator.behaviour.shelvedOffloadTime = 0;
    }
  });
});

async function login(emulator: OpenStackEmulator): Promise<string> {
  const env = passwordLoginEnv(emulator);
  const response = await request(`${emulator.authUrl}/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: env.OS_USERNAME, domain: { name: env.OS_USER_DOMAIN_NAME }, password: env.OS_PASSWORD } } }, scope: { project: { id: env.OS_PROJECT_ID } } } }),
  });
  await response.body.dump();
  return String(response.headers['x-subject-token']);
}
