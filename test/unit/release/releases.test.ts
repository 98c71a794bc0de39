import { describe, expect, it } from 'vitest';
import { serviceSummaries, versionsFromServices, type ServiceSummary } from '../../../src/plan/releases.js';
import { planPrune, routingFor } from '../../../src/plan/release-state.js';

const svc = (app: string, version: string, service: string, createdAt: string, extra: Record<string, string> = {}): ServiceSummary => ({
  name: `${app}-${version}-${service}`,
  labels: { 'depl.app': app, 'depl.version': version, 'depl.service': service, 'depl.http': service === 'api' ? 'true' : 'false', ...(service === 'api' ? { 'depl.port': '8000', 'depl.health': '/healthz' } : {}), ...extra },
  createdAt,
  replicas: 1,
});

const listing: ServiceSummary[] = [
  svc('crawler', 'v2', 'api', '2026-11-22T10:00:00Z'),
  svc('crawler', 'v2', 'worker', '2026-11-22T10:00:01Z'),
  svc('crawler', 'v1', 'api', '2026-11-21T10:00:00Z'),
  svc('crawler', 'v1', 'worker', '2026-11-21T10:00:00Z'),
  svc('crawler', 'feat', 'api', '2026-11-23T10:00:00Z', { 'depl.branch': 'feat' }),
  svc('other', 'v9', 'api', '2026-11-20T10:00:00Z'),
  { name: 'redis', labels: { 'depl.app': 'crawler', 'depl.accessory': 'redis' }, createdAt: '2026-11-20T00:00:00Z', replicas: 1 },
];

describe('installed versions', () => {
  it('are grouped from service labels, oldest first, only this app\'s, without accessories', () => {
    const versions = versionsFromServices('crawler', listing);
    expect(versions.map((v) => v.label)).toEqual(['v1', 'v2', 'feat']);
    expect(versions[1]).toEqual({
      label: 'v2', createdAt: '2026-11-22T10:00:00Z', services: ['crawler-v2-api', 'crawler-v2-worker'],
      http: { service: 'crawler-v2-api', port: 8000, health: '/healthz' }, replicas: { 'crawler-v2-api': 1, 'crawler-v2-worker': 1 },
    });
    expect(versions[2]!.branch).toBe('feat');
  });

  it('become the routing, keeping live and canary only when installed', () => {
    const versions = versionsFromServices('crawler', listing);
    const state = routingFor({ live: 'v1', canary: { version: 'gone', weight: 10 } }, 'crawler', 'crawler.localhost', versions);
    expect(state).toEqual({
      app: 'crawler', domain: 'crawler.localhost', live: 'v1',
      versions: [
        { label: 'v1', upstream: { service: 'crawler-v1-api', port: 8000 } },
        { label: 'v2', upstream: { service: 'crawler-v2-api', port: 8000 } },
        { label: 'feat', upstream: { service: 'crawler-feat-api', port: 8000 } },
      ],
    });
  });
});

describe('prune', () => {
  const versions = ['a', 'b', 'c', 'd', 'e', 'f'].map((label, i) => ({ label, createdAt: `2026-11-2${i}T00:00:00Z`, services: [`x-${label}-api`] }));

  it('never removes live, canary or previous, and keeps the N newest others', () => {
    const plan = planPrune(versions, { live: 'a', previous: 'b', canary: { version: 'c', weight: 10 } }, 1);
    expect(plan.remove.map((v) => v.label)).toEqual(['d', 'e']);
    expect(plan.keep).toEqual([
      { label: 'a', why: 'live' }, { label: 'b', why: 'previous' }, { label: 'c', why: 'canary' }, { label: 'f', why: 'recent' },
    ]);
  });

  it('with keep 0 removes everything unprotected; with nothing marked, keeps the newest', () => {
    expect(planPrune(versions, { live: 'f', previous: null, canary: null }, 0).remove.map((v) => v.label)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(planPrune(versions, { live: null, previous: null, canary: null }, 2).remove.map((v) => v.label)).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('the swarm\'s service list', () => {
  it('becomes summaries: name, labels, creation time and replicas', () => {
    const listed = [{ ID: 'x1', CreatedAt: '2026-11-22T10:00:00Z', Spec: { Name: 'crawler-v2-api', Labels: { 'depl.app': 'crawler' }, Mode: { Replicated: { Replicas: 2 } } } }, { ID: 'x2' }];
    expect(serviceSummaries(listed)).toEqual([
      { name: 'crawler-v2-api', labels: { 'depl.app': 'crawler' }, createdAt: '2026-11-22T10:00:00Z', replicas: 2 },
      { name: 'x2', labels: {}, createdAt: '', replicas: 0 },
    ]);
    expect(serviceSummaries([])).toEqual([]);
  });
});
