import http from 'node:http';
import { OperationError } from '../errors.js';
import type { Argv } from '../plan/shell.js';
import { runningContainerPath } from '../plan/tls/engine-gate.js';

/**
 * The one small Docker Engine API client of the programs depl runs ON the cluster (the TLS renewal task,
 * src/tls-renewer/, and the autoscaler, src/autoscaler/, each of which reaches only its own engine gate's socket,
 * and the gate itself, src/engine-gate/, the one with the Engine's socket): plain HTTP on a unix socket speaking
 * the Engine API, with only what they use. Each is bundled into one file with no node_modules beside it, so this is Node's http,
 * not dockerode (which depl itself uses from the operator's machine, src/apply/docker.ts). depl's Engine
 * (src/apply/docker.ts) also answers the swarm reads every release command makes through it
 * (src/apply/swarm.ts): loading dockerode costs a command's start more than the whole read.
 */
export interface EngineAnswer {
  status: number;
  body: Buffer;
}

/** A swarm service as the Engine's inspect returns it (the parts the programs read). */
export interface EngineService {
  ID: string;
  Version: { Index: number };
  Spec: { Mode?: { Replicated?: { Replicas?: number } } } & Record<string, unknown>;
}

export const ENGINE_SOCKET = '/var/run/docker.sock';

export class EngineSocket {
  /**
   * `target`: the Engine's unix socket on this machine, or an http.Agent whose connections are streams to it (the
   * operator's machine reaches a manager's Engine through its SSH connection: src/apply/docker.ts engineOn).
   */
  constructor(private readonly target: string | http.Agent = ENGINE_SOCKET) {}

  request(method: 'GET' | 'POST', apiPath: string, body?: unknown, timeoutMs = 30_000): Promise<EngineAnswer> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const request = http.request({
        ...(typeof this.target === 'string' ? { socketPath: this.target } : { agent: this.target, host: 'docker' }),
        path: apiPath,
        method,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        timeout: timeoutMs,
      }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`the Docker Engine did not answer ${method} ${apiPath} within ${timeoutMs / 1000} s`)));
      request.on('error', reject);
      request.end(payload);
    });
  }

  /** GET of a JSON document the Engine answers with 200 (`what` names it in the error). */
  async getJson<T>(apiPath: string, what: string): Promise<T> {
    return JSON.parse((await this.expect(await this.request('GET', apiPath), 200, what)).toString()) as T;
  }

  /** The running container of the swarm service `service` on this node, or null. */
  async runningContainerOf(service: string): Promise<string | null> {
    const answer = await this.expect(await this.request('GET', runningContainerPath(service)), 200, 'list containers');
    return (JSON.parse(answer.toString()) as Array<{ Id: string }>)[0]?.Id ?? null;
  }

  /** What `docker exec` does without a TTY: the command's exit code and its output. */
  async exec(container: string, argv: Argv, timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    const created = await this.expect(await this.request('POST', `/containers/${container}/exec`, { Cmd: [...argv], AttachStdout: true, AttachStderr: true, Tty: false }), 201, `run ${argv.join(' ')}`);
    const { Id } = JSON.parse(created.toString()) as { Id: string };
    const started = await this.request('POST', `/exec/${Id}/start`, { Detach: false, Tty: false }, timeoutMs);
    const inspected = await this.expect(await this.request('GET', `/exec/${Id}/json`), 200, 'inspect an exec');
    const code = (JSON.parse(inspected.toString()) as { ExitCode: number | null }).ExitCode ?? 1;
    return { code, ...demultiplex(started.body) };
  }

  /** The service, or null when the swarm has none of that name. */
  async inspectService(name: string): Promise<EngineService | null> {
    const answer = await this.request('GET', `/services/${encodeURIComponent(name)}`);
    if (answer.status === 404) return null;
    return JSON.parse((await this.expect(answer, 200, `inspect ${name}`)).toString()) as EngineService;
  }

  /** The swarm node, or null when the swarm has none of that id. */
  async inspectNode(id: string): Promise<{ ID: string; Version: { Index: number }; Spec: Record<string, unknown> } | null> {
    const answer = await this.request('GET', `/nodes/${encodeURIComponent(id)}`);
    if (answer.status === 404) return null;
    return JSON.parse((await this.expect(answer, 200, `inspect node ${id}`)).toString()) as { ID: string; Version: { Index: number }; Spec: Record<string, unknown> };
  }

  /** What `docker service scale` does: the same spec with other replicas, at the version it was read at. */
  async setReplicas(service: EngineService, replicas: number): Promise<void> {
    const spec = { ...service.Spec, Mode: { Replicated: { Replicas: replicas } } };
    await this.expect(await this.request('POST', `/services/${service.ID}/update?version=${service.Version.Index}`, spec), 200, `update ${service.ID}`);
  }

  private async expect(answer: EngineAnswer, status: number, what: string): Promise<Buffer> {
    if (answer.status === status) return answer.body;
    throw new OperationError(`the Docker Engine refused to ${what}: HTTP ${answer.status} ${engineMessage(answer.body).slice(0, 200)}`, undefined, 'ENGINE_REFUSED');
  }
}

function engineMessage(body: Buffer): string {
  const text = body.toString().trim();
  try {
    return (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    return text;
  }
}

/** The multiplexed stdout/stderr stream of a non-TTY exec: 8-byte frame headers (stream, 0, 0, 0, size). */
function demultiplex(raw: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length) {
    const size = raw.readUInt32BE(at + 4);
    const frame = raw.subarray(at + 8, at + 8 + size);
    (raw[at] === 2 ? err : out).push(frame);
    at += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
