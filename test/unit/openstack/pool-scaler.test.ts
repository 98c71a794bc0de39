import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PoolScaler, poolCredentials } from '../../../src/apply/openstack/pool-scaler.js';
import { createOpenStackProvider } from '../../../src/apply/providers/openstack.js';
import { parseConfig } from '../../../src/config/load.js';
import { OperationError } from '../../../src/errors.js';
import { PoolController } from '../../../src/autoscaler/pools.js';
import type { PoolSettings, PoolState } from '../../../src/plan/autoscale.js';
import { decidePoolScale, startPoolMemory, type PoolDecision } from '../../../src/plan/pool-autoscale.js';
import { NECTAR_SU_RATES } from '../../../src/plan/service-units.js';
import { silentLogger } from '../../../src/util/log.js';
import { openStackProviderSettings } from '../../../src/workflows/adapter-slices.js';
import { fakePoolSwarm } from '../../support/fake-pool-swarm.js';
import { waitFor } from '../../support/wait.js';
import { passwordLoginEnv, startOpenStackEmulator, type OpenStackEmulator } from '../../support/openstack-emulator/index.js';

/**
 * The autoscale controller's Heat calls (src/apply/openstack/pool-scaler.ts) against the emulator, logged in as
 * the controller is, with an application credential of the user who made the stack: a pool grows and shrinks by
 * a stack update of its count parameter, a preempted node is made again (check, then update), and a stack Heat
 * is busy with answers 409, which the scaler reports as busy and changes nothing.
 */
describe('the pool scaler (the autoscaler\'s Heat calls)', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 1;
  const live = new Set<string>();
  let hold: Promise<void> | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-pool-scaler-'));
    live.clear();
    hold = undefined;
    emulator = await startOpenStackEmulator({
      servers: {
        createServer: async (name) => {
          await hold;
          live.add(name);
          return { address: `10.4.0.${next++}` };
        },
        deleteServer: async (name) => { live.delete(name); },
      },
      // the operator's own credential (the same user who runs node-up with a password), and someone else's
      users: [{ name: 'demo', password: 'demo-password' }, { name: 'other', password: 'other-password' }],
      applicationCredentials: [{ id: 'pools-ac', secret: 'pools-secret', user: 'demo' }, { id: 'other-ac', secret: 'other-secret', user: 'other' }],
      keypairs: { mine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a me' },
    });
  });
  afterEach(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** node-up's provider (a password login) makes the stack with the pool at 1 node. */
  async function stackWithPool(): Promise<string> {
    const provider = await createOpenStackProvider(
      openStackProviderSettings({
        config: parseConfig(stringify({
          app: 'crawler',
          domain: 'd.localhost',
          provider: { type: 'openstack', nodes: 1, parameters: { key_name: 'mine' }, pools: { crawl: { flavor: 'p3.small', count: '0..3', preemptible: true, services: ['worker'] } } },
          services: { api: { image: 'x', port: 8000, http: true }, worker: { image: 'x' } },
        })),
        file: path.join(dir, 'depl.yaml'),
        root: dir,
      }),
      silentLogger,
      { env: passwordLoginEnv(emulator), cwd: dir, interactive: false, pollMs: 10 },
    );
    await provider.up(1, silentLogger, { crawl: 1 });
    return emulator.stacks()[0]!.name;
  }

  const secret = (id: string, secretValue: string) => JSON.stringify({ auth_url: emulator.authUrl, application_credential_id: id, application_credential_secret: secretValue, region_name: emulator.region });
  const scalerAs = (stack: string, id = 'pools-ac', secretValue = 'pools-secret') => PoolScaler.fromCredentials(poolCredentials(secret(id, secretValue), 'the test'), stack);
  const poolServers = () => emulator.stacks()[0]!.servers.filter((s) => /-crawl-\d+$/.test(s.name) && live.has(s.name)).map((s) => s.name).sort();
  const settled = async (scaler: PoolScaler) => waitFor('the stack to settle', async () => {
    const view = await scaler.read(['crawl']);
    return view.busy ? undefined : view;
  }, 10_000, 20);
  const decision = (action: PoolDecision['action'], from: number, to: number): PoolDecision => ({ action, from, to, wanted: to, reason: 'test', memory: startPoolMemory(0) });

  it('grows and shrinks the pool by its count parameter, logged in with the stack owner\'s application credential', async () => {
    const stack = await stackWithPool();
    const scaler = scalerAs(stack);
    const before = await scaler.read(['crawl']);
    expect(before.pools).toEqual({ crawl: { count: 1, lost: [] } });
    expect(before.status).toBe('CREATE_COMPLETE');

    // the pure decision and the call, as the controller chains them
    const grow = decidePoolScale({ pool: 'crawl', min: 0, max: 3, targetBacklog: 50, nodeRate: 0.01, idleMs: 60_000, upCooldownMs: 0 }, {}, startPoolMemory(0), {
      now: 1000, backlog: 140, count: before.pools.crawl!.count, lost: 0, otherSuPerHour: 0, stackBusy: before.busy,
    });
    expect([grow.action, grow.to]).toEqual(['grow', 3]);
    expect(await scaler.apply('crawl', grow, before)).toEqual({ outcome: 'asked', what: `stack update of ${stack}: pool_crawl_count 1 -> 3` });
    const grown = await settled(scaler);
    expect([grown.status, grown.pools.crawl]).toEqual(['UPDATE_COMPLETE', { count: 3, lost: [] }]);
    expect(poolServers()).toEqual([`${stack}-crawl-0`, `${stack}-crawl-1`, `${stack}-crawl-2`]);

    await scaler.apply('crawl', decision('shrink', 3, 0), grown);
    expect((await settled(scaler)).pools.crawl).toEqual({ count: 0, lost: [] });
    expect(poolServers()).toEqual([]);
    // the rest of the stack kept its template and parameters (PATCH, existing)
    expect(emulator.stacks()[0]!.servers.filter((s) => live.has(s.name))).toHaveLength(1);
  });

  it('a stack Heat is busy with answers 409: reported as busy, nothing changed', async () => {
    const stack = await stackWithPool();
    const scaler = scalerAs(stack);
    const view = await scaler.read(['crawl']);
    let release!: () => void;
    hold = new Promise<void>((r) => { release = r; });
    await scaler.apply('crawl', decision('grow', 1, 2), view);
    const busy = await scaler.read(['crawl']);
    expect([busy.busy, busy.status]).toEqual([true, 'UPDATE_IN_PROGRESS']);
    const outcome = await scaler.apply('crawl', decision('grow', 2, 3), busy);
    expect(outcome.outcome).toBe('busy');
    expect(outcome.what).toMatch(/already has an action \(UPDATE\) in progress/);
    expect(emulator.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([202, 409]);
    release();
    expect((await settled(scaler)).pools.crawl).toEqual({ count: 2, lost: [] });
  });

  it('makes a preempted node again: a stack check first, then an update once the stack is CHECK_FAILED', async () => {
    const stack = await stackWithPool();
    const scaler = scalerAs(stack);
    await emulator.preempt(`${stack}-crawl-0`);
    const lost = await scaler.read(['crawl']);
    expect(lost.pools.crawl).toEqual({ count: 1, lost: [`${stack}-crawl-0`] });
    const recreate = decidePoolScale({ pool: 'crawl', min: 0, max: 3, targetBacklog: 50, nodeRate: 0.01, idleMs: 60_000, upCooldownMs: 0 }, {}, startPoolMemory(0), {
      now: 1000, backlog: 10, count: 1, lost: 1, otherSuPerHour: 0, stackBusy: false,
    });
    expect(recreate.action).toBe('recreate');
    expect((await scaler.apply('crawl', recreate, lost)).what).toMatch(/^stack check of /);
    const checked = await settled(scaler);
    expect(checked.status).toBe('CHECK_FAILED');
    expect((await scaler.apply('crawl', recreate, checked)).what).toBe(`stack update of ${stack}: ${stack}-crawl-0 made again`);
    const again = await settled(scaler);
    expect([again.status, again.pools.crawl]).toEqual(['UPDATE_COMPLETE', { count: 1, lost: [] }]);
    expect(poolServers()).toEqual([`${stack}-crawl-0`]);
  });

  it('another user\'s application credential cannot update the stack (Heat would need a trust from it): 403', async () => {
    const stack = await stackWithPool();
    const scaler = scalerAs(stack, 'other-ac', 'other-secret');
    const view = await scaler.read(['crawl']);
    const error = await scaler.apply('crawl', decision('grow', 1, 2), view).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as Error).message).toMatch(/Heat refused PATCH .* \(HTTP 403\): Access was denied to this resource\./);
    expect((await scaler.read(['crawl'])).pools.crawl!.count).toBe(1);
  });

  it('the controller\'s pool part: a deep queue grows the pool through Heat, an exhausted budget does not, an empty spell shrinks it', async () => {
    const stack = await stackWithPool();
    const settings = (budget: PoolSettings['budget']): PoolSettings => ({
      stack, credentialFile: '/run/secrets/pools', rates: { ...NECTAR_SU_RATES }, budget,
      policies: [{ pool: 'crawl', flavor: 'p3.small', min: 0, max: 3, targetBacklog: 50, nodeRate: NECTAR_SU_RATES['p3.small']!, idleMs: 60_000, upCooldownMs: 0, service: 'worker' }],
    });
    const events: Array<Record<string, unknown>> = [];
    const controllerWith = (budget: PoolSettings['budget']) => new PoolController(settings(budget), (e) => events.push(e), async () => secret('pools-ac', 'pools-secret'));
    const scaler = scalerAs(stack);
    const T = Date.parse('2027-01-10T00:00:00Z');

    // no SUs left: the queue is deep, the pool stays as it is, and status says why
    const broke = await controllerWith({ suBudget: 0 }).tick(T, new Map([['worker', 500]]), {}, true);
    expect(broke.crawl).toMatchObject({ count: 1, last: { action: 'hold', from: 1, to: 1 } });
    expect(broke.crawl!.last.reason).toMatch(/but the budget does not allow more: 0 SU would last 0\.0 days/);
    expect(emulator.requests.filter((r) => r.method === 'PATCH')).toHaveLength(0);

    // SUs for a year: it grows to what the queue wants
    const controller = controllerWith({ suBudget: 100_000 });
    let state: Record<string, PoolState> = await controller.tick(T, new Map([['worker', 500]]), {}, true);
    expect(state.crawl).toMatchObject({ count: 1, last: { action: 'grow', from: 1, to: 3 }, asked: `stack update of ${stack}: pool_crawl_count 1 -> 3` });
    expect(events).toEqual([expect.objectContaining({ event: 'pool', pool: 'crawl', action: 'grow', from: 1, to: 3 })]);
    await settled(scaler);
    expect(poolServers()).toHaveLength(3);

    // the queue empties: nothing before a minute of it, then back to the minimum
    state = await controller.tick(T + 10_000, new Map([['worker', 0]]), state, false);
    expect(state.crawl!.last).toMatchObject({ action: 'hold', reason: 'the queue has been empty for 0s; the pool shrinks after 60s' });
    state = await controller.tick(T + 70_000, new Map([['worker', 0]]), state, false);
    expect(state.crawl!.last).toMatchObject({ action: 'shrink', from: 3, to: 0 });
    await settled(scaler);
    expect(poolServers()).toEqual([]);
  });

  it('a credential secret that is not one is refused with what to do, without its secret', () => {
    expect(() => poolCredentials('{"auth_url":"http://x/v3","application_credential_id":"a"}', '/run/secrets/pools')).toThrow(/\/run\/secrets\/pools is not an application credential for the pools/);
    expect(() => poolCredentials('not json', 'f')).toThrow(OperationError);
  });
});

describe('a pool shrink drains the nodes that go before Heat removes them', () => {
  let emulator: OpenStackEmulator;
  let dir: string;
  let next = 1;
  const live = new Set<string>();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'depl-pool-drain-'));
    live.clear();
    emulator = await startOpenStackEmulator({
      servers: {
        createServer: async (name) => {
          live.add(name);
          return { address: `10.5.0.${next++}` };
        },
        deleteServer: async (name) => { live.delete(name); },
      },
      users: [{ name: 'demo', password: 'demo-password' }],
      applicationCredentials: [{ id: 'pools-ac', secret: 'pools-secret', user: 'demo' }],
      keypairs: { mine: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxQdR7JZqJ3L3cUeGq5rWm6F3VfQeZQ1Xo8kq0v4J2a me' },
    });
  });
  afterEach(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('drains the newest nodes first, waits for their tasks, survives a controller killed in between, then updates the stack; work that comes back undoes the drain; a node that does not drain in time is reported', async () => {
    const provider = await createOpenStackProvider(
      openStackProviderSettings({
        config: parseConfig(stringify({
          app: 'crawler', domain: 'd.localhost',
          provider: { type: 'openstack', nodes: 1, parameters: { key_name: 'mine' }, pools: { crawl: { flavor: 'p3.small', count: '1..3', preemptible: true, services: ['worker'] } } },
          services: { api: { image: 'x', port: 8000, http: true }, worker: { image: 'x' } },
        })),
        file: path.join(dir, 'depl.yaml'), root: dir,
      }),
      silentLogger, { env: passwordLoginEnv(emulator), cwd: dir, interactive: false, pollMs: 10 },
    );
    await provider.up(1, silentLogger, { crawl: 3 });
    const stack = emulator.stacks()[0]!.name;
    const poolServers = () => emulator.stacks()[0]!.servers.filter((s) => /-crawl-\d+$/.test(s.name) && live.has(s.name)).map((s) => s.name).sort();
    const patches = () => emulator.requests.filter((r) => r.method === 'PATCH').length;
    const swarm = fakePoolSwarm('crawl', poolServers, patches);
    for (const host of poolServers()) swarm.tasks.set(host, 2);
    const scaler = PoolScaler.fromCredentials(poolCredentials(JSON.stringify({ auth_url: emulator.authUrl, application_credential_id: 'pools-ac', application_credential_secret: 'pools-secret', region_name: emulator.region }), 'the test'), stack);
    const settled = async () => waitFor('the stack to settle', async () => {
      const view = await scaler.read(['crawl']);
      return view.busy ? undefined : view;
    }, 10_000, 20);
    const settings: PoolSettings = {
      stack, credentialFile: '/run/secrets/pools', rates: { ...NECTAR_SU_RATES }, budget: {},
      policies: [{ pool: 'crawl', flavor: 'p3.small', min: 1, max: 3, targetBacklog: 50, nodeRate: NECTAR_SU_RATES['p3.small']!, idleMs: 60_000, upCooldownMs: 0, service: 'worker', drainGraceMs: 120_000 }],
    };
    const events: Array<Record<string, unknown>> = [];
    const credential = async () => JSON.stringify({ auth_url: emulator.authUrl, application_credential_id: 'pools-ac', application_credential_secret: 'pools-secret', region_name: emulator.region });
    const controller = () => new PoolController(settings, (e) => events.push(e), credential, swarm);
    const T = Date.parse('2027-01-10T00:00:00Z');
    const empty = new Map([['worker', 0]]);

    let state: Record<string, PoolState> = await controller().tick(T, empty, {}, true);
    state = await controller().tick(T + 61_000, empty, state, false);
    // the shrink to 1 drains crawl-2 and crawl-1 (Heat removes the highest indexes), nothing asked of Heat yet
    expect(state.crawl).toMatchObject({ count: 3, last: { action: 'hold', from: 3, to: 3 }, draining: { since: T + 61_000, to: 1 } });
    expect(state.crawl!.last.reason).toMatch(/crawl 3 -> 1: drain .*-crawl-2, .*-crawl-1 first/);
    expect(swarm.log).toEqual([{ change: `drain ${stack}-crawl-2`, stackUpdatesBefore: 0 }, { change: `drain ${stack}-crawl-1`, stackUpdatesBefore: 0 }]);
    expect(swarm.availability.get(`${stack}-crawl-0`)).toBeUndefined();
    expect(events).toContainEqual(expect.objectContaining({ event: 'pool-drain', nodes: [`${stack}-crawl-2`, `${stack}-crawl-1`] }));

    // their tasks still run: the next reading waits
    state = await controller().tick(T + 70_000, empty, state, false);
    expect(state.crawl!.last).toMatchObject({ action: 'hold', reason: expect.stringMatching(/draining, still running on .*-crawl-2 \(2 tasks\), .*-crawl-1 \(2 tasks\); waited 9 s of 120 s/) });
    // the work comes back before they are gone: the shrink is off, the drained nodes take tasks again
    state = await controller().tick(T + 75_000, new Map([['worker', 120]]), state, false);
    expect(state.crawl!.draining).toBeUndefined();
    expect(swarm.log.slice(2).map((l) => l.change).sort()).toEqual([`activate ${stack}-crawl-1`, `activate ${stack}-crawl-2`]);
    expect(patches()).toBe(0);

    // the queue empties again; the controller is killed after the drain, before its state was written: the next
    // one finds the nodes drained and waits (its grace period starts again), as no task has left yet
    state = await controller().tick(T + 80_000, empty, state, false);
    const drainedState = await controller().tick(T + 141_000, empty, state, false);
    expect(drainedState.crawl!.draining).toEqual({ since: T + 141_000, to: 1 });
    // (the state file still has the reading before the drain)
    state = await controller().tick(T + 150_000, empty, state, false);
    expect(state.crawl).toMatchObject({ last: { action: 'hold' }, draining: { since: T + 150_000, to: 1 } });
    expect(patches()).toBe(0);

    // the workers handed their jobs back and stopped: the stack goes to 1, after every drain
    swarm.tasks.set(`${stack}-crawl-2`, 0);
    swarm.tasks.set(`${stack}-crawl-1`, 0);
    state = await controller().tick(T + 160_000, empty, state, false);
    expect(state.crawl).toMatchObject({ last: { action: 'shrink', from: 3, to: 1 }, asked: `stack update of ${stack}: pool_crawl_count 3 -> 1` });
    expect(state.crawl!.draining).toBeUndefined();
    expect(state.crawl!.error).toBeUndefined();
    expect(swarm.log.filter((l) => l.change.startsWith('drain')).every((l) => l.stackUpdatesBefore === 0)).toBe(true);
    await settled();
    expect(poolServers()).toEqual([`${stack}-crawl-0`]);

    // a node whose task ignores SIGTERM: after the grace period the stack is updated anyway, and the state says
    // which node it was and what to do
    await scaler.apply('crawl', { action: 'grow', from: 1, to: 2, wanted: 2, reason: 'test', memory: startPoolMemory(0) }, await scaler.read(['crawl']));
    await settled();
    swarm.tasks.set(`${stack}-crawl-1`, 1);
    swarm.availability.delete(`${stack}-crawl-1`);
    state = await controller().tick(T + 300_000, empty, {}, true);
    state = await controller().tick(T + 361_000, empty, state, false);
    expect(state.crawl!.draining).toEqual({ since: T + 361_000, to: 1 });
    state = await controller().tick(T + 482_000, empty, state, false);
    expect(state.crawl).toMatchObject({ last: { action: 'shrink', from: 2, to: 1 } });
    expect(state.crawl!.error).toMatch(/-crawl-1 \(1 task\) still running after the 120 s grace period; the stack goes to 1 anyway .*: a task that does not stop on SIGTERM/);
    await settled();
    expect(poolServers()).toEqual([`${stack}-crawl-0`]);
  }, 60_000);
});
