import { createReadStream } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { Client } from './ssh2-client.js';
import { OperationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { BuildContext } from './build-context.js';
import type { Cluster, ClusterNode } from './cluster.js';
import type { KnownHosts } from './known-hosts.js';
import { EngineSocket, ENGINE_SOCKET } from './engine-socket.js';
import type { Remote } from './remote.js';
import { authFailure, SshRemote, type SshTarget } from './ssh.js';

/**
 * A Docker Engine API client for one node's engine (the manager's, for builds and services). Over SSH the
 * API is reached through the node's unix socket, forwarded through one ssh2 connection, so the operator's
 * machine needs no Docker of its own.
 */
export interface Engine {
  /** For messages: `node-1 (192.168.77.11)`. */
  readonly name: string;
  /** dockerode, loaded on first use (builds, images, logs, writes to the swarm). */
  readonly docker: Docker;
  /**
   * The same Engine through the small client (src/apply/engine-socket.ts), for the JSON reads every release
   * command makes (src/apply/swarm.ts): dockerode's load (its gRPC session code) would cost a switch more
   * than the read itself.
   */
  readonly api: EngineSocket;
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

const SOCKET = ENGINE_SOCKET;

const loadModule = createRequire(import.meta.url);

/** dockerode's client, loaded when a command first needs it (see Engine.api). */
function dockerode(options: Docker.DockerOptions): Docker {
  const DockerClient = loadModule('dockerode') as typeof Docker;
  return new DockerClient(options);
}

/** An engine reached at a unix socket on this machine (tests; a manager that is this machine). */
export function engineAtSocket(socketPath = SOCKET, name = 'localhost'): Engine {
  return new DockerEngine(name, () => dockerode({ socketPath }), new EngineSocket(socketPath), async () => {});
}

/**
 * An engine on a node reached over SSH by a connection of its own (node-up, before the cluster is open). The
 * node's host key must already be on record (the cluster's own SSH connection recorded it), so this second
 * connection cannot be redirected elsewhere. A command on an open cluster uses `engineOn` instead.
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
      authHandler: ['publickey'],
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        knownHosts.check(target.host, target.port, key).then((verdict) => verify(verdict.kind === 'known'), () => verify(false));
      },
    });
  });
  client.on('error', () => {});
  const remote = new SshRemote(client, target);
  return engineOn(remote, `${target.name} (${target.host})`, async () => { await remote.close(); });
}

/**
 * The engine of a node, its API reached through streams the node's remote opens over the SSH connection it
 * already has (Remote.engineStream): no second connection, no key read again. `onClose` frees what the caller
 * opened for this engine only.
 */
export function engineOn(remote: Pick<Remote, 'engineStream'>, name: string, onClose: () => Promise<void> = async () => {}): Engine {
  const open = remote.engineStream?.bind(remote);
  if (open === undefined) throw new OperationError(`${name}: no Docker Engine API stream over this connection`, undefined, 'DOCKER_SSH');
  // A sudo user reaches the engine through one `docker system dial-stdio` session per HTTP connection, and
  // sshd allows 10 sessions per connection (MaxSessions), shared with the commands run on it: stay well below.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 5 });
  // http.Agent asks for a socket per connection; a stream to the engine's socket serves as one.
  (agent as unknown as { createConnection: unknown }).createConnection = (_options: unknown, callback: (error: Error | null, socket?: Duplex) => void) => {
    open().then((stream) => callback(null, socketLike(stream)), (error: Error) => callback(error));
  };
  return new DockerEngine(name, () => dockerode({ protocol: 'http', host: 'docker', port: 80, agent } as Docker.DockerOptions), new EngineSocket(agent), async () => {
    agent.destroy();
    await onClose();
  });
}

/** The engine of a cluster's manager: at the local socket when the manager is this machine, otherwise over its SSH connection. */
export async function managerEngine(cluster: Cluster): Promise<Engine> {
  return nodeEngine(cluster, cluster.managerNode);
}

/** The engine of one node of the cluster (a task's container lives on its node's engine), over the cluster's connection to it. */
export async function nodeEngine(cluster: Cluster, node: ClusterNode): Promise<Engine> {
  // a manager that is this machine (LocalRemote) has no SSH connection to stream over: its socket is here
  if (cluster.manager.engineStream === undefined) return engineAtSocket(SOCKET, node.name);
  const remote = node.name === cluster.managerNode.name ? cluster.manager : await cluster.remote(node.name);
  return engineOn(remote, remote.name);
}

/** The few socket methods http.Agent calls on keep-alive connections, as no-ops on an SSH channel. */
function socketLike(channel: Duplex): Duplex {
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
  private client: Docker | undefined;

  constructor(readonly name: string, private readonly makeClient: () => Docker, readonly api: EngineSocket, private readonly onClose: () => Promise<void>) {}

  get docker(): Docker {
    this.client ??= this.makeClient();
    return this.client;
  }

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
    // the packer (tar, .dockerignore) is loaded by the commands that build only
    const { CONTEXT_DOCKERFILE, packContext } = await import('./build-context.js');
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
