import type { GateRequest } from './engine-gate-request.js';
import { isObject, sameJson } from './autoscale-gate.js';

/**
 * The pool part of an autoscale controller's engine gate, as data. Before a pool shrinks, the controller drains
 * the nodes that go (src/autoscaler/pool-swarm.ts): it lists the pool's nodes (label depl.pool=<pool>), lists
 * the tasks on each, and sets a node's availability to drain (or back to active). The gate passes on exactly
 * those calls, only for nodes of the pools the version's controller sizes, and rebuilds a node update from the
 * node's current spec with only its availability changed. A node's description is no secret and is passed on
 * whole; a task is cut down to its id and state (its spec carries the service's environment).
 */
export interface PoolGateSettings {
  app: string;
  version: string;
  pools: string[];
}

/** A swarm node as the Engine's inspect returns it (the parts the gate reads). */
export interface GateNode {
  ID: string;
  Version: { Index: number };
  Spec: Record<string, unknown>;
}

export type PoolGateDecision =
  | { allow: true; kind: 'nodes' | 'node'; method: 'GET'; path: string }
  /** Passed on; the answer is cut down to poolTaskView. */
  | { allow: true; kind: 'tasks'; method: 'GET'; path: string }
  | { allow: true; kind: 'node-update'; method: 'POST'; path: string; body: Record<string, unknown> }
  | { allow: false; status: 403 | 409; reason: string };

/** Swarm object ids: 25 characters of [a-z0-9]. */
const NODE_ID = /^[a-z0-9]{25}$/;
const NODE_INSPECT = /^\/nodes\/([a-z0-9]{25})$/;
const NODE_UPDATE = /^\/nodes\/([a-z0-9]{25})\/update\?version=(\d+)$/;
const AVAILABILITIES = new Set(['active', 'drain']);

/** Whether `request` is one for the pool part of the gate (nodes and tasks). */
export function isPoolRequest(request: GateRequest): boolean {
  return /^\/(nodes|tasks)(\/|\?|$)/.test(request.path);
}

/** The single `filters` query of a listing, parsed; null when the query is anything else. */
function onlyFilters(path: string, listing: '/nodes' | '/tasks'): Record<string, unknown> | null {
  const url = new URL(path, 'http://gate');
  if (url.pathname !== listing || [...url.searchParams.keys()].join() !== 'filters') return null;
  try {
    const filters: unknown = JSON.parse(url.searchParams.get('filters')!);
    return isObject(filters) ? filters : null;
  } catch {
    return null;
  }
}

/** `filters` is exactly {key: [value]}: that value, else null. */
function single(filters: Record<string, unknown> | null, key: string): string | null {
  if (filters === null || Object.keys(filters).join() !== key) return null;
  const values = filters[key];
  return Array.isArray(values) && values.length === 1 && typeof values[0] === 'string' ? values[0] : null;
}

/** The node the gate must read before deciding `request` (its pool decides), or null. */
export function nodeToRead(request: GateRequest): string | null {
  if (request.method === 'GET') {
    const inspect = NODE_INSPECT.exec(request.path);
    if (inspect !== null) return inspect[1]!;
    if (request.path.startsWith('/tasks?')) {
      const node = single(onlyFilters(request.path, '/tasks'), 'node');
      return node !== null && NODE_ID.test(node) ? node : null;
    }
    return null;
  }
  return request.method === 'POST' ? NODE_UPDATE.exec(request.path)?.[1] ?? null : null;
}

/** The pool a node is in (its depl.pool label), when it is one the controller sizes. */
function poolOf(settings: PoolGateSettings, node: GateNode | null): string | undefined {
  const labels = node?.Spec.Labels;
  const pool = isObject(labels) ? labels['depl.pool'] : undefined;
  return typeof pool === 'string' && settings.pools.includes(pool) ? pool : undefined;
}

/**
 * Whether the gate passes `request` on, and exactly what it sends: a pure function of the request and, where
 * `nodeToRead` names a node, of that node as the Engine has it now (null when there is none).
 */
export function decidePoolGateRequest(settings: PoolGateSettings, request: GateRequest, node: GateNode | null): PoolGateDecision {
  const deny = (reason: string, status: 403 | 409 = 403): PoolGateDecision => ({ allow: false, status, reason: `the engine gate of ${settings.app}-${settings.version}-autoscaler refuses ${request.method} ${request.path.split('?')[0]}: ${reason}` });
  const pools = settings.pools.join(', ') || '(none)';
  if (settings.pools.length === 0) return deny('this version\'s controller sizes no pool');
  if (request.method === 'GET' && request.path.startsWith('/nodes?')) {
    const label = single(onlyFilters(request.path, '/nodes'), 'label');
    const pool = label?.startsWith('depl.pool=') === true ? label.slice('depl.pool='.length) : undefined;
    if (pool === undefined || !settings.pools.includes(pool)) return deny(`it lists only the nodes of the pools it sizes (${pools}), by their depl.pool label`);
    return { allow: true, kind: 'nodes', method: 'GET', path: request.path };
  }
  const named = nodeToRead(request);
  if (named === null) return deny(`it passes on only the pool nodes' listing, their tasks and their availability (${pools})`);
  if (node === null || node.ID !== named || poolOf(settings, node) === undefined) return deny(`not a node of the pools it sizes (${pools})`);
  if (request.method === 'GET') {
    return request.path.startsWith('/tasks?')
      ? { allow: true, kind: 'tasks', method: 'GET', path: request.path }
      : { allow: true, kind: 'node', method: 'GET', path: request.path };
  }
  const version = Number(NODE_UPDATE.exec(request.path)![2]);
  if (version !== node.Version.Index) return deny(`the node changed since it was read (version ${version}, now ${node.Version.Index})`, 409);
  let body: unknown;
  try {
    body = JSON.parse(request.body);
  } catch {
    return deny('the body is not JSON');
  }
  if (!isObject(body) || typeof body.Availability !== 'string' || !AVAILABILITIES.has(body.Availability)) return deny('Availability must be "drain" or "active"');
  const changed = Object.keys(body).filter((key) => key !== 'Availability' && !sameJson(body[key], node.Spec[key]));
  if (changed.length > 0) return deny(`it changes only a node's availability, and the body changes ${changed.join(', ')}`);
  return {
    allow: true, kind: 'node-update', method: 'POST',
    path: `/nodes/${node.ID}/update?version=${node.Version.Index}`,
    body: { ...node.Spec, Availability: body.Availability },
  };
}

/** What the controller is told of the tasks on a pool node: their ids and states, nothing of their specs. */
export function poolTaskView(tasks: unknown): Array<{ ID: unknown; Status: { State: unknown } }> {
  if (!Array.isArray(tasks)) return [];
  return tasks.map((task: unknown) => {
    const t = isObject(task) ? task : {};
    const status = isObject(t.Status) ? t.Status : {};
    return { ID: t.ID, Status: { State: status.State } };
  });
}
