import { OperationError } from '../errors.js';
import type { ExecOptions, ExecResult, Remote } from '../apply/remote.js';
import type { Argv } from '../plan/shell.js';
import { EngineSocket } from '../apply/engine-socket.js';
import { engineGateSocket } from '../plan/tls/engine-gate.js';

/**
 * nginx in the edge's container, for the renewal task: commands run inside it through the engine gate
 * (src/plan/tls/engine-gate.ts), which speaks the few Engine API calls of `docker exec` and passes on only the
 * edge commands the task runs (renewerEdgeCommands); the task has no Docker socket. The edge's files are not
 * here: the task changes them in its own mount of the edge's folder (EdgeSite.files), so
 * src/apply/edge/config.ts checks and reloads nginx from the task as it does from the operator's machine.
 */
export class EdgeContainerRemote implements Remote {
  readonly name: string;
  constructor(private readonly container: string, private readonly gate: EngineSocket) {
    this.name = `edge container ${container.slice(0, 12)}`;
  }

  async exec(argv: Argv, options: ExecOptions = {}): Promise<ExecResult> {
    if (options.stdin !== undefined) throw new OperationError('the edge container remote takes no stdin', undefined, 'REMOTE_STDIN_UNSUPPORTED');
    const result = await this.gate.exec(this.container, argv, options.timeoutMs ?? 60_000);
    if (options.check !== false && result.code !== 0) {
      throw new OperationError(`${this.name}: \`${argv.join(' ')}\` failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-5).join('\n')}`, undefined, 'REMOTE_COMMAND_FAILED');
    }
    return result;
  }

  shell(): Promise<ExecResult> {
    throw new OperationError('the renewal task runs no shell line in the edge container (the engine gate allows its edge commands only)', undefined, 'REMOTE_COMMAND_FAILED');
  }

  writeFileAtomic(): Promise<void> {
    throw new OperationError('the edge container remote writes no file: the task writes the edge\'s files in its own mount', undefined, 'REMOTE_COMMAND_FAILED');
  }

  readFile(): Promise<string | null> {
    throw new OperationError('the edge container remote reads no file: the task reads the edge\'s files in its own mount', undefined, 'REMOTE_COMMAND_FAILED');
  }

  async close(): Promise<void> {}
}

/** The engine gate of `app`'s renewal task, as an Engine API client. */
export function engineGate(app: string): EngineSocket {
  return new EngineSocket(engineGateSocket(app));
}
