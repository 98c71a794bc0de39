import type Docker from 'dockerode';
import { OperationError } from '../errors.js';
import type { ServiceRestore } from '../plan/install-intent.js';
import type { ConfigDocument, SecretDocument, ServiceSpec, SwarmSecretRef } from '../plan/services.js';
import { serviceSummaries, versionsFromServices, type EngineServiceObject, type ServiceSummary } from '../plan/releases.js';
import type { InstalledVersion } from '../plan/release-state.js';
import type { ScaleTarget } from '../plan/scale.js';
import { LABELS } from '../plan/services.js';
import type { JobSpec } from '../plan/jobs.js';
import type { Logger } from '../util/log.js';
import type { Engine } from './docker.js';
import { pollUntil } from '../util/poll.js';

/**
 * The swarm adapter: services, configs, secrets, tasks and replicas through the manager's Engine API (over the
 * cluster's one SSH connection, src/apply/docker.ts): create, update, scale, remove, list, wait. Nothing in
 * src/ reaches the swarm's objects another way. The reads every release command makes go through the Engine's
 * small client (engine.api), everything else through dockerode (engine.docker).
 */

export interface InstalledService extends ServiceSummary {
  id: string;
  /** The spec version, needed to update a service. */
  specVersion: number;
  image: string;
  /** Running tasks, when the engine reports them (API >= 1.41). */
  running?: number;
  /** Published ports of its endpoint spec. */
  ports?: number[];
  /** The named volumes its spec mounts. */
  volumes?: string[];
}

function apiMessage(error: unknown): string {
  return (error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error);
}

function fail(engine: Engine, what: string, error: unknown): OperationError {
  return new OperationError(`${engine.name}: ${what}: ${apiMessage(error).trim()}`, undefined, 'SWARM_API', { cause: error });
}

/** The swarm config holding the document: reused when one with the same (content-hashed) name exists. */
export async function ensureSwarmConfig(engine: Engine, doc: Omit<ConfigDocument, 'data'> & { data: string | Buffer }): Promise<{ id: string; name: string }> {
  const existing = await engine.docker.listConfigs({ filters: JSON.stringify({ name: [doc.name] }) } as object).catch((e) => { throw fail(engine, 'cannot list swarm configs', e); });
  const found = existing.find((c) => c.Spec?.Name === doc.name);
  if (found) return { id: found.ID, name: doc.name };
  try {
    const created = await engine.docker.createConfig({ Name: doc.name, Labels: doc.labels, Data: Buffer.from(doc.data).toString('base64') }) as unknown as { id: string };
    return { id: created.id, name: doc.name };
  } catch (error) {
    throw fail(engine, `cannot create swarm config ${doc.name}`, error);
  }
}

/**
 * The swarm secret holding one value: reused when its (value-versioned) name exists, since a swarm secret can
 * never be changed. The value goes in the API request body through the SSH-tunnelled socket: no command line
 * on any machine carries it.
 */
export async function ensureSwarmSecret(engine: Engine, doc: SecretDocument): Promise<SwarmSecretRef> {
  const existing = await engine.docker.listSecrets({ filters: JSON.stringify({ name: [doc.name] }) } as object).catch((e) => { throw fail(engine, 'cannot list swarm secrets', e); });
  const found = existing.find((c) => c.Spec?.Name === doc.name);
  if (found) return { id: found.ID, name: doc.name };
  try {
    const created = await engine.docker.createSecret({ Name: doc.name, Labels: doc.labels, Data: Buffer.from(doc.data.reveal()).toString('base64') }) as unknown as { id: string };
    return { id: created.id, name: doc.name };
  } catch (error) {
    throw fail(engine, `cannot create swarm secret ${doc.name}`, error);
  }
}

/** The app's swarm secrets that carry this label, with their labels (branch databases' records). */
export async function labelledSecrets(engine: Engine, app: string, label: string): Promise<{ id: string; name: string; labels: Record<string, string> }[]> {
  const listed = await engine.docker.listSecrets({ filters: JSON.stringify({ label: [`depl.app=${app}`, label] }) } as object).catch((e) => { throw fail(engine, 'cannot list swarm secrets', e); });
  return listed.map((s) => ({ id: s.ID, name: s.Spec?.Name ?? s.ID, labels: (s.Spec?.Labels ?? {}) as Record<string, string> }));
}

/** Removes a swarm secret by name; one already gone is not an error (swarm refuses one a service mounts). */
export async function removeSwarmSecret(engine: Engine, name: string): Promise<void> {
  try {
    await engine.docker.getSecret(name).remove();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return;
    throw fail(engine, `cannot remove swarm secret ${name}`, error);
  }
}

/** Removes the app's swarm secrets no service mounts any more (older values; swarm refuses one in use). */
export async function removeUnusedSecrets(engine: Engine, app: string): Promise<string[]> {
  const secrets = await engine.docker.listSecrets({ filters: JSON.stringify({ label: [`depl.app=${app}`] }) } as object);
  const removed: string[] = [];
  for (const secret of secrets) {
    try {
      await engine.docker.getSecret(secret.ID).remove();
      removed.push(secret.Spec?.Name ?? secret.ID);
    } catch {
      // in use by a service: kept
    }
  }
  return removed;
}

/** Removes the app's swarm configs no service uses any more (swarm refuses to remove one in use). */
export async function removeUnusedConfigs(engine: Engine, app: string): Promise<string[]> {
  const configs = await engine.docker.listConfigs({ filters: JSON.stringify({ label: [`depl.app=${app}`] }) } as object);
  const removed: string[] = [];
  for (const config of configs) {
    try {
      await engine.docker.getConfig(config.ID).remove();
      removed.push(config.Spec?.Name ?? config.ID);
    } catch {
      // in use by a service: kept
    }
  }
  return removed;
}

export async function listServices(engine: Engine, labels: Record<string, string>): Promise<InstalledService[]> {
  const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
  try {
    const services = await engine.docker.listServices({ filters: JSON.stringify(filters), status: true } as object) as Array<Docker.Service & { ServiceStatus?: { RunningTasks?: number } }>;
    return services.map((s) => ({
      id: s.ID,
      name: s.Spec?.Name ?? s.ID,
      labels: s.Spec?.Labels ?? {},
      createdAt: s.CreatedAt ?? '',
      replicas: s.Spec?.Mode?.Replicated?.Replicas ?? 0,
      specVersion: s.Version?.Index ?? 0,
      ...(s.ServiceStatus?.RunningTasks !== undefined ? { running: s.ServiceStatus.RunningTasks } : {}),
      ports: (s.Spec?.EndpointSpec?.Ports ?? []).map((p) => p.PublishedPort ?? 0),
      image: s.Spec?.TaskTemplate && 'ContainerSpec' in s.Spec.TaskTemplate ? String((s.Spec.TaskTemplate as { ContainerSpec?: { Image?: string } }).ContainerSpec?.Image ?? '') : '',
      volumes: ((s.Spec?.TaskTemplate as { ContainerSpec?: { Mounts?: { Type?: string; Source?: string }[] } } | undefined)?.ContainerSpec?.Mounts ?? [])
        .filter((m) => m.Type === 'volume' && m.Source !== undefined && m.Source !== '').map((m) => m.Source!),
    }));
  } catch (error) {
    throw fail(engine, 'cannot list services', error);
  }
}

/** The app's services' specs as the swarm has them (one Engine API read). */
export async function appServiceSpecs(engine: Engine, app: string): Promise<Array<{ name: string; spec: Record<string, unknown> }>> {
  try {
    const services = await engine.docker.listServices({ filters: JSON.stringify({ label: [`${LABELS.app}=${app}`] }) } as object);
    return services.map((s) => ({ name: s.Spec?.Name ?? s.ID, spec: (s.Spec ?? {}) as Record<string, unknown> }));
  } catch (error) {
    throw fail(engine, 'cannot list services', error);
  }
}

/** The app's services with their labels: one Engine API read (what the installed versions are made from). */
export async function appServiceSummaries(engine: Engine, app: string): Promise<ServiceSummary[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${LABELS.app}=${app}`] }));
  try {
    return serviceSummaries(await engine.api.getJson<EngineServiceObject[]>(`/services?filters=${filters}`, 'list services'));
  } catch (error) {
    throw fail(engine, 'cannot list services', error);
  }
}

/** The app's versions as the swarm's service labels say. */
export async function installedVersions(engine: Engine, app: string): Promise<InstalledVersion[]> {
  return versionsFromServices(app, await appServiceSummaries(engine, app));
}

interface ServiceStatusView {
  Spec?: { Name?: string; Mode?: { Replicated?: { Replicas?: number } } };
  ServiceStatus?: { RunningTasks?: number; DesiredTasks?: number };
}

/**
 * Running and desired tasks of the named services (a service the swarm does not have is left out), as
 * `docker service ls` counts them: the swarm's own service status (Engine API >= 1.41), one read.
 */
export async function serviceReplicas(engine: Engine, services: readonly string[]): Promise<Record<string, { running: number; desired: number }>> {
  if (services.length === 0) return {};
  // the name filter matches prefixes: the exact names are picked below
  const filters = encodeURIComponent(JSON.stringify({ name: [...services] }));
  let listed: ServiceStatusView[];
  try {
    listed = await engine.api.getJson<ServiceStatusView[]>(`/services?status=true&filters=${filters}`, 'list services');
  } catch (error) {
    throw fail(engine, 'cannot list services', error);
  }
  const wanted = new Set(services);
  const result: Record<string, { running: number; desired: number }> = {};
  for (const service of listed) {
    const name = service.Spec?.Name;
    if (name === undefined || !wanted.has(name)) continue;
    const status = service.ServiceStatus;
    if (status?.RunningTasks === undefined) throw new OperationError(`${engine.name}: the Engine reports no task counts for ${name} (its API is older than 1.41)`, 'Use Docker 20.10 or newer on the nodes.', 'SWARM_API');
    result[name] = { running: status.RunningTasks, desired: status.DesiredTasks ?? service.Spec?.Mode?.Replicated?.Replicas ?? 0 };
  }
  return result;
}

/**
 * Sets the services' desired replicas, as `docker service scale --detach` does: each service's spec as the
 * swarm has it, with other replicas, at the version it was read at. Returns at once (the swarm converges).
 */
export async function scaleServices(engine: Engine, targets: readonly ScaleTarget[]): Promise<void> {
  for (const target of targets) {
    // the autoscaler (or a rollback the swarm runs on its own) may bump the spec's version between read and write
    for (let attempt = 1; ; attempt++) {
      const current = await inspectServiceSpec(engine, target.service);
      if (current === null) throw new OperationError(`${engine.name}: cannot scale ${target.service}: the swarm has no such service`, 'Run `depl versions` to see what is installed.', 'SWARM_API');
      try {
        await engine.docker.getService(current.id).update({ ...current.spec, Mode: { Replicated: { Replicas: target.replicas } }, version: current.version } as never);
        break;
      } catch (error) {
        if (attempt < 5 && /out of sequence/i.test(apiMessage(error))) continue;
        throw fail(engine, `cannot scale ${target.service} to ${target.replicas}`, error);
      }
    }
  }
}

/** Removes the services; those already gone are not an error. Every failure is named, after trying them all. */
export async function removeServices(engine: Engine, services: readonly string[]): Promise<void> {
  const failures: string[] = [];
  for (const name of services) {
    await removeService(engine, name).catch((error: Error) => failures.push(error.message));
  }
  if (failures.length > 0) {
    throw new OperationError(`could not remove ${services.join(', ')} on ${engine.name}: ${failures.join('; ')}`, 'Check the swarm with `docker service ls` on the manager, then run the command again.', 'SERVICE_REMOVE_FAILED');
  }
}

export async function createService(engine: Engine, spec: ServiceSpec | JobSpec): Promise<string> {
  try {
    const created = await engine.docker.createService(spec as never) as unknown as { id?: string; ID?: string };
    return created.id ?? created.ID ?? spec.Name;
  } catch (error) {
    throw fail(engine, `cannot create service ${spec.Name}`, error);
  }
}

export async function updateService(engine: Engine, existing: InstalledService, spec: ServiceSpec): Promise<void> {
  try {
    await engine.docker.getService(existing.id).update({ ...spec, version: existing.specVersion } as never);
  } catch (error) {
    throw fail(engine, `cannot update service ${spec.Name}`, error);
  }
}

/** A service's spec as the swarm has it (what `docker service update` starts from), null when there is none. */
export async function inspectServiceSpec(engine: Engine, nameOrId: string): Promise<{ id: string; version: number; spec: Record<string, unknown> } | null> {
  try {
    const info = await engine.docker.getService(nameOrId).inspect() as { ID: string; Spec: Record<string, unknown>; Version: { Index: number } };
    return { id: info.ID, version: info.Version.Index, spec: info.Spec };
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw fail(engine, `cannot inspect service ${nameOrId}`, error);
  }
}

/**
 * Puts services back to the specs they had (a failed or interrupted branch redeploy): each is updated to its
 * spec, or created from it when it is gone. Running it twice changes nothing more: a service already at its
 * spec gets the same spec again, which the swarm does not roll out.
 */
export async function restoreServices(engine: Engine, services: readonly ServiceRestore[]): Promise<void> {
  for (const { name, spec } of services) {
    // the swarm may be rolling the failed update back on its own (UpdateConfig.FailureAction), which bumps the
    // spec's version between our read and our write: read again and retry
    for (let attempt = 1; ; attempt++) {
      const current = await inspectServiceSpec(engine, name);
      try {
        if (current === null) await engine.docker.createService(spec as never);
        else await engine.docker.getService(current.id).update({ ...spec, version: current.version } as never);
        break;
      } catch (error) {
        if (attempt < 5 && /out of sequence/i.test(apiMessage(error))) continue;
        throw fail(engine, `cannot put service ${name} back as it was`, error);
      }
    }
  }
}

/**
 * A reference to image `id` that no later build moves, for the nodes to run: with a registry, the digest the
 * manager pushed it under (nodes pull it); without one, the id itself (the nodes loaded it, and keep it when a
 * newer build takes its tag). Undefined when the manager no longer has the image.
 */
export async function pinnedImageReference(engine: Engine, id: string, registry?: string): Promise<string | undefined> {
  try {
    const info = await engine.docker.getImage(id).inspect();
    if (registry === undefined) return info.Id;
    const host = registry.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
    return (info.RepoDigests ?? []).find((d) => d.startsWith(`${host}/`));
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw fail(engine, `cannot inspect image ${id}`, error);
  }
}

export async function removeService(engine: Engine, nameOrId: string): Promise<void> {
  try {
    await engine.docker.getService(nameOrId).remove();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return;
    throw fail(engine, `cannot remove service ${nameOrId}`, error);
  }
}

export interface TaskView {
  id: string;
  state: string;
  desired: string;
  error: string;
  message: string;
  exitCode?: number;
  createdAt: string;
  image: string;
  configs: string[];
  labels: Record<string, string>;
  slot: number;
  /** Empty until the task is assigned a node / has a container. */
  nodeId: string;
  containerId: string;
}

export async function serviceTasks(engine: Engine, service: string): Promise<TaskView[]> {
  try {
    const tasks = await engine.docker.listTasks({ filters: JSON.stringify({ service: [service] }) } as object) as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    return tasks.map((t) => ({
      id: String(t.ID),
      state: String(t.Status?.State ?? ''),
      desired: String(t.DesiredState ?? ''),
      error: String(t.Status?.Err ?? ''),
      message: String(t.Status?.Message ?? ''),
      exitCode: t.Status?.ContainerStatus?.ExitCode,
      createdAt: String(t.CreatedAt ?? ''),
      image: String(t.Spec?.ContainerSpec?.Image ?? ''),
      labels: (t.Spec?.ContainerSpec?.Labels ?? {}) as Record<string, string>,
      configs: ((t.Spec?.ContainerSpec?.Configs ?? []) as { ConfigName?: string }[]).map((c) => String(c.ConfigName ?? '')),
      slot: Number(t.Slot ?? 0),
      nodeId: String(t.NodeID ?? ''),
      containerId: String(t.Status?.ContainerStatus?.ContainerID ?? ''),
    }));
  } catch (error) {
    throw fail(engine, `cannot list the tasks of ${service}`, error);
  }
}

/** The last lines a service's tasks wrote (stdout and stderr), across nodes. */
export async function serviceLogTail(engine: Engine, service: string, lines = 20): Promise<string> {
  try {
    const raw = await engine.docker.getService(service).logs({ stdout: true, stderr: true, tail: lines, follow: false } as object) as unknown as Buffer | NodeJS.ReadableStream;
    const buffer = Buffer.isBuffer(raw) ? raw : await collect(raw);
    return demux(buffer).trim();
  } catch (error) {
    return `(no logs: ${apiMessage(error)})`;
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Docker's multiplexed log framing: 8-byte headers (stream, 0, 0, 0, length) before each chunk. */
export function demux(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length && buffer[offset]! <= 2 && buffer[offset + 1] === 0) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  if (offset === 0) return buffer.toString('utf8');
  return Buffer.concat(parts).toString('utf8');
}

const FAILED_STATES = new Set(['failed', 'rejected', 'orphaned']);

export interface WaitOptions {
  timeoutMs: number;
  /** A service whose tasks failed this many times is given up on before the timeout. */
  maxFailures?: number;
  /** Every task must have been running this long (the crash-on-start window). */
  stableMs?: number;
  pollMs?: number;
  /** Tasks that existed before this change (a redeployed branch's history): their failures do not count. */
  ignoreTasks?: Set<string>;
}

/**
 * Waits until every service has all its replicas running and they stay up for `stableMs`. Bounded: a
 * service that keeps failing, or the timeout, ends the wait with the failing task's error and log tail.
 */
export interface AwaitedService {
  name: string;
  replicas: number;
  /**
   * Only tasks of this spec count (a service updated in place still runs old tasks for a while).
   * Compared by image reference and config names.
   */
  spec?: { image: string; configs: string[]; labels?: Record<string, string> };
}

export async function waitForServices(engine: Engine, services: AwaitedService[], options: WaitOptions, log: Logger): Promise<void> {
  const maxFailures = options.maxFailures ?? 3;
  const stableMs = options.stableMs ?? 3_000;
  let stableSince: number | undefined;
  let reported = '';
  let status: string[] = [];
  let line = '';
  await pollUntil(async () => {
    status = [];
    let allRunning = true;
    for (const svc of services) {
      const spec = svc.spec;
      const current = (t: TaskView) => spec === undefined || (t.image === spec.image && t.configs.join() === spec.configs.join() &&
        Object.entries(spec.labels ?? {}).every(([k, v]) => t.labels[k] === v));
      const tasks = (await serviceTasks(engine, svc.name)).filter(current);
      const running = tasks.filter((t) => t.desired === 'running' && t.state === 'running').length;
      const failed = tasks.filter((t) => !options.ignoreTasks?.has(t.id) && (FAILED_STATES.has(t.state) || (t.state === 'complete' && svc.replicas > 0)));
      status.push(`${svc.name} ${running}/${svc.replicas}`);
      if (running < svc.replicas) allRunning = false;
      if (failed.length >= maxFailures) throw await taskFailure(engine, svc.name, failed, `its tasks failed ${failed.length} times`);
    }
    line = status.join(', ');
    if (line !== reported) {
      log.step(`tasks running: ${line}`);
      reported = line;
    }
    if (!allRunning) {
      stableSince = undefined;
      return undefined;
    }
    stableSince = stableSince ?? Date.now();
    return Date.now() - stableSince >= stableMs ? true : undefined;
  }, {
    timeoutMs: options.timeoutMs,
    intervalMs: options.pollMs ?? 1_000,
    onTimeout: async () => {
      const lagging = services.find((s, i) => !status[i]!.endsWith(`${s.replicas}/${s.replicas}`)) ?? services[0]!;
      const tasks = await serviceTasks(engine, lagging.name);
      throw await taskFailure(engine, lagging.name, tasks.filter((t) => t.state !== 'running'), `not all tasks were running after ${Math.round(options.timeoutMs / 1000)} s (${line})`);
    },
  });
}

async function taskFailure(engine: Engine, service: string, tasks: TaskView[], what: string): Promise<OperationError> {
  const latest = [...tasks].sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
  const reason = latest ? [latest.state, latest.error || latest.message, latest.exitCode !== undefined ? `exit code ${latest.exitCode}` : ''].filter(Boolean).join(': ') : 'no task was scheduled';
  const logs = await serviceLogTail(engine, service, 15);
  return new OperationError(
    `service ${service}: ${what}; last task ${reason}` + (logs ? `\n--- last log lines ---\n${logs}` : ''),
    `Inspect it with \`docker service ps --no-trunc ${service}\` and \`docker service logs ${service}\` on the manager.`,
    'TASKS_FAILED',
  );
}
