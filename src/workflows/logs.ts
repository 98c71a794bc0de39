import { readReleaseDocument } from '../apply/release-store.js';
import { streamServiceLogs } from '../apply/logs.js';
import { listServices } from '../apply/swarm.js';
import { UserError } from '../errors.js';
import { selectLines, type LogLine, type LogRequest } from '../plan/logs.js';
import { LABELS } from '../plan/services.js';
import type { Logger } from '../util/log.js';
import type { ClusterAccess } from './command-inputs.js';
import { withManagerEngine } from './versions.js';

export interface LogsOptions {
  service?: string;
  /** Default: the live version. */
  version?: string;
  request: LogRequest;
  signal?: AbortSignal;
}

/**
 * depl logs: the tasks' lines of one version (every service, or one), from all nodes, merged in time order.
 * A one-off read collects everything, then sorts, filters and tails; `follow` prints the history that way,
 * then each new line as it comes, until `signal` aborts.
 */
export async function streamLogs(access: Pick<ClusterAccess, 'app' | 'open'>, options: LogsOptions, log: Logger, print: (line: LogLine) => void): Promise<{ version: string; services: string[] }> {
  const { app } = access;
  return withManagerEngine(access, log, async (cluster, engine) => {
    const version = options.version ?? (await readReleaseDocument(cluster.manager, app)).live;
    if (version === null || version === undefined) throw new UserError('no version is live, so there is no default version to show', 'Name one: depl logs --version <version> (see depl versions).', 'NO_LIVE');
    const services = (await listServices(engine, { [LABELS.app]: app, [LABELS.version]: version }))
      .filter((s) => options.service === undefined || s.labels[LABELS.service] === options.service || s.name === `${app}-${version}-${options.service}`);
    if (services.length === 0) {
      throw new UserError(
        options.service === undefined ? `version ${version} has no services on this cluster` : `version ${version} has no service "${options.service}"`,
        'See what is installed with `depl versions`.', 'NOT_INSTALLED');
    }
    const targets = services.map((s) => ({ name: s.name, version, service: s.labels[LABELS.service] ?? s.name.slice(`${app}-${version}-`.length) }));
    // history first, merged and trimmed as a whole
    const startedAt = Date.now();
    const history: LogLine[] = [];
    await Promise.all(targets.map((t) => streamServiceLogs(engine, t, { ...options.request, follow: false }, (line) => history.push(line))));
    const shown = selectLines(history, options.request);
    shown.forEach(print);
    if (options.request.follow) {
      const newest = mergeNewest(history);
      const seen = new Set(history.map(key));
      // from a second before the newest line read (or the read itself), so that nothing written meanwhile is lost
      const from = newest !== undefined ? Date.parse(newest) : startedAt;
      const followRequest: LogRequest = { ...options.request, tail: undefined, sinceSeconds: Math.ceil((Date.now() - from) / 1000) + 1 };
      await Promise.all(targets.map((t) => streamServiceLogs(engine, t, followRequest, (line) => {
        if ((newest !== undefined && line.time < newest) || seen.has(key(line))) return;
        if (followRequest.grep === undefined || followRequest.grep.test(line.message)) print(line);
      }, options.signal).catch((error: Error) => {
        if (!options.signal?.aborted) throw error;
      })));
    }
    return { version, services: targets.map((t) => t.service) };
  });
}

const mergeNewest = (lines: LogLine[]) => lines.reduce<string | undefined>((newest, l) => (newest === undefined || l.time > newest ? l.time : newest), undefined);
const key = (line: LogLine) => `${line.time} ${line.task} ${line.message}`;
