import type { QuotaFigure, ServiceQuota } from '../../plan/allocation.js';
import { OpenStackApiError } from './http.js';
import type { KeystoneSession } from './keystone.js';
import type { NovaClient } from './nova.js';

/**
 * The project's quotas and what it uses, read from each service's own API: Nova's absolute limits, Neutron's
 * quota details, Cinder's quota set with usage (only when the plan makes volumes), Octavia's quota and load
 * balancers (only when it makes one). A service absent from the catalog is "not checked", not an error.
 */
export async function readQuotas(session: KeystoneSession, nova: NovaClient, wants: { volumes: boolean; loadBalancers: boolean }): Promise<ServiceQuota[]> {
  const projectId = await session.projectId();
  return Promise.all([
    readable('Nova', () => novaQuota(nova)),
    readable('Neutron', () => neutronQuota(session, projectId)),
    wants.volumes ? readable('Cinder', () => cinderQuota(session, projectId)) : { service: 'Cinder', notChecked: 'the plan makes no volumes' },
    wants.loadBalancers ? readable('Octavia', () => octaviaQuota(session, projectId)) : { service: 'Octavia', notChecked: 'the plan makes no load balancer' },
  ]);
}

/** A quota the cloud's policy does not let this user read is not checked (saying why), rather than fatal. */
async function readable(service: ServiceQuota['service'], read: () => Promise<ServiceQuota>): Promise<ServiceQuota> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof OpenStackApiError && (error.status === 403 || error.status === 404)) return { service, notChecked: `HTTP ${error.status}: ${error.apiText}` };
    throw error;
  }
}

const limitOf = (n: unknown): number | null => (typeof n === 'number' && n >= 0 ? n : null);
const count = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) ? n : 0);

async function novaQuota(nova: NovaClient): Promise<ServiceQuota> {
  const a = await nova.absoluteLimits();
  return {
    service: 'Nova',
    figures: [
      { resource: 'instances', limit: limitOf(a.maxTotalInstances), used: count(a.totalInstancesUsed) },
      { resource: 'cores', limit: limitOf(a.maxTotalCores), used: count(a.totalCoresUsed) },
      { resource: 'ram', limit: limitOf(a.maxTotalRAMSize), used: count(a.totalRAMUsed) },
    ],
  };
}

/** The service's base URL without a version suffix (catalogs differ on whether they include it). */
function unversioned(url: string, version: RegExp): string {
  return url.replace(/\/+$/, '').replace(version, '');
}

async function neutronQuota(session: KeystoneSession, projectId: string | undefined): Promise<ServiceQuota> {
  const endpoint = await session.optionalEndpoint('network');
  if (endpoint === undefined) return { service: 'Neutron', notChecked: 'no network service in the catalog' };
  if (projectId === undefined) return { service: 'Neutron', notChecked: 'the token is not scoped to a project' };
  const base = unversioned(endpoint, /\/v2\.0$/);
  const response = await session.serviceRequest(base, `/v2.0/quotas/${encodeURIComponent(projectId)}/details.json`, { service: 'Neutron' });
  const quota = (response.body as { quota?: Record<string, { limit?: number; used?: number; reserved?: number }> }).quota ?? {};
  const figures: QuotaFigure[] = [];
  for (const resource of ['floatingip', 'network', 'port', 'security_group', 'security_group_rule'] as const) {
    const q = quota[resource];
    if (q === undefined) continue;
    figures.push({ resource, limit: limitOf(q.limit), used: count(q.used) + count(q.reserved) });
  }
  return { service: 'Neutron', figures };
}

async function cinderQuota(session: KeystoneSession, projectId: string | undefined): Promise<ServiceQuota> {
  const endpoint = (await session.optionalEndpoint('volumev3')) ?? (await session.optionalEndpoint('block-storage'));
  if (endpoint === undefined) return { service: 'Cinder', notChecked: 'no block-storage service in the catalog' };
  if (projectId === undefined) return { service: 'Cinder', notChecked: 'the token is not scoped to a project' };
  // Cinder's catalog URL already names the project: .../v3/<project_id>
  const response = await session.serviceRequest(endpoint.replace(/\/+$/, ''), `/os-quota-sets/${encodeURIComponent(projectId)}?usage=true`, { service: 'Cinder' });
  const set = (response.body as { quota_set?: Record<string, { limit?: number; in_use?: number; reserved?: number }> }).quota_set ?? {};
  const figures: QuotaFigure[] = [];
  for (const resource of ['volumes', 'gigabytes'] as const) {
    const q = set[resource];
    if (q !== undefined) figures.push({ resource, limit: limitOf(q.limit), used: count(q.in_use) + count(q.reserved) });
  }
  return { service: 'Cinder', figures };
}

async function octaviaQuota(session: KeystoneSession, projectId: string | undefined): Promise<ServiceQuota> {
  const endpoint = await session.optionalEndpoint('load-balancer');
  if (endpoint === undefined) return { service: 'Octavia', notChecked: 'no load-balancer service in the catalog' };
  if (projectId === undefined) return { service: 'Octavia', notChecked: 'the token is not scoped to a project' };
  const base = unversioned(endpoint, /\/v2(\.0)?$/);
  const id = encodeURIComponent(projectId);
  const quota = (await session.serviceRequest(base, `/v2/lbaas/quotas/${id}`, { service: 'Octavia' })).body as { quota?: { load_balancer?: number; loadbalancer?: number } };
  // Octavia's quota API reports limits only: what is used is the project's load balancers
  const list = (await session.serviceRequest(base, `/v2/lbaas/loadbalancers?project_id=${id}`, { service: 'Octavia' })).body as { loadbalancers?: unknown[] };
  return { service: 'Octavia', figures: [{ resource: 'loadbalancer', limit: limitOf(quota.quota?.load_balancer ?? quota.quota?.loadbalancer), used: list.loadbalancers?.length ?? 0 }] };
}
