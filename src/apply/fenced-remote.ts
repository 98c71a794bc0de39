import { posix } from 'node:path';
import { OperationError } from '../errors.js';
import { describeFenceRefusal, fencedWriteCommand, type FenceRefusal, parseFenceRefusal } from '../plan/lock.js';
import { quote, shellLine, type Argv } from '../plan/shell.js';
import type { ExecOptions, ExecResult, Remote } from './remote.js';
import { readFiles } from './remote-files.js';

/** What a fenced remote needs of the lock this run holds (src/apply/lock.ts). */
export interface Fence {
  dir: string;
  fence: number;
  ttlSeconds: number;
  /** True once this run saw another take the lease over: nothing more is even tried. */
  readonly lost: boolean;
  /** `the cluster lock (switch v2)`: for messages. */
  command: string;
}

/**
 * The manager as a run holding the cluster lock writes to it: every write (a shell line, an atomic file write)
 * runs only if the lease still carries this run's fencing number (src/plan/lock.ts), checked on the manager
 * in the same step as the write. Commands run with `exec` and reads are not writes and pass through as they
 * are, so `nginx -t` or `docker service ls` never hold the lease's guard.
 */
export class FencedRemote implements Remote {
  constructor(private readonly inner: Remote, private readonly lease: Fence) {}

  get name(): string {
    return this.inner.name;
  }

  exec(argv: Argv, options?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(argv, options);
  }

  readFile(file: string): Promise<string | null> {
    return this.inner.readFile(file);
  }

  readFiles(files: readonly string[]): Promise<Array<string | null>> {
    return readFiles(this.inner, files);
  }

  async shell(line: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.lease.lost) throw this.refused({ reason: 'taken-over', holder: null });
    const result = await this.inner.shell('exec ' + shellLine(fencedWriteCommand(this.lease.dir, this.lease.fence, this.lease.ttlSeconds, line)), { ...options, check: false });
    const refusal = parseFenceRefusal(result.code, result.stderr);
    if (refusal !== null) throw this.refused(refusal);
    if (options.check !== false && result.code !== 0) {
      throw new OperationError(`${this.name}: \`${line.slice(0, 200)}\` failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-5).join('\n')}`, undefined, 'REMOTE_COMMAND_FAILED');
    }
    return result;
  }

  async writeFileAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const temp = `${file}.tmp-fenced-${this.lease.fence}`;
    const folder = quote(posix.dirname(file));
    // umask: the file is never readable beyond `mode`, not even while it is written; the folder is there on every
    // write but the first, and `[ -d ]` is the shell's own where `mkdir` is one more process under the guard
    await this.shell(`{ [ -d ${folder} ] || mkdir -p ${folder}; } && umask 077 && cat > ${quote(temp)} && chmod ${mode.toString(8)} ${quote(temp)} && mv -f ${quote(temp)} ${quote(file)}`, { stdin: content });
  }

  /** The connection is the caller's: closing the fenced view of it closes nothing. */
  async close(): Promise<void> {}

  private refused(refusal: FenceRefusal): OperationError {
    return new OperationError(
      `this run no longer holds the cluster lock: ${describeFenceRefusal(refusal)}; it wrote nothing more to ${this.name}`,
      'Another depl run may have changed the cluster meanwhile: check `depl status` and `depl lock status`, then run the command again.',
      'LOCK_LOST',
    );
  }
}
