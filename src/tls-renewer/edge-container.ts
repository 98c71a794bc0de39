import { OperationError } from '../errors.js';
import type { ExecOptions, ExecResult, Remote } from '../apply/remote.js';
import type { Argv } from '../plan/shell.js';
import { readLocalFile, writeLocalFileAtomic } from '../util/local-files.js';
import { EngineSocket } from '../apply/engine-socket.js';

/**
 * The edge's container as a Remote, for the renewal task: commands run inside it through the Docker Engine
 * API on the bind-mounted socket (what `docker exec` does, src/apply/engine-socket.ts), files are read and written here, where the
 * edge's folder is mounted at the same path. So src/apply/edge/config.ts checks and reloads nginx from the
 * task exactly as it does from the operator's machine over SSH.
 */
const engine = new EngineSocket();

/** The running container of the swarm service `service` on this node, or null. */
export function runningContainerOf(service: string): Promise<string | null> {
  return engine.runningContainerOf(service);
}

export class EdgeContainerRemote implements Remote {
  readonly name: string;
  constructor(private readonly container: string) {
    this.name = `edge container ${container.slice(0, 12)}`;
  }

  async exec(argv: Argv, options: ExecOptions = {}): Promise<ExecResult> {
    if (options.stdin !== undefined) throw new OperationError('the edge container remote takes no stdin', undefined, 'REMOTE_STDIN_UNSUPPORTED');
    const result = await engine.exec(this.container, argv, options.timeoutMs ?? 60_000);
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
