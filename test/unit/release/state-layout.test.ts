import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forceReleaseLock, lockStatus } from '../../../src/apply/lock.js';
import { readReleaseDocument } from '../../../src/apply/release-store.js';
import { isDeplError } from '../../../src/errors.js';
import { parseLeaseAnswer } from '../../../src/plan/lock.js';
import { renewerMounts } from '../../../src/plan/tls/renewal.js';
import type { ClusterPort, ServiceUpgrades } from '../../../src/workflows/cluster-port.js';
import { switchVersion } from '../../../src/workflows/switch.js';
import { earlierAcquire, earlierBreak } from '../../support/earlier-lock-commands.js';
import { Killed, startFakeCluster, type FakeCluster } from '../../support/fake-cluster.js';

/**
 * A cluster an earlier depl left (state layout 1: the lock at <app>/lock, the ACME account at <app>/tls-account.json,
 * a renewal task that mounts the whole app folder read-write, an autoscale controller holding the Docker socket),
 * moved by the next command on the fake cluster, killed or not.
 */
let fake: FakeCluster;
let appDir: string;

const ACCOUNT = '{"directory":"https://acme.test/dir","key":"-----BEGIN EC PRIVATE KEY-----\\nearlier\\n-----END EC PRIVATE KEY-----","url":"https://acme.test/acct/7"}';
const RENEWER_SETTINGS = { app: 'shop', domain: 'shop.test', directory: 'https://acme.test/dir', challenge: 'http-01', renewBeforeMs: 2_592_000_000, everyMs: 43_200_000, edgeUrl: 'http://10.0.0.5:80' };
const CONTROLLER_SETTINGS = {
  app: 'shop', version: 'v1', intervalMs: 5000, releaseFile: '/run/depl/release/release.json', stateFile: '/run/depl/autoscale/v1.json',
  policies: [{ service: 'worker', swarmService: 'shop-v1-worker', min: 1, max: 4, targetBacklog: 10, cooldownMs: 60_000, upCooldownMs: 0, metrics: { url: 'http://shop-v1-web:8080/metrics', gauge: 'backlog' } }],
};
const hidden = (target: string) => ({ Type: 'tmpfs', Target: target, TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } });

/** The renewal task as a depl before layout 2 installed it: the app's folder read-write, release.json in it. */
function earlierRenewer(): Record<string, unknown> {
  return {
    Name: 'shop-tls-renewer',
    Labels: { 'depl.app': 'shop', 'depl.role': 'tls-renewer', 'depl.renewer.script': 'old' },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'node:20-bookworm-slim', Command: ['node', '/var/lib/depl/shop/renewer/renewer-old.mjs'], Env: [`DEPL_RENEWER=${JSON.stringify(RENEWER_SETTINGS)}`, 'NODE_ENV=production'],
        Mounts: [
          { Type: 'bind', Source: '/var/lib/depl/shop', Target: '/var/lib/depl/shop' },
          { Type: 'bind', Source: '/var/lib/depl/shop/renewer', Target: '/var/lib/depl/shop/renewer', ReadOnly: true },
          hidden('/var/lib/depl/shop/seeds'), hidden('/var/lib/depl/shop/accessories'), hidden('/var/lib/depl/shop/autoscale'),
        ],
      },
      Networks: [{ Target: 'host-network-id' }],
    },
    Mode: { Replicated: { Replicas: 1 } },
  };
}

/** An autoscale controller as a depl before the engine gates installed it: the manager's Docker socket mounted. */
function controllerWithTheSocket(root: string): Record<string, unknown> {
  return {
    Name: 'shop-v1-autoscaler',
    Labels: { 'depl.app': 'shop', 'depl.version': 'v1', 'depl.service': 'autoscaler', 'depl.http': 'false' },
    TaskTemplate: {
      ContainerSpec: {
        Image: 'depl-autoscaler:before-gates', Command: ['node', '/opt/depl/autoscaler.mjs'], Args: ['--settings', JSON.stringify(CONTROLLER_SETTINGS)],
        Mounts: [
          { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' },
          { Type: 'bind', Source: `${root}/shop`, Target: '/run/depl/release', ReadOnly: true },
          ...['edge', 'seeds', 'accessories', 'edge-gate'].map((dir) => hidden(`/run/depl/release/${dir}`)),
          { Type: 'bind', Source: '/dev/null', Target: '/run/depl/release/tls-account.json', ReadOnly: true },
          { Type: 'bind', Source: `${root}/shop/autoscale`, Target: '/run/depl/autoscale' },
        ],
        Secrets: [{ File: { Name: 'api_token', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 's1', SecretName: 'shop-api_token-1' }],
      },
      Networks: [{ Target: 'shop-net-id' }],
    },
    Mode: { Replicated: { Replicas: 1 } },
  };
}

const container = (name: string) => (fake.swarm.specs.get(name)?.TaskTemplate as { ContainerSpec: { Image: string; Mounts: Array<{ Source?: string; Target: string }>; ReadOnly?: boolean; Secrets?: unknown; Env?: string[] } }).ContainerSpec;
const exists = (file: string) => readFile(file).then(() => true, () => false);

/** Puts the fake cluster's folder back to layout 1, as an earlier depl left it after a switch to v1. */
async function asAnEarlierDeplLeftIt(): Promise<void> {
  await switchVersion(fake.control, 'v1');
  await rm(`${appDir}/layout`);
  await rm(`${appDir}/lease`, { recursive: true, force: true });
  await rm(`${appDir}/lock`, { recursive: true, force: true });
  await rm(`${appDir}/tls`, { recursive: true, force: true });
  await writeFile(`${appDir}/lock.fence`, '41\n');
  await writeFile(`${appDir}/tls-account.json`, ACCOUNT, { mode: 0o600 });
  await writeFile(`${appDir}/tls-renewal.json`, '{"outcome":"nothing-due"}\n');
  fake.swarm.specs.set('shop-tls-renewer', earlierRenewer());
  fake.swarm.specs.set('shop-v1-autoscaler', controllerWithTheSocket(fake.control.stateRoot!));
  fake.swarm.calls.length = 0;
}

/** What the next command must have left once the move is done. */
async function expectMoved(): Promise<void> {
  const doc = await readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot);
  expect(doc).toMatchObject({ live: 'v2', previous: 'v1' });
  expect(doc.history.filter((h) => h.action === 'switch').map((h) => h.version)).toEqual(['v1', 'v2']);
  expect(await readFile(`${appDir}/tls/account.json`, 'utf8')).toBe(ACCOUNT);
  expect(await readFile(`${appDir}/tls/renewal.json`, 'utf8')).toContain('nothing-due');
  expect((await readdir(appDir)).filter((f) => f.startsWith('tls-'))).toEqual([]);
  expect((await readFile(`${appDir}/layout`, 'utf8')).trim()).toBe('2');
  // the renewal task mounts only what it writes, release.json nowhere
  expect(container('shop-tls-renewer').Mounts).toEqual(renewerMounts('shop'));
  expect(container('shop-tls-renewer').ReadOnly).toBe(true);
  expect(container('shop-tls-renewer').Env![0]).toBe(`DEPL_RENEWER=${JSON.stringify(RENEWER_SETTINGS)}`);
  // the controller reaches the Engine through its gate only; the gate holds the socket; both run this depl's image
  const controller = container('shop-v1-autoscaler');
  expect(JSON.stringify(controller)).not.toMatch(/docker\.sock/);
  expect(controller.Image).toBe('depl-autoscaler:fake');
  expect(controller.Secrets).toEqual([{ File: { Name: 'api_token', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 's1', SecretName: 'shop-api_token-1' }]);
  expect(controller.Mounts).toContainEqual({ Type: 'bind', Source: `${fake.control.stateRoot}/shop/autoscale/gates/v1`, Target: '/run/depl/engine-gate' });
  expect(controller.Mounts).toContainEqual(hidden('/run/depl/release/tls'));
  const gate = container('shop-v1-autoscaler-gate');
  expect(gate.Image).toBe('depl-autoscaler:fake');
  expect(gate.Mounts.map((m) => m.Target)).toEqual(['/run/depl/engine-gate', '/var/run/docker.sock']);
  expect(await lockStatus(fake.control.stateRemote, fake.app, fake.control.stateRoot)).toBeNull();
}

/** An earlier depl trying to take the lock where it kept it, with its own script (test/support/earlier-lock-commands.ts). */
async function earlierDeplTakesTheLock(): Promise<ReturnType<typeof parseLeaseAnswer>> {
  const holder = { holder: 'old@laptop', host: 'laptop', pid: 1, command: 'switch v1', since: '2026-11-01T00:00:00Z', token: 'earlier' };
  return parseLeaseAnswer((await fake.control.stateRemote.exec(earlierAcquire(`${appDir}/lock`, holder, 60))).stdout);
}

/**
 * The services an earlier depl installed that still run and could read the ACME account where it was moved to
 * (where it was, they saw it before the move too): the Docker socket reads any file; otherwise a bind of the
 * app's folder (or of /var/lib/depl/shop, the renewal task's own path) shows it unless a mount over tls/ hides it.
 */
async function earlierServicesThatSeeTheMovedAccount(): Promise<string[]> {
  if (!(await exists(`${appDir}/tls/account.json`))) return [];
  const at = 'tls/account.json';
  const seeing: string[] = [];
  for (const [name, spec] of fake.swarm.specs) {
    const replicas = (spec.Mode as { Replicated?: { Replicas?: number } } | undefined)?.Replicated?.Replicas ?? 1;
    const mounts = (spec.TaskTemplate as { ContainerSpec: { Mounts?: Array<{ Type: string; Source?: string; Target: string }> } }).ContainerSpec.Mounts ?? [];
    if (replicas === 0) continue;
    if (mounts.some((m) => m.Source === '/var/run/docker.sock')) {
      if (!name.endsWith('-gate')) seeing.push(name);
      continue;
    }
    const app = mounts.find((m) => m.Type === 'bind' && (m.Source === appDir || m.Source === '/var/lib/depl/shop'));
    if (app === undefined) continue;
    const hiddenAt = [`${app.Target}/${at.split('/')[0]}`, `${app.Target}/${at}`];
    if (!mounts.some((m) => m !== app && hiddenAt.includes(m.Target))) seeing.push(name);
  }
  return seeing;
}

beforeEach(async () => {
  fake = await startFakeCluster({ versions: ['v1', 'v2'] });
  appDir = `${fake.control.stateRoot}/${fake.app}`;
  await asAnEarlierDeplLeftIt();
});
afterEach(async () => {
  await fake.close();
});

describe('the next command on a cluster an earlier depl left', () => {
  it('moves the lock and the ACME account, keeps the release state, and installs the renewal task and the controller again without what they do not need', async () => {
    await switchVersion(fake.control, 'v2');
    await expectMoved();
    // what could read the account where it goes is stopped first; then controllers, the gate before its controller;
    // the renewal task last (it takes the lock where it is now)
    expect(fake.swarm.calls).toEqual([
      'stop-service shop-tls-renewer', 'stop-service shop-v1-autoscaler',
      'ensure-autoscaler-image v1', 'create-service shop-v1-autoscaler-gate', 'update-service shop-v1-autoscaler', 'install-renewal-task shop-tls-renewer',
    ]);
    // an earlier depl (or an earlier renewal task) finds the lock held for good; its `depl lock release` removes nothing
    expect(await earlierDeplTakesTheLock()).toMatchObject({ status: 'held' });
    expect((await fake.control.stateRemote.exec(earlierBreak(`${appDir}/lock`))).stdout.trim()).toBe('free');
    expect(await earlierDeplTakesTheLock()).toMatchObject({ status: 'held' });
    expect(await readFile(`${appDir}/lock`, 'utf8')).toMatch(/upgrade depl/);
    // the next command finds nothing to move
    fake.swarm.calls.length = 0;
    await switchVersion(fake.control, 'v1');
    expect(fake.swarm.calls).toEqual([]);
  });

  it('refuses while an earlier depl holds the lock where it kept it, moving nothing, and moves once it is given back', async () => {
    await mkdir(`${appDir}/lock`);
    await writeFile(`${appDir}/lock/holder.json`, JSON.stringify({ holder: 'old@laptop', host: 'laptop', pid: 1, command: 'switch v1', since: '2026-11-01T00:00:00Z', token: 'earlier' }));
    await writeFile(`${appDir}/lock/expires`, `${Math.floor(Date.now() / 1000) + 120}\n`);
    const refused = await switchVersion(fake.control, 'v2').catch((error: unknown) => error);
    expect(isDeplError(refused) && refused.code).toBe('LOCKED');
    expect((refused as Error).message).toMatch(/held by old@laptop \(pid 1, `switch v1`/);
    expect(await readFile(`${appDir}/tls-account.json`, 'utf8')).toBe(ACCOUNT);
    expect(await exists(`${appDir}/layout`)).toBe(false);
    expect(fake.swarm.calls).toEqual([]);
    expect(await lockStatus(fake.control.stateRemote, fake.app, fake.control.stateRoot)).toBeNull();
    await rm(`${appDir}/lock`, { recursive: true });
    await switchVersion(fake.control, 'v2');
    await expectMoved();
  });

  const killAt: Array<[string, (upgrades: ServiceUpgrades, kill: () => never) => Partial<ServiceUpgrades>]> = [
    ['after the lock was fenced, before any service was stopped', (_, kill) => ({ stop: async () => kill() })],
    ['after the first service was stopped', (upgrades, kill) => ({ stop: async (service) => { await upgrades.stop(service); kill(); } })],
    ['after the files moved, before any service was installed again', (_, kill) => ({ controllerImage: async () => kill() })],
    ['after the controller\'s gate was made', (upgrades, kill) => ({ put: async (spec) => { await upgrades.put(spec); kill(); } })],
    ['after the renewal task was installed, before the layout was recorded', (upgrades, kill) => ({ renewer: async (u) => { await upgrades.renewer(u); kill(); } })],
  ];
  it.each(killAt)('killed %s: the next command finishes the move, and nothing is lost', async (_point, dying) => {
    const { control, kill } = fake.killable();
    const killed: ClusterPort = { ...control, upgrades: { ...control.upgrades!, ...dying(control.upgrades!, kill) } };
    await expect(switchVersion(killed, 'v2')).rejects.toBeInstanceOf(Killed);
    // until the next command, nothing an earlier depl started can read the account where it moved
    expect(await earlierServicesThatSeeTheMovedAccount()).toEqual([]);
    // nothing was lost half-way: the account is in one of its two places, the release state as it was
    const account = (await exists(`${appDir}/tls/account.json`)) ? `${appDir}/tls/account.json` : `${appDir}/tls-account.json`;
    expect(await readFile(account, 'utf8')).toBe(ACCOUNT);
    expect(await readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot)).toMatchObject({ live: 'v1' });
    expect(await exists(`${appDir}/layout`)).toBe(false);
    // the dead run's lease runs out (here broken by hand)
    await forceReleaseLock(fake.control.stateRemote, fake.app, fake.control.stateRoot);
    await switchVersion(fake.freshControl(), 'v2');
    await expectMoved();
  });
});

describe('a cluster an earlier depl could still reach after the move', () => {
  /** As the first layout 2 left it: a lease folder at lock/ that never expires (which an earlier depl's `lock release` removes). */
  async function movedByTheFirstLayout2(): Promise<void> {
    await switchVersion(fake.control, 'v2');
    await rm(`${appDir}/lock`, { force: true });
    await mkdir(`${appDir}/lock`);
    await writeFile(`${appDir}/lock/holder.json`, JSON.stringify({ holder: 'depl (state layout 2)', host: '-', pid: 0, command: 'none', since: '2026-12-06T00:00:00Z', token: 'moved-to-lease' }));
    await writeFile(`${appDir}/lock/expires`, '4102444800\n');
    fake.swarm.calls.length = 0;
  }
  const warningsOf = (warnings: string[]): ClusterPort => ({ ...fake.control, log: { ...fake.control.log, warn: (m: string) => warnings.push(m) } });

  it('whose lease folder an earlier depl\'s `lock release` removed: the next command fences it again for good and says what may have happened', async () => {
    await movedByTheFirstLayout2();
    expect((await fake.control.stateRemote.exec(earlierBreak(`${appDir}/lock`))).stdout).toMatch(/^released/);
    const warnings: string[] = [];
    await switchVersion(warningsOf(warnings), 'v1');
    expect(warnings.join('\n')).toMatch(/fence at .*\/shop\/lock.*had been removed.*put back.*without this depl's lock/);
    expect(await readFile(`${appDir}/lock`, 'utf8')).toMatch(/upgrade depl/);
    expect(await earlierDeplTakesTheLock()).toMatchObject({ status: 'held' });
    // once fenced, the next command says nothing more
    warnings.length = 0;
    await switchVersion(warningsOf(warnings), 'v2');
    expect(warnings).toEqual([]);
  });

  it('that an earlier depl then took: refused while it holds it, naming it, and the fix', async () => {
    await movedByTheFirstLayout2();
    await fake.control.stateRemote.exec(earlierBreak(`${appDir}/lock`));
    expect(await earlierDeplTakesTheLock()).toMatchObject({ status: 'acquired' });
    const refused = await switchVersion(fake.control, 'v1').catch((error: unknown) => error);
    expect(isDeplError(refused) && refused.code).toBe('LOCKED');
    expect((refused as Error).message).toMatch(/a depl from before state layout 2 took the cluster lock .* held by old@laptop/);
    expect(isDeplError(refused) && refused.hint).toMatch(/make every operator use this depl/);
    expect((await readReleaseDocument(fake.control.stateRemote, fake.app, fake.control.stateRoot)).live).toBe('v2');
  });

  it('a service this depl cannot plan that could read the account is stopped before the account moves, and stays stopped until it is dealt with', async () => {
    const unreadable = controllerWithTheSocket(fake.control.stateRoot!);
    const spec = unreadable.TaskTemplate as { ContainerSpec: { Args: string[] } };
    spec.ContainerSpec.Args = ['--settings', '{not json'];
    fake.swarm.specs.set('shop-v1-autoscaler', unreadable);
    const warnings: string[] = [];
    await switchVersion(warningsOf(warnings), 'v2');
    expect(fake.swarm.calls).toEqual(['stop-service shop-tls-renewer', 'stop-service shop-v1-autoscaler', 'install-renewal-task shop-tls-renewer']);
    expect(warnings.join('\n')).toMatch(/shop-v1-autoscaler has settings that are not JSON.*left stopped \(it could read the ACME account where it is now\)/);
    expect(await readFile(`${appDir}/tls/account.json`, 'utf8')).toBe(ACCOUNT);
    expect(await exists(`${appDir}/layout`)).toBe(false);
    expect(await earlierServicesThatSeeTheMovedAccount()).toEqual([]);
    // the next command says so again, and stops nothing more
    fake.swarm.calls.length = 0;
    await switchVersion(fake.control, 'v1');
    expect(fake.swarm.calls).toEqual([]);
  });
});
