import { execa } from 'execa';
import { OperationError } from '../errors.js';
import type { Argv } from '../plan/shell.js';
import { readLocalFile, writeLocalFileAtomic } from '../util/local-files.js';
import type { ExecOptions, ExecResult, Remote } from './remote.js';

/** This machine as a Remote: for tests of adapters against real local programs (nginx, docker). */
export class LocalRemote implements Remote {
  readonly name = 'localhost';

  async exec(argv: Argv, options: ExecOptions = {}): Promise<ExecResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty command');
    return this.run(execa(file, args, this.execaOptions(options)), argv.join(' '), options);
  }

  async shell(line: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.run(execa('sh', ['-c', line], this.execaOptions(options)), line, options);
  }

  writeFileAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
    return writeLocalFileAtomic(file, content, mode);
  }

  readFile(file: string): Promise<string | null> {
    return readLocalFile(file);
  }

  async close(): Promise<void> {}

  private execaOptions(options: ExecOptions) {
    const stdin = options.stdin;
    return {
      reject: false,
      timeout: options.timeoutMs,
      // execa's `input` takes a string, bytes or a Readable (its `stdin` only a stream with a file descriptor)
      ...(stdin !== undefined ? { input: stdin as never } : {}),
    } as const;
  }

  private async run(child: Promise<{ exitCode?: number; stdout: unknown; stderr: unknown; timedOut?: boolean }>, what: string, options: ExecOptions): Promise<ExecResult> {
    const result = await child;
    const out: ExecResult = { code: result.exitCode ?? (result.timedOut ? 124 : 1), stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
    if (options.check !== false && out.code !== 0) {
      throw new OperationError(`localhost: \`${what}\` failed (exit ${out.code}): ${out.stderr.trim().split('\n').slice(-5).join('\n')}`, undefined, 'REMOTE_COMMAND_FAILED');
    }
    return out;
  }
}
