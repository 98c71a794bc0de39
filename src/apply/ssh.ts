import type { ClientChannel, ConnectConfig } from 'ssh2';
import { Readable, type Duplex } from 'node:stream';
import { Client, parseKey } from './ssh2-client.js';
import { OperationError } from '../errors.js';
import { asRoot, engineStreamCommand, needsSudo, shellAsRoot, sudoProbeCommand, sudoProblem, sudoVerdict } from '../plan/privilege.js';
import { quote, shellLine, type Argv } from '../plan/shell.js';
import { parseFileTexts, PRINT_FILES } from '../plan/file-texts.js';
import type { Logger } from '../util/log.js';
import { fingerprint, KnownHosts, knownHostsName } from './known-hosts.js';
import type { ExecOptions, ExecResult, Remote } from './remote.js';
import { pollUntil } from '../util/poll.js';

/** Where a node's Docker Engine listens. */
export const ENGINE_SOCKET = '/var/run/docker.sock';

export interface SshTarget {
  /** Node name for messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  privateKey: Buffer | string;
  /** Where the private key came from, for messages (ssh.key in depl.yaml). */
  keyFile?: string;
}

/** Raised when a node presents another host key than the one recorded: never retried. */
export class HostKeyChangedError extends OperationError {}

/** `ED25519 SHA256:...` of the public half of a private key, as `ssh-keygen -l` names it. */
export function keyFingerprint(privateKey: Buffer | string): string {
  const parsed = parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return 'an unreadable key';
  return `${key.type} ${fingerprint(key.getPublicSSH())}`;
}

/**
 * The node took the connection but refused the key: retrying cannot help (unlike a node still booting),
 * so it fails at once, naming the key offered and the user.
 */
export function authFailure(target: SshTarget): OperationError {
  const key = `${target.keyFile ?? 'the key'} (${keyFingerprint(target.privateKey)})`;
  return new OperationError(
    `${target.name} (${target.user}@${target.host}:${target.port}): SSH authentication failed: the node refused ${key} for user ${target.user}`,
    `Check ssh.user and ssh.key in depl.yaml: the public half of that key must be in ~${target.user}/.ssh/authorized_keys on the node. ` +
      'Nodes made by another project (another checkout) or with another key refuse this one.',
    'SSH_AUTH_FAILED',
  );
}

/** A node reached over SSH. Commands run as root: through `sudo -n` when the SSH user is not root. */
export class SshRemote implements Remote {
  readonly name: string;
  private closed = false;

  constructor(private readonly client: Client, readonly target: SshTarget) {
    this.name = `${target.name} (${target.host})`;
    client.on('close', () => { this.closed = true; });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  exec(argv: Argv, options: ExecOptions = {}): Promise<ExecResult> {
    return this.run(shellLine(asRoot(argv, this.target.user)), argv.join(' '), options);
  }

  shell(line: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.run(shellAsRoot(line, this.target.user), line, options);
  }

  /** For a login user that is not root: stops with a clear error unless sudo works without a password. */
  async checkSudo(): Promise<void> {
    const { user } = this.target;
    if (!needsSudo(user)) return;
    const probe = await this.run(shellLine(sudoProbeCommand(user)), 'sudo -n true', { check: false, timeoutMs: 30_000 });
    const verdict = sudoVerdict(probe.code, probe.stderr);
    if (verdict === 'ok') return;
    const { message, hint } = sudoProblem(verdict, `${this.target.name} (${this.target.host})`, user, probe.stderr);
    throw new OperationError(message, hint, verdict === 'password' ? 'SUDO_PASSWORD' : 'SUDO_REFUSED');
  }

  async writeFileAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const script = 'set -e; mkdir -p "$(dirname "$1")"; t="$1.tmp-$$"; cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"';
    await this.exec(['sh', '-c', script, 'sh', file, mode.toString(8)], { stdin: content });
  }

  async readFile(file: string): Promise<string | null> {
    const result = await this.exec(['sh', '-c', 'if [ -e "$1" ]; then exec cat "$1"; else exit 44; fi', 'sh', file], { check: false });
    if (result.code === 44) return null;
    if (result.code !== 0) throw new OperationError(`${this.name}: cannot read ${file}: ${result.stderr.trim()}`, undefined, 'REMOTE_READ_FAILED');
    return result.stdout;
  }

  /** One command prints every file (src/plan/file-texts.ts). */
  async readFiles(files: readonly string[]): Promise<Array<string | null>> {
    const result = await this.exec(['sh', '-c', PRINT_FILES, 'sh', ...files], { check: false });
    const texts = result.code === 0 ? parseFileTexts(result.stdout, files.length) : null;
    if (texts === null) {
      throw new OperationError(`${this.name}: cannot read ${files.join(', ')}: ${result.stderr.trim() || 'a file holds a NUL byte'}`, undefined, 'REMOTE_READ_FAILED');
    }
    return texts;
  }

  engineStream(): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      const done = (error: Error | undefined, channel: ClientChannel) => {
        if (error) reject(new OperationError(`${this.name}: cannot reach the Docker Engine API over SSH: ${error.message}`, undefined, 'DOCKER_SSH'));
        else resolve(channel);
      };
      // a sudo user reaches the engine's root-owned socket through `docker system dial-stdio` run as root
      if (needsSudo(this.target.user)) this.client.exec(shellLine(engineStreamCommand(this.target.user)), done);
      else this.client.openssh_forwardOutStreamLocal(ENGINE_SOCKET, done);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
      setTimeout(resolve, 2000).unref();
    });
    this.closed = true;
  }

  private run(line: string, what: string, options: ExecOptions): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      this.client.exec(line, (error, channel: ClientChannel) => {
        if (error) {
          reject(new OperationError(`${this.name}: cannot run \`${what}\`: ${error.message}`, undefined, 'SSH_EXEC'));
          return;
        }
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        const timer = options.timeoutMs
          ? setTimeout(() => { timedOut = true; channel.signal('KILL'); channel.close(); }, options.timeoutMs)
          : undefined;
        channel.on('data', (chunk: Buffer) => out.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => err.push(chunk));
        channel.on('close', (code: number | null) => {
          if (timer) clearTimeout(timer);
          const result: ExecResult = {
            code: timedOut ? 124 : (code ?? 255),
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(err).toString('utf8') + (timedOut ? `\n(timed out after ${options.timeoutMs} ms)` : ''),
          };
          if (options.check !== false && result.code !== 0) {
            const tail = result.stderr.trim().split('\n').slice(-5).join('\n') || result.stdout.trim().split('\n').slice(-5).join('\n');
            reject(new OperationError(`${this.name}: \`${what}\` failed (exit ${result.code}): ${tail}`, undefined, 'REMOTE_COMMAND_FAILED'));
          } else {
            resolve(result);
          }
        });
        const stdin = options.stdin;
        if (stdin === undefined) channel.end();
        else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) channel.end(stdin);
        else (stdin instanceof Readable ? stdin : Readable.from(stdin as AsyncIterable<Buffer>)).pipe(channel);
      });
    });
  }
}

export interface ConnectOptions {
  knownHosts: KnownHosts;
  /** How long to keep retrying while the node boots (sshd not up yet, connection refused). */
  waitMs?: number;
  /** Appended to the timeout message: what to look at when a node never answers. */
  waitHint?: string;
  log?: Logger;
}

type AttemptFailure = { retry: boolean; error: Error };

/**
 * One connection attempt. The host key is checked against known_hosts before anything is sent to the node:
 * trusted on first use (recorded at once, race-free, its fingerprint printed once), refused when it changed.
 */
async function attempt(target: SshTarget, knownHosts: KnownHosts, timeoutMs: number, log?: Logger): Promise<Client | AttemptFailure> {
  const knownTypes = await knownHosts.typesFor(target.host, target.port);
  let changed: HostKeyChangedError | undefined;
  let trustError: Error | undefined;
  const client = new Client();
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    privateKey: target.privateKey,
    readyTimeout: timeoutMs,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
    // the key only: ssh2 would first try the `none` method, a round trip every node refuses
    authHandler: ['publickey'],
    // ask for a key type we have on record, so a comparison is meaningful
    ...(knownTypes.length > 0 ? { algorithms: { serverHostKey: knownTypes as never } } : {}),
    hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
      knownHosts.trust(target.host, target.port, key).then((verdict) => {
        if (verdict.kind === 'known') return verify(true);
        if (verdict.kind === 'recorded') {
          log?.info(`${target.name} (${target.host}): first connection; its host key ${verdict.fingerprint} is now recorded in ${knownHosts.file}`);
          return verify(true);
        }
        const entry = knownHostsName(target.host, target.port);
        changed = new HostKeyChangedError(
          `${target.name} (${target.host}): its SSH host key changed (recorded: ${verdict.expected.join(', ')}; ` +
            `offered: ${fingerprint(key)}). Refusing to connect. The recorded key is in ${knownHosts.file}.`,
          `If this node was rebuilt on purpose, delete the line for ${entry} from ${knownHosts.file} ` +
            `(ssh-keygen -R '${entry}' -f ${knownHosts.file}) and re-run; otherwise find out who answers at ${target.host}.`,
          'HOST_KEY_CHANGED',
        );
        verify(false);
      }, (error: Error) => {
        trustError = error;
        verify(false);
      });
    },
  };
  return new Promise((resolve) => {
    const onError = (error: Error & { level?: string }) => {
      client.removeAllListeners('ready');
      client.end();
      if (changed) return resolve({ retry: false, error: changed });
      if (trustError) return resolve({ retry: false, error: trustError });
      if (error.level === 'client-authentication') return resolve({ retry: false, error: authFailure(target) });
      resolve({ retry: true, error });
    };
    client.once('error', onError);
    client.once('ready', () => {
      client.removeListener('error', onError);
      // later errors (connection reset) surface as failed commands, not as unhandled events
      client.on('error', () => {});
      resolve(client);
    });
    client.connect(config);
    // Each command is a few small packets (exec request, stdin, EOF) sent back to back: with Nagle's
    // algorithm on, the later ones wait for the node's delayed ACK, ~40 ms a command on Linux.
    client.setNoDelay(true);
  });
}

/**
 * Connects, waiting for a booting node with backoff (0.25 s doubling to 2 s) until `waitMs` has passed.
 * A changed host key, a refused key and a sudo that wants a password fail at once; anything else (no
 * route, connection refused, sshd not up yet) is retried and the last error is in the timeout message.
 */
export async function connectSsh(target: SshTarget, options: ConnectOptions): Promise<SshRemote> {
  const waitMs = options.waitMs ?? 120_000;
  const deadline = Date.now() + waitMs;
  let lastError = '';
  return pollUntil(async () => {
    const outcome = await attempt(target, options.knownHosts, Math.max(3000, Math.min(20_000, deadline - Date.now())), options.log);
    if (outcome instanceof Client) {
      const remote = new SshRemote(outcome, target);
      try {
        await remote.checkSudo();
      } catch (error) {
        await remote.close();
        throw error;
      }
      return remote;
    }
    if (!outcome.retry) throw outcome.error;
    lastError = outcome.error.message;
    options.log?.debug(`${target.name}: ssh not ready (${lastError}); retrying`);
    return undefined;
  }, {
    timeoutMs: waitMs,
    intervalMs: 250,
    maxIntervalMs: 2000,
    onTimeout: (tries) => {
      throw new OperationError(
        `${target.name} (${target.user}@${target.host}:${target.port}): SSH did not answer within ${Math.round(waitMs / 1000)} s ` +
          `(${tries} attempts; last error: ${lastError})`,
        options.waitHint ?? `Check that the node is running and that port ${target.port} on ${target.host} is reachable from here, and that the key is authorised for ${target.user}.`,
        'SSH_TIMEOUT',
      );
    },
  });
}

export interface SshPoolOptions {
  user: string;
  port: number;
  privateKey: Buffer | string;
  /** For messages: the file the key was read from. */
  keyFile?: string;
  knownHosts: KnownHosts;
  log?: Logger;
  waitMs?: number;
  waitHint?: string;
}

/** One SSH connection per node, opened on first use and reused by every later command. */
export class SshPool {
  private readonly open = new Map<string, Promise<SshRemote>>();

  constructor(readonly options: SshPoolOptions) {}

  get knownHosts(): KnownHosts {
    return this.options.knownHosts;
  }

  remote(node: { name: string; address: string }, waitMs = this.options.waitMs): Promise<SshRemote> {
    const existing = this.open.get(node.address);
    if (existing) {
      return existing.then((remote) => (remote.isOpen ? remote : this.reconnect(node, waitMs)), () => this.reconnect(node, waitMs));
    }
    return this.reconnect(node, waitMs);
  }

  private reconnect(node: { name: string; address: string }, waitMs: number | undefined): Promise<SshRemote> {
    const pending = connectSsh(
      { name: node.name, host: node.address, port: this.options.port, user: this.options.user, privateKey: this.options.privateKey, keyFile: this.options.keyFile },
      { knownHosts: this.options.knownHosts, log: this.options.log, waitMs, waitHint: this.options.waitHint },
    );
    this.open.set(node.address, pending);
    pending.catch(() => { if (this.open.get(node.address) === pending) this.open.delete(node.address); });
    return pending;
  }

  /** Drops a node's connection and its recorded host key (it was removed or recreated). */
  async forget(node: { address: string }): Promise<void> {
    const pending = this.open.get(node.address);
    this.open.delete(node.address);
    if (pending) await pending.then((r) => r.close(), () => {});
    await this.options.knownHosts.forget(node.address, this.options.port);
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((p) => p.then((r) => r.close(), () => {})));
  }
}

/**
 * A node's Remote that goes through the pool on every call, so a dropped connection (node restarted,
 * idle timeout) is reopened instead of failing every later command. Closing it is the pool's job.
 */
export class PooledRemote implements Remote {
  readonly name: string;

  constructor(private readonly pool: SshPool, private readonly node: { name: string; address: string }) {
    this.name = `${node.name} (${node.address})`;
  }

  async exec(argv: Argv, options?: ExecOptions): Promise<ExecResult> {
    return (await this.pool.remote(this.node)).exec(argv, options);
  }

  async shell(line: string, options?: ExecOptions): Promise<ExecResult> {
    return (await this.pool.remote(this.node)).shell(line, options);
  }

  async writeFileAtomic(file: string, content: string | Buffer, mode?: number): Promise<void> {
    return (await this.pool.remote(this.node)).writeFileAtomic(file, content, mode);
  }

  async readFile(file: string): Promise<string | null> {
    return (await this.pool.remote(this.node)).readFile(file);
  }

  async readFiles(files: readonly string[]): Promise<Array<string | null>> {
    return (await this.pool.remote(this.node)).readFiles(files);
  }

  async engineStream(): Promise<Duplex> {
    return (await this.pool.remote(this.node)).engineStream();
  }

  async close(): Promise<void> {}
}

/** `ssh` command line an operator can paste to reach a node with the same key and known_hosts. */
export function sshCommandFor(target: { user: string; host: string; port: number }, keyFile: string, knownHostsFile: string): string {
  return ['ssh', '-i', keyFile, '-o', `UserKnownHostsFile=${knownHostsFile}`, '-p', String(target.port), `${target.user}@${target.host}`].map(quote).join(' ');
}
