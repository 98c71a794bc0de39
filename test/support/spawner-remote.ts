import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { OperationError } from '../../src/errors.js';
import { LocalRemote } from '../../src/apply/local-remote.js';
import type { ExecOptions, ExecResult, Remote } from '../../src/apply/remote.js';
import { shellLine, type Argv } from '../../src/plan/shell.js';

interface Reply { id: number; code: number; stdout: string; stderr: string; timedOut: boolean }

/**
 * This machine as a Remote, as LocalRemote, but its commands are started by a small child process
 * (spawner-child.mjs) instead of the test worker: the fake cluster runs thousands of real `sh`/`flock` commands
 * per unit run, and each fork of a worker holding hundreds of MB copies its page tables (measured 20 ms against
 * 7 ms). Same results, same failures; a stdin stream (rare in the fake cluster) goes the direct way.
 */
export class SpawnerRemote implements Remote {
  readonly name = 'localhost';
  private readonly direct = new LocalRemote();

  exec(argv: Argv, options: ExecOptions = {}): Promise<ExecResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty command');
    // `true` does nothing and succeeds: the fake cluster runs it where a call only has to reach the manager
    // (so a killed depl fails there) and as the edge's empty worker listing; answered without a process.
    if (argv.length === 1 && file === 'true') return Promise.resolve({ code: 0, stdout: '', stderr: '' });
    return this.run(file, args, argv.join(' '), options);
  }

  shell(line: string, options: ExecOptions = {}): Promise<ExecResult> {
    // `exec <quoted argv>` (every fenced write, src/apply/fenced-remote.ts): a shell that only replaces itself
    // with the command. Started directly, it is the same process with the same arguments, one `sh` fewer.
    const replaced = execArgv(line);
    if (replaced !== null) return this.run(replaced[0]!, replaced.slice(1), line, options);
    return this.run('sh', ['-c', line], line, options);
  }

  writeFileAtomic(file: string, content: string | Buffer, mode?: number): Promise<void> {
    return this.direct.writeFileAtomic(file, content, mode);
  }

  readFile(file: string): Promise<string | null> {
    return this.direct.readFile(file);
  }

  async close(): Promise<void> {}

  private async run(file: string, args: string[], what: string, options: ExecOptions): Promise<ExecResult> {
    const stdin = options.stdin;
    if (stdin !== undefined && typeof stdin !== 'string' && !Buffer.isBuffer(stdin)) {
      return file === 'sh' && args[0] === '-c' ? this.direct.shell(args[1]!, options) : this.direct.exec([file, ...args], options);
    }
    const reply = await spawner().run({
      file, args,
      ...(stdin !== undefined ? { input: Buffer.from(stdin).toString('base64') } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
    const out: ExecResult = { code: reply.code, stdout: Buffer.from(reply.stdout, 'base64').toString(), stderr: Buffer.from(reply.stderr, 'base64').toString() };
    if (options.check !== false && out.code !== 0) {
      throw new OperationError(`localhost: \`${what}\` failed (exit ${out.code}): ${out.stderr.trim().split('\n').slice(-5).join('\n')}`, undefined, 'REMOTE_COMMAND_FAILED');
    }
    return out;
  }
}

/**
 * The command of a line `exec <argv quoted as shellLine quotes it>`, or null for any other line. The words are
 * read back and quoted again: only a line that is exactly that quoting of them counts, so the shell would have
 * run this argv and nothing else (no expansion, redirection or second command in it).
 */
export function execArgv(line: string): string[] | null {
  if (!line.startsWith('exec ')) return null;
  const words: string[] = [];
  const word = /([A-Za-z0-9_@%+=:,./-]+|(?:'[^']*'|\\')+)(?: |$)/y;
  for (let at = 'exec '.length; at < line.length;) {
    word.lastIndex = at;
    const match = word.exec(line);
    if (match === null) return null;
    const text = match[1]!;
    words.push(text.startsWith("'") || text.startsWith('\\') ? text.replace(/'([^']*)'|\\'/g, (_, quoted: string | undefined) => quoted ?? "'") : text);
    at = word.lastIndex;
  }
  return words.length > 0 && `exec ${shellLine(words)}` === line ? words : null;
}

/** One child per test worker, started on first use; it never holds the worker open and ends with it. */
class Spawner {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private nextId = 1;

  constructor() {
    this.child = spawn(process.execPath, ['--max-old-space-size=64', fileURLToPath(new URL('./spawner-child.mjs', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line) as Reply;
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.idle();
    });
    this.child.on('exit', () => {
      if (current === this) current = undefined;
      for (const resolve of this.waiting.values()) resolve({ id: 0, code: 127, stdout: '', stderr: Buffer.from('the spawner process ended').toString('base64'), timedOut: false });
      this.waiting.clear();
    });
    this.idle();
  }

  run(request: { file: string; args: string[]; input?: string; timeoutMs?: number }): Promise<Reply> {
    const id = this.nextId++;
    if (this.waiting.size === 0) this.busy();
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  // Referenced only while a command runs, so an idle spawner never keeps a finished worker alive.
  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref(): void }).ref();
  }

  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
    (this.child.stdin as unknown as { unref?(): void }).unref?.();
  }
}

let current: Spawner | undefined;
const spawner = (): Spawner => (current ??= new Spawner());
