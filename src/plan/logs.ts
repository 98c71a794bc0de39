import { UserError } from '../errors.js';
import { terminalJson, visible, withoutEscapes } from '../util/terminal-text.js';
import { parseDuration } from './duration.js';

/**
 * `depl logs`: what to ask the swarm for, and how the lines of many tasks on many nodes become one stream.
 * The Engine API's service logs with `timestamps` and `details` give each line as
 * `<RFC3339 nano time> com.docker.swarm.node.id=..,com.docker.swarm.service.id=..,com.docker.swarm.task.id=.. <text>`.
 */
export interface LogRequest {
  /** Seconds back from now (`--since 10m`), or undefined for everything the engine kept. */
  sinceSeconds?: number;
  /** Last N lines in all (each task is asked for at most N, the merge keeps the newest N). */
  tail?: number;
  follow: boolean;
  grep?: RegExp;
}

export interface LogLine {
  /** ISO time with the engine's nanoseconds, so lines of one task keep their order when sorted. */
  time: string;
  version: string;
  service: string;
  /** `<slot>.<task id prefix>` as `docker service logs` shows it. */
  task: string;
  node: string;
  message: string;
}

export function planLogRequest(options: { since?: string; tail?: number; follow?: boolean; grep?: string }): LogRequest {
  const request: LogRequest = { follow: Boolean(options.follow) };
  if (options.since !== undefined) request.sinceSeconds = Math.ceil(parseDuration(options.since, '--since') / 1000);
  if (options.tail !== undefined) {
    if (!Number.isInteger(options.tail) || options.tail < 0) throw new UserError(`--tail ${options.tail} is not a whole number of lines`, 'Give a number like --tail 100.', 'BAD_USAGE');
    request.tail = options.tail;
  }
  if (options.grep !== undefined) {
    try {
      request.grep = new RegExp(options.grep);
    } catch (error) {
      throw new UserError(`--grep "${options.grep}" is not a regular expression: ${(error as Error).message}`, 'Use JavaScript regular expression syntax, e.g. --grep "error|warn".', 'BAD_USAGE');
    }
  }
  return request;
}

/** The Engine API query for one service's logs. `nowSeconds` is passed in: plan/ has no clock. */
export function serviceLogsQuery(request: LogRequest, nowSeconds: number): Record<string, string | number | boolean> {
  return {
    stdout: true,
    stderr: true,
    timestamps: true,
    details: true,
    follow: request.follow,
    ...(request.sinceSeconds !== undefined ? { since: nowSeconds - request.sinceSeconds } : {}),
    // each task's newest N hold the merged newest N; with --grep the N are counted after filtering, so all are read
    ...(request.tail !== undefined && request.grep === undefined ? { tail: request.tail } : {}),
  };
}

export interface RawLogLine {
  time: string;
  nodeId: string;
  taskId: string;
  message: string;
}

/** One line as the Engine API gives it; null for a line that has no timestamp (a continuation or noise). */
export function parseRawLogLine(line: string): RawLogLine | null {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (\S*com\.docker\.swarm\.[^ ]*) ?(.*)$/.exec(line);
  if (match === null) {
    const bare = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ?(.*)$/.exec(line);
    return bare === null ? null : { time: bare[1]!, nodeId: '', taskId: '', message: bare[2]! };
  }
  const attrs = new Map(match[2]!.split(',').map((pair) => {
    const [key = '', value = ''] = pair.split('=');
    return [decodeURIComponent(key), decodeURIComponent(value)] as const;
  }));
  return { time: match[1]!, nodeId: attrs.get('com.docker.swarm.node.id') ?? '', taskId: attrs.get('com.docker.swarm.task.id') ?? '', message: match[3]! };
}

/** Sorts by time (nanosecond strings of equal width compare as text); stable, so equal times keep arrival order. */
export function mergeByTime(lines: LogLine[]): LogLine[] {
  return [...lines].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

/** The merged lines the request asks for: matching `--grep`, the newest `--tail`. */
export function selectLines(lines: LogLine[], request: LogRequest): LogLine[] {
  const matching = mergeByTime(lines).filter((l) => request.grep === undefined || request.grep.test(l.message));
  return request.tail !== undefined ? matching.slice(Math.max(0, matching.length - request.tail)) : matching;
}

/**
 * How a line is printed: `text` (default) removes the task's colour, cursor and title sequences and shows its
 * other control characters escaped, so a task's output cannot drive the operator's terminal; `raw` prints the
 * task's text as it wrote it; `json` keeps the text as written too, where JSON's escapes make it inert.
 */
export type LogFormat = 'text' | 'raw' | 'json';

/** `2026-11-30T01:02:03.123Z v2 api 1.k3j9x node-2 | text`, or one JSON object per line. */
export function formatLogLine(line: LogLine, format: LogFormat): string {
  if (format === 'json') return terminalJson(line);
  const message = format === 'raw' ? line.message : withoutEscapes(line.message);
  return `${line.time.replace(/(\.\d{3})\d*Z$/, '$1Z')} ${visible(line.version)} ${visible(line.service)} ${visible(line.task)} ${visible(line.node)} | ${message}`;
}
