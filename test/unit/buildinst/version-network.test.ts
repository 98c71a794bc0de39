import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { renderPlanText } from '../../../src/plan/change-plan.js';
import { planInstall, type InstallFacts, type InstallStep, type PresentService } from '../../../src/plan/install-plan.js';
import { emptyReleaseState, type ReleaseState } from '../../../src/plan/release-state.js';
import { versionsFromServices } from '../../../src/plan/releases.js';
import type { ServiceSpec } from '../../../src/plan/services.js';

/**
 * Compose names inside a version, and stateful web services, as plan data (src/plan/install-plan.ts,
 * src/plan/services.ts): each version's services answer to their compose names on the version's own network
 * only; a service with a volume is one pinned task that a new version takes over stop-first.
 */
const proxyApp = `
app: shop
domain: shop.test
services:
  proxy: { image: "nginx:1.27", port: 80, http: true, health: /, files: { /etc/nginx/nginx.conf: nginx.conf } }
  backend: { build: { context: ., dockerfile: Dockerfile } }
accessories:
  db: { image: "postgres:16", volume: "pg-data:/var/lib/postgresql/data", port: 5432 }
`;

const statefulApp = `
app: notes
domain: notes.test
services:
  web: { image: "notes:1", port: 3000, http: true, health: /, volume: "notes-data:/data", node: node-2 }
accessories:
  db: { image: "postgres:16", volume: "pg-data:/var/lib/postgresql/data", port: 5432 }
`;

const facts = (yaml: string, over: Partial<InstallFacts> = {}): InstallFacts => {
  const config = parseConfig(yaml);
  const present = over.present ?? [];
  return {
    config, version: 'v2', command: 'depl buildinst --version v2', present, foreign: [], state: emptyReleaseState(config.app),
    installed: versionsFromServices(config.app, [...present]), earlierSpecs: [], secrets: [],
    cluster: { network: `${config.app}-net`, nodes: ['node-1', 'node-2'], manager: 'node-1' }, tls: 'off', at: '2026-12-06T10:00:00Z', by: 'ops@test', ...over,
  };
};
const planned = (f: InstallFacts) => {
  const result = planInstall(f);
  if (!result.ok) throw new Error(result.refusal.message);
  return result.plan;
};
const specs = (steps: InstallStep[]): ServiceSpec[] => steps.flatMap((s) => (s.kind === 'create-service' ? [s.spec] : []));
const kinds = (steps: InstallStep[]) => steps.map((s) => s.kind);
const present = (name: string, labels: Record<string, string>, replicas = 1): PresentService => ({ name, labels, createdAt: '2026-12-01T00:00:00Z', replicas, image: 'notes:1' });
const notesV1 = [
  present('notes-v1-web', { 'depl.app': 'notes', 'depl.version': 'v1', 'depl.service': 'web', 'depl.http': 'true', 'depl.port': '3000', 'depl.health': '/', 'depl.volume': 'notes-notes-data' }),
  present('db', { 'depl.app': 'notes', 'depl.accessory': 'db' }),
];
const live = (version: string): ReleaseState => ({ ...emptyReleaseState('notes'), live: version });

describe('compose names inside a version', () => {
  it('each service joins the app network and the version network, answering there to its depl.yaml name', () => {
    const plan = planned(facts(proxyApp));
    expect(plan.steps.find((s) => s.kind === 'ensure-network')).toEqual({
      kind: 'ensure-network', name: 'shop-v2-net', labels: { 'depl.app': 'shop', 'depl.version': 'v2' },
      describe: 'ensure overlay network shop-v2-net: the version\'s services reach each other there by their names (proxy, backend)',
      undo: 'remove network shop-v2-net',
    });
    expect(kinds(plan.steps).indexOf('ensure-network')).toBeLessThan(kinds(plan.steps).indexOf('create-service'));
    expect(Object.fromEntries(specs(plan.steps).map((s) => [s.Name, s.TaskTemplate.Networks]))).toEqual({
      'shop-v2-proxy': [{ Target: 'shop-net' }, { Target: 'shop-v2-net', Aliases: ['proxy'] }],
      'shop-v2-backend': [{ Target: 'shop-net' }, { Target: 'shop-v2-net', Aliases: ['backend'] }],
    });
    // accessories are on the app network only, as <app>-<name> answering to their own name (db:5432 from every version)
    const db = plan.steps.find((s) => s.kind === 'create-accessory');
    expect(db).toMatchObject({ spec: { Name: 'shop-db', TaskTemplate: { Networks: [{ Target: 'shop-net', Aliases: ['db'] }] } } });
    expect(renderPlanText(plan)).toContain('undo: remove network shop-v2-net');
  });

  it('a compose name that is not a depl name stays an alias: on the version network for a service, the app network for an accessory', () => {
    const yaml = proxyApp
      .replace('  backend: {', '  backend: { aliases: [back_end], ')
      .replace('  db: {', '  db: { aliases: [My_DB], ');
    const plan = planned(facts(yaml));
    expect(specs(plan.steps).find((s) => s.Name === 'shop-v2-backend')?.TaskTemplate.Networks).toEqual([{ Target: 'shop-net' }, { Target: 'shop-v2-net', Aliases: ['backend', 'back_end'] }]);
    expect(plan.steps.find((s) => s.kind === 'create-accessory')).toMatchObject({ spec: { Name: 'shop-db', TaskTemplate: { Networks: [{ Target: 'shop-net', Aliases: ['db', 'My_DB'] }] } } });
    // one name, one set of containers: an alias may not be another's name, compared as DNS does (without case)
    expect(() => parseConfig(proxyApp.replace('  backend: {', '  backend: { aliases: [DB], '))).toThrow(/aliases.*"DB" already names db/s);
    expect(() => parseConfig(proxyApp.replace('  backend: {', '  backend: { aliases: ["bad name"], '))).toThrow(/expected a host name/);
  });

  it('two versions side by side: the same aliases on two networks, so neither version reaches the other\'s backend', () => {
    const v2 = specs(planned(facts(proxyApp)).steps);
    const v3 = specs(planned(facts(proxyApp, { version: 'v3', command: 'depl buildinst --version v3' })).steps);
    const networks = (list: ServiceSpec[]) => new Set(list.flatMap((s) => s.TaskTemplate.Networks.filter((n) => n.Aliases !== undefined).map((n) => n.Target)));
    expect([...networks(v2)]).toEqual(['shop-v2-net']);
    expect([...networks(v3)]).toEqual(['shop-v3-net']);
    // the only network both versions share is the app's, where no service has an alias
    const shared = v2.flatMap((s) => s.TaskTemplate.Networks).filter((n) => v3.some((t) => t.TaskTemplate.Networks.some((m) => m.Target === n.Target)));
    expect(shared).toEqual([{ Target: 'shop-net' }, { Target: 'shop-net' }]);
  });
});

describe('a stateful web service (an image with a named volume and an HTTP port)', () => {
  it('is one task routed by the edge, with its volume, pinned to its node, updated stop-first', () => {
    const plan = planned(facts(statefulApp, { version: 'v1', command: 'depl buildinst --version v1' }));
    const [web] = specs(plan.steps);
    expect(web).toMatchObject({
      Name: 'notes-v1-web',
      // a new app's volume is named after the app (two apps' notes-data are two volumes)
      Labels: { 'depl.http': 'true', 'depl.port': '3000', 'depl.volume': 'notes-notes-data' },
      Mode: { Replicated: { Replicas: 1 } },
      UpdateConfig: { Order: 'stop-first' },
      TaskTemplate: {
        Placement: { Constraints: ['node.hostname==node-2'] },
        ContainerSpec: { Mounts: [{ Type: 'volume', Source: 'notes-notes-data', Target: '/data', VolumeOptions: { Labels: { 'depl.app': 'notes', 'depl.service': 'web' } } }] },
      },
    });
    expect(plan.url).toBe('http://v1.notes.test/');
    // the first version takes nothing over
    expect(kinds(plan.steps)).not.toContain('stop-stateful');
    expect(kinds(plan.steps)).not.toContain('take-live');
  });

  it('a new version takes the volume over from the live one: stop first, then create, check health, go live; each undone in reverse', () => {
    const plan = planned(facts(statefulApp, { present: notesV1, state: live('v1') }));
    expect(kinds(plan.steps).slice(kinds(plan.steps).indexOf('ensure-network'))).toEqual([
      'ensure-network', 'write-install-intent', 'stop-stateful', 'create-service', 'await-tasks', 'route-version', 'health-gate', 'take-live',
      'clear-install-intent', 'renewal-task', 'hook',
    ]);
    const stopped = [{ name: 'notes-v1-web', version: 'v1', replicas: 1 }];
    expect(plan.steps.find((s) => s.kind === 'write-install-intent')).toMatchObject({ stopped });
    expect(plan.steps.find((s) => s.kind === 'stop-stateful')).toEqual({
      kind: 'stop-stateful', services: stopped,
      describe: 'stop notes-v1-web (version v1): the volume is taken over stop-first', undo: 'start notes-v1-web again',
    });
    expect(plan.steps.find((s) => s.kind === 'take-live')).toEqual({
      kind: 'take-live', version: 'v2', from: 'v1',
      describe: "make version v2 live: the takeover stopped the live version v1's notes-v1-web", undo: 'make version v1 live again',
    });
    expect(plan.notes.join('\n')).toMatch(/this install stops notes-v1-web first \(stop-first takeover\), so the live domain notes\.test fails from that stop until version v2 passes its health check and goes live \(no zero downtime for a stateful service/);
  });

  it('the next version mounts the app-scoped volume and takes it over from the version on it (one on the unscoped name was moved before: src/plan/volume-move.ts)', () => {
    const plan = planned(facts(statefulApp, { present: notesV1, state: live('v1') }));
    const web = specs(plan.steps).find((spec) => spec.Name === 'notes-v2-web')!;
    expect(web.Labels['depl.volume']).toBe('notes-notes-data');
    expect(web.TaskTemplate.ContainerSpec.Mounts).toEqual([expect.objectContaining({ Source: 'notes-notes-data', Target: '/data' })]);
    expect(plan.steps.find((s) => s.kind === 'stop-stateful')).toMatchObject({ services: [{ name: 'notes-v1-web', version: 'v1', replicas: 1 }] });
    // a version still labelled with the unscoped name holds another volume: the move points it at the app-scoped one first
    const unscoped = notesV1.map((s) => (s.labels['depl.volume'] !== undefined ? { ...s, labels: { ...s.labels, 'depl.volume': 'notes-data' } } : s));
    expect(kinds(planned(facts(statefulApp, { present: unscoped, state: live('v1') })).steps)).not.toContain('stop-stateful');
  });

  it('takes over from a version that is not live without switching; a stopped version is not stopped again', () => {
    const notLive = planned(facts(statefulApp, { present: notesV1 }));
    expect(kinds(notLive.steps)).toContain('stop-stateful');
    expect(kinds(notLive.steps)).not.toContain('take-live');
    expect(notLive.notes.join('\n')).toMatch(/version v1 stops answering/);
    const alreadyStopped = planned(facts(statefulApp, { present: [{ ...notesV1[0]!, replicas: 0 }, notesV1[1]!], state: live('v1') }));
    expect(kinds(alreadyStopped.steps)).not.toContain('stop-stateful');
  });

  it('refuses a branch deploy, which would take the live version\'s data (exit 2, before any step)', () => {
    const result = planInstall(facts(statefulApp, { version: 'feature-x', branch: 'feature-x', present: notesV1, state: live('v1') }));
    expect(result).toMatchObject({ ok: false, refusal: { code: 'STATEFUL_BRANCH', message: expect.stringMatching(/would take the volume of web over/) } });
  });

  it('depl.yaml refuses replicas, autoscale and node: that a stateful service cannot have', () => {
    expect(() => parseConfig(statefulApp.replace('node: node-2 }', 'node: node-2, replicas: 2 }'))).toThrow(/services\.web\.replicas: a service with a volume runs one task/);
    expect(() => parseConfig(statefulApp.replace(', volume: "notes-data:/data", node: node-2', ', node: node-2'))).toThrow(/services\.web\.node: pins a service with a volume/);
  });
});
