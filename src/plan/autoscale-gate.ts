import { AUTOSCALER_GATE_SERVICE } from '../names.js';
import type { GateRequest } from './engine-gate-request.js';
import { engineGateServiceSpec } from './engine-gate-service.js';
import { serviceName } from './names.js';
import { LABELS, type ServiceSpec } from './services.js';

/**
 * The autoscale controller's engine gate, as data. The controller (src/autoscaler/main.ts) needs the manager's
 * Engine for two calls: read an autoscaled service (its replicas, its id and version index) and set its replicas.
 * The raw Docker socket would give it root on the manager (a container that mounts `/`), so the socket is held
 * by the gate program (src/engine-gate/, the one the TLS renewal task's gate runs) as a service of the version,
 * `<app>-<version>-autoscaler-gate`, which passes on exactly those two calls and only for the version's services
 * named in depl.yaml's `autoscale:`, with replicas within their `min..max`. Its body is rebuilt by the gate from
 * the service's current spec with only `Mode.Replicated.Replicas` changed, at the version index it just read.
 * Anything else gets 403 and never reaches the Engine. One gate per version, each on a socket only its
 * version's controller mounts: a controller scales its own version's services, the renewal task (whose mounts
 * hide `autoscale/`) none, and neither reaches the other's gate.
 */
export interface ScaleGateSettings {
  policy: 'scale';
  app: string;
  version: string;
  /** The version's autoscaled services (their swarm names) and their bounds. */
  services: Array<{ name: string; min: number; max: number }>;
  /**
   * The worker pools the controller sizes (provider.pools.<name>.autoscale): before a shrink it drains the
   * nodes that go, through this gate (src/plan/autoscale-pool-gate.ts decides).
   */
  pools?: string[];
}

/** Inside both containers: the folder where the gate makes its socket and the controller reaches it. */
export const AUTOSCALER_GATE_DIR = '/run/depl/engine-gate';
export const AUTOSCALER_GATE_SOCKET = `${AUTOSCALER_GATE_DIR}/engine.sock`;
/** Where the gate program is in the autoscaler's image (templates/autoscaler.Dockerfile). */
export const GATE_PROGRAM = '/opt/depl/engine-gate.mjs';

/** The folder of every version's gate socket, in the autoscalers' state folder (`<state>/<app>/autoscale`). */
export const GATES_FOLDER = 'gates';

/** On the manager: the folder of one version's gate socket (bind-mounted into that version's gate and controller only). */
export function autoscaleGateDir(app: string, version: string, root = '/var/lib/depl'): string {
  return `${root}/${app}/autoscale/${GATES_FOLDER}/${version}`;
}


/** A swarm service as the Engine's inspect returns it (the parts the gate reads). */
export interface GateService {
  ID: string;
  Version: { Index: number };
  Spec: Record<string, unknown>;
}

export type ScaleGateDecision =
  /** Passed on as asked; the Engine's answer is cut down to scaleGateView before it goes back. */
  | { allow: true; kind: 'inspect'; method: 'GET'; path: string }
  | { allow: true; kind: 'update'; method: 'POST'; path: string; body: Record<string, unknown> }
  | { allow: false; status: 403 | 409; reason: string };

const INSPECT = /^\/services\/([a-z0-9][a-z0-9-]*)$/;
/** Swarm object ids: 25 characters of [a-z0-9]. Only the id (what the controller's update names) and the version query. */
const UPDATE = /^\/services\/([a-z0-9]{25})\/update\?version=(\d+)$/;

/** The service id the gate must read before deciding `request` (an update), or null: nothing refused makes it ask the Engine. */
export function serviceToRead(request: GateRequest): string | null {
  if (request.method !== 'POST') return null;
  return UPDATE.exec(request.path)?.[1] ?? null;
}

/**
 * Whether the gate passes `request` on, and exactly what it sends: a pure function of the request and, for an
 * update, of the service as the Engine has it now (`current`, read by id; null when there is none).
 */
export function decideScaleGateRequest(settings: ScaleGateSettings, request: GateRequest, current: GateService | null): ScaleGateDecision {
  const deny = (reason: string, status: 403 | 409 = 403): ScaleGateDecision => ({ allow: false, status, reason: `the engine gate of ${settings.app}-${settings.version}-autoscaler refuses ${request.method} ${request.path.split('?')[0]}: ${reason}` });
  const own = (name: unknown) => settings.services.find((s) => s.name === name);
  const names = settings.services.map((s) => s.name).join(', ');
  const inspect = INSPECT.exec(request.path);
  if (request.method === 'GET' && inspect !== null) {
    if (own(inspect[1]) === undefined) return deny(`not one of the services it scales (${names})`);
    return { allow: true, kind: 'inspect', method: 'GET', path: request.path };
  }
  const update = request.method === 'POST' ? UPDATE.exec(request.path) : null;
  if (update === null) return deny(`it passes on only the inspect and the replicas of ${names}`);
  const bounds = current !== null && current.ID === update[1] ? own(current.Spec.Name) : undefined;
  if (current === null || bounds === undefined) return deny(`not one of the services it scales (${names})`);
  if (Number(update[2]) !== current.Version.Index) return deny(`the service changed since it was read (version ${update[2]}, now ${current.Version.Index})`, 409);
  let body: unknown;
  try {
    body = JSON.parse(request.body);
  } catch {
    return deny('the body is not JSON');
  }
  if (!isObject(body)) return deny('the body is not a service spec');
  const replicas = replicasOf(body.Mode);
  if (replicas === null) return deny('Mode must be exactly {"Replicated":{"Replicas":<n>}}');
  if (replicasOf(current.Spec.Mode) === null) return deny(`${bounds.name} is not a replicated service`);
  if (replicas < bounds.min || replicas > bounds.max) return deny(`${replicas} replicas is outside ${bounds.name}'s ${bounds.min}..${bounds.max}`);
  const changed = Object.keys(body).filter((key) => key !== 'Mode' && !sameJson(body[key], current.Spec[key]));
  if (changed.length > 0) return deny(`it changes only the replicas, and the body changes ${changed.join(', ')}`);
  return {
    allow: true, kind: 'update', method: 'POST',
    path: `/services/${current.ID}/update?version=${current.Version.Index}`,
    body: { ...current.Spec, Mode: { Replicated: { Replicas: replicas } } },
  };
}

/**
 * What the controller is told of a service it may scale: its id, version index, name and mode, nothing of its
 * image, environment, mounts or secrets.
 */
export function scaleGateView(service: GateService): { ID: string; Version: { Index: number }; Spec: { Name: unknown; Mode: unknown } } {
  return { ID: service.ID, Version: { Index: service.Version.Index }, Spec: { Name: service.Spec.Name, Mode: service.Spec.Mode } };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** n when `mode` is exactly {Replicated: {Replicas: n}} with n a whole number >= 0, else null. */
function replicasOf(mode: unknown): number | null {
  if (!isObject(mode) || Object.keys(mode).length !== 1 || !isObject(mode.Replicated)) return null;
  const replicated = mode.Replicated;
  if (Object.keys(replicated).length !== 1 || !Number.isInteger(replicated.Replicas) || (replicated.Replicas as number) < 0) return null;
  return replicated.Replicas as number;
}

/** JSON equality, the order of an object's keys aside. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return a === b;
}

/**
 * The gate's swarm service, one per version with `autoscale:`: beside its controller on the manager, with the
 * Docker socket and its socket folder, from the controller's own image (which carries the gate program); no
 * network. It is a service of the version (its labels), so it is created, stopped, started and pruned with it.
 */
export function planAutoscalerGate(input: {
  app: string;
  version: string;
  image: string;
  services: ScaleGateSettings['services'];
  pools?: string[];
  branch?: string;
  stateRoot?: string;
}): ServiceSpec {
  const { app, version } = input;
  const settings: ScaleGateSettings = { policy: 'scale', app, version, services: input.services, ...(input.pools !== undefined && input.pools.length > 0 ? { pools: input.pools } : {}) };
  const labels = {
    [LABELS.app]: app,
    [LABELS.version]: version,
    [LABELS.service]: AUTOSCALER_GATE_SERVICE,
    [LABELS.http]: 'false',
    ...(input.branch !== undefined ? { [LABELS.branch]: input.branch } : {}),
  };
  return engineGateServiceSpec({
    name: serviceName(app, version, AUTOSCALER_GATE_SERVICE),
    labels,
    containerLabels: { [LABELS.app]: app, [LABELS.version]: version, [LABELS.service]: AUTOSCALER_GATE_SERVICE },
    image: input.image,
    program: GATE_PROGRAM,
    settings,
    mounts: [{ Type: 'bind', Source: autoscaleGateDir(app, version, input.stateRoot), Target: AUTOSCALER_GATE_DIR }],
  });
}
