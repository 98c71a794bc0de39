import { engineGateServiceSpec } from '../engine-gate-service.js';
import { edgeDir, edgeServiceName } from '../edge-service.js';
import { probeFromInsideCommand } from '../nginx.js';
import { LABELS, type ServiceSpec } from '../services.js';
import type { Argv } from '../shell.js';
import type { GateRequest } from '../engine-gate-request.js';
import { engineGateDir, RENEWER_ROLE } from './renewal.js';

/**
 * The engine gate, as data: the one program on the cluster that holds the manager's Docker socket for the TLS
 * renewal task, so the task itself does not. The task needs the Engine for one thing only: to check and
 * reload nginx inside the edge's container (the edge image has no other way in, and a swarm service cannot
 * share another's processes). The gate (src/engine-gate/main.ts, with this policy) is a swarm service of its own beside the
 * task; it listens on a unix socket in a folder the task also mounts and passes on exactly the four Engine API
 * calls that takes, and only for the edge's running container and these commands (renewerEdgeCommands).
 * Anything else gets 403 and never reaches the Engine: a task taken over through the ACME server's answers
 * can reload the edge, no more (through the raw socket it could start a privileged container: root on the
 * manager).
 */
export const GATE_SERVICE_SUFFIX = '-edge-gate';

export function engineGateServiceName(app: string): string {
  return `${app}${GATE_SERVICE_SUFFIX}`;
}

export { engineGateDir };

export function engineGateSocket(app: string): string {
  return `${engineGateDir(app)}/engine.sock`;
}

/** The edge's configuration, and the candidate a reload checks first (src/apply/edge/config.ts). */
function edgeConfigFiles(app: string): { live: string; candidate: string } {
  const dir = edgeDir(app);
  return { live: `${dir}/nginx.conf`, candidate: `${dir}/nginx.conf.next` };
}

/**
 * What the renewal task runs in the edge's container, and all the gate lets it run there: `nginx -t` on the
 * candidate configuration, the graceful reload, the list of nginx's processes (from /proc: the image has no
 * ps), and the routing probe (which answers only the container's own loopback).
 */
export function renewerEdgeCommands(app: string, port = 80): { check: Argv; reload: Argv; processes: Argv; probe: Argv } {
  const { live, candidate } = edgeConfigFiles(app);
  return {
    check: ['nginx', '-t', '-q', '-e', 'stderr', '-c', candidate],
    reload: ['nginx', '-c', live, '-s', 'reload'],
    processes: ['sh', '-c', 'for p in /proc/[0-9]*; do [ -r "$p/cmdline" ] && printf "%s %s\\n" "${p#/proc/}" "$(tr "\\000" " " < "$p/cmdline")"; done; true'],
    probe: probeFromInsideCommand(port),
  };
}

/** The Engine API path that lists the running container of the swarm service `service` on this node. */
export function runningContainerPath(service: string): string {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.name=${service}`], status: ['running'] }));
  return `/containers/json?filters=${filters}`;
}

export type { GateRequest };

/** What the gate knows when it decides. */
export interface GateFacts {
  /** The edge's running container on this node now (the Engine's answer), or null. */
  edgeContainer: string | null;
  /** The execs the gate itself created (only those may be started or inspected). */
  execs: ReadonlySet<string>;
}

/** A request passed on: what goes to the Engine (the body rebuilt by the gate, never the client's). */
export type GateDecision =
  | { allow: true; kind: 'list' | 'exec-create' | 'exec-start' | 'exec-inspect'; method: 'GET' | 'POST'; path: string; body?: unknown }
  | { allow: false; reason: string };

const ID = '[0-9a-f]{64}';
const EXEC_CREATE = new RegExp(`^/containers/(${ID})/exec$`);

/**
 * Whether deciding `request` needs the edge's running container (an exec of an allowed command to create): the
 * gate asks the Engine only then, so nothing it refuses makes it ask the Engine anything.
 */
export function needsEdgeContainer(app: string, request: GateRequest): boolean {
  return request.method === 'POST' && EXEC_CREATE.test(request.path) && allowedCommand(app, request.body) !== undefined;
}

/** The allowed edge command the exec's body asks for, or undefined (not JSON, no Cmd, or another command). */
function allowedCommand(app: string, body: string): Argv | undefined {
  let cmd: unknown;
  try {
    cmd = (JSON.parse(body) as { Cmd?: unknown }).Cmd;
  } catch {
    return undefined;
  }
  if (!Array.isArray(cmd)) return undefined;
  return Object.values(renewerEdgeCommands(app)).find((argv) => cmd.length === argv.length && argv.every((word, i) => cmd[i] === word));
}

/**
 * Whether the gate passes a request on, and exactly what it sends: a pure function of the request, the edge's
 * container and the execs it made. The exec's body is rebuilt from the allowed command alone, so a client
 * cannot add `Privileged`, `User`, `Env` or a TTY; its start is always attached and without a TTY.
 */
export function decideGateRequest(app: string, request: GateRequest, facts: GateFacts): GateDecision {
  const deny = (reason: string): GateDecision => ({ allow: false, reason: `the engine gate refuses ${request.method} ${request.path.split('?')[0]}: ${reason}` });
  if (request.method === 'GET' && request.path === runningContainerPath(edgeServiceName(app))) return { allow: true, kind: 'list', method: 'GET', path: request.path };
  const create = EXEC_CREATE.exec(request.path);
  if (request.method === 'POST' && create !== null) {
    const match = allowedCommand(app, request.body);
    if (match === undefined) return deny('not one of the edge commands the renewal task runs');
    if (facts.edgeContainer === null || create[1] !== facts.edgeContainer) return deny(`not the running container of ${edgeServiceName(app)}`);
    return { allow: true, kind: 'exec-create', method: 'POST', path: request.path, body: { Cmd: [...match], AttachStdout: true, AttachStderr: true, Tty: false } };
  }
  const start = new RegExp(`^/exec/(${ID})/start$`).exec(request.path);
  if (request.method === 'POST' && start !== null) {
    if (!facts.execs.has(start[1]!)) return deny('an exec the gate did not create');
    return { allow: true, kind: 'exec-start', method: 'POST', path: request.path, body: { Detach: false, Tty: false } };
  }
  const inspect = new RegExp(`^/exec/(${ID})/json$`).exec(request.path);
  if (request.method === 'GET' && inspect !== null) {
    if (!facts.execs.has(inspect[1]!)) return deny('an exec the gate did not create');
    return { allow: true, kind: 'exec-inspect', method: 'GET', path: request.path };
  }
  return deny('it passes on only the edge container\'s listing and the exec of the renewal task\'s edge commands');
}

/**
 * The gate's swarm service: one replica beside the edge (the same node as the renewal task), with the Docker
 * socket, its own folder (where it makes the socket the task reaches) and its code read-only; no network.
 * It shares the task's role label, so removing the task removes it too.
 */
export function planEngineGateService(options: { app: string; image: string; script: string; scriptHash: string }): ServiceSpec {
  const { app, image, script } = options;
  const labels = { [LABELS.app]: app, 'depl.role': RENEWER_ROLE, 'depl.renewer.script': options.scriptHash };
  return engineGateServiceSpec({
    name: engineGateServiceName(app),
    labels,
    image,
    program: script,
    settings: { app },
    mounts: [
      { Type: 'bind', Source: engineGateDir(app), Target: engineGateDir(app) },
      { Type: 'bind', Source: script, Target: script, ReadOnly: true },
    ],
  });
}
