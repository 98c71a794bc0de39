import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { Client, type ClientChannel } from 'ssh2';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { CONTEXT_DOCKERFILE, packContext, type BuildContext } from './build-context.js';
import type { LoadedConfig } from '../config/load.js';
import type { Cluster, ClusterNode } from './cluster.js';
import { knownHostsPath, sshKeyPath } from './inventory.js';
import { KnownHosts } from './known-hosts.js';
import { LocalRemote } from './local-remote.js';
import { needsSudo, engineStreamCommand } from '../plan/privilege.js';
import { shellLine } from '../plan/shell.js';
import { authFailure, type SshTarget } from './ssh.js';

/**
 * A Docker Engine API client for one node's engine (the manager's, for builds and services). Over SSH the
 * API is reached through the node's unix socket, forwarded through one ssh2 connection, so the operator's
 * machine needs no Docker of its own.
 */
export interface Engine {
  /** For messages: `node-1 (192.168.77.11)`. */
  readonly name: string;
  readonly docker: Docker;
  /** The image's id, or null when the engine does not have it. */
  imageId(ref: string): Promise<string | null>;
  /** `docker import` of a rootfs tarball on this machine, with Dockerfile-style changes (CMD, ENV, ...). */
  importTarball(file: string, tag: string, changes: string[]): Promise<string>;
  build(request: BuildRequest, log: Logger): Promise<string>;
  /** `docker save` of one image, as a tar stream. */
  save(ref: string): Promise<NodeJS.ReadableStream>;
  close(): Promise<void>;
}

export interface BuildRequest {
  /** The checked files of the context (readBuildContext): exactly these are sent. */
  context: BuildContext;
  /** Absolute path of the Dockerfile on this machine (it need not be inside the context). */
  dockerfile: string;
  tag: string;
  args: Record<string, string>;
  /** The multi-stage Dockerfile's stage to build (`docker build --target`). */
  target?: string;
  labels?: Record<string, string>;
}

const SOCKET = '/var/run/docker.sock';

/** An engine reached at a unix socket on this machine (tests; a manager that is this machine). */
export function engineAtSocket(socketPath = SOCKET, name = 'localhost'): Engine {
  return new DockerEngine(name, new Docker({ socketPath }), async () => {});
}

/**
 * An engine on a node reached over SSH. The node's host key must already be on record (the cluster's own
 * SSH connection recorded it), so this second connection cannot be redirected elsewhere.
 */
export async function engineOverSsh(target: SshTarget, knownHosts: KnownHosts): Promise<Engine> {
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', (error: Error & { level?: string }) => reject(error.level === 'client-authentication'
      ? authFailure(target)
      : new OperationError(`${target.name} (${target.host}): cannot open the Docker API connection over SSH: ${error.message}`, undefined, 'DOCKER_SSH')));
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      readyTimeout: 20_000,
      keepaliveInterval: 15_000,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        knownHosts.check(target.host, target.port, key).then((verdict) => verify(verdict.kind === 'known'), () => verify(false));
      },
    });
  });
  client.on('error', () => {});
  const sudo = needsSudo(target.user);
  // A sudo user reaches the engine through one `docker system dial-stdio` session per HTTP connection, and
  // sshd allows 10 sessions per connection (MaxSessions): stay below that.
  const agent = new http.Agent({ keepAlive: true, maxSockets: sudo ? 8 : 16 });
  // http.Agent asks for a socket per connection; an SSH channel to the engine's socket serves as one.
  (agent as unknown as { createConnection: unknown }).createConnection = (_options: unknown, callback: (error: Error | null, socket?: Duplex) => void) => {
    const done = (error: Error | undefined, channel: ClientChannel) => (error ? callback(error) : callback(null, socketLike(channel)));
    if (sudo) client.exec(shellLine(engineStreamCommand(target.user)), done);
    else client.openssh_forwardOutStreamLocal(SOCKET, done);
  };
  const docker = new Docker({ protocol: 'http', host: 'docker', port: 80, agent } as Docker.DockerOptions);
  return new DockerEngine(`${target.name} (${target.host})`, docker, async () => {
    agent.destroy();
    client.end();
  });
}

/**
 * The engine of a cluster's manager: at the local socket when the manager is this machine, otherwise over
 * SSH with the cluster's key, user and port from depl.yaml, to the manager's address from the inventory.
 */
export async function managerEngine(loaded: LoadedConfig, cluster: Cluster): Promise<Engine> {
  return nodeEngine(loaded, cluster, cluster.managerNode);
}

/** The engine of one node of the cluster (a task's container lives on its node's engine). */
export async function nodeEngine(loaded: LoadedConfig, cluster: Cluster, node: ClusterNode): Promise<Engine> {
  if (cluster.manager instanceof LocalRemote) return engineAtSocket(SOCKET, node.name);
  const keyFile = sshKeyPath(loaded);
  const privateKey = await readFile(keyFile).catch((error: Error) => {
    throw new OperationError(`cannot read the cluster's SSH key ${keyFile}: ${error.message}`, "Run 'depl node-up' to make the cluster and its key.", 'SSH_KEY_MISSING');
  });
  return engineOverSsh(
    { name: node.name, host: node.address, port: loaded.config.ssh.port, user: loaded.config.ssh.user, privateKey, keyFile },
    new KnownHosts(knownHostsPath(loaded)),
  );
}

/** The few socket methods http.Agent calls on keep-alive connections, as no-ops on an SSH channel. */
function socketLike(channel: ClientChannel): Duplex {
  const socket = channel as unknown as Record<string, unknown>;
  for (const method of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) {
    if (typeof socket[method] !== 'function') socket[method] = () => channel;
  }
  return channel;
}

interface ProgressEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

class DockerEngine implements Engine {
  constructor(readonly name: string, readonly docker: Docker, private readonly onClose: () => Promise<void>) {}

  async imageId(ref: string): Promise<string | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return info.Id;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      throw this.failure(`cannot inspect image ${ref}`, error);
    }
  }

  async importTarball(file: string, tag: string, changes: string[]): Promise<string> {
    const at = tag.lastIndexOf(':');
    const stream = await this.docker.importImage(createReadStream(file), { repo: tag.slice(0, at), tag: tag.slice(at + 1), changes, message: 'depl offline base image' } as object);
    await this.follow(stream as NodeJS.ReadableStream, () => {});
    const id = await this.imageId(tag);
    if (!id) throw new OperationError(`${this.name}: importing ${file} as ${tag} left no image`, undefined, 'IMAGE_IMPORT');
    return id;
  }

  async build(request: BuildRequest, log: Logger): Promise<string> {
    const { stream: context, files } = await packContext(request.context, request.dockerfile);
    log.debug(`build context ${request.context.dir}: ${files} files after .dockerignore and depl's own exclusions`);
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.buildImage(context, {
        t: request.tag,
        dockerfile: CONTEXT_DOCKERFILE,
        buildargs: request.args,
        ...(request.target !== undefined ? { target: request.target } : {}),
        labels: request.labels ?? {},
        rm: true,
        forcerm: true,
        pull: false,
      } as unknown as Docker.ImageBuildOptions);
    } catch (error) {
      throw this.failure(`cannot start the build of ${request.tag}`, error);
    }
    let step = '';
    const tail: string[] = [];
    let id: string | undefined;
    try {
      await this.follow(stream, (event) => {
        if (event.aux?.ID) id = event.aux.ID;
        for (const line of (event.stream ?? '').split('\n')) {
          const text = line.trimEnd();
          if (text.length === 0) continue;
          if (/^Step \d+\/\d+ : /.test(text)) step = text;
          const built = /^Successfully built ([0-9a-f]+)/.exec(text);
          if (built) id = id ?? built[1];
          tail.push(text);
          if (tail.length > 15) tail.shift();
          log.info(`  ${text}`);
        }
      });
    } catch (error) {
      const reason = (error as Error).message;
      throw new OperationError(
        `the build of ${request.tag} failed${step ? ` at ${step}` : ''}: ${reason}` + (tail.length > 0 ? `\n--- last output ---\n${tail.join('\n')}` : ''),
        'Fix the step shown (run the same Dockerfile locally to iterate faster); nothing was installed.',
        'BUILD_FAILED',
      );
    }
    const resolved = id ?? (await this.imageId(request.tag));
    if (!resolved) throw new OperationError(`the build of ${request.tag} ended without an image`, undefined, 'BUILD_FAILED');
    return resolved;
  }

  async save(ref: string): Promise<NodeJS.ReadableStream> {
    try {
      return await this.docker.getImage(ref).get();
    } catch (error) {
      throw this.failure(`cannot save image ${ref}`, error);
    }
  }

  close(): Promise<void> {
    return this.onClose();
  }

  /** Reads a progress stream to its end; an `error` event in it rejects. */
  private follow(stream: NodeJS.ReadableStream, onEvent: (event: ProgressEvent) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      let failed: Error | undefined;
      this.docker.modem.followProgress(stream, (error: Error | null) => {
        if (error) reject(error);
        else if (failed) reject(failed);
        else resolve();
      }, (event: ProgressEvent) => {
        if (event.error) failed = failed ?? new Error(event.errorDetail?.message ?? event.error);
        onEvent(event);
      });
    });
  }

  private failure(what: string, error: unknown): OperationError {
    const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error);
    return new OperationError(`${this.name}: ${what}: ${message}`, undefined, 'DOCKER_API', { cause: error });
  }
}
