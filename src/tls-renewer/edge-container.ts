import http from 'node:http';
import { OperationError } from '../errors.js';
import type { ExecOptions, ExecResult, Remote } from '../apply/remote.js';
import type { Argv } from '../plan/shell.js';
import { readLocalFile, writeLocalFileAtomic } from '../util/local-files.js';

/**
 * The edge's container as a Remote, for the renewal task: commands run inside it through the Docker Engine
 * API on the bind-mounted socket (what `docker exec` does), files are read and written here, where the
 * edge's folder is mounted at the same path. So src/apply/edge/config.ts checks and reloads nginx from the
 * task exactly as it does from the operator's machine over SSH.
 */
const SOCKET = '/var/run/docker.sock';

interface EngineAnswer {
  status: number;
  body: Buffer;
}

function engine(method: string, apiPath: string, body?: unknown, timeoutMs = 30_000): Promise<EngineAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const request = http.request({
      socketPath: SOCKET,
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

/** The running container of the swarm service `service` on this node, or null. */
export async function runningContainerOf(service: string): Promise<string | null> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.name=${service}`], status: ['running'] }));
  const answer = await engine('GET', `/containers/json?filters=${filters}`);
  if (answer.status !== 200) throw new OperationError(`the Docker Engine refused to list containers: HTTP ${answer.status} ${answer.body.toString().slice(0, 200)}`, undefined, 'DOCKER_API');
  const list = JSON.parse(answer.body.toString()) as Array<{ Id: string }>;
  return list[0]?.Id ?? null;
}

export class EdgeContainerRemote implements Remote {
  readonly name: string;
  constructor(private readonly container: string) {
    this.name = `edge container ${container.slice(0, 12)}`;
  }

  async exec(argv: Argv, options: ExecOptions = {}): Promise<ExecResult> {
    if (options.stdin !== undefined) throw new OperationError('the edge container remote takes no stdin', undefined, 'REMOTE_STDIN_UNSUPPORTED');
    const created = await engine('POST', `/containers/${this.container}/exec`, { Cmd: [...argv], AttachStdout: true, AttachStderr: true, Tty: false });
    if (created.status !== 201) throw new OperationError(`${this.name}: cannot run ${argv.join(' ')}: HTTP ${created.status} ${created.body.toString().slice(0, 200)}`, undefined, 'DOCKER_API');
    const { Id } = JSON.parse(created.body.toString()) as { Id: string };
    const started = await engine('POST', `/exec/${Id}/start`, { Detach: false, Tty: false }, options.timeoutMs ?? 60_000);
    const inspected = await engine('GET', `/exec/${Id}/json`);
    const exitCode = (JSON.parse(inspected.body.toString()) as { ExitCode: number | null }).ExitCode ?? 1;
    const result = { code: exitCode, ...demultiplex(started.body) };
    if (options.check !== false && result.code !== 0) {
      throw new OperationError(`${this.name}: \`${argv.join(' ')}\` failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-5).join('\n')}`, undefined, 'REMOTE_COMMAND_FAILED');
    }
    return result;
  }

  shell(line: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['sh', '-c', line], options);
  }

  /** Here, not in the container: the edge's folder is mounted at the same path in both. */
  writeFileAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
    return writeLocalFileAtomic(file, content, mode);
  }

  readFile(file: string): Promise<string | null> {
    return readLocalFile(file);
  }

  async close(): Promise<void> {}
}

/** nginx's processes in the edge container as `pid command` lines, from /proc (the image has no ps). */
export const LIST_PROCESSES: Argv = ['sh', '-c', 'for p in /proc/[0-9]*; do [ -r "$p/cmdline" ] && printf "%s %s\\n" "${p#/proc/}" "$(tr "\\000" " " < "$p/cmdline")"; done; true'];

/** Graceful reload: nginx reads its pid file from the configuration and sends the master SIGHUP. */
export function reloadArgv(configFile: string): Argv {
  return ['nginx', '-c', configFile, '-s', 'reload'];
}
