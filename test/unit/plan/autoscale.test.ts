import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { UserError } from '../../../src/errors.js';
import {
  controllerSettings, controllerSettingsSchema, decideScale, describeAutoscale, parseAutoscaleLabel, parseControllerState, parseGauge,
  autoscalerFoldersLine, planAutoscaler, planControllerGate, recordReading, startMemory, type ScaleMemory, type ScalePolicy,
} from '../../../src/plan/autoscale.js';
import { planVersionServices } from '../../../src/plan/services.js';
import { crawlerYaml } from '../release/fixtures.js';

const policy = { min: 1, max: 5, targetBacklog: 100, cooldownMs: 60_000, upCooldownMs: 0 };
const T0 = Date.parse('2026-11-30T03:00:00Z');

/** Runs readings (seconds after T0, current replicas follow the decisions) and returns every decision. */
function run(readings: Array<[seconds: number, backlog: number | null]>, start = 1, p = policy) {
  let memory: ScaleMemory = startMemory(T0 - 3_600_000);
  let current = start;
  return readings.map(([s, backlog]) => {
    const decision = decideScale(p, memory, { now: T0 + s * 1000, current, backlog });
    memory = decision.memory;
    current = decision.to;
    return decision;
  });
}

describe('decideScale', () => {
  it('scales up at once to ceil(backlog / target), within max', () => {
    const [a, b, c] = run([[0, 250], [10, 420], [20, 5000]]);
    expect([a!.action, a!.to]).toEqual(['up', 3]);
    expect([b!.action, b!.to]).toEqual(['up', 5]);
    expect([c!.action, c!.to, c!.wanted]).toEqual(['hold', 5, 5]);
    expect(a!.reason).toBe('backlog 250 / 100 per replica wants 3');
  });

  it('scales down only a cooldown after the last change, to min once the backlog is gone', () => {
    const decisions = run([[0, 500], [10, 0], [30, 0], [59, 0], [60, 0], [70, 0]]);
    expect(decisions.map((d) => `${d.action} ${d.to}`)).toEqual(['up 5', 'hold 5', 'hold 5', 'hold 5', 'down 1', 'hold 1']);
    expect(decisions[1]!.reason).toMatch(/cooldown: 50s left since the last change/);
  });

  it('does not flap: a backlog that comes and goes every reading keeps the replicas until a cooldown passed without it', () => {
    const readings: Array<[number, number]> = [[0, 400], [10, 0], [20, 400], [30, 0], [40, 400], [50, 0], [60, 0], [70, 0], [80, 0], [90, 0], [100, 0]];
    const decisions = run(readings);
    expect(decisions.map((d) => `${d.action} ${d.to}`)).toEqual(['up 4', ...Array(9).fill('hold 4'), 'down 1']);
    // 60 s after the change the cooldown is over, but 4 was wanted 20 s before
    expect(decisions[6]!.reason).toBe('backlog 0 / 100 per replica wants 1, but 4 was wanted within the last 60s');
    expect(decisions[10]!.reason).toBe('backlog 0 / 100 per replica wants 1; 1 is the most wanted within the last 60s');
  });

  it('a down-scale waits for the highest recommendation of the window, even when the cooldown since the change is over', () => {
    let memory: ScaleMemory = { lastChangeAt: T0 - 600_000, wanted: [{ at: T0 - 30_000, replicas: 4 }, { at: T0 - 10_000, replicas: 3 }] };
    const d = decideScale(policy, memory, { now: T0, current: 5, backlog: 0 });
    expect([d.action, d.to]).toEqual(['down', 4]);
    memory = d.memory;
    expect(memory.lastChangeAt).toBe(T0);
    expect(memory.wanted).toEqual([{ at: T0 - 30_000, replicas: 4 }, { at: T0 - 10_000, replicas: 3 }, { at: T0, replicas: 1 }]);
  });

  it('respects a scale-up cooldown when one is set', () => {
    const p = { ...policy, upCooldownMs: 30_000 };
    const decisions = run([[0, 200], [10, 500], [31, 500]], 1, p);
    expect(decisions.map((d) => `${d.action} ${d.to}`)).toEqual(['up 2', 'hold 2', 'up 5']);
    expect(decisions[1]!.reason).toMatch(/scale-up waits 20s more/);
  });

  it('keeps the bounds: below min goes up, above max comes down, without waiting; with no reading nothing else moves', () => {
    const memory = startMemory(T0);
    expect(decideScale({ ...policy, min: 2 }, memory, { now: T0, current: 0, backlog: 0 })).toMatchObject({ action: 'up', to: 2 });
    expect(decideScale({ ...policy, min: 2 }, memory, { now: T0, current: 1, backlog: 450 })).toMatchObject({ action: 'up', to: 5 });
    expect(decideScale(policy, memory, { now: T0, current: 9, backlog: 0 })).toMatchObject({ action: 'down', to: 5 });
    expect(decideScale(policy, memory, { now: T0, current: 9, backlog: null })).toMatchObject({ action: 'down', to: 5, wanted: null });
    expect(decideScale(policy, memory, { now: T0, current: 3, backlog: null })).toMatchObject({ action: 'hold', to: 3, reason: 'no backlog reading' });
    expect(decideScale(policy, memory, { now: T0, current: 3, backlog: Number.NaN })).toMatchObject({ action: 'hold' });
  });

  it('min 0: an empty queue may take the service to no replicas, and work brings one back', () => {
    const p = { ...policy, min: 0, cooldownMs: 0 };
    expect(run([[0, 0], [1, 1], [2, 0]], 1, p).map((d) => `${d.action} ${d.to}`)).toEqual(['down 0', 'up 1', 'down 0']);
  });

  it('a controller that just took over waits a cooldown before scaling down', () => {
    const d = decideScale(policy, startMemory(T0), { now: T0 + 1000, current: 3, backlog: 0 });
    expect(d.action).toBe('hold');
  });
});

describe('parseGauge', () => {
  const text = [
    '# HELP crawler_tasks_backlog Page tasks not yet done.',
    '# TYPE crawler_tasks_backlog gauge',
    'crawler_tasks_backlog 1234',
    'crawler_tasks_backlog_extra 9',
    'crawler_tasks_held{consumer="a"} 3',
    'crawler_tasks_held{consumer="b"} 4 1700000000',
    'bad_value NaN',
  ].join('\n');
  it('reads a gauge, sums labelled samples, and says null when it is missing or not a number', () => {
    expect(parseGauge(text, 'crawler_tasks_backlog')).toBe(1234);
    expect(parseGauge(text, 'crawler_tasks_held')).toBe(7);
    expect(parseGauge(text, 'crawler_tasks_missing')).toBeNull();
    expect(parseGauge(text, 'bad_value')).toBeNull();
    expect(parseGauge('', 'x')).toBeNull();
  });
});

const autoscaled = `${crawlerYaml}
secrets: [api_token]
autoscale:
  worker: { min: 1, max: 6, targetBacklog: 50, cooldown: 2m, interval: 5s, metrics: { bearer: api_token } }
`;

describe('autoscale: in depl.yaml', () => {
  function problems(text: string): string[] {
    try {
      parseConfig(text);
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      return (error as Error).message.split('\n').slice(1).map((l) => l.trim());
    }
    throw new Error('expected the config to be rejected');
  }

  it('is validated with paths and hints', () => {
    expect(problems(`${crawlerYaml}\nautoscale: { crawler: { max: 3, targetBacklog: 10 } }\n`)).toEqual(['autoscale.crawler: no service named "crawler" to scale (have: api, worker)']);
    expect(problems(`${crawlerYaml}\nautoscale: { worker: { min: 4, max: 3, targetBacklog: 10 } }\n`)).toEqual(['autoscale.worker.min: min 4 is above max 3']);
    expect(problems(`${crawlerYaml}\nautoscale: { worker: { max: 3, targetBacklog: 0 } }\n`)).toEqual(['autoscale.worker.targetBacklog: expected a number of tasks above 0']);
    expect(problems(`${crawlerYaml}\nautoscale: { worker: { max: 3, targetBacklog: 5, cooldown: soon } }\n`)).toEqual(['autoscale.worker.cooldown: expected a duration like 30s, 5m or 1h']);
    expect(problems(`${crawlerYaml}\nautoscale: { worker: { max: 3, targetBacklog: 5, metrics: { bearer: api_token } } }\n`)).toEqual([
      'autoscale.worker.metrics.bearer: "api_token" is not declared in the top-level secrets: list (have: none)',
    ]);
    expect(problems(`${crawlerYaml}\nautoscale: { worker: { max: 3, targetBacklog: 5, metrics: { service: worker } } }\n`)).toEqual([
      'autoscale.worker.metrics.service: service "worker" has no port to read /metrics from: set services.worker.port',
    ]);
    expect(problems(`${crawlerYaml}\nautoscale: { worker: { max: 3, targetBacklog: 5, maxx: 4 } }\n`)[0]).toMatch(/^autoscale\.worker\.maxx: unknown key \(did you mean "max"\?\)/);
  });

  it('becomes the controller settings: the version\'s services, its metrics URL on the overlay network and the token file', () => {
    const settings = controllerSettings(parseConfig(autoscaled), 'v7');
    expect(settings).toEqual({
      app: 'crawler', version: 'v7', intervalMs: 5000,
      releaseFile: '/run/depl/release/release.json', stateFile: '/run/depl/autoscale/v7.json',
      policies: [{
        service: 'worker', swarmService: 'crawler-v7-worker', min: 1, max: 6, targetBacklog: 50, cooldownMs: 120_000, upCooldownMs: 0,
        metrics: { url: 'http://crawler-v7-api:8000/metrics', gauge: 'crawler_tasks_backlog', tokenFile: '/run/secrets/api_token' },
      }],
    });
    expect(controllerSettingsSchema.parse(JSON.parse(JSON.stringify(settings)))).toEqual(settings);
    expect(controllerSettings(parseConfig(crawlerYaml), 'v7')).toBeNull();
  });

  it('pools with autoscale: the controller also gets the stack, the credential secret, the rate table and the budget', () => {
    const pooled = (pool: string, secrets = '[api_token, os_pools]') => `${crawlerYaml.replace(/^app: crawler$/m, 'app: crawler\nprovider:\n  type: openstack\n  allocation: { suBudget: 900, endsOn: 2027-06-30 }\n  pools:\n' + pool)}
secrets: ${secrets}
autoscale:
  worker: { min: 1, max: 6, targetBacklog: 50, cooldown: 2m, interval: 5s, metrics: { bearer: api_token } }
`;
    const config = parseConfig(pooled('    crawl: { flavor: p3.small, count: 0..4, preemptible: true, services: [worker], autoscale: { targetBacklog: 100, credential: os_pools } }'));
    expect(controllerSettings(config, 'v7')!.pools).toEqual({
      stack: 'crawler-nodes',
      credentialFile: '/run/secrets/os_pools',
      rates: expect.objectContaining({ 'p3.small': 500 / 8760 / 4, 'm3.small': 500 / 8760 }),
      budget: { suBudget: 900, endsOn: '2027-06-30' },
      policies: [{ pool: 'crawl', flavor: 'p3.small', min: 0, max: 4, targetBacklog: 100, nodeRate: 500 / 8760 / 4, idleMs: 600_000, upCooldownMs: 120_000, service: 'worker' }],
    });
    const secrets = planAutoscaler({ config, version: 'v7', image: 'i', network: 'n', secrets: { api_token: { id: 's1', name: 'crawler-api_token-1' }, os_pools: { id: 's2', name: 'crawler-os_pools-1' } } })!.TaskTemplate.ContainerSpec.Secrets!;
    expect(secrets.map((m) => [m.SecretName, m.File.Name])).toEqual([['crawler-api_token-1', 'api_token'], ['crawler-os_pools-1', 'os_pools']]);
    // its engine gate passes on the drain of that pool's nodes (a shrink drains the nodes that go), and no other pool's
    const gateEnv = planControllerGate({ config, version: 'v7', image: 'i' })!.TaskTemplate.ContainerSpec.Env!;
    expect(JSON.parse(gateEnv.find((e) => e.startsWith('DEPL_ENGINE_GATE='))!.slice('DEPL_ENGINE_GATE='.length))).toMatchObject({ policy: 'scale', pools: ['crawl'] });
    // without autoscale on a pool: no pool settings
    expect(controllerSettings(parseConfig(pooled('    crawl: { flavor: p3.small, count: 0..4, services: [worker] }')), 'v7')!.pools).toBeUndefined();

    expect(problems(pooled('    crawl: { flavor: p3.small, count: 2, services: [worker], autoscale: { targetBacklog: 100, credential: os_pools } }'))).toEqual([
      'provider.pools.crawl.autoscale: the pool\'s count is fixed at 2: give it a range like 2..5 to autoscale it',
    ]);
    expect(problems(pooled('    crawl: { flavor: p3.small, count: 0..4, services: [api], autoscale: { targetBacklog: 100, credential: os_pools } }'))).toEqual([
      'provider.pools.crawl.autoscale: none of the pool\'s services (api) is under autoscale:, whose controller reads the backlog and scales the pool',
    ]);
    expect(problems(pooled('    crawl: { flavor: p3.small, count: 0..4, services: [worker], autoscale: { targetBacklog: 100, credential: os_pools } }', '[api_token]'))).toEqual([
      'provider.pools.crawl.autoscale[credential]: "os_pools" is not declared in the top-level secrets: list (have: api_token)',
    ]);
  });

  it('gives the controller no TLS key: the edge\'s folder (certificates, keys) and the TLS state (the ACME account) are hidden under its read-only view of the app folder', () => {
    const config = parseConfig(autoscaled);
    const mounts = planAutoscaler({ config, version: 'v7', image: 'i', network: 'n', secrets: { api_token: { id: 's1', name: 'crawler-api_token-1' } } })!.TaskTemplate.ContainerSpec.Mounts!;
    const seen = (hostPath: string) => {
      // the innermost mount over a host path decides what the container sees there
      const view = mounts.filter((m) => m.Type === 'bind' && m.Source !== undefined && hostPath.startsWith(`${m.Source}/`)).at(-1);
      if (view === undefined) return 'not mounted';
      const inside = `${view.Target}${hostPath.slice(view.Source!.length)}`;
      const cover = mounts.filter((m) => m !== view && (inside === m.Target || inside.startsWith(`${m.Target}/`)) && m.Target.length > view.Target.length).at(-1);
      return cover === undefined ? 'visible' : `hidden by ${cover.Type} ${cover.Source ?? ''}`.trim();
    };
    expect(seen('/var/lib/depl/crawler/release.json')).toBe('visible');
    expect(seen('/var/lib/depl/crawler/edge/tls/crawler.example.org/privkey.pem')).toBe('hidden by tmpfs');
    expect(seen('/var/lib/depl/crawler/tls/account.json')).toBe('hidden by tmpfs');
    // the lock's lease (who holds it, and its fencing counter)
    expect(seen('/var/lib/depl/crawler/lease/lock/holder.json')).toBe('hidden by tmpfs');
    // a branch database's seed dump, an accessory's restore record, the renewal task's engine gate
    expect(seen('/var/lib/depl/crawler/seeds/shop_db.dump')).toBe('hidden by tmpfs');
    expect(seen('/var/lib/depl/crawler/accessories/redis.restore.json')).toBe('hidden by tmpfs');
    expect(seen('/var/lib/depl/crawler/edge-gate/engine.sock')).toBe('hidden by tmpfs');
    // its own version's engine gate, and no other version's
    expect(seen('/var/lib/depl/crawler/autoscale/gates/v7/engine.sock')).toBe('visible');
    expect(seen('/var/lib/depl/crawler/autoscale/gates/v8/engine.sock')).toBe('hidden by tmpfs');
    expect(seen('/etc/ssl/private/key.pem')).toBe('not mounted');
    expect(autoscalerFoldersLine('crawler', 'v7')).toBe('mkdir -p /var/lib/depl/crawler/autoscale /var/lib/depl/crawler/edge /var/lib/depl/crawler/tls /var/lib/depl/crawler/lease /var/lib/depl/crawler/seeds /var/lib/depl/crawler/accessories /var/lib/depl/crawler/edge-gate && mkdir -p -m 700 /var/lib/depl/crawler/autoscale/gates/v7');
  });

  it('plans the controller service on the manager, and the autoscaled service within its bounds, labelled with them', () => {
    const config = parseConfig(autoscaled.replace('replicas: 3', 'replicas: 9'));
    const spec = planAutoscaler({ config, version: 'v7', image: 'depl-autoscaler:abc', network: 'crawler-net', secrets: { api_token: { id: 's1', name: 'crawler-api_token-1' } } })!;
    expect(spec.Name).toBe('crawler-v7-autoscaler');
    expect(spec.Labels).toMatchObject({ 'depl.app': 'crawler', 'depl.version': 'v7', 'depl.service': 'autoscaler' });
    expect(spec.Mode.Replicated.Replicas).toBe(1);
    expect(spec.TaskTemplate.Placement?.Constraints).toEqual(['node.labels.depl.edge==true']);
    // no Docker socket: it scales through its version's engine gate, whose socket folder alone it mounts
    expect(spec.TaskTemplate.ContainerSpec.Mounts).toEqual([
      { Type: 'bind', Source: '/var/lib/depl/crawler', Target: '/run/depl/release', ReadOnly: true },
      { Type: 'tmpfs', Target: '/run/depl/release/edge', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'tmpfs', Target: '/run/depl/release/tls', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'tmpfs', Target: '/run/depl/release/lease', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'tmpfs', Target: '/run/depl/release/seeds', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'tmpfs', Target: '/run/depl/release/accessories', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'tmpfs', Target: '/run/depl/release/edge-gate', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'tmpfs', Target: '/run/depl/release/autoscale', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'bind', Source: '/var/lib/depl/crawler/autoscale', Target: '/run/depl/autoscale' },
      { Type: 'tmpfs', Target: '/run/depl/autoscale/gates', TmpfsOptions: { SizeBytes: 4096, Mode: 0o500 } },
      { Type: 'bind', Source: '/var/lib/depl/crawler/autoscale/gates/v7', Target: '/run/depl/engine-gate' },
    ]);
    expect(JSON.stringify(spec)).not.toMatch(/docker\.sock/);
    expect(spec.TaskTemplate.Networks).toEqual([{ Target: 'crawler-net' }]);

    // the gate holds the socket: beside it on the manager, the same image, no network, the version's autoscaled services and bounds
    const gate = planControllerGate({ config, version: 'v7', image: 'depl-autoscaler:abc' })!;
    expect(gate.Name).toBe('crawler-v7-autoscaler-gate');
    expect(gate.Labels).toMatchObject({ 'depl.app': 'crawler', 'depl.version': 'v7', 'depl.service': 'autoscaler-gate' });
    expect(gate.TaskTemplate.ContainerSpec.Image).toBe('depl-autoscaler:abc');
    expect(gate.TaskTemplate.ContainerSpec.Command).toEqual(['node', '/opt/depl/engine-gate.mjs']);
    expect(gate.TaskTemplate.ContainerSpec.Env).toContain(`DEPL_ENGINE_GATE=${JSON.stringify({ policy: 'scale', app: 'crawler', version: 'v7', services: [{ name: 'crawler-v7-worker', min: 1, max: 6 }] })}`);
    expect(gate.TaskTemplate.ContainerSpec.Mounts).toEqual([
      { Type: 'bind', Source: '/var/lib/depl/crawler/autoscale/gates/v7', Target: '/run/depl/engine-gate' },
      { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' },
    ]);
    expect(gate.TaskTemplate.ContainerSpec.Secrets).toBeUndefined();
    expect(gate.TaskTemplate.Networks).toEqual([]);
    expect(gate.TaskTemplate.Placement?.Constraints).toEqual(spec.TaskTemplate.Placement?.Constraints);
    expect(spec.TaskTemplate.ContainerSpec.Secrets).toEqual([{ File: { Name: 'api_token', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 's1', SecretName: 'crawler-api_token-1' }]);
    const args = spec.TaskTemplate.ContainerSpec.Args!;
    expect(args[0]).toBe('--settings');
    expect(controllerSettingsSchema.parse(JSON.parse(args[1]!)).policies[0]!.max).toBe(6);

    const services = planVersionServices({
      config, version: 'v7', images: { api: 'crawler/api:v7', worker: 'crawler/api:v7' }, network: 'crawler-net', configRef: { id: 'c', name: 'cfg' },
      secrets: { api_token: { id: 's1', name: 'crawler-api_token-1' } }, nodes: 3,
    });
    const worker = services.find((s) => s.Name === 'crawler-v7-worker')!;
    expect(worker.Mode.Replicated.Replicas).toBe(6);
    expect(worker.Labels['depl.autoscale']).toBe('1-6');
    expect(parseAutoscaleLabel(worker.Labels['depl.autoscale'])).toEqual({ min: 1, max: 6 });
    expect(services.find((s) => s.Name === 'crawler-v7-api')!.Labels['depl.autoscale']).toBeUndefined();
    expect(planAutoscaler({ config: parseConfig(crawlerYaml), version: 'v7', image: 'x', network: 'n' })).toBeNull();
  });

  it('refuses a service named like the controller when something is autoscaled', () => {
    const text = autoscaled.replace('accessories:', '  autoscaler: { image: x:1 }\naccessories:');
    expect(problems(text)).toContain('services.autoscaler: "autoscaler" is the name of the autoscale controller\'s service; rename this service');
    const gate = autoscaled.replace('accessories:', '  autoscaler-gate: { image: x:1 }\naccessories:');
    expect(problems(gate)).toContain('services.autoscaler-gate: "autoscaler-gate" is the name of the autoscale controller\'s engine gate; rename this service');
  });
});

describe('the recorded state', () => {
  const p: ScalePolicy = { service: 'worker', swarmService: 'c-v1-worker', min: 1, max: 4, targetBacklog: 10, cooldownMs: 5000, upCooldownMs: 0, metrics: { url: 'http://c-v1-api:8000/metrics', gauge: 'g' } };
  it('keeps the last change and the last reading, and reads back through its schema', () => {
    const up = decideScale(p, startMemory(T0), { now: T0 + 1000, current: 1, backlog: 35 });
    const first = recordReading(undefined, p, { now: T0 + 1000, current: 1, backlog: 35 }, up);
    const hold = decideScale(p, up.memory, { now: T0 + 2000, current: 4, backlog: 0 });
    const second = recordReading(first, p, { now: T0 + 2000, current: 4, backlog: 0 }, hold);
    expect(second.lastChange).toMatchObject({ action: 'up', from: 1, to: 4, backlog: 35 });
    expect(second.last).toMatchObject({ action: 'hold', from: 4, to: 4, backlog: 0 });
    expect(second.changes).toHaveLength(1);
    const state = parseControllerState(JSON.parse(JSON.stringify({ version: 'v1', live: true, updatedAt: new Date(T0).toISOString(), services: { worker: second } })));
    expect(state).not.toBeNull();
    expect(describeAutoscale(state, T0 + 5000)).toEqual([
      'worker: 4 replicas (1..4), backlog 0 read 3s ago; last up 1->4 4s ago (backlog 35 / 10 per replica wants 4)',
    ]);
    expect(parseControllerState({ version: 'v1' })).toBeNull();
  });
});
