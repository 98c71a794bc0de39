import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { planAutoscaler } from '../../../src/plan/autoscale.js';
import { planControllerUpgrade } from '../../../src/plan/autoscale-upgrade.js';
import { planStateLayout } from '../../../src/plan/state-layout.js';
import { planRenewerService, renewerMounts, type RenewerSettings } from '../../../src/plan/tls/renewal.js';
import { planRenewerUpgrade } from '../../../src/plan/tls/renewal-upgrade.js';

/** Which services an earlier depl installed with more than they need, and what replaces them: data in, data out. */
const config = parseConfig(`app: shop
domain: shop.example.org
services:
  web: { image: nginx, port: 8080, http: true, health: /healthz }
  worker: { image: nginx, replicas: 2 }
autoscale:
  worker: { min: 1, max: 4, targetBacklog: 10, metrics: { service: web, gauge: backlog } }
`);
const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
const current = json(planAutoscaler({ config, version: 'v1', image: 'depl-autoscaler:abc', network: 'shop-net' }));
const mounts = (spec: Record<string, unknown>) => (spec.TaskTemplate as { ContainerSpec: { Mounts: Array<Record<string, unknown>> } }).ContainerSpec.Mounts;
const withMounts = (spec: Record<string, unknown>, replace: (m: Array<Record<string, unknown>>) => Array<Record<string, unknown>>) => {
  const copy = json(spec);
  (copy.TaskTemplate as { ContainerSpec: { Mounts: unknown } }).ContainerSpec.Mounts = replace(mounts(copy));
  return copy;
};
/** Before the engine gates: the socket mounted, no gate folder, the ACME account under /dev/null. */
const withSocket = withMounts(current, (m) => [
  { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' },
  ...m.filter((x) => !String(x.Target).startsWith('/run/depl/engine-gate') && x.Target !== '/run/depl/autoscale/gates' && !['/run/depl/release/tls', '/run/depl/release/lease'].includes(String(x.Target))),
  { Type: 'bind', Source: '/dev/null', Target: '/run/depl/release/tls-account.json', ReadOnly: true },
]);

describe('an autoscale controller an earlier depl installed', () => {
  it('holding the Docker socket: planned again from its own settings, without the socket, beside a gate that holds it', () => {
    const upgrade = planControllerUpgrade('shop', { name: 'shop-v1-autoscaler', spec: withSocket });
    expect(upgrade).toMatchObject({ kind: 'controller', service: 'shop-v1-autoscaler', version: 'v1', why: expect.stringMatching(/holds the manager's Docker socket/) });
    if (upgrade?.kind !== 'controller') throw new Error('no upgrade');
    expect(json(upgrade.controller)).toEqual({ ...current, TaskTemplate: { ...(current.TaskTemplate as object), ContainerSpec: { ...(current.TaskTemplate as { ContainerSpec: object }).ContainerSpec, Image: '' } } });
    expect(JSON.stringify(upgrade.controller)).not.toMatch(/docker\.sock/);
    expect(upgrade.gate.Name).toBe('shop-v1-autoscaler-gate');
    expect(upgrade.gate.TaskTemplate.ContainerSpec.Env).toContain(`DEPL_ENGINE_GATE=${JSON.stringify({ policy: 'scale', app: 'shop', version: 'v1', services: [{ name: 'shop-v1-worker', min: 1, max: 4 }] })}`);
  });

  it('gated, but hiding the ACME account where it used to be: given this depl\'s mounts', () => {
    const gatedBefore = withMounts(current, (m) => [...m.filter((x) => !['/run/depl/release/tls', '/run/depl/release/lease'].includes(String(x.Target))), { Type: 'bind', Source: '/dev/null', Target: '/run/depl/release/tls-account.json', ReadOnly: true }]);
    expect(planControllerUpgrade('shop', { name: 'shop-v1-autoscaler', spec: gatedBefore })).toMatchObject({ kind: 'controller', why: expect.stringMatching(/sees more of the app's folder/) });
  });

  it('as this depl plans it, or another app\'s, or not a controller: nothing to do', () => {
    expect(planControllerUpgrade('shop', { name: 'shop-v1-autoscaler', spec: current })).toBeNull();
    expect(planControllerUpgrade('other', { name: 'shop-v1-autoscaler', spec: withSocket })).toBeNull();
    expect(planControllerUpgrade('shop', { name: 'shop-v1-worker', spec: { Labels: { 'depl.app': 'shop', 'depl.service': 'worker' } } })).toBeNull();
  });

  it('whose settings this depl cannot read: reported with what to do, never guessed at', () => {
    const unreadable = json(withSocket);
    (unreadable.TaskTemplate as { ContainerSpec: { Args: string[] } }).ContainerSpec.Args = ['--settings', '{"app":"shop","version":"v1"}'];
    expect(planControllerUpgrade('shop', { name: 'shop-v1-autoscaler', spec: unreadable })).toEqual({
      kind: 'report', service: 'shop-v1-autoscaler',
      why: expect.stringMatching(/^the autoscale controller shop-v1-autoscaler has settings this depl cannot read \(intervalMs: .*\), and it still holds the manager's Docker socket$/),
      hint: 'Run `depl buildinst --version v1` again (it installs its controller anew), or `depl prune` it if it is no longer needed.',
    });
  });
});

const settings: RenewerSettings = { app: 'shop', domain: 'shop.example.org', directory: 'https://acme.test/dir', challenge: 'dns-01', renewBeforeMs: 1000, everyMs: 2000, edgeUrl: 'http://10.0.0.5:80' };
const now = json(planRenewerService({ settings, image: 'node:20', script: '/s.mjs', scriptHash: 'a', dnsSecret: { id: 'sec1', name: 'shop-dns-1' } }));
/** Before state layout 2: the app's folder read-write. */
const earlier = withMounts(now, () => [{ Type: 'bind', Source: '/var/lib/depl/shop', Target: '/var/lib/depl/shop' }, { Type: 'bind', Source: '/var/lib/depl/shop/renewer', Target: '/var/lib/depl/shop/renewer', ReadOnly: true }]);

describe('the renewal task an earlier depl installed', () => {
  it('with the app\'s folder read-write: installed again from its settings, image and DNS-01 secret', () => {
    expect(planRenewerUpgrade('shop', { name: 'shop-tls-renewer', spec: earlier })).toEqual({
      kind: 'renewer', service: 'shop-tls-renewer', settings, image: 'node:20', dnsSecret: { id: 'sec1', name: 'shop-dns-1' }, why: expect.stringMatching(/mounts more of the manager than it needs/),
    });
    expect(planRenewerUpgrade('shop', { name: 'shop-tls-renewer', spec: now })).toBeNull();
    expect(mounts(now)).toEqual(json(renewerMounts('shop')));
  });

  it('whose settings cannot be read: reported, for depl buildinst (which installs it from depl.yaml)', () => {
    const broken = json(earlier);
    (broken.TaskTemplate as { ContainerSpec: { Env: string[] } }).ContainerSpec.Env = ['DEPL_RENEWER={not json'];
    expect(planRenewerUpgrade('shop', { name: 'shop-tls-renewer', spec: broken })).toMatchObject({ kind: 'report', hint: expect.stringMatching(/depl buildinst/) });
  });
});

describe('the move to state layout 2', () => {
  const at = '2026-12-07T08:00:00.000Z';
  it('nothing when the layout file says 2; otherwise the fence, the stops, the files, then the controllers, then the renewal task, then the layout file', () => {
    expect(planStateLayout({ root: '/var/lib/depl', app: 'shop', layout: 2, services: [{ name: 'shop-v1-autoscaler', spec: withSocket }], at })).toBeNull();
    const plan = planStateLayout({ root: '/var/lib/depl', app: 'shop', layout: 0, services: [{ name: 'shop-tls-renewer', spec: earlier }, { name: 'shop-v1-autoscaler', spec: withSocket }], at })!;
    expect(plan.prepare.slice(3)).toEqual(['depl-layout', '/var/lib/depl/shop', expect.stringMatching(/lease\/lock on 2026-12-07T08:00:00.000Z.*\n.*upgrade depl/), '2']);
    // both could read tls/account.json (the app's folder read-write; the Docker socket): stopped before it moves
    expect(plan.stops).toEqual(['shop-tls-renewer', 'shop-v1-autoscaler']);
    expect(plan.move).toEqual(['sh', '-c', expect.stringContaining('mv "$d/tls-account.json" "$d/tls/account.json"'), 'depl-layout', '/var/lib/depl/shop']);
    expect(plan.upgrades.map((u) => u.service)).toEqual(['shop-v1-autoscaler', 'shop-tls-renewer']);
    expect(plan.finish).toEqual(['sh', '-c', expect.stringContaining('mv -f "$d/layout.tmp" "$d/layout"'), 'depl-layout', '/var/lib/depl/shop', '2']);
  });

  it('a service it cannot plan holds the layout file back: every command says so again until it is dealt with', () => {
    const unreadable = json(withSocket);
    (unreadable.TaskTemplate as { ContainerSpec: { Args: string[] } }).ContainerSpec.Args = [];
    const plan = planStateLayout({ root: '/var/lib/depl', app: 'shop', layout: 0, services: [{ name: 'shop-v1-autoscaler', spec: unreadable }], at })!;
    expect(plan.reports.map((r) => r.service)).toEqual(['shop-v1-autoscaler']);
    // it holds the Docker socket: stopped, and kept so
    expect(plan.stops).toEqual(['shop-v1-autoscaler']);
    expect(plan.keptStopped).toEqual(['shop-v1-autoscaler']);
    expect(plan.finish).toBeNull();
  });
});
