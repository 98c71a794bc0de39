import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import { OperationError } from '../errors.js';
import { parseRawLogLine, serviceLogsQuery, type LogLine, type LogRequest } from '../plan/logs.js';
import type { Engine } from './docker.js';
import { demux } from './swarm.js';

/** Task id -> `<slot>.<id prefix>` and node id -> hostname, refreshed when a line names a task not seen yet. */
class TaskNames {
  private tasks = new Map<string, string>();
  private nodes = new Map<string, string>();
  constructor(private readonly engine: Engine, private readonly service: string) {}

  async refresh(): Promise<void> {
    const [tasks, nodes] = await Promise.all([
      this.engine.docker.listTasks({ filters: JSON.stringify({ service: [this.service] }) } as object),
      this.engine.docker.listNodes(),
    ]);
    for (const t of tasks as Array<{ ID: string; Slot?: number; NodeID?: string }>) this.tasks.set(t.ID, `${t.Slot ?? 0}.${t.ID.slice(0, 5)}`);
    for (const n of nodes as Array<{ ID: string; Description?: { Hostname?: string } }>) this.nodes.set(n.ID, n.Description?.Hostname ?? n.ID.slice(0, 10));
  }

  async name(taskId: string, nodeId: string): Promise<{ task: string; node: string }> {
    if ((taskId && !this.tasks.has(taskId)) || (nodeId && !this.nodes.has(nodeId))) await this.refresh();
    return { task: this.tasks.get(taskId) ?? taskId.slice(0, 5), node: this.nodes.get(nodeId) ?? nodeId.slice(0, 10) };
  }
}

/**
 * Streams one service's logs from every node, through the manager's Engine API (swarm gathers them), calling
 * `onLine` for each line. Without `follow` it returns when the engine has sent everything; with it, when
 * `signal` aborts. New tasks (a restart, a scale-up) are included as they start: the swarm follows the service.
 */
export async function streamServiceLogs(
  engine: Engine, service: { name: string; version: string; service: string }, request: LogRequest, onLine: (line: LogLine) => void, signal?: AbortSignal,
): Promise<void> {
  const names = new TaskNames(engine, service.name);
  await names.refresh();
  let raw: NodeJS.ReadableStream | Buffer;
  try {
    raw = await engine.docker.getService(service.name).logs({ ...serviceLogsQuery(request, Math.floor(Date.now() / 1000)), abortSignal: signal } as object) as unknown as NodeJS.ReadableStream | Buffer;
  } catch (error) {
    if (signal?.aborted) return;
    throw new OperationError(`cannot read the logs of ${service.name}: ${(error as { json?: { message?: string } }).json?.message ?? (error as Error).message}`, undefined, 'LOGS_FAILED');
  }
  const text = new PassThrough();
  // a one-off read comes back whole; a followed one as a stream of Docker's multiplexed frames
  if (Buffer.isBuffer(raw)) {
    text.end(demux(raw));
  } else {
    const stream = raw;
    engine.docker.modem.demuxStream(stream, text, text);
    stream.on('end', () => text.end());
    stream.on('error', () => text.end());
  }
  const onAbort = () => {
    if (!Buffer.isBuffer(raw)) (raw as unknown as { destroy?: () => void }).destroy?.();
    text.end();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const line of createInterface({ input: text, crlfDelay: Infinity })) {
      const parsed = parseRawLogLine(line);
      if (parsed === null) continue;
      const { task, node } = await names.name(parsed.taskId, parsed.nodeId);
      onLine({ time: parsed.time, version: service.version, service: service.service, task, node, message: parsed.message });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
