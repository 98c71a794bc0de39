import { redact } from './redact.js';
import { visibleLines } from './terminal-text.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** A step of a longer operation ("node-1: ssh ready"); plain lines when stderr is not a TTY. */
  step(message: string): void;
}

export interface LoggerOptions {
  verbose?: boolean;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  color?: boolean;
}

/** Logs always go to stderr so that --json output on stdout stays one clean document. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const color = options.color ?? wantsColor(stream);
  const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  // messages carry names and errors from outside (the cluster, depl.yaml, a Compose file): their control
  // characters are shown escaped before depl adds its own colours
  const shown = (message: string) => visibleLines(redact(message));
  const write = (line: string) => stream.write(line + '\n');
  return {
    debug: (m) => { if (options.verbose) write(paint(90, shown(m))); },
    info: (m) => write(shown(m)),
    step: (m) => write(paint(36, '› ') + shown(m)),
    warn: (m) => write(paint(33, 'warning: ') + shown(m)),
    error: (m) => write(paint(31, 'error: ') + shown(m)),
  };
}

export function wantsColor(stream: { isTTY?: boolean }): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined) return process.env.FORCE_COLOR !== '0';
  return Boolean(stream.isTTY);
}

/** A logger that drops everything: for library use and tests that do not care. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, step() {} };
